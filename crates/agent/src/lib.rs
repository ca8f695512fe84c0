//! The agent loop of power-loop.
//!
//! # Owns
//! `StatefulAgentLoop` (a stateless handle over the durable store), the round pipeline, the hook
//! registry ([`AgentHooks`]), the event bus ([`AgentEventBus`]), budgets, structured output, the
//! memory-provider and compactor seams, the system-prompt builder and the active-window cache.
//!
//! # Must not import
//! Concrete store backends or LLM providers (only their traits; tests use the SQLite backend and a
//! scripted model as dev-dependencies).
//!
//! # Seams
//! Uses `power_loop_contracts::{LlmService, Hook}`; defines [`memory::MemoryProvider`] and
//! [`compaction::Compactor`].
//!
//! # Feature flags
//! None.
//!
//! # Stability
//! Internal crate: reach it through the `power-loop` façade, whose API is frozen in `api/`.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod bus;

pub use bus::{AgentEventBus, BusOptions, EventFilter, OverflowPolicy, SubscriptionId};
