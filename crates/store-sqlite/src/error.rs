//! Mapping of rusqlite errors onto the contract's store error codes.

use power_loop_contracts::{Error, ErrorCode};
use rusqlite::ffi;

fn msg_of(e: &rusqlite::Error) -> Option<&str> {
    match e {
        rusqlite::Error::SqliteFailure(_, Some(m)) => Some(m),
        rusqlite::Error::SqlInputError { msg, .. } => Some(msg),
        _ => None,
    }
}

/// The contract code for a rusqlite error.
pub(crate) fn code_of(e: &rusqlite::Error) -> ErrorCode {
    // SQLite has no distinct code for a missing table (SQLITE_ERROR): the message is the signal.
    if msg_of(e).is_some_and(|m| m.starts_with("no such table")) {
        return ErrorCode::StoreSchemaMissing;
    }
    match e {
        rusqlite::Error::SqliteFailure(f, _) => match f.code {
            ffi::ErrorCode::NotADatabase | ffi::ErrorCode::DatabaseCorrupt => {
                ErrorCode::StoreCorrupt
            }
            ffi::ErrorCode::DatabaseBusy | ffi::ErrorCode::DatabaseLocked => {
                ErrorCode::StoreConflict
            }
            ffi::ErrorCode::ConstraintViolation => ErrorCode::StoreConstraint,
            ffi::ErrorCode::ReadOnly
            | ffi::ErrorCode::PermissionDenied
            | ffi::ErrorCode::AuthorizationForStatementDenied => ErrorCode::StorePermissionDenied,
            ffi::ErrorCode::CannotOpen
            | ffi::ErrorCode::SystemIoFailure
            | ffi::ErrorCode::DiskFull
            | ffi::ErrorCode::NoLargeFileSupport
            | ffi::ErrorCode::FileLockingProtocolFailed => ErrorCode::StoreIo,
            _ => ErrorCode::StoreQuery,
        },
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::IntegralValueOutOfRange(..)
        | rusqlite::Error::Utf8Error(..)
        | rusqlite::Error::InvalidColumnType(..) => ErrorCode::StoreDecode,
        _ => ErrorCode::StoreQuery,
    }
}

/// Wraps a rusqlite error: `context` says what was being done; the driver error becomes the source.
pub(crate) fn map_sqlite(e: rusqlite::Error, context: &str) -> Error {
    let code = code_of(&e);
    let hint = match code {
        ErrorCode::StoreCorrupt => {
            "; the database file is damaged or is not a SQLite database: restore it from a backup or point the store at another path"
        }
        ErrorCode::StoreConflict => {
            "; another connection holds the database lock: retry, or make sure only one process writes this file"
        }
        ErrorCode::StorePermissionDenied => {
            "; check the file and directory permissions (the store needs read and write access)"
        }
        ErrorCode::StoreIo => "; check that the path exists, is writable and the disk is not full",
        ErrorCode::StoreSchemaMissing => {
            "; a table of the store is missing (dropped out of band?): restore it, or re-provision \
             the schema (`power-loop schema print-ddl`) and reopen"
        }
        _ => "",
    };
    Error::new(code, format!("sqlite: {context} failed: {e}{hint}")).with_source(e)
}

/// Wraps a file-system error touching `path`.
pub(crate) fn map_io(e: std::io::Error, context: &str, path: &std::path::Path) -> Error {
    let code = match e.kind() {
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => {
            ErrorCode::StorePermissionDenied
        }
        _ => ErrorCode::StoreIo,
    };
    Error::new(
        code,
        format!(
            "sqlite: {context} `{}` failed: {e}; check that the location exists and is writable",
            path.display()
        ),
    )
    .with_detail("path", path.display().to_string())
    .with_source(e)
}

/// The error returned by every operation after `close()`.
pub(crate) fn closed() -> Error {
    Error::new(
        ErrorCode::StoreClosed,
        "sqlite: the database was closed; open the store again to keep using it",
    )
}
