//! Workflows: deterministic multi-agent control flow over sub-agent leaves.
//!
//! A [`WorkflowSpec`] is a JSON tree of `agent` leaves and `sequence` / `parallel` / `foreach` /
//! `branch` containers (tools-workflows spec §4). This crate validates it all at once
//! ([`WorkflowSpecError`] lists every problem with its path), renders `{{ name }}` templates
//! ([`render_template`]), resolves references to earlier results ([`Reference`]), and defines
//! what a run produces ([`AgentResult`], [`WorkflowResult`]) and the token pool its leaves share
//! ([`SharedBudget`]). See docs/workflows.md for the DSL.
//!
//! # Owns
//! The workflow DSL, engine, journal and executors.
//!
//! # Must not import
//! Concrete store backends or providers.
//!
//! # Seams
//! None yet of its own; leaves are [`power_loop_agent::AgentSpec`]s.
//!
//! # Feature flags
//! None.
//!
//! # Stability
//! Internal crate: reach it through the `power-loop` façade, whose API is frozen in `api/`.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod budget;
mod error;
mod pyrepr;
mod reference;
mod result;
mod serialize;
mod spec;
mod template;
mod validate;
mod walk;

pub use budget::SharedBudget;
pub use error::{SpecProblem, WorkflowSpecError};
pub use reference::{Reference, resolve_reference};
pub use result::{
    AgentResult, LeafStatus, ResultMap, RunStatus, WorkflowResult, usage_from_value, usage_value,
};
pub use spec::{
    AgentNode, BranchNode, BudgetSpec, DEFAULT_AGENT_INPUT, DEFAULT_MAX_CONCURRENCY, ForeachItems,
    ForeachNode, MAX_NODE_DEPTH, Node, OnError, OutputSchema, ParallelNode, SequenceNode,
    WorkflowSpec,
};
pub use template::render_template;
