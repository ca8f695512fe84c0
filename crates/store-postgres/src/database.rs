//! [`PostgresDatabase`]: the pooled PostgreSQL implementation of the store's [`Database`] port.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
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
/// * **Deferred writes** ([`Transaction::execute_deferred`]) are queued and sent pipelined with the
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
        lost: false,
        deferred: Vec::new(),
        commit: None,
    };
    let outcome = match lock {
        Some(key) => match tx.execute("SELECT pg_advisory_xact_lock(?)", &[Value::Int(key)]) {
            Ok(_) => catch_unwind(AssertUnwindSafe(|| body(&mut tx))),
            Err(e) => Ok(Err(e)),
        },
        None => catch_unwind(AssertUnwindSafe(|| body(&mut tx))),
    };
    match outcome {
        Ok(Ok(())) if tx.failed || tx.lost => {
            let (begun, lost_writes) = (tx.begun, tx.dirty || tx.lost);
            drop(tx);
            if begun {
                finish(handle, client, "ROLLBACK")?;
            }
            if lost_writes {
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
        Ok(Ok(())) if !tx.deferred.is_empty() => {
            // The deferred writes go out pipelined with `COMMIT`: one round trip for all of them.
            let result = tx.pipeline(Tail::Commit);
            let (begun, commit) = (tx.begun, tx.commit);
            drop(tx);
            match commit {
                // `COMMIT` answered: committed, or — when a deferred statement failed — the
                // server turned it into a rollback (its error is `result`). Either way the
                // connection is idle again.
                Some(true) => {}
                // `COMMIT` itself failed: the connection's state is unknown; never pool it.
                Some(false) => drop(Object::take(client)),
                // Nothing was sent (a statement could not be prepared).
                None => {
                    if begun {
                        let _ = finish(handle, client, "ROLLBACK");
                    }
                }
            }
            result.map(|_| ())
        }
        Ok(Ok(())) if !tx.begun => Ok(()),
        Ok(Ok(())) => {
            drop(tx);
            finish(handle, client, "COMMIT")
        }
        Ok(Err(e)) => {
            let begun = tx.begun;
            drop(tx);
            if begun {
                // The body's error is the one to report; a failed rollback discards the connection.
                let _ = finish(handle, client, "ROLLBACK");
            }
            Err(e)
        }
        Err(panic) => {
            let begun = tx.begun;
            drop(tx);
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
    /// Deferred writes were lost (they failed, or an error kept them from being sent): the
    /// transaction must not report success even if the body swallows the error.
    lost: bool,
    /// Writes queued by [`Transaction::execute_deferred`], in issue order, not yet sent.
    deferred: Vec<Deferred>,
    /// Whether a pipelined `COMMIT` (see [`PgTx::pipeline`]) was answered without error
    /// (`None`: not sent).
    commit: Option<bool>,
}

/// A queued deferred write: translated SQL and its parameters.
struct Deferred {
    sql: String,
    params: Vec<Value>,
}

/// What ends a pipeline of deferred writes.
enum Tail<'a> {
    /// A statement whose result the body waits for (`rows`: a query).
    Stmt {
        sql: &'a str,
        params: &'a [Value],
        rows: bool,
    },
    /// The transaction's `COMMIT`.
    Commit,
}

type PgResult<T> = std::result::Result<T, tokio_postgres::Error>;

/// One pipelined request.
type Request<'a> = Pin<Box<dyn Future<Output = PgResult<Out>> + 'a>>;

/// Polls every request in order until all are done. tokio-postgres sends a request when its
/// future is first polled, so requests reach the server in vector order, back to back, and the
/// server runs them in that order.
async fn join_in_order(mut requests: Vec<Request<'_>>) -> Vec<PgResult<Out>> {
    let mut outs: Vec<Option<PgResult<Out>>> = requests.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (request, out) in requests.iter_mut().zip(outs.iter_mut()) {
            if out.is_none() {
                match request.as_mut().poll(cx) {
                    Poll::Ready(r) => *out = Some(r),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outs.into_iter().flatten().collect()
}

/// Prepares `sql` (from the per-connection cache when cacheable; no round trip once cached).
async fn prepare(client: &ClientWrapper, sql: &str) -> PgResult<Statement> {
    if cacheable(sql) {
        client.prepare_cached(sql).await
    } else {
        client.prepare(sql).await
    }
}

impl PgTx<'_> {
    fn run(&mut self, sql: &str, params: &[Value], rows: bool) -> Result<Out> {
        let translated = DIALECT.translate(sql);
        if !self.deferred.is_empty() {
            return self.pipeline(Tail::Stmt {
                sql: &translated,
                params,
                rows,
            });
        }
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

impl PgTx<'_> {
    /// Records a failure of `sql`: the transaction (if begun) is aborted, queued writes are lost.
    fn fail(&mut self, e: tokio_postgres::Error, sql: &str, lost: bool) -> Error {
        self.failed |= self.begun;
        self.lost |= lost;
        if cacheable(sql) && stale_statement(&e) {
            self.client.statement_cache.remove(sql, &[]);
        }
        map_pg(e, Some(sql))
    }

    /// Sends the queued deferred writes — after `BEGIN` when not sent yet — pipelined with
    /// `tail`, in issue order, in one round trip, and waits for every answer. The first failure
    /// in issue order is returned (a deferred write's own error, not the "transaction aborted"
    /// errors of the statements after it). With [`Tail::Commit`], a failed deferred write makes
    /// PostgreSQL turn the `COMMIT` into a rollback, so nothing of the transaction persists.
    fn pipeline(&mut self, tail: Tail<'_>) -> Result<Out> {
        let queued = std::mem::take(&mut self.deferred);
        let lost = !queued.is_empty();
        let client = self.client;
        // Prepare first (cached statements cost nothing), so the executions below go out back
        // to back in issue order.
        let mut stmts = Vec::with_capacity(queued.len());
        for d in &queued {
            match self.handle.block_on(prepare(client, &d.sql)) {
                Ok(stmt) => stmts.push(stmt),
                Err(e) => return Err(self.fail(e, &d.sql, lost)),
            }
        }
        let tail_stmt = match &tail {
            Tail::Stmt { sql, .. } => match self.handle.block_on(prepare(client, sql)) {
                Ok(stmt) => Some(stmt),
                Err(e) => return Err(self.fail(e, sql, lost)),
            },
            Tail::Commit => None,
        };
        let begin = (!self.begun).then_some(self.begin);
        self.begun = true;
        let binds: Vec<Vec<Param<'_>>> = queued
            .iter()
            .map(|d| d.params.iter().map(Param).collect())
            .collect();
        let refs: Vec<Vec<&(dyn ToSql + Sync)>> = binds
            .iter()
            .map(|b| b.iter().map(|p| p as &(dyn ToSql + Sync)).collect())
            .collect();
        let tail_binds: Vec<Param<'_>> = match &tail {
            Tail::Stmt { params, .. } => params.iter().map(Param).collect(),
            Tail::Commit => Vec::new(),
        };
        let tail_refs: Vec<&(dyn ToSql + Sync)> = tail_binds
            .iter()
            .map(|p| p as &(dyn ToSql + Sync))
            .collect();
        let mut requests: Vec<Request<'_>> = Vec::with_capacity(queued.len() + 2);
        if let Some(b) = begin {
            requests.push(Box::pin(async move {
                client.batch_execute(b).await.map(|()| Out::Count(0))
            }));
        }
        for (stmt, r) in stmts.iter().zip(&refs) {
            requests.push(Box::pin(async move {
                client.execute(stmt, r).await.map(Out::Count)
            }));
        }
        let tail_refs = &tail_refs;
        match (&tail, &tail_stmt) {
            (Tail::Stmt { rows: true, .. }, Some(stmt)) => requests.push(Box::pin(async move {
                let found = client.query(stmt, tail_refs).await?;
                Ok(Out::Rows(stmt.clone(), found))
            })),
            (Tail::Stmt { .. }, Some(stmt)) => requests.push(Box::pin(async move {
                client.execute(stmt, tail_refs).await.map(Out::Count)
            })),
            _ => requests.push(Box::pin(async move {
                client.batch_execute("COMMIT").await.map(|()| Out::Count(0))
            })),
        }
        let results = self.handle.block_on(join_in_order(requests));
        let skip = usize::from(begin.is_some());
        let mut first_error = None;
        let mut tail_out = None;
        let last = results.len().saturating_sub(1);
        for (i, r) in results.into_iter().enumerate() {
            match r {
                Ok(out) => {
                    if i == last {
                        tail_out = Some(out);
                    }
                }
                Err(e) => {
                    if i == last && matches!(tail, Tail::Commit) {
                        self.commit = Some(false);
                    }
                    if first_error.is_none() {
                        let what = if i < skip {
                            begin.unwrap_or("BEGIN")
                        } else if let Some(d) = queued.get(i - skip) {
                            d.sql.as_str()
                        } else {
                            match &tail {
                                Tail::Stmt { sql, .. } => sql,
                                Tail::Commit => "COMMIT",
                            }
                        };
                        first_error = Some((e, what));
                    }
                }
            }
        }
        if matches!(tail, Tail::Commit) && self.commit.is_none() {
            self.commit = Some(true);
        }
        if let Some((e, what)) = first_error {
            let what = what.to_owned();
            return Err(self.fail(e, &what, lost));
        }
        self.dirty |=
            lost || matches!(tail, Tail::Stmt { sql, rows, .. } if !rows || !is_select(sql));
        tail_out.ok_or_else(|| Error::internal("a pipelined PostgreSQL request gave no answer"))
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

    /// Queued and sent pipelined with the next statement or with `COMMIT` (see
    /// [`PgTx::pipeline`]).
    fn execute_deferred(&mut self, sql: &str, params: &[Value]) -> Result<()> {
        self.deferred.push(Deferred {
            sql: DIALECT.translate(sql).into_owned(),
            params: params.to_vec(),
        });
        Ok(())
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
