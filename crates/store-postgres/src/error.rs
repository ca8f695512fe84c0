//! Mapping of driver and pool errors to power-loop [`Error`]s by SQLSTATE.
//!
//! The driver error is always kept as the `source`; the message says what failed and how to fix it.

use std::error::Error as StdError;

use deadpool_postgres::PoolError;
use power_loop_contracts::{Error, ErrorCode};
use tokio_postgres::error::{DbError, SqlState};

/// Longest SQL excerpt attached to an error as the `sql` detail.
const SQL_DETAIL_MAX: usize = 300;

/// The text of `e` followed by its source chain (`a: b: c`); the driver's `Display` omits causes.
pub(crate) fn chain_text(e: &(dyn StdError + 'static)) -> String {
    let mut text = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let s_text = s.to_string();
        if !text.ends_with(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        cur = s.source();
    }
    text
}

fn db_text(db: &DbError) -> String {
    let mut text = format!("{} (SQLSTATE {})", db.message(), db.code().code());
    if let Some(detail) = db.detail() {
        text.push_str("; detail: ");
        text.push_str(detail);
    }
    if let Some(hint) = db.hint() {
        text.push_str("; hint: ");
        text.push_str(hint);
    }
    text
}

/// Clips `sql` for the `sql` detail of a query error.
fn clip(sql: &str) -> String {
    if sql.len() <= SQL_DETAIL_MAX {
        return sql.to_owned();
    }
    let mut end = SQL_DETAIL_MAX;
    while !sql.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &sql[..end])
}

/// Maps a server error (one with a SQLSTATE) to a code and a message naming the fix.
fn map_db(db: &DbError) -> (ErrorCode, String) {
    let code = db.code();
    let text = db_text(db);
    let class = code.code().get(..2).unwrap_or_default();
    if *code == SqlState::INVALID_PASSWORD || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
    {
        return (
            ErrorCode::StoreAuth,
            format!(
                "PostgreSQL refused the login: {text}; check the user name and password in the DSN \
                 and the server's pg_hba.conf"
            ),
        );
    }
    if *code == SqlState::INVALID_CATALOG_NAME {
        return (
            ErrorCode::StoreDatabaseMissing,
            format!(
                "the PostgreSQL database named in the DSN does not exist: {text}; create it \
                 (CREATE DATABASE …) or fix the database name in the DSN"
            ),
        );
    }
    if *code == SqlState::INSUFFICIENT_PRIVILEGE {
        return (
            ErrorCode::StorePermissionDenied,
            format!(
                "PostgreSQL denied the operation: {text}; grant the role the needed privileges, or \
                 provision the schema with a role that has DDL rights and open with \
                 SchemaPolicy::Verify"
            ),
        );
    }
    if *code == SqlState::T_R_SERIALIZATION_FAILURE
        || *code == SqlState::T_R_DEADLOCK_DETECTED
        || *code == SqlState::LOCK_NOT_AVAILABLE
    {
        return (
            ErrorCode::StoreConflict,
            format!(
                "the transaction conflicted with a concurrent one: {text}; retry the operation"
            ),
        );
    }
    if class == "23" {
        return (
            ErrorCode::StoreConstraint,
            format!("a write violated a constraint: {text}; the transaction was rolled back"),
        );
    }
    if *code == SqlState::UNDEFINED_TABLE {
        return (
            ErrorCode::StoreSchemaMissing,
            format!(
                "a store table is missing: {text}; the schema is not provisioned for this table \
                 prefix: open with SchemaPolicy::AutoCreate or run the provisioning DDL"
            ),
        );
    }
    // 08: connection exception; 57P01-57P03: admin shutdown / crash / cannot connect now;
    // 53300: too many connections.
    if class == "08"
        || *code == SqlState::ADMIN_SHUTDOWN
        || *code == SqlState::CRASH_SHUTDOWN
        || *code == SqlState::CANNOT_CONNECT_NOW
        || *code == SqlState::TOO_MANY_CONNECTIONS
    {
        return (
            ErrorCode::StoreConnection,
            format!(
                "the PostgreSQL connection failed: {text}; check that the server is up and retry"
            ),
        );
    }
    (
        ErrorCode::StoreQuery,
        format!("PostgreSQL rejected a statement: {text}"),
    )
}

/// Maps a tokio-postgres error; `sql` (if any) is attached as the `sql` detail.
pub(crate) fn map_pg(e: tokio_postgres::Error, sql: Option<&str>) -> Error {
    let (code, message) = if let Some(db) = e.as_db_error() {
        map_db(db)
    } else {
        let text = chain_text(&e);
        let head = e.to_string();
        if e.is_closed()
            || head.starts_with("error connecting to server")
            || head.starts_with("timeout waiting for server")
            || head.starts_with("error communicating with the server")
            || head.starts_with("unexpected message from server")
            || head.starts_with("error parsing response from server")
        {
            (
                ErrorCode::StoreConnection,
                format!(
                    "cannot reach PostgreSQL: {text}; check the host and port in the DSN and that \
                     the server is running and accepts TCP connections"
                ),
            )
        } else if head.starts_with("error performing TLS handshake") {
            (
                ErrorCode::StoreConnection,
                format!(
                    "the TLS connection to PostgreSQL failed: {text}; check that the server has \
                     ssl = on, that sslrootcert holds the CA that signed its certificate and (for \
                     sslmode=verify-full) that the certificate names the host in the DSN"
                ),
            )
        } else if head.starts_with("authentication error") {
            (
                ErrorCode::StoreAuth,
                format!(
                    "PostgreSQL authentication failed: {text}; put the password in the DSN \
                     (postgres://user:password@host/db) or check the server's auth method"
                ),
            )
        } else if head.starts_with("invalid connection string")
            || head.starts_with("invalid configuration")
        {
            (
                ErrorCode::StoreDsnInvalid,
                format!("the PostgreSQL DSN is invalid: {text}; fix the DSN"),
            )
        } else {
            (
                ErrorCode::StoreQuery,
                format!("a PostgreSQL statement failed: {text}"),
            )
        }
    };
    let mut err = Error::new(code, message);
    if let Some(db) = e.as_db_error() {
        err = err.with_detail("sqlstate", db.code().code());
    }
    if let Some(sql) = sql {
        err = err.with_detail("sql", clip(sql));
    }
    err.with_source(e)
}

/// Maps an error of the connection pool.
pub(crate) fn map_pool(e: PoolError, connect_timeout_ms: u64) -> Error {
    match e {
        PoolError::Backend(e) => map_pg(e, None),
        PoolError::Timeout(kind) => {
            let what = match kind {
                deadpool_postgres::TimeoutType::Create => format!(
                    "connecting to PostgreSQL timed out after {connect_timeout_ms} ms; check the host \
                     and port in the DSN and that the server is reachable"
                ),
                deadpool_postgres::TimeoutType::Wait => {
                    "timed out waiting for a free pooled PostgreSQL connection; raise \
                     pool_max_size or shorten transactions"
                        .to_owned()
                }
                deadpool_postgres::TimeoutType::Recycle => {
                    "timed out checking a pooled PostgreSQL connection; check the server".to_owned()
                }
            };
            Error::new(ErrorCode::StoreConnection, what)
        }
        PoolError::Closed => closed(),
        PoolError::NoRuntimeSpecified => {
            Error::internal("the PostgreSQL pool was built without a tokio runtime")
        }
        PoolError::PostCreateHook(h) => Error::new(
            ErrorCode::StoreConnection,
            format!("preparing a new PostgreSQL connection failed: {h}"),
        ),
    }
}

/// `store.closed`: the database was closed.
pub(crate) fn closed() -> Error {
    Error::new(
        ErrorCode::StoreClosed,
        "the PostgreSQL store was closed; open a new store to continue",
    )
}

/// `store.connection` for an operation timed out on our side.
pub(crate) fn connect_timeout(ms: u64) -> Error {
    Error::new(
        ErrorCode::StoreConnection,
        format!(
            "connecting to PostgreSQL timed out after {ms} ms; check the host and port in the DSN and \
             that the server is reachable"
        ),
    )
}
