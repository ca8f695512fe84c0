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
