//! SQLite backend of the power-loop store.
//!
//! # Owns
//! The rusqlite (bundled SQLite) implementation of the store's `Database` port:
//! [`SqliteDatabase`] (one dedicated connection thread, `BEGIN IMMEDIATE` writers with group
//! commit ([`GroupCommitStats`]), WAL,
//! prepared-statement cache, cross-process leases through OS file locks, and the `Maintenance`
//! capability: checkpoint, vacuum that really frees pages, online backup), [`SqliteDialect`]
//! (the SQLite DDL and upsert rendering), and the registry entry [`BACKEND`].
//!
//! # Must not import
//! Anything above `power-loop-store` (agents, LLM providers, tools). Depends only on
//! `power-loop-store`, `power-loop-contracts`, rusqlite and tokio's `sync` primitives.
//!
//! # Seams
//! Implements `power_loop_store::db::{Database, Transaction, Dialect, Maintenance, Lease}`; the
//! façade passes [`BACKEND`] to `open_store`, which calls it for `sqlite:` DSNs and `:memory:`.
//!
//! # Feature flags
//! None. SQLite is always compiled in (rusqlite `bundled`), so no system library is needed.
//!
//! # Stability
//! Internal crate: reach it through the `power-loop` façade, whose API is frozen in `api/`.
//!
//! # Durability
//! File databases use WAL with `synchronous=NORMAL` by default (a committed transaction
//! survives a process crash; the last commits may roll back on power loss) or `FULL`
//! ([`power_loop_store::backend::SqliteSync::Full`]) to survive power loss too. One writer
//! process per file is the supported model; other processes wait up to the busy timeout.
//! Write transactions queued together are committed in one SQLite transaction (group commit:
//! one fsync for many turns at `FULL`); every caller is answered only after that commit, and a
//! body that fails is rolled back to its own savepoint and fails alone.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod database;
mod dialect;
mod error;
mod group;
mod lease;
mod open;
mod tx;

use std::sync::Arc;

use power_loop_contracts::{Error, ErrorCode};
use power_loop_store::backend::{
    BackendDescriptor, ConnectOptions, DsnTarget, OpenFuture, ParsedDsn,
};
use power_loop_store::db::Database;

pub use database::SqliteDatabase;
pub use dialect::SqliteDialect;
pub use group::GroupCommitStats;

/// The registry entry of the SQLite backend (name `"sqlite"`): opens `DsnTarget::SqliteMemory`
/// and `DsnTarget::SqliteFile` targets.
pub const BACKEND: BackendDescriptor =
    BackendDescriptor::new("sqlite", open_backend, &SqliteDialect);

fn open_backend(dsn: ParsedDsn, options: ConnectOptions) -> OpenFuture {
    Box::pin(async move {
        let db = match dsn.target {
            DsnTarget::SqliteMemory => SqliteDatabase::open_memory(&options).await?,
            DsnTarget::SqliteFile(path) => SqliteDatabase::open_file(path, &options).await?,
            other => {
                return Err(Error::new(
                    ErrorCode::StoreDsnInvalid,
                    format!(
                        "the sqlite backend cannot open {other:?}; use `sqlite:///path/to/file.db` or `:memory:`"
                    ),
                ));
            }
        };
        Ok(Arc::new(db) as Arc<dyn Database>)
    })
}
