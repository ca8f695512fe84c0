//! [`PostgresDatabase`]: the pooled PostgreSQL implementation of the store's [`Database`] port.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use deadpool_postgres::{
    ClientWrapper, Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime,
};
use power_loop_contracts::{Error, ErrorCode, Result};
use power_loop_store::backend::ConnectOptions;
use power_loop_store::db::{
    BoxFuture, Database, Dialect, Lease, Row, Transaction, TxBody, TxMode, Value,
};
use tokio::runtime::Handle;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Statement};

use crate::dialect::DIALECT;
use crate::error::{chain_text, closed, map_pg, map_pool};
use crate::lease::{LeaseHub, advisory_key};
use crate::value::{Cell, Param};

/// A pooled PostgreSQL database implementing the store's [`Database`] port.
///
/// * **Connecting**: the DSN (`postgres://` or `postgresql://`, or a `key=value` string) is parsed
///   verbatim by [`tokio_postgres::Config::from_str`]; credentials, host list and options such as
///   `application_name` or `connect_timeout` come from it. [`ConnectOptions::connect_timeout_ms`]
///   applies when the DSN sets no `connect_timeout`; the pool holds at most
///   [`ConnectOptions::pool_max_size`] connections. **No TLS**: connections are made with
///   [`NoTls`], so `sslmode=require` fails with `store.connection`; use a local socket, a trusted
///   network or a TLS-terminating proxy.
/// * **Transactions** ([`Database::transact`]): a pooled connection runs `BEGIN` (READ COMMITTED)
///   pipelined with the body's first statement. A [`TxMode::Read`] body runs its plain `SELECT`s
///   in autocommit (no `BEGIN`/`COMMIT`: under READ COMMITTED each statement takes its own
///   snapshot either way) and opens `BEGIN READ ONLY` only for any other statement, which then
///   fails as a write in a read-only transaction. The synchronous body runs on a blocking thread and drives each statement with
///   [`Handle::block_on`]. `Ok` commits, `Err` or a panic rolls back. The whole transaction runs on
///   that thread, so a dropped caller future never returns an open transaction to the pool; a
///   connection whose `COMMIT`/`ROLLBACK` failed is discarded, not pooled. Statements are prepared
///   once per connection (deadpool's statement cache); DDL is not cached.
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
        let mut cfg = tokio_postgres::Config::from_str(dsn).map_err(|e| {
            Error::new(
                ErrorCode::StoreDsnInvalid,
                format!(
                    "the PostgreSQL DSN is malformed ({}); use \
                     postgres://user:password@host:port/database",
                    chain_text(&e)
                ),
            )
            .with_source(e)
        })?;
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
            NoTls,
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
            leases: Arc::new(LeaseHub::new(cfg, connect_timeout_ms)),
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

/// How a [`TxMode::Read`] transaction begins (only once it runs a statement that is not a plain
/// `SELECT`; see [`PgTx::read`]).
const READ_BEGIN: &str = "BEGIN READ ONLY";

/// Runs one whole transaction on the current (blocking) thread.
fn blocking_tx(
    handle: &Handle,
    client: Object,
    begin: &'static str,
    lock: Option<i64>,
    body: TxBody,
) -> Result<()> {
    let mut tx = PgTx {
        handle,
        client: &client,
        read: begin == READ_BEGIN,
        begin,
        begun: false,
        failed: false,
        dirty: false,
    };
    let outcome = match lock {
        Some(key) => match tx.execute("SELECT pg_advisory_xact_lock(?)", &[Value::Int(key)]) {
            Ok(_) => catch_unwind(AssertUnwindSafe(|| body(&mut tx))),
            Err(e) => Ok(Err(e)),
        },
        None => catch_unwind(AssertUnwindSafe(|| body(&mut tx))),
    };
    let PgTx {
        begun,
        failed,
        dirty,
        ..
    } = tx;
    match outcome {
        Ok(Ok(())) if !begun => Ok(()),
        Ok(Ok(())) if failed => {
            finish(handle, client, "ROLLBACK")?;
            if dirty {
                Err(Error::new(
                    ErrorCode::StoreQuery,
                    "a statement failed inside the transaction after earlier writes, so PostgreSQL \
                     aborted it and nothing was committed; do not continue a transaction after a \
                     failed statement",
                ))
            } else {
                Ok(())
            }
        }
        Ok(Ok(())) => finish(handle, client, "COMMIT"),
        Ok(Err(e)) => {
            if begun {
                // The body's error is the one to report; a failed rollback discards the connection.
                let _ = finish(handle, client, "ROLLBACK");
            }
            Err(e)
        }
        Err(panic) => {
            if begun {
                let _ = finish(handle, client, "ROLLBACK");
            }
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "non-string panic payload".to_owned());
            Err(Error::internal(format!(
                "the transaction body panicked ({msg}); the transaction was rolled back"
            )))
        }
    }
}

/// Sends `COMMIT` or `ROLLBACK`; on failure the connection is taken out of the pool and closed
/// (the server rolls back whatever was open), so no half-finished transaction is ever reused.
fn finish(handle: &Handle, client: Object, sql: &'static str) -> Result<()> {
    match handle.block_on(client.batch_execute(sql)) {
        Ok(()) => Ok(()),
        Err(e) => {
            drop(Object::take(client));
            Err(map_pg(e, Some(sql)))
        }
    }
}

/// Statements whose prepared form is worth caching per connection (not DDL).
fn cacheable(sql: &str) -> bool {
    let head = sql.trim_start();
    let kw = head.get(..6).unwrap_or(head);
    ["SELECT", "INSERT", "UPDATE", "DELETE"]
        .iter()
        .any(|k| kw.eq_ignore_ascii_case(k))
        || head
            .get(..4)
            .is_some_and(|k| k.eq_ignore_ascii_case("WITH"))
}

fn is_select(sql: &str) -> bool {
    sql.trim_start()
        .get(..6)
        .is_some_and(|k| k.eq_ignore_ascii_case("SELECT"))
}

/// A `SELECT` that takes no row locks (runs in autocommit in a read transaction).
fn plain_select(sql: &str) -> bool {
    is_select(sql) && !sql.to_ascii_uppercase().contains(" FOR ")
}

enum Out {
    Rows(Statement, Vec<tokio_postgres::Row>),
    Count(u64),
}

/// One open transaction on one pooled connection, driven from a blocking thread.
struct PgTx<'c> {
    handle: &'c Handle,
    client: &'c ClientWrapper,
    /// A [`TxMode::Read`] body: its plain `SELECT`s run without `BEGIN`/`COMMIT` (autocommit),
    /// which sees exactly what they would see inside a READ COMMITTED transaction (every
    /// statement takes its own snapshot there too) and saves the `COMMIT` round trip. Any other
    /// statement (a write, `SELECT … FOR UPDATE`) first opens `BEGIN READ ONLY`, so it still
    /// fails as a write in a read-only transaction.
    read: bool,
    begin: &'static str,
    /// `BEGIN` has been sent (it is pipelined with the first statement).
    begun: bool,
    /// A statement failed: PostgreSQL has aborted the transaction.
    failed: bool,
    /// A write succeeded before any failure.
    dirty: bool,
}

impl PgTx<'_> {
    fn run(&mut self, sql: &str, params: &[Value], rows: bool) -> Result<Out> {
        let translated = DIALECT.translate(sql);
        let client = self.client;
        let cache = cacheable(&translated);
        let work = async {
            let stmt = if cache {
                client.prepare_cached(&translated).await?
            } else {
                client.prepare(&translated).await?
            };
            let binds: Vec<Param<'_>> = params.iter().map(Param).collect();
            let refs: Vec<&(dyn ToSql + Sync)> =
                binds.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
            if rows {
                let found = client.query(&stmt, &refs).await?;
                Ok(Out::Rows(stmt, found))
            } else {
                client.execute(&stmt, &refs).await.map(Out::Count)
            }
        };
        let result = if self.begun || (self.read && plain_select(&translated)) {
            self.handle.block_on(work)
        } else {
            self.begun = true;
            let begin = self.begin;
            let (began, result) = self
                .handle
                .block_on(async { tokio::join!(client.batch_execute(begin), work) });
            if let Err(e) = began {
                self.failed = true;
                return Err(map_pg(e, Some(begin)));
            }
            result
        };
        match result {
            Ok(out) => {
                if !rows || !is_select(&translated) {
                    self.dirty |= !self.failed;
                }
                Ok(out)
            }
            Err(e) => {
                // Outside a transaction (an autocommitted read) nothing was aborted.
                self.failed |= self.begun;
                if cache && stale_statement(&e) {
                    client.statement_cache.remove(&translated, &[]);
                }
                Err(map_pg(e, Some(&translated)))
            }
        }
    }
}

/// A cached prepared statement that the server no longer accepts (table recreated, `DISCARD`).
fn stale_statement(e: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    e.code().is_some_and(|c| {
        *c == SqlState::INVALID_SQL_STATEMENT_NAME || *c == SqlState::FEATURE_NOT_SUPPORTED
    })
}

fn decode(stmt: &Statement, rows: Vec<tokio_postgres::Row>) -> Result<Vec<Row>> {
    let columns: Arc<[String]> = stmt.columns().iter().map(|c| c.name().to_owned()).collect();
    let width = columns.len();
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let mut values = Vec::with_capacity(width);
        for i in 0..width {
            let cell = row.try_get::<_, Cell>(i).map_err(|e| {
                Error::new(
                    ErrorCode::StoreDecode,
                    format!(
                        "column `{}` of a PostgreSQL result could not be decoded: {}",
                        columns.get(i).map_or("?", String::as_str),
                        chain_text(&e)
                    ),
                )
                .with_source(e)
            })?;
            values.push(cell.0);
        }
        out.push(Row::new(Arc::clone(&columns), values));
    }
    Ok(out)
}

impl Transaction for PgTx<'_> {
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64> {
        match self.run(sql, params, false)? {
            Out::Count(n) => Ok(n),
            Out::Rows(_, rows) => Ok(rows.len() as u64),
        }
    }

    fn fetch_all(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        match self.run(sql, params, true)? {
            Out::Rows(stmt, rows) => decode(&stmt, rows),
            Out::Count(_) => Ok(Vec::new()),
        }
    }

    fn dialect(&self) -> &dyn Dialect {
        &DIALECT
    }
}
