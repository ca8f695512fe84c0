//! Event sinks.
//!
//! # Owns
//! JSONL, tracing, metrics and OpenTelemetry consumers of agent events.
//!
//! # Must not import
//! The store, tools or agent crates.
//!
//! # Stability
//! Internal crate: reach it through the `power-loop` façade, whose API is frozen in `api/`.
