//! The synchronous [`Transaction`] handed to store bodies, value binding and row decoding.

use std::sync::Arc;

use mysql_async::consts::ColumnType;
use mysql_async::prelude::Queryable;
use mysql_async::{Column, Params, Value as MyValue};
use power_loop_contracts::{Error, ErrorCode, Result};
use power_loop_store::db::{Dialect, Row, Transaction, Value};
use tokio::runtime::Handle;

use crate::dialect::MySqlDialect;
use crate::error;

/// Server error raised when a statement cannot be prepared (`ER_UNSUPPORTED_PS`).
const ER_UNSUPPORTED_PS: u16 = 1295;

/// Binds store values as positional driver parameters.
pub(crate) fn to_params(params: &[Value]) -> Params {
    if params.is_empty() {
        return Params::Empty;
    }
    Params::Positional(
        params
            .iter()
            .map(|v| match v {
                Value::Null => MyValue::NULL,
                Value::Int(i) => MyValue::Int(*i),
                Value::Text(s) => MyValue::Bytes(s.clone().into_bytes()),
            })
            .collect(),
    )
}

fn is_integer_type(t: ColumnType) -> bool {
    matches!(
        t,
        ColumnType::MYSQL_TYPE_TINY
            | ColumnType::MYSQL_TYPE_SHORT
            | ColumnType::MYSQL_TYPE_LONG
            | ColumnType::MYSQL_TYPE_LONGLONG
            | ColumnType::MYSQL_TYPE_INT24
            | ColumnType::MYSQL_TYPE_YEAR
    )
}

fn is_decimal_type(t: ColumnType) -> bool {
    matches!(
        t,
        ColumnType::MYSQL_TYPE_DECIMAL | ColumnType::MYSQL_TYPE_NEWDECIMAL
    )
}

fn decode_err(col: &str, why: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorCode::StoreDecode,
        format!("column `{col}` could not be decoded: {why}"),
    )
}

fn float_value(f: f64) -> Value {
    if f.fract() == 0.0 && f.abs() < 9.0e15 {
        // Exact in both f64 and i64 (|f| < 2^53).
        #[allow(clippy::cast_possible_truncation)]
        Value::Int(f as i64)
    } else {
        Value::Text(f.to_string())
    }
}

/// Decodes one driver value: integers → `Int`, strings/bytes → `Text` (UTF-8), NULL → `Null`.
/// Integral DECIMAL results (e.g. `SUM(..)`) become `Int`.
fn decode_value(v: Option<MyValue>, col: &Column) -> Result<Value> {
    let name = || col.name_str().into_owned();
    Ok(match v {
        None | Some(MyValue::NULL) => Value::Null,
        Some(MyValue::Int(i)) => Value::Int(i),
        Some(MyValue::UInt(u)) => match i64::try_from(u) {
            Ok(i) => Value::Int(i),
            Err(_) => Value::Text(u.to_string()),
        },
        Some(MyValue::Float(f)) => float_value(f64::from(f)),
        Some(MyValue::Double(d)) => float_value(d),
        Some(MyValue::Bytes(b)) => {
            let t = col.column_type();
            let s = String::from_utf8(b).map_err(|e| decode_err(&name(), e))?;
            if is_integer_type(t) {
                Value::Int(
                    s.trim()
                        .parse::<i64>()
                        .map_err(|e| decode_err(&name(), e))?,
                )
            } else if is_decimal_type(t) {
                match s.trim().parse::<i64>() {
                    Ok(i) => Value::Int(i),
                    Err(_) => match s.trim().split_once('.') {
                        Some((int, frac)) if frac.bytes().all(|c| c == b'0') => {
                            Value::Int(int.parse::<i64>().map_err(|e| decode_err(&name(), e))?)
                        }
                        _ => Value::Text(s),
                    },
                }
            } else {
                Value::Text(s)
            }
        }
        Some(other @ (MyValue::Date(..) | MyValue::Time(..))) => {
            Value::Text(other.as_sql(true).trim_matches('\'').to_owned())
        }
    })
}

/// Decodes driver rows into store rows sharing one column-name list.
pub(crate) fn decode_rows(rows: Vec<mysql_async::Row>) -> Result<Vec<Row>> {
    let Some(first) = rows.first() else {
        return Ok(Vec::new());
    };
    let cols = first.columns();
    let names: Arc<[String]> = cols.iter().map(|c| c.name_str().into_owned()).collect();
    rows.into_iter()
        .map(|r| {
            let values = r
                .unwrap_raw()
                .into_iter()
                .zip(cols.iter())
                .map(|(v, c)| decode_value(v, c))
                .collect::<Result<Vec<_>>>()?;
            Ok(Row::new(names.clone(), values))
        })
        .collect()
}

fn unsupported_ps(e: &mysql_async::Error) -> bool {
    matches!(e, mysql_async::Error::Server(se) if se.code == ER_UNSUPPORTED_PS)
}

/// A queryable connection that reports the affected-row count of its last statement.
pub(crate) trait Affected: Queryable {
    /// Affected (with `CLIENT_FOUND_ROWS`: matched) rows of the last statement.
    fn affected(&self) -> u64;
}

impl Affected for mysql_async::Conn {
    fn affected(&self) -> u64 {
        self.affected_rows()
    }
}

impl Affected for mysql_async::Transaction<'_> {
    fn affected(&self) -> u64 {
        self.affected_rows()
    }
}

/// Runs a write on any queryable connection; returns the matched-row count.
pub(crate) async fn exec_count<Q: Affected>(q: &mut Q, sql: &str, params: &[Value]) -> Result<u64> {
    match q.exec_drop(sql, to_params(params)).await {
        Ok(()) => {}
        Err(e) if params.is_empty() && unsupported_ps(&e) => {
            q.query_drop(sql)
                .await
                .map_err(|e| error::map(e, "running a statement"))?;
        }
        Err(e) => return Err(error::map(e, "running a statement")),
    }
    Ok(q.affected())
}

/// Runs a query on any queryable connection and decodes every row.
pub(crate) async fn fetch_rows<Q: Queryable>(
    q: &mut Q,
    sql: &str,
    params: &[Value],
) -> Result<Vec<Row>> {
    let rows: Vec<mysql_async::Row> = match q.exec(sql, to_params(params)).await {
        Ok(rows) => rows,
        Err(e) if params.is_empty() && unsupported_ps(&e) => q
            .query(sql)
            .await
            .map_err(|e| error::map(e, "running a query"))?,
        Err(e) => return Err(error::map(e, "running a query")),
    };
    decode_rows(rows)
}

/// One open MySQL transaction, driven synchronously from a blocking thread.
pub(crate) struct MySqlTx<'c> {
    pub(crate) tx: mysql_async::Transaction<'c>,
    pub(crate) handle: Handle,
    pub(crate) dialect: Arc<MySqlDialect>,
}

impl Transaction for MySqlTx<'_> {
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64> {
        let handle = self.handle.clone();
        handle.block_on(exec_count(&mut self.tx, sql, params))
    }

    fn fetch_all(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        let handle = self.handle.clone();
        handle.block_on(fetch_rows(&mut self.tx, sql, params))
    }

    fn dialect(&self) -> &dyn Dialect {
        &*self.dialect
    }
}

/// A `SELECT` that takes no row locks (`FOR UPDATE`, `LOCK IN SHARE MODE`, `FOR SHARE`).
fn plain_select(sql: &str) -> bool {
    let head = sql.trim_start();
    head.get(..6)
        .is_some_and(|k| k.eq_ignore_ascii_case("SELECT"))
        && {
            let upper = head.to_ascii_uppercase();
            !upper.contains(" FOR ") && !upper.contains(" LOCK ")
        }
}

/// Where a [`MySqlReadTx`] stands.
enum ReadState<'c> {
    /// No transaction yet: plain `SELECT`s run in autocommit.
    Auto(&'c mut mysql_async::Conn),
    /// A statement other than a plain `SELECT` opened a transaction.
    Tx(mysql_async::Transaction<'c>),
    /// Starting the transaction failed (the connection is not reused).
    Broken,
}

/// A [`power_loop_store::db::TxMode::Read`] body's transaction: plain `SELECT`s run in autocommit
/// (no `START TRANSACTION`/`COMMIT` round trips). Under READ COMMITTED every consistent read takes
/// a fresh snapshot even inside a transaction, so they see exactly what they would see there.
/// Any other statement first opens a real transaction, which [`MySqlReadTx::finish`] commits or
/// rolls back, so writes keep their atomicity.
pub(crate) struct MySqlReadTx<'c> {
    state: ReadState<'c>,
    handle: Handle,
    dialect: Arc<MySqlDialect>,
}

impl<'c> MySqlReadTx<'c> {
    /// A read transaction on `conn` (nothing is sent yet).
    pub(crate) fn new(
        conn: &'c mut mysql_async::Conn,
        handle: Handle,
        dialect: Arc<MySqlDialect>,
    ) -> Self {
        MySqlReadTx {
            state: ReadState::Auto(conn),
            handle,
            dialect,
        }
    }

    fn begin_if_needed(&mut self, sql: &str) -> Result<()> {
        if !matches!(self.state, ReadState::Auto(_)) || plain_select(sql) {
            return Ok(());
        }
        let ReadState::Auto(conn) = std::mem::replace(&mut self.state, ReadState::Broken) else {
            return Ok(());
        };
        let tx = self
            .handle
            .block_on(conn.start_transaction(mysql_async::TxOpts::default()))
            .map_err(|e| error::map(e, "starting a transaction"))?;
        self.state = ReadState::Tx(tx);
        Ok(())
    }

    /// Commits (`commit`) or rolls back the transaction a non-`SELECT` statement opened, if any.
    pub(crate) fn finish(self, commit: bool) -> Result<()> {
        match self.state {
            ReadState::Auto(_) => Ok(()),
            ReadState::Broken => Err(Error::new(
                ErrorCode::StoreConnection,
                "a transaction could not be started on this connection",
            )),
            ReadState::Tx(tx) if commit => self
                .handle
                .block_on(tx.commit())
                .map_err(|e| error::map(e, "committing a transaction")),
            ReadState::Tx(tx) => {
                let _ = self.handle.block_on(tx.rollback());
                Ok(())
            }
        }
    }
}

impl Transaction for MySqlReadTx<'_> {
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64> {
        self.begin_if_needed(sql)?;
        let handle = self.handle.clone();
        match &mut self.state {
            ReadState::Auto(conn) => handle.block_on(exec_count(&mut **conn, sql, params)),
            ReadState::Tx(tx) => handle.block_on(exec_count(tx, sql, params)),
            ReadState::Broken => Err(broken()),
        }
    }

    fn fetch_all(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        self.begin_if_needed(sql)?;
        let handle = self.handle.clone();
        match &mut self.state {
            ReadState::Auto(conn) => handle.block_on(fetch_rows(&mut **conn, sql, params)),
            ReadState::Tx(tx) => handle.block_on(fetch_rows(tx, sql, params)),
            ReadState::Broken => Err(broken()),
        }
    }

    fn dialect(&self) -> &dyn Dialect {
        &*self.dialect
    }
}

fn broken() -> Error {
    Error::new(
        ErrorCode::StoreConnection,
        "starting a transaction failed earlier in this body; the connection is not usable",
    )
}

#[cfg(test)]
mod read_tests {
    use super::plain_select;

    #[test]
    fn only_lock_free_selects_run_in_autocommit() {
        assert!(plain_select("SELECT a FROM t WHERE id = ?"));
        assert!(plain_select("  select 1"));
        assert!(!plain_select("SELECT a FROM t WHERE id = ? FOR UPDATE"));
        assert!(!plain_select("SELECT a FROM t LOCK IN SHARE MODE"));
        assert!(!plain_select("UPDATE t SET a = 1"));
        assert!(!plain_select("INSERT INTO t VALUES (1)"));
    }
}
