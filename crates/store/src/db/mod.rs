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

    /// The shared column names (one allocation per result, shared by all its rows).
    pub(crate) fn shared_columns(&self) -> &Arc<[String]> {
        &self.columns
    }

    /// The position of the named column (case-insensitive); `store.decode` if there is none.
    /// Decoders of many rows look positions up once per result and then read by position.
    pub(crate) fn index_of(&self, column: &str) -> Result<usize> {
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
        self.opt_i64_at(self.index_of(column)?, column)
    }

    /// [`Row::opt_i64`] of the column at position `i` (`column` names it in errors).
    pub(crate) fn opt_i64_at(&self, i: usize, column: &str) -> Result<Option<i64>> {
        match self.value_at(i, column)? {
            Value::Null => Ok(None),
            Value::Int(v) => Ok(Some(*v)),
            Value::Text(t) => t.trim().parse::<i64>().map(Some).map_err(|_| {
                Error::new(
                    power_loop_contracts::ErrorCode::StoreDecode,
                    format!("column `{column}` holds text `{t}` where an integer was expected"),
                )
            }),
        }
    }

    /// The named column as a non-NULL integer.
    pub fn i64(&self, column: &str) -> Result<i64> {
        self.i64_at(self.index_of(column)?, column)
    }

    /// [`Row::i64`] of the column at position `i` (`column` names it in errors).
    pub(crate) fn i64_at(&self, i: usize, column: &str) -> Result<i64> {
        self.opt_i64_at(i, column)?.ok_or_else(|| {
            Error::new(
                power_loop_contracts::ErrorCode::StoreDecode,
                format!("column `{column}` is NULL where an integer was expected"),
            )
        })
    }

    /// The named column as text (`None` for NULL); integers are rendered in decimal.
    pub fn opt_text(&self, column: &str) -> Result<Option<String>> {
        match self.value_at(self.index_of(column)?, column)? {
            Value::Null => Ok(None),
            Value::Int(v) => Ok(Some(v.to_string())),
            Value::Text(t) => Ok(Some(t.clone())),
        }
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

    /// The text at position `i` (`None` for NULL), **moved** out of the row, which keeps NULL in
    /// its place: what [`Row::opt_text`] returns, without copying the text. For decoders of large
    /// reads (the active window), which consume each row once.
    pub(crate) fn take_opt_text_at(&mut self, i: usize, column: &str) -> Result<Option<String>> {
        let slot = self
            .values
            .get_mut(i)
            .ok_or_else(|| Self::missing(column))?;
        match std::mem::replace(slot, Value::Null) {
            Value::Null => Ok(None),
            Value::Int(v) => Ok(Some(v.to_string())),
            Value::Text(t) => Ok(Some(t)),
        }
    }

    /// The non-NULL text at position `i`, moved out of the row (see [`Row::take_opt_text_at`]).
    pub(crate) fn take_text_at(&mut self, i: usize, column: &str) -> Result<String> {
        self.take_opt_text_at(i, column)?
            .ok_or_else(|| Self::null_text(column))
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

    /// Runs a query and returns its first row, if any.
    fn fetch_optional(&mut self, sql: &str, params: &[Value]) -> Result<Option<Row>> {
        Ok(self.fetch_all(sql, params)?.into_iter().next())
    }

    /// The dialect of the backend running this transaction.
    fn dialect(&self) -> &dyn Dialect;
}

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
