//! The `Database` / `Transaction` port: what a SQL backend implements.
//!
//! The store is written once above this port. SQL given to the port always uses `?` placeholders
//! and never contains a literal `?` or `%`; backends translate placeholders with their [`Dialect`].
//!
//! Transaction bodies are **synchronous closures** ([`TxBody`]) run where the backend wants:
//! the SQLite backend runs them directly on its connection thread (no channel round trip per
//! statement, which keeps a durable turn close to raw rusqlite speed); server backends run them on a
//! blocking thread that drives the async driver statement by statement. A body that returns `Err`
//! (or panics) rolls the transaction back; `Ok` commits it. [`run::run_tx`] runs a body and returns
//! its value: every store operation goes through it. [`sql`] holds the SQL text the store's
//! inserts and the dialects' upserts share.

use std::borrow::Cow;
use std::sync::Arc;
use std::{future::Future, pin::Pin};

use power_loop_contracts::{Error, Result};

pub mod run;
pub mod sql;

/// A boxed, `Send` future (the seam shape used by every trait of this crate).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One SQL value. The schema only uses integers, text and NULL.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// A 64-bit integer (INTEGER / BIGINT / SMALLINT / TINYINT columns).
    Int(i64),
    /// A text value (TEXT / VARCHAR columns).
    Text(String),
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Int(i64::from(v))
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// One result row: column values in the order of the SELECT list, with their names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    columns: Arc<[String]>,
    values: Vec<Value>,
}

impl Row {
    /// Builds a row from shared column names and its values (same length).
    pub fn new(columns: Arc<[String]>, values: Vec<Value>) -> Self {
        Row { columns, values }
    }

    /// Column names, in SELECT order.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// Values, in SELECT order.
    pub fn values(&self) -> &[Value] {
        &self.values
    }

    /// The value of the named column (case-insensitive), if the column exists.
    pub fn get(&self, column: &str) -> Option<&Value> {
        self.index_of(column).ok().and_then(|i| self.values.get(i))
    }

    fn missing(column: &str) -> Error {
        Error::new(
            power_loop_contracts::ErrorCode::StoreDecode,
            format!("column `{column}` is missing from a result row"),
        )
    }

    /// The position of the named column (case-insensitive); `store.decode` if there is none.
    fn index_of(&self, column: &str) -> Result<usize> {
        self.columns
            .iter()
            .position(|c| c.eq_ignore_ascii_case(column))
            .ok_or_else(|| Self::missing(column))
    }

    fn value_at(&self, i: usize, column: &str) -> Result<&Value> {
        self.values.get(i).ok_or_else(|| Self::missing(column))
    }

    /// The named column as an integer (`None` for NULL); an error if missing or not an integer.
    pub fn opt_i64(&self, column: &str) -> Result<Option<i64>> {
        RowView::opt_i64_at(self, self.index_of(column)?, column)
    }

    /// The named column as a non-NULL integer.
    pub fn i64(&self, column: &str) -> Result<i64> {
        RowView::i64_at(self, self.index_of(column)?, column)
    }

    /// The named column as text (`None` for NULL); integers are rendered in decimal.
    pub fn opt_text(&self, column: &str) -> Result<Option<String>> {
        Ok(RowView::opt_str_at(self, self.index_of(column)?, column)?.map(Cow::into_owned))
    }

    /// The named column as non-NULL text.
    pub fn text(&self, column: &str) -> Result<String> {
        self.opt_text(column)?
            .ok_or_else(|| Self::null_text(column))
    }

    fn null_text(column: &str) -> Error {
        Error::new(
            power_loop_contracts::ErrorCode::StoreDecode,
            format!("column `{column}` is NULL where text was expected"),
        )
    }
}

fn parse_int_text(t: &str, column: &str) -> Result<i64> {
    t.trim().parse::<i64>().map_err(|_| {
        Error::new(
            power_loop_contracts::ErrorCode::StoreDecode,
            format!("column `{column}` holds text `{t}` where an integer was expected"),
        )
    })
}

fn null_int(column: &str) -> Error {
    Error::new(
        power_loop_contracts::ErrorCode::StoreDecode,
        format!("column `{column}` is NULL where an integer was expected"),
    )
}

/// A SQL value borrowed from a row (the borrowed twin of [`Value`]), with the conversions every
/// row reader shares: an integer read as text is rendered in decimal, text read as an integer is
/// parsed, a whole REAL (an aggregate such as `AVG`) reads as an integer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ViewValue<'a> {
    /// SQL NULL.
    Null,
    /// An integer.
    Int(i64),
    /// A floating-point value (the schema stores none; aggregates may produce one).
    Real(f64),
    /// Text, valid UTF-8.
    Text(&'a str),
}

impl<'a> ViewValue<'a> {
    /// The value as an integer (`None` for NULL); `store.decode` naming `column` when it is not
    /// one.
    pub fn int(self, column: &str) -> Result<Option<i64>> {
        match self {
            ViewValue::Null => Ok(None),
            ViewValue::Int(v) => Ok(Some(v)),
            #[allow(clippy::cast_possible_truncation)]
            ViewValue::Real(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(Some(f as i64)),
            ViewValue::Real(f) => parse_int_text(&f.to_string(), column).map(Some),
            ViewValue::Text(t) => parse_int_text(t, column).map(Some),
        }
    }

    /// The value as text (`None` for NULL), borrowed when it is text.
    pub fn text(self) -> Option<Cow<'a, str>> {
        match self {
            ViewValue::Null => None,
            ViewValue::Int(v) => Some(Cow::Owned(v.to_string())),
            ViewValue::Real(f) => Some(Cow::Owned(f.to_string())),
            ViewValue::Text(t) => Some(Cow::Borrowed(t)),
        }
    }
}

impl Value {
    /// The value borrowed as a [`ViewValue`].
    pub fn view(&self) -> ViewValue<'_> {
        match self {
            Value::Null => ViewValue::Null,
            Value::Int(v) => ViewValue::Int(*v),
            Value::Text(t) => ViewValue::Text(t),
        }
    }
}

/// One result row seen in place, handed to a [`Transaction::fetch_each`] callback: values are
/// read by position (the SELECT list's order) straight from the driver's buffers, so a decoder
/// of many rows (the active-window load) copies each text once, into its own type, instead of
/// first into a [`Row`] of owned [`Value`]s.
pub trait RowView {
    /// The name of the column at position `i`, if there is one.
    fn column_name(&self, i: usize) -> Option<&str>;

    /// The value at position `i`; `store.decode` naming `column` if there is none (or the
    /// driver cannot read it as a [`ViewValue`], e.g. bytes that are not UTF-8).
    fn view_at(&self, i: usize, column: &str) -> Result<ViewValue<'_>>;

    /// The position of the named column (case-insensitive); `store.decode` if there is none.
    /// Decoders of many rows look positions up once, on the first row.
    fn position_of(&self, column: &str) -> Result<usize> {
        (0..)
            .map_while(|i| self.column_name(i).map(|c| (i, c)))
            .find(|(_, c)| c.eq_ignore_ascii_case(column))
            .map(|(i, _)| i)
            .ok_or_else(|| Row::missing(column))
    }

    /// The integer at position `i` (`None` for NULL).
    fn opt_i64_at(&self, i: usize, column: &str) -> Result<Option<i64>> {
        self.view_at(i, column)?.int(column)
    }

    /// The non-NULL integer at position `i`.
    fn i64_at(&self, i: usize, column: &str) -> Result<i64> {
        self.opt_i64_at(i, column)?.ok_or_else(|| null_int(column))
    }

    /// The text at position `i` (`None` for NULL), borrowed where the driver allows.
    fn opt_str_at(&self, i: usize, column: &str) -> Result<Option<Cow<'_, str>>> {
        Ok(self.view_at(i, column)?.text())
    }

    /// The non-NULL text at position `i`.
    fn str_at(&self, i: usize, column: &str) -> Result<Cow<'_, str>> {
        self.opt_str_at(i, column)?
            .ok_or_else(|| Row::null_text(column))
    }
}

impl RowView for Row {
    fn column_name(&self, i: usize) -> Option<&str> {
        self.columns.get(i).map(String::as_str)
    }

    fn view_at(&self, i: usize, column: &str) -> Result<ViewValue<'_>> {
        self.value_at(i, column).map(Value::view)
    }
}

/// One open transaction, used synchronously inside a [`TxBody`].
///
/// Statements run in order on one connection. `execute` returns the number of rows **matched** by
/// the statement's WHERE clause (not "changed"): every backend must agree on this (MySQL needs the
/// `CLIENT_FOUND_ROWS` flag), because compare-and-set operations rely on it. 0 for DDL.
pub trait Transaction {
    /// Runs a write or DDL statement; returns the matched-row count.
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64>;

    /// Runs a write whose row count the body does not need, possibly **later**: a backend may
    /// queue it and send it together with the next statement or with `COMMIT` (PostgreSQL
    /// pipelines them, saving a round trip per write). Statements still run in the order they
    /// were issued, and the next [`Transaction::execute`] / fetch sees their effects.
    ///
    /// Durability is unchanged: a deferred statement's failure is reported (with the same typed
    /// error as [`Transaction::execute`] would give) by the next non-deferred statement or, at the
    /// latest, by the transaction's commit, which then rolls back — so a transaction that
    /// returns `Ok` has run every deferred statement successfully. Because the failure may
    /// surface at a later statement, a body must not catch an error and carry on (it cannot on
    /// PostgreSQL anyway: the transaction is aborted). The default runs [`Transaction::execute`]
    /// now and drops the count.
    fn execute_deferred(&mut self, sql: &str, params: &[Value]) -> Result<()> {
        self.execute(sql, params).map(|_| ())
    }

    /// Runs a query and returns every row.
    fn fetch_all(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>>;

    /// Runs a query and hands each row to `each`, in order, as a [`RowView`] over the driver's
    /// buffers; the first error `each` returns stops the query and is returned. For decoders of
    /// large results. The default reads every row with [`Transaction::fetch_all`] first.
    fn fetch_each(&mut self, sql: &str, params: &[Value], each: EachRow<'_>) -> Result<()> {
        for row in self.fetch_all(sql, params)? {
            each(&row)?;
        }
        Ok(())
    }

    /// Runs a query and returns its first row, if any.
    fn fetch_optional(&mut self, sql: &str, params: &[Value]) -> Result<Option<Row>> {
        Ok(self.fetch_all(sql, params)?.into_iter().next())
    }

    /// The dialect of the backend running this transaction.
    fn dialect(&self) -> &dyn Dialect;
}

/// The per-row callback of [`Transaction::fetch_each`]: it sees each row in place and may stop
/// the query by returning an error.
pub type EachRow<'a> = &'a mut dyn FnMut(&dyn RowView) -> Result<()>;

/// A synchronous transaction body: `Ok` commits, `Err` (or a panic) rolls back.
pub type TxBody = Box<dyn FnOnce(&mut dyn Transaction) -> Result<()> + Send + 'static>;

/// Whether a transaction only reads or may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxMode {
    /// The body only reads; backends may run it on a reader connection and skip the write lock.
    Read,
    /// The body may write. On SQLite this starts with `BEGIN IMMEDIATE`.
    Write,
}

/// A held cross-process lease (see [`Database::acquire_lease`]); released by
/// [`Lease::release`] or when dropped (best effort).
pub trait Lease: Send + Sync {
    /// The name the lease was taken under.
    fn name(&self) -> &str;
    /// Releases the lease now.
    fn release(self: Box<Self>) -> BoxFuture<'static, Result<()>>;
}

/// A SQL backend: a connection or a pool, owning its [`Dialect`].
pub trait Database: Send + Sync + 'static {
    /// The dialect of this backend.
    fn dialect(&self) -> &dyn Dialect;

    /// Runs `body` inside one transaction; commits if it returns `Ok`, rolls back otherwise.
    ///
    /// Dropping the returned future before completion must not leave a transaction open: the
    /// backend finishes (rolls back or commits) on its own thread.
    fn transact(&self, mode: TxMode, body: TxBody) -> BoxFuture<'_, Result<()>>;

    /// Runs `body` with the schema-boot lock held (PostgreSQL `pg_advisory_xact_lock`, MySQL
    /// `GET_LOCK`, SQLite's write lock), in one transaction where DDL is transactional. Used so
    /// that many processes opening a fresh schema at once all succeed and stamp one version.
    fn transact_exclusive(&self, lock_name: &str, body: TxBody) -> BoxFuture<'_, Result<()>>;

    /// Takes a named cross-process lease without waiting: `Ok(Some)` when taken, `Ok(None)` when
    /// another holder has it. PostgreSQL: session advisory lock on a dedicated connection; MySQL:
    /// `GET_LOCK(name, 0)` on a dedicated connection; SQLite: an OS file lock next to the file
    /// (in-process map for `:memory:`).
    fn acquire_lease(&self, name: &str) -> BoxFuture<'_, Result<Option<Box<dyn Lease>>>>;

    /// Optional maintenance capability (SQLite only); `None` means checkpoint/vacuum are no-ops.
    fn maintenance(&self) -> Option<&dyn Maintenance> {
        None
    }

    /// Releases the connection or pool; idempotent. Later operations fail with `store.closed`.
    fn close(&self) -> BoxFuture<'_, Result<()>>;
}

/// Space reclamation and WAL control (SQLite).
pub trait Maintenance: Send + Sync {
    /// Runs `PRAGMA wal_checkpoint(mode)`; `mode` is one of PASSIVE, FULL, RESTART, TRUNCATE.
    fn checkpoint(&self, mode: &str) -> BoxFuture<'_, Result<()>>;
    /// Full `VACUUM` (rewrites the file and shrinks it) or an incremental vacuum that really frees pages.
    fn vacuum(&self, incremental: bool) -> BoxFuture<'_, Result<()>>;
    /// Copies the whole database to `dest_path` with the online backup API.
    fn backup(&self, dest_path: &std::path::Path) -> BoxFuture<'_, Result<()>>;
}

/// Engine-specific SQL rendering.
pub trait Dialect: Send + Sync {
    /// `"sqlite"`, `"postgres"` or `"mysql"`.
    fn name(&self) -> &'static str;

    /// Rewrites `?` placeholders into the engine's form (`$1…` for PostgreSQL, `?` kept otherwise).
    fn translate<'a>(&self, sql: &'a str) -> std::borrow::Cow<'a, str>;

    /// The data-table DDL for `prefix` (tables and indexes, `IF NOT EXISTS`), in spec order.
    fn ddl(&self, prefix: &str) -> Vec<String>;

    /// How this engine spells an upsert; the default is the `ON CONFLICT … excluded.c` form
    /// (SQLite's, also valid on PostgreSQL).
    fn upsert_syntax(&self) -> sql::UpsertSyntax {
        sql::UpsertSyntax::OnConflict {
            excluded: "excluded",
        }
    }

    /// `INSERT … ON CONFLICT/DUPLICATE KEY UPDATE` for the store's upserts; params are bound in the
    /// order `key_cols + val_cols + add_cols + insert_only_cols`. The default renders
    /// [`sql::upsert_sql`] in [`Dialect::upsert_syntax`]: a dialect states only its spelling.
    fn upsert(
        &self,
        table: &str,
        key_cols: &[&str],
        val_cols: &[&str],
        add_cols: &[&str],
        insert_only_cols: &[&str],
    ) -> String {
        sql::upsert_sql(
            table,
            key_cols,
            val_cols,
            add_cols,
            insert_only_cols,
            self.upsert_syntax(),
        )
    }

    /// An insert that does nothing when the key already exists.
    fn insert_ignore(&self, table: &str, cols: &[&str], key_cols: &[&str]) -> String;

    /// The suffix that locks selected rows for the rest of the transaction: `" FOR UPDATE"`,
    /// which PostgreSQL and MySQL share; SQLite, whose writers are serialized by
    /// `BEGIN IMMEDIATE`, overrides it with nothing.
    fn for_update(&self) -> &'static str {
        " FOR UPDATE"
    }

    /// The suffix that locks selected rows and skips rows locked by others:
    /// `" FOR UPDATE SKIP LOCKED"` (PostgreSQL, MySQL 8, MariaDB 10.6+); empty on SQLite.
    fn for_update_skip_locked(&self) -> &'static str {
        " FOR UPDATE SKIP LOCKED"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> Row {
        let columns: Arc<[String]> = ["n", "t", "num_text", "nothing", "bad"]
            .into_iter()
            .map(str::to_owned)
            .collect();
        Row::new(
            columns,
            vec![
                Value::Int(7),
                Value::from("hello"),
                Value::from(" 42 "),
                Value::Null,
                Value::from("x1"),
            ],
        )
    }

    #[test]
    fn a_view_reads_what_the_named_readers_read() {
        let r = row();
        let v: &dyn RowView = &r;
        assert_eq!(v.position_of("T").ok(), Some(1));
        assert_eq!(v.i64_at(0, "n").ok(), r.i64("n").ok());
        assert_eq!(v.str_at(0, "n").ok().as_deref(), Some("7"));
        assert_eq!(v.str_at(1, "t").ok().as_deref(), Some("hello"));
        assert!(matches!(v.str_at(1, "t"), Ok(Cow::Borrowed(_))));
        assert_eq!(v.opt_i64_at(2, "num_text").ok(), Some(Some(42)));
        assert_eq!(v.opt_i64_at(3, "nothing").ok(), Some(None));
        assert_eq!(v.opt_str_at(3, "nothing").ok(), Some(None));
        let bad = v.i64_at(4, "bad").err().map(|e| e.code());
        assert_eq!(bad, Some(power_loop_contracts::ErrorCode::StoreDecode));
        let null = v.i64_at(3, "nothing").err().map(|e| e.code());
        assert_eq!(null, Some(power_loop_contracts::ErrorCode::StoreDecode));
        assert!(v.position_of("absent").is_err());
        assert!(v.view_at(9, "ninth").is_err());
    }

    #[test]
    fn a_whole_real_reads_as_an_integer_and_a_fraction_does_not() {
        assert_eq!(ViewValue::Real(3.0).int("avg").ok(), Some(Some(3)));
        assert!(ViewValue::Real(2.5).int("avg").is_err());
        assert_eq!(ViewValue::Real(2.5).text().as_deref(), Some("2.5"));
    }
}
