//! Tools.
//!
//! # Owns
//! `ToolRegistry`, argument validation and the built-in tools.
//!
//! # Must not import
//! The agent or workflow crates.
//!
//! # Stability
//! Internal crate: reach it through the `power-loop` façade, whose API is frozen in `api/`.
