//! Opening the store: read-only commands never create a file, a directory or a table; writing
//! commands create the store on first use.

use power_loop::{
    DsnTarget, Error, ErrorCode, Result, SchemaPolicy, SessionStore, StoreOptions, parse_dsn,
    redact_dsn,
};

use crate::Cli;

/// The store options of the command line (table prefix).
pub(crate) fn store_options(cli: &Cli) -> StoreOptions {
    StoreOptions::default().with_table_prefix(cli.table_prefix.clone())
}

/// How a command opens the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Create the SQLite file and the schema when missing (`send`, `chat`, `sessions import`).
    Create,
    /// The store must exist; the schema may be migrated (`sessions delete|prune`, `store
    /// vacuum|checkpoint`, `timers run`).
    Existing,
    /// The store must exist with a current schema; nothing is created or migrated (every
    /// read-only command).
    ReadOnly,
}

/// Opens the store of `--dsn` for `access`.
///
/// For [`Access::Existing`] and [`Access::ReadOnly`] a SQLite file that does not exist is
/// `store.database_missing` (nothing is created, not even its directory); `ReadOnly` opens with
/// [`SchemaPolicy::Verify`], so a server database without the tables stays without them.
pub(crate) async fn open_store(cli: &Cli, access: Access) -> Result<SessionStore> {
    let parsed = parse_dsn(&cli.dsn)?;
    if access != Access::Create
        && let DsnTarget::SqliteFile(path) = &parsed.target
        && !path.is_file()
    {
        return Err(Error::new(
            ErrorCode::StoreDatabaseMissing,
            format!(
                "no store at `{}` (from --dsn `{}`); check the path, or create one with `power-loop send`",
                path.display(),
                redact_dsn(&cli.dsn)
            ),
        )
        .with_detail("path", path.display().to_string()));
    }
    let mut options = store_options(cli);
    if access == Access::ReadOnly {
        options = options.with_schema_policy(SchemaPolicy::Verify);
    }
    power_loop::open_store(&cli.dsn, options).await
}
