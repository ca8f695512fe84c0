//! The shared language of power-loop.
//!
//! # Owns
//! Messages and content parts, tool definitions and tool calls, the LLM contract ([`LlmService`],
//! request, response, stream chunk, token usage, capabilities), agent events with typed payloads,
//! hook points with their context types and outcomes, and the [`Error`] type with stable codes.
//!
//! # Must not import
//! Any other power-loop crate, any database driver, any HTTP client. Dependencies: serde,
//! serde_json, thiserror, tokio-util (cancellation), futures-core.
//!
//! # Stability
//! Frozen by convention: every seam of the workspace lives here. Additions only within a major.

pub mod error;

pub use error::{BoxError, Error, ErrorCode, Result};
