//! MySQL / MariaDB backend of the power-loop store.
//!
//! # Owns
//! The mysql_async implementation of the store's `Database` port ([`MySqlDatabase`]), the
//! MySQL/MariaDB SQL dialect ([`MySqlDialect`]), `mysql://` URL parsing, the mapping of server
//! errors to power-loop error codes, and the registry entry [`BACKEND`] (name `"mysql"`).
//!
//! # Must not import
//! Anything above `power-loop-store` (agents, LLM providers, tools).
//!
//! # Seams
//! Implements `power_loop_store::db::{Database, Transaction, Dialect, Lease}`. Transaction bodies
//! are synchronous closures run on a `spawn_blocking` thread that drives the async driver one
//! statement at a time through the captured runtime handle, so the crate works on both the
//! current-thread and the multi-thread tokio runtime. Cross-process locks use `GET_LOCK` (names
//! are namespaced by database and hashed when longer than 64 characters); leases are taken with
//! the non-waiting `GET_LOCK(name, 0)` on a few shared lease connections (not one per lease).
//!
//! # Feature flags
//! None. TLS is always compiled in: mysql_async's rustls support with the ring provider (never
//! aws-lc), turned on by `require_ssl=true` in the DSN (see [`MySqlUrl`]). Every DSN parameter
//! is checked: an unknown one is `store.dsn_invalid` naming it.
//!
//! # Stability
//! Internal crate: reach it through the `power-loop` façade, whose API is frozen in `api/`.
//!
//! # Server requirements
//! MariaDB ≥ 10.6 or MySQL ≥ 8.0 (`FOR UPDATE SKIP LOCKED`), InnoDB, utf8mb4. Free text and JSON
//! columns are `LONGTEXT`, so message contents are not limited to 64 KiB (the server's
//! `max_allowed_packet` still bounds one statement). Connections run in strict SQL mode with
//! READ COMMITTED isolation and `CLIENT_FOUND_ROWS` (affected rows = matched rows).

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod database;
mod dialect;
mod dsn;
mod error;
mod lease;
mod tx;

use std::sync::Arc;

use power_loop_contracts::{Error, ErrorCode};
use power_loop_store::backend::{
    BackendDescriptor, ConnectOptions, DsnTarget, OpenFuture, ParsedDsn,
};
use power_loop_store::db::Database;

pub use database::MySqlDatabase;
pub use dialect::{MySqlDialect, UpsertStyle};
pub use dsn::{MySqlTls, MySqlUrl};

/// The registry entry for `mysql://` DSNs (the store core normalizes `mariadb://` and
/// `mysql+driver://` to `mysql://`).
pub const BACKEND: BackendDescriptor = BackendDescriptor::new("mysql", open, &dialect::PORTABLE);

fn open(dsn: ParsedDsn, options: ConnectOptions) -> OpenFuture {
    Box::pin(async move {
        match dsn.target {
            DsnTarget::Url(url) => {
                let db = MySqlDatabase::connect(&url, &options).await?;
                Ok(Arc::new(db) as Arc<dyn Database>)
            }
            other => Err(Error::new(
                ErrorCode::StoreDsnInvalid,
                format!(
                    "the MySQL backend needs a mysql://user:password@host:port/database URL, \
                     got {other:?}"
                ),
            )),
        }
    })
}
