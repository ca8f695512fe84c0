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
//! operation is a synchronous transaction body run through [`run_tx`], which lives with the port
//! in [`db`].
//!
//! # Layout
//! - [`db`]: the port, the transaction runner ([`db::run`]) and shared SQL text ([`db::sql`]).
//! - `tables/<table>/`: one module per table (or pair of tables) holding its row type, the inputs
//!   of its writes, its DDL definition, its hot statements and its operations.
//! - [`ddl`] (the table model and its rendering; [`ddl::TABLES`] lists each table's definition),
//!   [`schema`] (names, prefix, policy), [`migrate`] (the version ladder).
//! - `store.rs` (the [`SessionStore`] handle), `open.rs` ([`StoreOptions`]), `connect.rs`
//!   ([`open_store`]),
//!   `archive/` (export/import), `lease.rs`, `maintenance.rs`, `codec.rs` (column encodings).
//! - Time comes from [`power_loop_contracts::clock`].
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
pub mod dsn;
pub mod migrate;
pub mod schema;

mod archive;
mod codec;
mod connect;
mod lease;
mod maintenance;
mod open;
mod store;
mod tables;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use tables::keyed_state::blackboard;
#[doc(hidden)]
pub use tables::session_state::pending;

/// The row types and stored enums of every table under their former path, kept for source
/// compatibility (each is defined with its table and re-exported at the crate root: use those).
#[doc(hidden)]
pub mod types {
    pub use crate::codec::JsonMap;
    pub use crate::tables::background_tasks::row::BackgroundTaskRow;
    pub use crate::tables::compactions::row::CompactionRow;
    pub use crate::tables::messages::row::{MessageRow, MessageState, sort_logical};
    pub use crate::tables::notes::row::NoteRow;
    pub use crate::tables::session_state::row::{SessionStateRow, WindowToken};
    pub use crate::tables::sessions::row::{
        SessionKind, SessionRow, SessionStatus, SubagentLifecycle,
    };
    pub use crate::tables::timers::row::{TimerClaim, TimerRow, timer_status};
    pub use crate::tables::usage::row::{SessionStatsRow, UsageRoundRow};
}

pub use archive::document::SessionArchive;
pub use backend::{BackendDescriptor, ConnectOptions, DsnTarget, ParsedDsn, SqliteSync};
pub use blackboard::{Blackboard, BoardDocument, BoardEntry};
pub use codec::JsonMap;
pub use connect::{backend_for_dsn, open_store};
pub use db::run::{run_tx, run_tx_exclusive};
pub use dsn::{parse_dsn, redact_dsn};
pub use lease::SessionLease;
pub use maintenance::CHECKPOINT_MODES;
pub use migrate::{drop_schema, ensure_schema, schema_lock_name};
pub use open::StoreOptions;
pub use power_loop_contracts::clock::now_ms;
pub use schema::{
    CURRENT_SCHEMA_VERSION, DEFAULT_MAX_SPAWN_DEPTH, DEFAULT_TABLE_PREFIX, MAX_TABLE_PREFIX_LEN,
    SchemaPolicy, TableNames, provisioning_ddl, schema_migrations_ddl, validate_table_prefix,
};
pub use store::SessionStore;
pub use tables::background_tasks::row::BackgroundTaskRow;
pub use tables::background_tasks::row::BackgroundTaskUpdate;
pub use tables::compactions::row::CompactionRequest;
pub use tables::compactions::row::CompactionRow;
pub use tables::fences::row::{Fence, FenceKind, session_lease_name, timer_fence_name};
pub use tables::messages::input::{NewMessage, PendingChange, PendingUpdateFn, TurnCommit};
pub use tables::messages::row::{MessageRow, MessageState, sort_logical};
pub use tables::notes::row::NoteRow;
pub use tables::session_state::pending::{PendingInteraction, PendingState};
pub use tables::session_state::row::{SessionStateRow, WindowToken};
pub use tables::sessions::admin::StoreStats;
pub use tables::sessions::id::{MAX_SESSION_ID_LEN, new_session_id, validate_session_id};
pub use tables::sessions::row::NewSession;
pub use tables::sessions::row::{SessionKind, SessionRow, SessionStatus, SubagentLifecycle};
pub use tables::timers::row::{TimerClaim, TimerRow, timer_status};
pub use tables::usage::row::{SessionStatsRow, UsageRoundRow};
pub use tables::usage::row::{StatsDelta, UsageRecord};
pub use tables::workflows::inputs::{
    NewWorkflowRun, WorkflowRunFinish, WorkflowStepInput, WorkflowWake,
};
pub use tables::workflows::leaf_rows::{WorkflowLeafRow, WorkflowLeafState};
pub use tables::workflows::rows::{WorkflowRunRow, WorkflowRunStatus, WorkflowStepRow};
