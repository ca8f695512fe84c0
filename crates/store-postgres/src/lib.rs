//! PostgreSQL backend of the power-loop store.
//!
//! # Owns
//! [`PostgresDatabase`], the tokio-postgres + deadpool-postgres implementation of the store's
//! [`Database`] port (pooled connections, transactions whose
//! synchronous bodies run on a blocking thread, advisory-lock schema boot and cross-process
//! leases, SQLSTATE error mapping); [`PostgresDialect`] (`$n` placeholders, the PostgreSQL DDL,
//! `ON CONFLICT` upserts, `FOR UPDATE` locks); and [`BACKEND`], the descriptor `open_store` uses for
//! `postgres://` / `postgresql://` DSNs.
//!
//! # Must not import
//! Anything above `power-loop-store` (agents, LLM providers, tools). Store business logic lives
//! in `power-loop-store`; this crate only runs SQL.
//!
//! # Seams
//! Implements `power_loop_store::db::{Database, Transaction, Dialect, Lease}` and exports
//! `BACKEND: power_loop_store::backend::BackendDescriptor` (name `"postgres"`, accepts
//! `DsnTarget::Url`).
//!
//! # Feature flags
//! None. TLS is always compiled in: rustls with the ring provider (never aws-lc), driven by the
//! DSN's `sslmode` (disable / prefer (default) / require / verify-ca / verify-full) and
//! `sslrootcert` (a PEM file, or `system` for the Mozilla roots). Every DSN parameter is checked:
//! an unknown one is `store.dsn_invalid` naming it.
//!
//! # Stability
//! Internal crate: reach it through the `power-loop` façade, whose API is frozen in `api/`.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod database;
mod dialect;
mod dsn;
mod error;
mod lease;
mod statement;
mod tls;
mod tx;
mod value;

use std::sync::Arc;

use power_loop_contracts::{Error, ErrorCode};
use power_loop_store::backend::{
    BackendDescriptor, ConnectOptions, DsnTarget, OpenFuture, ParsedDsn,
};
use power_loop_store::db::Database;

pub use database::PostgresDatabase;
pub use dialect::PostgresDialect;

/// The PostgreSQL backend descriptor: name `"postgres"`; its `open` accepts a
/// [`DsnTarget::Url`] and connects a [`PostgresDatabase`] with the given [`ConnectOptions`].
pub const BACKEND: BackendDescriptor =
    BackendDescriptor::new("postgres", open_backend, &PostgresDialect);

fn open_backend(parsed: ParsedDsn, options: ConnectOptions) -> OpenFuture {
    Box::pin(async move {
        match parsed.target {
            DsnTarget::Url(url) => {
                let db = PostgresDatabase::connect(&url, &options).await?;
                Ok(Arc::new(db) as Arc<dyn Database>)
            }
            other => Err(Error::new(
                ErrorCode::StoreDsnInvalid,
                format!(
                    "the PostgreSQL backend needs a postgres:// or postgresql:// URL, not {other:?}"
                ),
            )),
        }
    })
}
