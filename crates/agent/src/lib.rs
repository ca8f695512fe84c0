//! The agent loop.
//!
//! # Owns
//! `StatefulAgentLoop`, the round pipeline, hooks, events, budgets.
//!
//! # Must not import
//! Concrete store backends or providers (only their traits).
//!
//! # Stability
//! Internal crate: reach it through the `power-loop` façade, whose API is frozen in `api/`.
