//! Backend-neutral durable session store of power-loop.
//!
//! # Owns
//! The [`db::Database`]/[`db::Dialect`] port, the schema and its portable version ladder
//! ([`SchemaPolicy`], [`ensure_schema`], [`provisioning_ddl`]), the one backend-neutral
//! [`SessionStore`] (sessions and the sub-agent tree, messages with per-session gap-free seq,
//! the durable turn [`SessionStore::commit_turn`], pending state, compaction journal, timers with
//! fleet claiming, notes, usage and stats, runtime and shared state with atomic read-modify-write,
//! the [`Blackboard`], background tasks, the workflow journal with per-step rows and
//! compare-and-set attempts ([`SessionStore::create_workflow_run`] and siblings), retention,
//! export/import, session leases, maintenance forwarding), strict DSN parsing ([`parse_dsn`]) and the backend registry ([`open_store`]),
//! and the conformance suite (feature `conformance`, macro `store_conformance_suite!`).
//!
//! # Must not import
//! Anything above the store: agents, LLM providers, tools. It depends only on
//! `power-loop-contracts` (plus serde/serde_json/rand).
//!
//! # Seams
//! Defines [`db::Database`], [`db::Transaction`], [`db::Dialect`], [`db::Maintenance`],
//! [`db::Lease`] and [`backend::BackendDescriptor`]; backends implement them. Every store
//! operation is a synchronous transaction body run through [`run_tx`].
//!
//! # Feature flags
//! - `conformance`: exports [`store_conformance_suite!`] and the scenario functions in
//!   `conformance` (pulls tokio, proptest, futures-util).
//!
//! # Stability
//! Internal crate: reach it through the `power-loop` façade, whose API is frozen in `api/`.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod backend;
pub mod db;
pub mod ddl;

mod background;
pub mod blackboard;
mod compaction;
pub mod dsn;
mod export;
mod inputs;
mod lease;
mod maintenance;
mod messages;
pub mod migrate;
mod notes;
mod open;
pub mod pending;
mod retention;
mod runtime_state;
pub mod schema;
mod sessions;
mod store;
mod timers;
pub mod types;
mod usage;
mod util;
mod workflows;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use backend::{BackendDescriptor, ConnectOptions, DsnTarget, ParsedDsn, SqliteSync};
pub use blackboard::{Blackboard, BoardDocument, BoardEntry};
pub use dsn::{parse_dsn, redact_dsn};
pub use export::SessionArchive;
pub use inputs::{
    BackgroundTaskUpdate, CompactionRequest, NewMessage, NewSession, PendingChange,
    PendingUpdateFn, StatsDelta, TurnCommit, UsageRecord,
};
pub use lease::{SessionLease, session_lease_name};
pub use maintenance::CHECKPOINT_MODES;
pub use migrate::{drop_schema, ensure_schema, schema_lock_name};
pub use open::{StoreOptions, open_store};
pub use pending::{PendingInteraction, PendingState};
pub use schema::{
    CURRENT_SCHEMA_VERSION, DEFAULT_MAX_SPAWN_DEPTH, DEFAULT_TABLE_PREFIX, MAX_TABLE_PREFIX_LEN,
    SchemaPolicy, TableNames, provisioning_ddl, schema_migrations_ddl, validate_table_prefix,
};
pub use store::SessionStore;
pub use types::{
    BackgroundTaskRow, CompactionRow, JsonMap, MessageRow, MessageState, NoteRow, SessionKind,
    SessionRow, SessionStateRow, SessionStatsRow, SessionStatus, SubagentLifecycle, TimerRow,
    UsageRoundRow, WindowToken, sort_logical, timer_status,
};
pub use util::{new_session_id, now_ms, run_tx, run_tx_exclusive};
pub use workflows::{
    NewWorkflowRun, WorkflowRunFinish, WorkflowRunRow, WorkflowRunStatus, WorkflowStepInput,
    WorkflowStepRow, WorkflowWake,
};
