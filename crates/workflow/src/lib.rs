//! Workflows.
//!
//! # Owns
//! The workflow DSL, engine, journal and executors.
//!
//! # Must not import
//! Concrete store backends or providers.
//!
//! # Stability
//! Internal crate: reach it through the `power-loop` façade, whose API is frozen in `api/`.
