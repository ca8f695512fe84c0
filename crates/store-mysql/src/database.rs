//! `MySqlDatabase`: the pooled mysql_async implementation of the store's `Database` port.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, Pool, PoolConstraints, PoolOpts, SslOpts, TxOpts};
use power_loop_contracts::{Error, ErrorCode, Result};
use power_loop_store::backend::ConnectOptions;
use power_loop_store::db::{BoxFuture, Database, Dialect, Lease, TxBody, TxMode, Value};
use tokio::runtime::Handle;

use crate::dialect::MySqlDialect;
use crate::dsn::{MySqlTls, MySqlUrl, redact};
use crate::error;
use crate::lease::{LeaseHub, LockName};
use crate::tx::{MySqlReadTx, MySqlTx, exec_count, fetch_rows};

/// Seconds `transact_exclusive` waits for the named lock before failing with `store.conflict`.
const EXCLUSIVE_LOCK_TIMEOUT_S: i64 = 120;
/// Prepared statements cached per pooled connection (the store uses about a hundred distinct
/// statements per table prefix). Kept moderate because the server caps prepared statements
/// globally (`max_prepared_stmt_count`, default 16 382) across every connection of every process.
const STMT_CACHE_SIZE: usize = 128;
/// How long an idle pooled connection is kept (keeps its statement cache warm).
const IDLE_TTL: Duration = Duration::from_secs(300);
/// Longest lock name `GET_LOCK` accepts.
const MAX_LOCK_NAME: usize = 64;
/// Idle timeout of a lease connection: the server maximum (one year), so a lease held by an idle
/// worker is not lost to the default 8-hour `wait_timeout`.
const LEASE_WAIT_TIMEOUT_S: u64 = 31_536_000;
/// TCP keepalive of a lease connection (a dead holder's leases are freed once the socket dies).
const LEASE_KEEPALIVE: Duration = Duration::from_secs(60);

/// Session setup run on every new connection.
const INIT_SQL: &[&str] = &[
    "SET NAMES utf8mb4",
    "SET SESSION sql_notes = 0",
    "SET SESSION sql_mode = 'STRICT_TRANS_TABLES,STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,\
     ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION'",
    "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED",
];

/// A MySQL / MariaDB database behind a mysql_async pool.
///
/// Connections use `CLIENT_FOUND_ROWS` (affected rows = matched rows), utf8mb4, strict SQL mode
/// and READ COMMITTED isolation. Transaction bodies run on a blocking thread that drives the
/// driver statement by statement; prepared statements are cached per connection. A
/// [`TxMode::Read`] body runs its plain `SELECT`s in autocommit (no `START TRANSACTION`/`COMMIT`
/// round trips; under READ COMMITTED every read takes a fresh snapshot inside a transaction too)
/// and opens a transaction only for any other statement. Leases
/// ([`Database::acquire_lease`]) are `GET_LOCK(name, 0)` on four shared, non-pooled lease
/// connections (one round trip to acquire or release, no connection per lease); a second holder
/// in this process is refused by an in-process map, other processes by the server.
#[derive(Clone)]
pub struct MySqlDatabase {
    inner: Arc<Inner>,
}

struct Inner {
    pool: RwLock<Option<Pool>>,
    leases: Arc<LeaseHub>,
    dialect: Arc<MySqlDialect>,
    server_version: String,
    database: Option<String>,
    target: String,
}

impl std::fmt::Debug for MySqlDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MySqlDatabase")
            .field("target", &self.inner.target)
            .field("server_version", &self.inner.server_version)
            .field("dialect", &self.inner.dialect)
            .finish_non_exhaustive()
    }
}

fn joined(e: tokio::task::JoinError) -> Error {
    Error::internal(format!("a MySQL transaction worker thread failed: {e}"))
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic payload".to_owned())
}

/// Server-global lock names are namespaced by database; names longer than 64 characters are
/// replaced by their SHA-256 (computed by the server) so `GET_LOCK` accepts them.
fn lock_arg(database: Option<&str>, name: &str) -> (&'static str, Value) {
    let full = format!("pl:{}:{name}", database.unwrap_or(""));
    if full.chars().count() <= MAX_LOCK_NAME {
        ("?", Value::Text(full))
    } else {
        ("SHA2(?, 256)", Value::Text(full))
    }
}

async fn with_timeout<T>(
    limit: Duration,
    what: &str,
    fut: impl Future<Output = std::result::Result<T, mysql_async::Error>>,
) -> Result<T> {
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r.map_err(|e| error::map(e, what)),
        Err(_) => Err(Error::new(
            ErrorCode::StoreConnection,
            format!(
                "{what}: no answer within {} ms; check that the server is reachable or raise the \
                 connect timeout",
                limit.as_millis()
            ),
        )),
    }
}

/// The driver's TLS options for a DSN's TLS settings (`None`: plain TCP). The CA file is read
/// here, so a missing or unreadable one is `store.dsn_invalid` naming `ssl_ca`.
fn ssl_opts(tls: Option<&MySqlTls>) -> Result<Option<SslOpts>> {
    let Some(tls) = tls else {
        return Ok(None);
    };
    // mysql_async builds its rustls config with the process-default provider: make it ring (a
    // no-op when one is already installed).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut opts = SslOpts::default()
        .with_danger_accept_invalid_certs(!tls.verify_ca)
        .with_danger_skip_domain_validation(!tls.verify_identity);
    if let Some(path) = &tls.ca_file {
        let pem = std::fs::read(path).map_err(|e| {
            Error::new(
                ErrorCode::StoreDsnInvalid,
                format!("cannot read ssl_ca `{}`: {e}", path.display()),
            )
            .with_detail("parameter", "ssl_ca")
            .with_source(e)
        })?;
        opts = opts
            .with_root_certs(vec![pem.into()])
            .with_disable_built_in_roots(true);
    }
    Ok(Some(opts))
}

impl MySqlDatabase {
    /// Connects to the server named by a `mysql://user:password@host:port/database?…` URL (query
    /// parameters: see [`MySqlUrl`]; `require_ssl=true` makes every connection, the lease
    /// connections included, use TLS over rustls), checks it with `SELECT VERSION()` and picks
    /// the dialect for its flavour.
    pub async fn connect(dsn: &str, options: &ConnectOptions) -> Result<MySqlDatabase> {
        let url = MySqlUrl::parse(dsn)?;
        let target = redact(dsn);
        let max = options.pool_max_size.max(1);
        let constraints = PoolConstraints::new(1, max).ok_or_else(|| {
            Error::invalid_argument(format!("pool_max_size {max} is not a valid pool size"))
        })?;
        let pool_opts = PoolOpts::new()
            .with_constraints(constraints)
            .with_reset_connection(false)
            .with_inactive_connection_ttl(IDLE_TTL);
        let opts: Opts = OptsBuilder::default()
            .ip_or_hostname(url.host.clone())
            .tcp_port(url.port)
            .user(url.user.clone())
            .pass(url.password.clone())
            .db_name(url.database.clone())
            .prefer_socket(false)
            .client_found_rows(true)
            .stmt_cache_size(STMT_CACHE_SIZE)
            .init(INIT_SQL.to_vec())
            .pool_opts(pool_opts)
            .ssl_opts(ssl_opts(url.tls.as_ref())?)
            .into();
        let connect_timeout = Duration::from_millis(
            url.connect_timeout_ms
                .unwrap_or(options.connect_timeout_ms)
                .max(1),
        );
        let pool = Pool::new(opts.clone());
        let what = format!("connecting to {target}");
        let probe = async {
            let mut conn = pool.get_conn().await?;
            let v: Option<String> = conn.query_first("SELECT VERSION()").await?;
            Ok(v.unwrap_or_default())
        };
        let server_version = match with_timeout(connect_timeout, &what, probe).await {
            Ok(v) => v,
            Err(e) => {
                let _ = tokio::time::timeout(connect_timeout, pool.disconnect()).await;
                return Err(e);
            }
        };
        let mut lease_init: Vec<String> = INIT_SQL.iter().map(|s| (*s).to_owned()).collect();
        lease_init.push(format!("SET SESSION wait_timeout = {LEASE_WAIT_TIMEOUT_S}"));
        let lease_opts: Opts = OptsBuilder::from_opts(opts)
            .tcp_keepalive(Some(LEASE_KEEPALIVE))
            .init(lease_init)
            .into();
        let dialect = Arc::new(MySqlDialect::for_server_version(&server_version));
        tracing::debug!(%target, %server_version, ?dialect, "mysql store connected");
        Ok(MySqlDatabase {
            inner: Arc::new(Inner {
                pool: RwLock::new(Some(pool)),
                leases: Arc::new(LeaseHub::new(lease_opts, connect_timeout, target.clone())),
                dialect,
                server_version,
                database: url.database,
                target,
            }),
        })
    }

    /// The server's `SELECT VERSION()` string.
    pub fn server_version(&self) -> &str {
        &self.inner.server_version
    }

    /// Whether the server is MariaDB (rather than MySQL).
    pub fn is_mariadb(&self) -> bool {
        self.inner
            .server_version
            .to_ascii_lowercase()
            .contains("mariadb")
    }

    /// The concrete dialect picked for this server.
    pub fn mysql_dialect(&self) -> &MySqlDialect {
        &self.inner.dialect
    }

    fn pool(&self) -> Result<Pool> {
        match self.inner.pool.read() {
            Ok(g) => g.clone().ok_or_else(error::closed),
            Err(p) => p.into_inner().clone().ok_or_else(error::closed),
        }
    }

    async fn pooled_conn(&self) -> Result<Conn> {
        self.pool()?.get_conn().await.map_err(|e| {
            error::map(
                e,
                &format!("taking a connection to {} from the pool", self.inner.target),
            )
        })
    }

    /// Runs `body` in a transaction on `conn` (blocking thread), optionally under a named lock
    /// taken with `GET_LOCK` before and released after the transaction.
    async fn run_on_blocking(
        &self,
        mode: TxMode,
        lock: Option<String>,
        body: TxBody,
    ) -> Result<()> {
        let conn = self.pooled_conn().await?;
        let handle = Handle::current();
        let dialect = self.inner.dialect.clone();
        let database = self.inner.database.clone();
        tokio::task::spawn_blocking(move || {
            run_blocking(
                &handle,
                conn,
                &dialect,
                database.as_deref(),
                mode,
                lock.as_deref(),
                body,
            )
        })
        .await
        .map_err(joined)?
    }

    /// Runs one autocommit statement (outside any explicit transaction); returns matched rows.
    pub async fn execute(&self, sql: &str, params: &[Value]) -> Result<u64> {
        let mut conn = self.pooled_conn().await?;
        exec_count(&mut conn, sql, params).await
    }

    /// Runs one autocommit query and returns its rows.
    pub async fn fetch_all(
        &self,
        sql: &str,
        params: &[Value],
    ) -> Result<Vec<power_loop_store::db::Row>> {
        let mut conn = self.pooled_conn().await?;
        fetch_rows(&mut conn, sql, params).await
    }
}

/// The blocking half of a transaction: lock (optional) → START TRANSACTION → body → COMMIT or
/// ROLLBACK → unlock. A connection whose state is uncertain is disconnected, never pooled.
fn run_blocking(
    handle: &Handle,
    mut conn: Conn,
    dialect: &Arc<MySqlDialect>,
    database: Option<&str>,
    mode: TxMode,
    lock: Option<&str>,
    body: TxBody,
) -> Result<()> {
    if let Some(name) = lock {
        let (expr, arg) = lock_arg(database, name);
        let sql = format!("SELECT GET_LOCK({expr}, ?) AS got");
        let got = handle.block_on(fetch_rows(
            &mut conn,
            &sql,
            &[arg, Value::Int(EXCLUSIVE_LOCK_TIMEOUT_S)],
        ))?;
        let got = got.first().map(|r| r.opt_i64("got")).transpose()?.flatten();
        if got != Some(1) {
            return Err(Error::new(
                ErrorCode::StoreConflict,
                format!(
                    "timed out after {EXCLUSIVE_LOCK_TIMEOUT_S} s waiting for the MySQL lock \
                     `{name}` (another process is provisioning the schema); retry"
                ),
            ));
        }
    }
    let result = match mode {
        TxMode::Read => run_read(handle, &mut conn, dialect, body),
        TxMode::Write => run_tx(handle, &mut conn, dialect, body),
    };
    if let Some(name) = lock {
        let (expr, arg) = lock_arg(database, name);
        let sql = format!("SELECT RELEASE_LOCK({expr}) AS released");
        if handle
            .block_on(fetch_rows(&mut conn, &sql, &[arg]))
            .is_err()
        {
            // Closing the connection releases the lock on the server.
            let _ = handle.block_on(conn.disconnect());
            return result;
        }
    }
    result
}

/// Runs a [`TxMode::Read`] body: plain `SELECT`s in autocommit, anything else inside a
/// transaction opened on demand (see [`MySqlReadTx`]).
fn run_read(
    handle: &Handle,
    conn: &mut Conn,
    dialect: &Arc<MySqlDialect>,
    body: TxBody,
) -> Result<()> {
    let mut rtx = MySqlReadTx::new(conn, handle.clone(), dialect.clone());
    match catch_unwind(AssertUnwindSafe(|| body(&mut rtx))) {
        Ok(Ok(())) => rtx.finish(true),
        Ok(Err(e)) => {
            let _ = rtx.finish(false);
            Err(e)
        }
        Err(panic) => {
            let _ = rtx.finish(false);
            Err(Error::internal(format!(
                "a store transaction body panicked ({}); the transaction was rolled back",
                panic_message(&*panic)
            )))
        }
    }
}

/// Runs `body` inside START TRANSACTION … COMMIT (on `Ok`) or ROLLBACK (on `Err` or panic).
fn run_tx(
    handle: &Handle,
    conn: &mut Conn,
    dialect: &Arc<MySqlDialect>,
    body: TxBody,
) -> Result<()> {
    {
        let tx = handle
            .block_on(conn.start_transaction(TxOpts::default()))
            .map_err(|e| error::map(e, "starting a transaction"))?;
        let mut mtx = MySqlTx {
            tx,
            handle: handle.clone(),
            dialect: dialect.clone(),
        };
        let outcome = catch_unwind(AssertUnwindSafe(|| body(&mut mtx)));
        let MySqlTx { tx, .. } = mtx;
        match outcome {
            Ok(Ok(())) => handle
                .block_on(tx.commit())
                .map_err(|e| error::map(e, "committing a transaction")),
            Ok(Err(e)) => {
                // A failed ROLLBACK leaves the connection marked dirty: the pool rolls it back
                // again or discards it before reuse.
                let _ = handle.block_on(tx.rollback());
                Err(e)
            }
            Err(panic) => {
                let _ = handle.block_on(tx.rollback());
                Err(Error::internal(format!(
                    "a store transaction body panicked ({}); the transaction was rolled back",
                    panic_message(&*panic)
                )))
            }
        }
    }
}

impl Database for MySqlDatabase {
    fn dialect(&self) -> &dyn Dialect {
        &*self.inner.dialect
    }

    fn transact(&self, mode: TxMode, body: TxBody) -> BoxFuture<'_, Result<()>> {
        Box::pin(self.run_on_blocking(mode, None, body))
    }

    fn transact_exclusive(&self, lock_name: &str, body: TxBody) -> BoxFuture<'_, Result<()>> {
        let lock = lock_name.to_owned();
        Box::pin(self.run_on_blocking(TxMode::Write, Some(lock), body))
    }

    fn acquire_lease(&self, name: &str) -> BoxFuture<'_, Result<Option<Box<dyn Lease>>>> {
        let name = name.to_owned();
        Box::pin(async move {
            self.pool()?; // refuse after close
            let (expr, arg) = lock_arg(self.inner.database.as_deref(), &name);
            let Value::Text(full) = arg else {
                return Err(Error::internal("a lock name must be text".to_owned()));
            };
            self.inner
                .leases
                .acquire(LockName { full, expr }, &name)
                .await
        })
    }

    fn close(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            let pool = match self.inner.pool.write() {
                Ok(mut g) => g.take(),
                Err(p) => p.into_inner().take(),
            };
            self.inner.leases.close().await;
            match pool {
                Some(pool) => pool.disconnect().await.map_err(|e| {
                    error::map(e, &format!("closing the pool of {}", self.inner.target))
                }),
                None => Ok(()),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_names() {
        let (e, v) = lock_arg(Some("test"), "schema:pl_");
        assert_eq!(e, "?");
        assert_eq!(v, Value::Text("pl:test:schema:pl_".into()));
        let long = "x".repeat(80);
        let (e, _) = lock_arg(Some("test"), &long);
        assert_eq!(e, "SHA2(?, 256)");
    }
}
