//! Statement-level helpers of the PostgreSQL transaction: which statements are cached or read
//! only, the pipelining primitives (queued deferred writes, in-order polling of requests),
//! preparing, and decoding result rows.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use deadpool_postgres::ClientWrapper;
use power_loop_contracts::{Error, ErrorCode, Result};
use power_loop_store::db::{Row, Value};
use tokio_postgres::Statement;

use crate::error::chain_text;
use crate::value::Cell;

/// Statements whose prepared form is worth caching per connection (not DDL).
pub(crate) fn cacheable(sql: &str) -> bool {
    let head = sql.trim_start();
    let kw = head.get(..6).unwrap_or(head);
    ["SELECT", "INSERT", "UPDATE", "DELETE"]
        .iter()
        .any(|k| kw.eq_ignore_ascii_case(k))
        || head
            .get(..4)
            .is_some_and(|k| k.eq_ignore_ascii_case("WITH"))
}

pub(crate) fn is_select(sql: &str) -> bool {
    sql.trim_start()
        .get(..6)
        .is_some_and(|k| k.eq_ignore_ascii_case("SELECT"))
}

/// A `SELECT` that takes no row locks (runs in autocommit in a read transaction).
pub(crate) fn plain_select(sql: &str) -> bool {
    is_select(sql) && !sql.to_ascii_uppercase().contains(" FOR ")
}

pub(crate) enum Out {
    Rows(Statement, Vec<tokio_postgres::Row>),
    Count(u64),
}

/// A queued deferred write: translated SQL and its parameters.
pub(crate) struct Deferred {
    pub(crate) sql: String,
    pub(crate) params: Vec<Value>,
}

/// What ends a pipeline of deferred writes.
pub(crate) enum Tail<'a> {
    /// A statement whose result the body waits for (`rows`: a query).
    Stmt {
        sql: &'a str,
        params: &'a [Value],
        rows: bool,
    },
    /// The transaction's `COMMIT`.
    Commit,
}

pub(crate) type PgResult<T> = std::result::Result<T, tokio_postgres::Error>;

/// One pipelined request.
pub(crate) type Request<'a> = Pin<Box<dyn Future<Output = PgResult<Out>> + 'a>>;

/// Polls every request in order until all are done. tokio-postgres sends a request when its
/// future is first polled, so requests reach the server in vector order, back to back, and the
/// server runs them in that order.
pub(crate) async fn join_in_order(mut requests: Vec<Request<'_>>) -> Vec<PgResult<Out>> {
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
pub(crate) async fn prepare(client: &ClientWrapper, sql: &str) -> PgResult<Statement> {
    if cacheable(sql) {
        client.prepare_cached(sql).await
    } else {
        client.prepare(sql).await
    }
}

/// A cached prepared statement that the server no longer accepts (table recreated, `DISCARD`).
pub(crate) fn stale_statement(e: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    e.code().is_some_and(|c| {
        *c == SqlState::INVALID_SQL_STATEMENT_NAME || *c == SqlState::FEATURE_NOT_SUPPORTED
    })
}

pub(crate) fn decode(stmt: &Statement, rows: Vec<tokio_postgres::Row>) -> Result<Vec<Row>> {
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
