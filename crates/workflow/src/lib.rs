//! Workflows: deterministic multi-agent control flow over sub-agent leaves.
//!
//! A [`WorkflowSpec`] is a JSON tree of `agent` leaves and `sequence` / `parallel` / `foreach` /
//! `branch` containers. This crate validates it all at once
//! ([`WorkflowSpecError`] lists every problem with its path), renders `{{ name }}` templates
//! ([`render_template`]), resolves references to earlier results ([`Reference`]), and defines
//! what a run produces ([`AgentResult`], [`WorkflowResult`]) and the token pool its leaves share
//! ([`SharedBudget`]). [`WorkflowEngine`] runs a spec over a loop (leaves through a
//! [`LeafExecutor`], in-process by default), journals every settled step in the store, and
//! [`resume_run`] finishes a crashed or stopped run in any process; [`start_detached`] runs one
//! in the background and wakes its parent session exactly once ([`register_wake_guard`]);
//! [`get_run`] / [`list_runs`] show runs and their progress; [`register_workflow_tools`] lets a
//! model validate, start and inspect workflows itself. [`SubprocessExecutor`] runs each leaf in
//! its own worker process ([`serve_worker`] is the worker's entry point; the hosting binary
//! injects how stores are opened through [`WorkerHost`]), wrapped by a [`WorkerLauncher`]
//! (plain, bubblewrap, firejail). [`FleetExecutor`] publishes leaves for a fleet of
//! long-running workers on a shared store instead ([`serve_fleet`] is a worker's loop). See
//! docs/workflows.md and docs/sandboxing.md.
//!
//! # Owns
//! The workflow DSL, engine, journal and executors.
//!
//! # Must not import
//! Concrete store backends or providers.
//!
//! # Seams
//! [`LeafExecutor`] (how a leaf runs); [`WorkerLauncher`] (how a leaf's worker process is
//! wrapped); [`WorkerHost`] (how a worker opens its store); leaves are [`power_loop_agent::AgentSpec`]s; the journal
//! is the store's `workflow_runs` / `workflow_steps` API.
//!
//! # Feature flags
//! None.
//!
//! # Stability
//! Internal crate: reach it through the `power-loop` façade, whose API is frozen in `api/`.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod budget;
mod detached;
mod engine;
mod error;
mod executor;
mod fleet;
mod introspect;
mod journal;
mod reference;
mod result;
mod serialize;
mod spec;
mod subprocess;
mod template;
mod tools;
mod validate;
mod walk;

pub use budget::SharedBudget;
pub use detached::{RunHandle, register_wake_guard, resume_detached, start_detached};
pub use engine::resume::resume_run;
pub use engine::{
    BUDGET_EXHAUSTED, CANCELLED_BEFORE_START, Progress, ProgressFn, RunOptions, RunOutcome,
    WorkflowEngine, WorkflowEngineBuilder,
};
pub use error::{SpecProblem, WorkflowSpecError};
pub use executor::{InProcessExecutor, LeafExecutor, LeafOutcome, LeafReport, LeafRequest};
pub use fleet::{
    FLEET_JOB_VERSION, FleetExecutor, FleetHost, FleetJob, FleetOptions, FleetReport, FleetResult,
    serve_fleet,
};
pub use introspect::{RunStatusView, RunSummary, StepView, get_run, list_runs};
pub use journal::{WAKE_NOTE_PREFIX, new_run_id, wake_note};
pub use reference::{Reference, resolve_reference};
pub use result::{
    AgentResult, LeafStatus, ResultMap, RunStatus, WorkflowResult, usage_from_value, usage_value,
};
pub use spec::{
    AgentNode, BranchNode, BudgetSpec, DEFAULT_AGENT_INPUT, DEFAULT_MAX_CONCURRENCY, ForeachItems,
    ForeachNode, MAX_NODE_DEPTH, Node, OnError, OutputSchema, ParallelNode, SequenceNode,
    WorkflowSpec,
};
pub use subprocess::{
    BubblewrapLauncher, DEFAULT_ENV_ALLOW, FirejailLauncher, HOST_TOOLS, KeepLeafDirs, LaunchPlan,
    LauncherChoice, LeafStore, LeafStoreMode, PROTOCOL_VERSION, ParentFrame, PlainLauncher,
    SpawnObserver, StoreOpener, SubprocessExecutor, SubprocessExecutorBuilder, ToolSetup,
    WorkerFrame, WorkerHost, WorkerJob, WorkerLauncher, WorkerLimits, WorkerReport, cleanup_run,
    decode_frame, encode_frame, reap_runs, serve_worker,
};
pub use template::render_template;
pub use tools::{
    WORKFLOW_TOOL_NAMES, create_workflow_tool, register_workflow_tools, validate_workflow_tool,
    workflow_status_tool,
};
