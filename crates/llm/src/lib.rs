//! LLM providers.
//!
//! # Owns
//! OpenAI-compatible and Anthropic transports, the scripted model, retry/timeout layers.
//!
//! # Must not import
//! The store, tools or agent crates.
//!
//! # Stability
//! Internal crate: reach it through the `power-loop` façade, whose API is frozen in `api/`.
