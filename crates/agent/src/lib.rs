//! The agent loop of power-loop.
//!
//! # Owns
//! [`StatefulAgentLoop`] (a stateless handle over the durable store), the round pipeline, the
//! hook registry ([`AgentHooks`]), the event bus ([`AgentEventBus`]), budgets, structured output,
//! the memory-provider and compactor seams, the system-prompt builder and the active-window cache.
//!
//! # Must not import
//! LLM providers (only the `LlmService` trait; tests use the scripted model as a
//! dev-dependency) and, in its code, concrete store backends: the loop sees only the store's
//! `Database` port. The backend crates are optional dependencies whose only use is the
//! [`COMPILED_BACKENDS`] list `AgentLoopBuilder::dsn` opens a DSN on.
//!
//! # Seams
//! Uses `power_loop_contracts::{LlmService, Hook}`, `power_loop_tools::Tool` and the store's
//! `SessionStore`; defines [`memory::MemoryProvider`] and [`compaction::Compactor`].
//!
//! # Feature flags
//! - `sqlite`, `postgres`, `mysql`: put that backend's descriptor in [`COMPILED_BACKENDS`], so
//!   `StatefulAgentLoop::builder(llm).dsn("app.db")` finds it (the `power-loop` façade turns
//!   on the ones it is built with). Off by default.
//!
//! # Stability
//! Internal crate: reach it through the `power-loop` façade, whose API is frozen in `api/`.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod agent_loop;
pub mod budget;
pub mod bus;
mod cancel;
pub mod compaction;
pub mod config;
mod convert;
mod emit;
pub mod hooks;
pub mod memory;
pub mod projectors;
pub mod prompt;
mod result;
mod run;
pub mod structured;
pub mod subagent;
pub mod timers;
mod window;

pub use agent_loop::{AgentLoopBuilder, COMPILED_BACKENDS, NewSessionOptions, StatefulAgentLoop};
pub use budget::RunUsage;
pub use bus::{AgentEventBus, BusOptions, EventFilter, OverflowPolicy, SubscriptionId};
pub use cancel::{CancelHandle, DEFAULT_CANCEL_REASON};
pub use compaction::{
    CompactRequest, CompactionContext, CompactionPlan, Compactor, DefaultCompactor,
    recall_compacted_tool,
};
pub use config::AgentLoopConfig;
pub use hooks::{AgentHooks, HookHandle};
pub use memory::{MemoryProvider, MemorySnapshot, tag_as_memory};
pub use projectors::{BackgroundProjector, ProjectionContext, RuntimeProjector, TodoProjector};
pub use prompt::{SystemPromptBuilder, SystemPromptContext, format_tool_catalog};
pub use result::{
    FollowUpOutcome, FollowUpQueued, RunStatus, SendOptions, StatefulResult, UserInput,
};
pub use structured::{StructuredOutputSpec, parse_structured};
pub use subagent::{
    AgentSpec, SubagentReport, register_subagent_tools, run_agent_spec, run_agent_tool,
    spawn_agent_tool,
};
pub use timers::{
    FiringOutcome, TimerDue, TimerFiring, TimerRunner, TimerRunnerOptions, register_timer_tools,
    timer_tools,
};
pub use window::CacheStats;
