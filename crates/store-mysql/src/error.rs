//! Mapping of mysql_async errors to power-loop error codes.

use power_loop_contracts::{Error, ErrorCode};

/// Server error numbers the store reacts to.
mod code {
    pub(super) const DBACCESS_DENIED: u16 = 1044;
    pub(super) const ACCESS_DENIED: u16 = 1045;
    pub(super) const BAD_DB: u16 = 1049;
    pub(super) const DUP_ENTRY: u16 = 1062;
    pub(super) const TABLEACCESS_DENIED: u16 = 1142;
    pub(super) const COLUMNACCESS_DENIED: u16 = 1143;
    pub(super) const NO_SUCH_TABLE: u16 = 1146;
    pub(super) const LOCK_WAIT_TIMEOUT: u16 = 1205;
    pub(super) const LOCK_DEADLOCK: u16 = 1213;
    pub(super) const SPECIFIC_ACCESS_DENIED: u16 = 1227;
    pub(super) const NO_REFERENCED_ROW: u16 = 1452;
    pub(super) const DUP_ENTRY_WITH_KEY_NAME: u16 = 1586;
    pub(super) const CON_COUNT: u16 = 1040;
    pub(super) const SERVER_SHUTDOWN: u16 = 1053;
    pub(super) const HOST_NOT_PRIVILEGED: u16 = 1130;
    pub(super) const LOCK_NOWAIT: u16 = 3572;
    pub(super) const MARIADB_LOCK_NOWAIT: u16 = 1969;
    pub(super) const MAX_PREPARED_STMT_COUNT: u16 = 1461;
}

/// The error for any operation after [`close`](power_loop_store::db::Database::close).
pub(crate) fn closed() -> Error {
    Error::new(
        ErrorCode::StoreClosed,
        "the MySQL store was closed; open a new store to continue",
    )
}

/// Maps a driver error raised while doing `what` (e.g. "connecting to mysql://root@h:3306/test",
/// "running a statement") to a coded error whose message names the fix; the driver error is kept
/// as the source.
pub(crate) fn map(e: mysql_async::Error, what: &str) -> Error {
    use mysql_async::{DriverError, Error as E};
    let (code, msg) = match &e {
        E::Server(se) => match se.code {
            code::ACCESS_DENIED => (
                ErrorCode::StoreAuth,
                format!(
                    "{what}: the MySQL server rejected the credentials ({}); check the user and \
                     password in the DSN (percent-encode special characters)",
                    se.message
                ),
            ),
            code::HOST_NOT_PRIVILEGED => (
                ErrorCode::StoreAuth,
                format!(
                    "{what}: this host may not connect to the MySQL server ({}); grant the user \
                     access from this host",
                    se.message
                ),
            ),
            code::BAD_DB => (
                ErrorCode::StoreDatabaseMissing,
                format!(
                    "{what}: the database does not exist ({}); create it (CREATE DATABASE … \
                     CHARACTER SET utf8mb4) or fix the database name in the DSN path",
                    se.message
                ),
            ),
            code::DBACCESS_DENIED
            | code::TABLEACCESS_DENIED
            | code::COLUMNACCESS_DENIED
            | code::SPECIFIC_ACCESS_DENIED => (
                ErrorCode::StorePermissionDenied,
                format!(
                    "{what}: the MySQL user lacks a privilege ({}); grant it (SELECT, INSERT, \
                     UPDATE, DELETE; CREATE/ALTER/INDEX for schema creation) or provision the \
                     schema as a privileged user and open with SchemaPolicy::Verify",
                    se.message
                ),
            ),
            code::LOCK_DEADLOCK
            | code::LOCK_WAIT_TIMEOUT
            | code::LOCK_NOWAIT
            | code::MARIADB_LOCK_NOWAIT => (
                ErrorCode::StoreConflict,
                format!(
                    "{what}: the transaction hit a lock conflict ({}); it was rolled back, retry \
                     the operation",
                    se.message
                ),
            ),
            code::DUP_ENTRY | code::DUP_ENTRY_WITH_KEY_NAME | code::NO_REFERENCED_ROW => (
                ErrorCode::StoreConstraint,
                format!(
                    "{what}: a uniqueness or integrity constraint was violated ({}); the row \
                     already exists or a referenced row is missing",
                    se.message
                ),
            ),
            code::NO_SUCH_TABLE => (
                ErrorCode::StoreSchemaMissing,
                format!(
                    "{what}: a store table is missing ({}); the schema is not provisioned under \
                     this table prefix: open with SchemaPolicy::AutoCreate or run the \
                     provisioning DDL",
                    se.message
                ),
            ),
            code::CON_COUNT | code::SERVER_SHUTDOWN => (
                ErrorCode::StoreConnection,
                format!(
                    "{what}: the MySQL server is not accepting connections ({}); retry later or \
                     lower the pool size",
                    se.message
                ),
            ),
            code::MAX_PREPARED_STMT_COUNT => (
                ErrorCode::StoreQuery,
                format!(
                    "{what}: the server's prepared-statement limit is reached ({}); raise \
                     max_prepared_stmt_count on the server or lower the store's pool size",
                    se.message
                ),
            ),
            _ => (
                ErrorCode::StoreQuery,
                format!(
                    "{what}: MySQL error {} ({}): {}",
                    se.code, se.state, se.message
                ),
            ),
        },
        E::Io(io) => (
            ErrorCode::StoreConnection,
            format!(
                "{what}: cannot reach the MySQL server ({io}); check that it is running and that \
                 the host and port in the DSN are right"
            ),
        ),
        E::Driver(DriverError::PoolDisconnected) => return closed().with_source(e),
        E::Driver(
            DriverError::ConnectionClosed
            | DriverError::PacketOutOfOrder
            | DriverError::UnexpectedPacket { .. },
        ) => (
            ErrorCode::StoreConnection,
            format!("{what}: the connection to the MySQL server broke ({e}); retry the operation"),
        ),
        E::Url(u) => (
            ErrorCode::StoreDsnInvalid,
            format!("{what}: invalid MySQL URL ({u})"),
        ),
        E::Driver(_) | E::Other(_) => (ErrorCode::StoreQuery, format!("{what}: {e}")),
    };
    Error::new(code, msg).with_source(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(code: u16) -> mysql_async::Error {
        mysql_async::Error::Server(mysql_async::ServerError {
            code,
            message: "m".into(),
            state: "HY000".into(),
        })
    }

    #[test]
    fn codes() {
        let cases = [
            (1045, ErrorCode::StoreAuth),
            (1049, ErrorCode::StoreDatabaseMissing),
            (1044, ErrorCode::StorePermissionDenied),
            (1142, ErrorCode::StorePermissionDenied),
            (1227, ErrorCode::StorePermissionDenied),
            (1213, ErrorCode::StoreConflict),
            (1205, ErrorCode::StoreConflict),
            (1062, ErrorCode::StoreConstraint),
            (1452, ErrorCode::StoreConstraint),
            (1146, ErrorCode::StoreSchemaMissing),
            (1064, ErrorCode::StoreQuery),
        ];
        for (n, want) in cases {
            let e = map(server(n), "x");
            assert_eq!(e.code(), want, "{n}");
            assert!(std::error::Error::source(&e).is_some());
        }
        let io = mysql_async::Error::Io(mysql_async::IoError::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionRefused,
        )));
        assert_eq!(map(io, "x").code(), ErrorCode::StoreConnection);
        let pd = mysql_async::Error::Driver(mysql_async::DriverError::PoolDisconnected);
        assert_eq!(map(pd, "x").code(), ErrorCode::StoreClosed);
    }
}
