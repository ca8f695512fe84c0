//! One PostgreSQL transaction, run whole on a blocking thread: `BEGIN` pipelined with the first
//! statement, autocommitted plain reads in read mode, deferred writes pipelined with the next
//! statement or `COMMIT`, and a commit or rollback that never returns a half-finished
//! transaction to the pool.

use std::panic::{AssertUnwindSafe, catch_unwind};

use deadpool_postgres::{ClientWrapper, Object};
use power_loop_contracts::{Error, ErrorCode, Result};
use power_loop_store::db::{Dialect, Row, Transaction, TxBody, Value};
use tokio::runtime::Handle;
use tokio_postgres::types::ToSql;

use crate::dialect::DIALECT;
use crate::error::map_pg;
use crate::statement::{
    Deferred, Out, Request, Tail, cacheable, decode, is_select, join_in_order, plain_select,
    prepare, stale_statement,
};
use crate::value::Param;

/// How a [`TxMode::Read`] transaction begins (only once it runs a statement that is not a plain
/// `SELECT`; see [`PgTx::read`]).
pub(crate) const READ_BEGIN: &str = "BEGIN READ ONLY";

/// Runs one whole transaction on the current (blocking) thread.
pub(crate) fn blocking_tx(
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
