//! [`PostgresDatabase`]: the pooled PostgreSQL implementation of the store's [`Database`] port
//! (connecting, the pool, and handing each transaction to a blocking thread; the transaction
//! itself is in `tx.rs`, statement helpers and pipelining primitives in `statement.rs`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use power_loop_contracts::{Error, Result};
use power_loop_store::backend::ConnectOptions;
use power_loop_store::db::{BoxFuture, Database, Dialect, Lease, TxBody, TxMode};
use tokio::runtime::Handle;

use crate::dialect::DIALECT;
use crate::dsn::PgDsn;
use crate::error::{closed, map_pool};
use crate::lease::{LeaseHub, advisory_key};
use crate::tls::RustlsMakeTls;
use crate::tx::{READ_BEGIN, blocking_tx};

/// A pooled PostgreSQL database implementing the store's [`Database`] port.
///
/// * **Connecting**: the DSN (`postgres://` or `postgresql://`, or a libpq `key=value` string) is
///   parsed strictly (`dsn.rs`): every parameter must be one of the documented ones (else
///   `store.dsn_invalid` naming it); credentials, host list and options such as
///   `application_name` or `connect_timeout` go to tokio-postgres. [`ConnectOptions::connect_timeout_ms`]
///   applies when the DSN sets no `connect_timeout`; the pool holds at most
///   [`ConnectOptions::pool_max_size`] connections. **TLS** (pool and lease connections alike) is
///   rustls with the ring provider: `sslmode` `disable`, `prefer` (the default: TLS when the
///   server offers it), `require` (no certificate check, unless `sslrootcert` is given),
///   `verify-ca` (chain to `sslrootcert`) or `verify-full` (chain and host name).
/// * **Transactions** ([`Database::transact`]): a pooled connection runs `BEGIN` (READ COMMITTED)
///   pipelined with the body's first statement. A [`TxMode::Read`] body runs its plain `SELECT`s
///   in autocommit (no `BEGIN`/`COMMIT`: under READ COMMITTED each statement takes its own
///   snapshot either way) and opens `BEGIN READ ONLY` only for any other statement, which then
///   fails as a write in a read-only transaction. The synchronous body runs on a blocking thread and drives each statement with
///   [`Handle::block_on`]. `Ok` commits, `Err` or a panic rolls back. The whole transaction runs on
///   that thread, so a dropped caller future never returns an open transaction to the pool; a
///   connection whose `COMMIT`/`ROLLBACK` failed is discarded, not pooled. Statements are prepared
///   once per connection (deadpool's statement cache); DDL is not cached.
/// * **Deferred writes**
///   ([`Transaction::execute_deferred`](power_loop_store::db::Transaction::execute_deferred))
///   are queued and sent pipelined with the
///   body's next statement, or with `COMMIT` (a durable turn's writes cost one round trip
///   together). Their answers are all awaited and checked: the first failure is reported with its
///   own typed error, and a failure before `COMMIT` makes the server roll the transaction back.
/// * **Row counts**: `execute` returns the server's command-tag count (matched rows for `UPDATE`).
/// * **Schema boot** ([`Database::transact_exclusive`]): the transaction first takes
///   `pg_advisory_xact_lock(key)`, so concurrent first boots serialize (DDL is transactional).
/// * **Leases** ([`Database::acquire_lease`]): `pg_try_advisory_lock(key)` on ONE dedicated,
///   non-pooled connection shared by every lease of this handle (so a hundred in-flight sessions
///   cost one connection, and an acquire is one round trip); releasing runs `pg_advisory_unlock`,
///   dropping unlocks in the background, closing the handle frees them all. Leases exclude across
///   processes (server-side) and within the process (an in-process set).
/// * **Errors** are mapped by SQLSTATE (`store.auth_failed`, `store.database_missing`,
///   `store.permission_denied`, `store.conflict`, `store.constraint`, `store.query`,
///   `store.connection`, `store.closed`) with the driver error as the source.
pub struct PostgresDatabase {
    pool: Pool,
    connect_timeout_ms: u64,
    leases: Arc<LeaseHub>,
    closed: AtomicBool,
}

impl std::fmt::Debug for PostgresDatabase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresDatabase")
            .field("status", &self.pool.status())
            .field("closed", &self.closed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl PostgresDatabase {
    /// Connects to the database named by `dsn` (see the type docs) and checks that one connection
    /// can be opened, so a wrong password, a missing database or an unreachable server is reported
    /// here, with its typed error code.
    pub async fn connect(dsn: &str, options: &ConnectOptions) -> Result<Self> {
        let parsed = PgDsn::parse(dsn)?;
        let tls = RustlsMakeTls::new(&parsed)?;
        let mut cfg = parsed.config;
        let connect_timeout_ms = match cfg.get_connect_timeout() {
            Some(d) => u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
            None => {
                let ms = options.connect_timeout_ms.max(1);
                cfg.connect_timeout(Duration::from_millis(ms));
                ms
            }
        };
        if cfg.get_application_name().is_none() {
            cfg.application_name("power-loop");
        }
        // The pool-level create timeout is a backstop over the per-host connect timeout (a DSN may
        // list several hosts).
        let create_timeout = Duration::from_millis(connect_timeout_ms.saturating_mul(2));
        let manager = Manager::from_config(
            cfg.clone(),
            tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool_max_size.max(1))
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(create_timeout))
            .recycle_timeout(Some(create_timeout))
            .build()
            .map_err(|e| {
                Error::internal(format!(
                    "building the PostgreSQL connection pool failed: {e}"
                ))
                .with_source(e)
            })?;
        let db = PostgresDatabase {
            pool,
            connect_timeout_ms,
            leases: Arc::new(LeaseHub::new(cfg, tls, connect_timeout_ms)),
            closed: AtomicBool::new(false),
        };
        // Prove DSN, credentials and database now; the connection stays pooled.
        drop(db.client().await?);
        Ok(db)
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(closed())
        } else {
            Ok(())
        }
    }

    async fn client(&self) -> Result<Object> {
        self.check_open()?;
        self.pool
            .get()
            .await
            .map_err(|e| map_pool(e, self.connect_timeout_ms))
    }

    async fn run_tx(&self, begin: &'static str, lock: Option<i64>, body: TxBody) -> Result<()> {
        let handle = Handle::try_current().map_err(|e| {
            Error::internal(
                "PostgreSQL transactions must be started from within a tokio runtime".to_owned(),
            )
            .with_source(e)
        })?;
        let client = self.client().await?;
        // From here on the transaction runs to completion on the blocking thread even if the
        // caller drops this future.
        let join =
            tokio::task::spawn_blocking(move || blocking_tx(&handle, client, begin, lock, body));
        match join.await {
            Ok(result) => result,
            Err(e) => Err(Error::internal(format!(
                "the PostgreSQL transaction thread failed: {e}"
            ))),
        }
    }

    async fn lease(&self, name: &str) -> Result<Option<Box<dyn Lease>>> {
        self.check_open()?;
        self.leases.acquire(name).await
    }
}

impl Database for PostgresDatabase {
    fn dialect(&self) -> &dyn Dialect {
        &DIALECT
    }

    fn transact(&self, mode: TxMode, body: TxBody) -> BoxFuture<'_, Result<()>> {
        let begin = match mode {
            TxMode::Read => READ_BEGIN,
            TxMode::Write => "BEGIN",
        };
        Box::pin(self.run_tx(begin, None, body))
    }

    fn transact_exclusive(&self, lock_name: &str, body: TxBody) -> BoxFuture<'_, Result<()>> {
        let key = advisory_key("boot", lock_name);
        Box::pin(self.run_tx("BEGIN", Some(key), body))
    }

    fn acquire_lease(&self, name: &str) -> BoxFuture<'_, Result<Option<Box<dyn Lease>>>> {
        let name = name.to_owned();
        Box::pin(async move { self.lease(&name).await })
    }

    fn close(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async move {
            self.closed.store(true, Ordering::Release);
            self.pool.close();
            self.leases.close().await;
            Ok(())
        })
    }
}
