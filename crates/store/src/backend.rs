//! The backend registry: how `open_store(dsn)` finds the backend for a DSN.
//!
//! Each backend crate exports `pub const BACKEND: BackendDescriptor`. The façade passes the
//! descriptors compiled in by its cargo features to `open_store`; there is no global registry.

use std::sync::Arc;

use power_loop_contracts::Result;

use crate::db::{BoxFuture, Database, Dialect};

/// Where a parsed DSN points.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DsnTarget {
    /// A private in-memory SQLite database.
    SqliteMemory,
    /// A SQLite file at this path (absolute or relative to the working directory).
    SqliteFile(std::path::PathBuf),
    /// A server URL with the `+driver` suffix removed and the scheme normalized to lower case
    /// (`postgresql://…`, `postgres://…` or `mysql://…`), credentials and query kept verbatim.
    Url(String),
}

/// A DSN after strict parsing: the backend it names and its target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedDsn {
    /// Backend name: `"sqlite"`, `"postgres"` or `"mysql"`.
    pub backend: &'static str,
    /// Where to connect.
    pub target: DsnTarget,
}

/// SQLite `synchronous` level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SqliteSync {
    /// `synchronous=NORMAL` (default): a committed transaction survives a process crash; the last
    /// commits may roll back on power loss.
    #[default]
    Normal,
    /// `synchronous=FULL`: commits also survive power loss, at the cost of an fsync per commit.
    Full,
}

/// Connection options a backend reads when opening.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ConnectOptions {
    /// SQLite durability level.
    pub sqlite_sync: SqliteSync,
    /// SQLite busy timeout in milliseconds.
    pub sqlite_busy_timeout_ms: u64,
    /// SQLite group commit (default `true`): write transactions queued together are committed
    /// in one SQLite transaction, each in its own savepoint, every caller answered after the
    /// shared `COMMIT`. `false` commits each on its own (a diagnostic: never faster).
    pub sqlite_group_commit: bool,
    /// Maximum pooled connections (server backends).
    pub pool_max_size: usize,
    /// Connect timeout in milliseconds (server backends).
    pub connect_timeout_ms: u64,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            sqlite_sync: SqliteSync::Normal,
            sqlite_busy_timeout_ms: 5_000,
            sqlite_group_commit: true,
            pool_max_size: 16,
            connect_timeout_ms: 10_000,
        }
    }
}

/// What a backend's [`OpenFn`] returns: the opened database, once connected.
pub type OpenFuture = BoxFuture<'static, Result<Arc<dyn Database>>>;

/// Opens a [`Database`] for a parsed DSN.
pub type OpenFn = fn(ParsedDsn, ConnectOptions) -> OpenFuture;

/// A backend a store can be opened on.
#[derive(Clone, Copy)]
pub struct BackendDescriptor {
    /// Backend name, equal to [`ParsedDsn::backend`] for the DSNs it serves.
    pub name: &'static str,
    /// Opens a database for a DSN naming this backend.
    pub open: OpenFn,
    /// The backend's SQL dialect (its DDL and statement rendering), usable without a connection:
    /// `schema print-ddl` renders the provisioning script with it.
    pub dialect: &'static dyn Dialect,
}

impl BackendDescriptor {
    /// A descriptor for the backend `name`, opened by `open`, rendering SQL with `dialect`
    /// (usable in a `const`, as each backend crate's `BACKEND` is).
    pub const fn new(name: &'static str, open: OpenFn, dialect: &'static dyn Dialect) -> Self {
        BackendDescriptor {
            name,
            open,
            dialect,
        }
    }
}

impl std::fmt::Debug for BackendDescriptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackendDescriptor")
            .field("name", &self.name)
            .field("dialect", &self.dialect.name())
            .finish_non_exhaustive()
    }
}
