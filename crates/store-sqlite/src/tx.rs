//! [`SqliteTx`]: the port's `Transaction` over one rusqlite connection (runs on the connection
//! thread), and [`run_transaction`], which runs one body in its own transaction.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use power_loop_contracts::{Error, ErrorCode, Result};
use power_loop_store::db::{
    Dialect, EachRow, Row, RowView, Transaction, TxBody, TxMode, Value, ViewValue,
};
use rusqlite::types::{Null, ValueRef};
use rusqlite::{CachedStatement, Connection};

use crate::dialect::DIALECT;
use crate::error::map_sqlite;

/// One open transaction on the connection thread.
pub(crate) struct SqliteTx<'c> {
    conn: &'c Connection,
}

impl<'c> SqliteTx<'c> {
    pub(crate) fn new(conn: &'c Connection) -> Self {
        SqliteTx { conn }
    }
}

/// Prepares (through the statement cache) and binds `params` in order.
pub(crate) fn prepare_bound<'c>(
    conn: &'c Connection,
    sql: &str,
    params: &[Value],
) -> Result<CachedStatement<'c>> {
    let mut stmt = conn
        .prepare_cached(sql)
        .map_err(|e| map_sqlite(e, "preparing a statement"))?;
    let expected = stmt.parameter_count();
    if expected != params.len() {
        return Err(Error::new(
            ErrorCode::StoreQuery,
            format!(
                "sqlite: statement expects {expected} parameter(s) but {} were given: {sql}",
                params.len()
            ),
        ));
    }
    for (i, v) in params.iter().enumerate() {
        let r = match v {
            Value::Null => stmt.raw_bind_parameter(i + 1, Null),
            Value::Int(n) => stmt.raw_bind_parameter(i + 1, *n),
            Value::Text(t) => stmt.raw_bind_parameter(i + 1, t.as_str()),
        };
        r.map_err(|e| map_sqlite(e, "binding a parameter"))?;
    }
    Ok(stmt)
}

/// Converts one SQLite value into a port value.
/// Borrows a SQLite value as the port's [`ViewValue`] (text and blobs must be UTF-8).
fn view_of<'a>(v: ValueRef<'a>, column: &str) -> Result<ViewValue<'a>> {
    match v {
        ValueRef::Null => Ok(ViewValue::Null),
        ValueRef::Integer(n) => Ok(ViewValue::Int(n)),
        ValueRef::Real(f) => Ok(ViewValue::Real(f)),
        ValueRef::Text(b) | ValueRef::Blob(b) => match std::str::from_utf8(b) {
            Ok(s) => Ok(ViewValue::Text(s)),
            Err(e) => Err(Error::new(
                ErrorCode::StoreDecode,
                format!("sqlite: column `{column}` holds bytes that are not valid UTF-8 text"),
            )
            .with_source(e)),
        },
    }
}

fn to_value(v: ValueRef<'_>, column: &str) -> Result<Value> {
    Ok(match view_of(v, column)? {
        ViewValue::Null => Value::Null,
        ViewValue::Int(n) => Value::Int(n),
        ViewValue::Text(s) => Value::Text(s.to_owned()),
        // The schema stores no REAL values; aggregates such as AVG may produce one.
        real @ ViewValue::Real(f) => match real.int(column) {
            Ok(Some(n)) => Value::Int(n),
            _ => Value::Text(f.to_string()),
        },
    })
}

/// A result row of the connection read in place (see `Transaction::fetch_each`).
struct SqliteRowView<'r, 's> {
    row: &'r rusqlite::Row<'s>,
}

impl RowView for SqliteRowView<'_, '_> {
    fn column_name(&self, i: usize) -> Option<&str> {
        let stmt: &rusqlite::Statement<'_> = self.row.as_ref();
        stmt.column_name(i).ok()
    }

    fn view_at(&self, i: usize, column: &str) -> Result<ViewValue<'_>> {
        let v = self
            .row
            .get_ref(i)
            .map_err(|e| map_sqlite(e, "reading a column"))?;
        view_of(v, column)
    }
}

/// Runs a statement and returns the matched-row count (0 for DDL and row-returning statements).
pub(crate) fn execute_on(conn: &Connection, sql: &str, params: &[Value]) -> Result<u64> {
    let mut stmt = prepare_bound(conn, sql, params)?;
    if stmt.column_count() > 0 {
        // A row-returning statement (e.g. a PRAGMA): step it to completion, report 0.
        let mut rows = stmt.raw_query();
        while rows
            .next()
            .map_err(|e| map_sqlite(e, "executing a statement"))?
            .is_some()
        {}
        return Ok(0);
    }
    let before = conn.total_changes();
    let n = stmt
        .raw_execute()
        .map_err(|e| map_sqlite(e, "executing a statement"))?;
    // `changes()` keeps the count of the last INSERT/UPDATE/DELETE across DDL; a statement that
    // did not move `total_changes` matched no rows.
    if conn.total_changes() == before {
        Ok(0)
    } else {
        Ok(n as u64)
    }
}

/// Runs a query and returns every row.
pub(crate) fn fetch_all_on(conn: &Connection, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
    let mut stmt = prepare_bound(conn, sql, params)?;
    let columns: Arc<[String]> = stmt.column_names().map(str::to_owned).collect();
    let width = columns.len();
    let mut out = Vec::new();
    let mut rows = stmt.raw_query();
    while let Some(r) = rows
        .next()
        .map_err(|e| map_sqlite(e, "reading query rows"))?
    {
        let mut values = Vec::with_capacity(width);
        for (i, name) in columns.iter().enumerate() {
            let v = r
                .get_ref(i)
                .map_err(|e| map_sqlite(e, "reading a column"))?;
            values.push(to_value(v, name)?);
        }
        out.push(Row::new(Arc::clone(&columns), values));
    }
    Ok(out)
}

impl Transaction for SqliteTx<'_> {
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64> {
        execute_on(self.conn, sql, params)
    }

    fn fetch_all(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>> {
        fetch_all_on(self.conn, sql, params)
    }

    fn fetch_each(&mut self, sql: &str, params: &[Value], each: EachRow<'_>) -> Result<()> {
        let mut stmt = prepare_bound(self.conn, sql, params)?;
        let mut rows = stmt.raw_query();
        while let Some(row) = rows
            .next()
            .map_err(|e| map_sqlite(e, "reading query rows"))?
        {
            each(&SqliteRowView { row })?;
        }
        Ok(())
    }

    fn fetch_optional(&mut self, sql: &str, params: &[Value]) -> Result<Option<Row>> {
        let mut stmt = prepare_bound(self.conn, sql, params)?;
        let columns: Arc<[String]> = stmt.column_names().map(str::to_owned).collect();
        let mut rows = stmt.raw_query();
        match rows
            .next()
            .map_err(|e| map_sqlite(e, "reading a query row"))?
        {
            None => Ok(None),
            Some(r) => {
                let mut values = Vec::with_capacity(columns.len());
                for (i, name) in columns.iter().enumerate() {
                    let v = r
                        .get_ref(i)
                        .map_err(|e| map_sqlite(e, "reading a column"))?;
                    values.push(to_value(v, name)?);
                }
                Ok(Some(Row::new(columns, values)))
            }
        }
    }

    fn dialect(&self) -> &dyn Dialect {
        &DIALECT
    }
}

/// The text of a caught panic payload.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}

/// Rolls back if a transaction is open; errors are ignored (the caller reports the first error).
pub(crate) fn rollback_quietly(conn: &Connection) {
    if !conn.is_autocommit() {
        let r = conn
            .prepare_cached("ROLLBACK")
            .and_then(|mut s| s.execute([]));
        if r.is_err() && !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
    }
}

/// Runs one transaction on the connection thread: begin, body, commit or roll back.
pub(crate) fn run_transaction(conn: &mut Connection, mode: TxMode, body: TxBody) -> Result<()> {
    let begin = match mode {
        TxMode::Write => "BEGIN IMMEDIATE",
        TxMode::Read => "BEGIN",
    };
    conn.prepare_cached(begin)
        .and_then(|mut s| s.execute([]))
        .map_err(|e| map_sqlite(e, "starting a transaction"))?;
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let mut tx = SqliteTx::new(conn);
        body(&mut tx)
    }));
    match outcome {
        Ok(Ok(())) => {
            let r = conn
                .prepare_cached("COMMIT")
                .and_then(|mut s| s.execute([]));
            match r {
                Ok(_) => Ok(()),
                Err(e) => {
                    rollback_quietly(conn);
                    Err(map_sqlite(e, "committing a transaction"))
                }
            }
        }
        Ok(Err(e)) => {
            rollback_quietly(conn);
            Err(e)
        }
        Err(payload) => {
            rollback_quietly(conn);
            Err(Error::internal(format!(
                "sqlite: a transaction body panicked ({}); the transaction was rolled back",
                panic_message(payload.as_ref())
            )))
        }
    }
}
