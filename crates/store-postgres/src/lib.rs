//! PostgreSQL backend of the power-loop store.
//!
//! # Owns
//! The tokio-postgres implementation of the store's `Database` port.
//!
//! # Must not import
//! Anything above `power-loop-store`.
//!
//! # Stability
//! Internal crate: reach it through the `power-loop` façade, whose API is frozen in `api/`.
