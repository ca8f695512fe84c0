//! Typed rows of the workflow journal (tables `workflow_runs` and `workflow_steps`).

use power_loop_contracts::{Error, ErrorCode, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::codec::{StoredRow, decode_json, string_enum};
use crate::db::Row;
use crate::ddl::model::{ColumnType, Index, Table, col};

use ColumnType::{Flag, Int, Key, Label, Text};

string_enum! {
    /// The status of a workflow run. `Running` is the only live status: every other one is
    /// final for the attempt (journal writes of that attempt are refused), and only
    /// [`crate::SessionStore::begin_workflow_attempt`] makes the run `Running` again.
    WorkflowRunStatus {
        /// An attempt is executing it (or crashed while doing so; see
        /// [`crate::SessionStore::stale_workflow_runs`]).
        Running => "running",
        /// Finished without a run-level error.
        Completed => "completed",
        /// Finished with a run-level error.
        Failed => "failed",
        /// Stopped by a cancellation request.
        Cancelled => "cancelled",
        /// Stopped because its token budget ran out.
        BudgetExceeded => "budget_exceeded",
    }
}

impl WorkflowRunStatus {
    /// `true` for every status but `Running`.
    pub const fn is_final(self) -> bool {
        !matches!(self, WorkflowRunStatus::Running)
    }
}

/// One workflow run (table `workflow_runs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WorkflowRunRow {
    /// Run id (chosen by the engine).
    pub run_id: String,
    /// The session that started the run (woken when a detached run finishes); `None` for a
    /// run without a parent session.
    pub parent_session_id: Option<String>,
    /// The workflow's name.
    pub workflow: String,
    /// The workflow spec as canonical JSON (column `spec_json`).
    pub spec: Json,
    /// The run's input text.
    pub input: String,
    /// Status of the current attempt.
    pub status: WorkflowRunStatus,
    /// Started in the background (its parent is woken through a durable timer).
    pub detached: bool,
    /// Current attempt number (1 for the first run, +1 per resume).
    pub attempts: i64,
    /// The parent's wake for the current attempt was delivered.
    pub woke: bool,
    /// The session driving the current attempt, once recorded.
    pub driver_session_id: Option<String>,
    /// The run's result document (column `result_json`), once finished.
    pub result: Option<Json>,
    /// The run-level error of a failed run.
    pub error: Option<String>,
    /// Opaque token of whoever runs the current attempt (cleared when it finishes).
    pub owner: Option<String>,
    /// The owner's last heartbeat, epoch ms.
    pub heartbeat_at_ms: Option<i64>,
    /// Creation time, epoch ms (strictly increasing per parent session).
    pub created_at_ms: i64,
    /// Last write to the run or its journal, epoch ms.
    pub updated_at_ms: i64,
    /// When the current attempt finished, epoch ms.
    pub finished_at_ms: Option<i64>,
}

impl StoredRow for WorkflowRunRow {
    const COLUMNS: &'static str = "run_id, parent_session_id, workflow, spec_json, input, status, detached, attempts, woke, driver_session_id, result_json, error, owner, heartbeat_at_ms, created_at_ms, updated_at_ms, finished_at_ms";

    fn from_row(r: &Row) -> Result<Self> {
        Ok(WorkflowRunRow {
            run_id: r.text("run_id")?,
            parent_session_id: r.opt_text("parent_session_id")?,
            workflow: r.text("workflow")?,
            spec: required_json(r, "spec_json")?,
            input: r.text("input")?,
            status: WorkflowRunStatus::parse(&r.text("status")?)?,
            detached: r.i64("detached")? != 0,
            attempts: r.i64("attempts")?,
            woke: r.i64("woke")? != 0,
            driver_session_id: r.opt_text("driver_session_id")?,
            result: decode_json("result_json", r.opt_text("result_json")?)?,
            error: r.opt_text("error")?,
            owner: r.opt_text("owner")?,
            heartbeat_at_ms: r.opt_i64("heartbeat_at_ms")?,
            created_at_ms: r.i64("created_at_ms")?,
            updated_at_ms: r.i64("updated_at_ms")?,
            finished_at_ms: r.opt_i64("finished_at_ms")?,
        })
    }
}

/// One journaled step of a run (table `workflow_steps`): a settled leaf, a foreach item's leaf
/// or an aggregate, keyed by the engine's `step_key`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WorkflowStepRow {
    /// The run.
    pub run_id: String,
    /// The engine's key of the step, unique within the run (e.g. `research`,
    /// `fanout[17]/research`).
    pub step_key: String,
    /// The spec node the step ran.
    pub node_id: String,
    /// The foreach item index (`None` for top-level leaves and aggregates).
    pub item_index: Option<i64>,
    /// The step key of the enclosing foreach, for an item's step.
    pub parent_key: Option<String>,
    /// The step's status, in the engine's vocabulary (`completed`, `failed`, …).
    pub status: String,
    /// The leaf's session, if it ran in one.
    pub session_id: Option<String>,
    /// The step's text output.
    pub text: String,
    /// Its structured payload (column `payload_json`).
    pub payload: Option<Json>,
    /// Its token usage document (column `usage_json`).
    pub usage: Json,
    /// Its error.
    pub error: Option<String>,
    /// The run attempt that recorded it.
    pub attempt: i64,
    /// Recording order within the run (1-based, increasing; re-recording a step moves it last).
    pub seq: i64,
    /// When the step settled, epoch ms.
    pub finished_at_ms: i64,
}

impl StoredRow for WorkflowStepRow {
    const COLUMNS: &'static str = "run_id, step_key, node_id, item_index, parent_key, status, session_id, text, payload_json, usage_json, error, attempt, seq, finished_at_ms";

    fn from_row(r: &Row) -> Result<Self> {
        Ok(WorkflowStepRow {
            run_id: r.text("run_id")?,
            step_key: r.text("step_key")?,
            node_id: r.text("node_id")?,
            item_index: r.opt_i64("item_index")?,
            parent_key: r.opt_text("parent_key")?,
            status: r.text("status")?,
            session_id: r.opt_text("session_id")?,
            text: r.text("text")?,
            payload: decode_json("payload_json", r.opt_text("payload_json")?)?,
            usage: required_json(r, "usage_json")?,
            error: r.opt_text("error")?,
            attempt: r.i64("attempt")?,
            seq: r.i64("seq")?,
            finished_at_ms: r.i64("finished_at_ms")?,
        })
    }
}

/// A NOT NULL JSON column: decoded, and an empty text is a decode error (never written so).
fn required_json(r: &Row, column: &str) -> Result<Json> {
    decode_json(column, Some(r.text(column)?))?.ok_or_else(|| {
        Error::new(
            ErrorCode::StoreDecode,
            format!("column `{column}` is empty where a JSON document was expected"),
        )
    })
}

/// The `workflow_runs` table.
pub(crate) const RUNS_TABLE: Table = Table::new(
    "workflow_runs",
    &[
        col("run_id", Key),
        col("parent_session_id", Key).null(),
        col("workflow", Text),
        col("spec_json", Text),
        col("input", Text),
        col("status", Label),
        col("detached", Flag),
        col("attempts", Int).default_int(1),
        col("woke", Flag).default_int(0),
        col("driver_session_id", Key).null(),
        col("result_json", Text).null(),
        col("error", Text).null(),
        col("owner", Key).null(),
        col("heartbeat_at_ms", Int).null(),
        col("created_at_ms", Int),
        col("updated_at_ms", Int),
        col("finished_at_ms", Int).null(),
    ],
    &["run_id"],
)
.with_indexes(&[
    Index::on(
        "idx_workflow_runs_parent",
        &["parent_session_id", "created_at_ms"],
    ),
    Index::on("idx_workflow_runs_status", &["status"]),
])
.since(2);

/// The `workflow_steps` table.
pub(crate) const STEPS_TABLE: Table = Table::new(
    "workflow_steps",
    &[
        col("run_id", Key),
        col("step_key", Key),
        col("node_id", Key),
        col("item_index", Int).null(),
        col("parent_key", Key).null(),
        col("status", Label),
        col("session_id", Key).null(),
        col("text", Text),
        col("payload_json", Text).null(),
        col("usage_json", Text),
        col("error", Text).null(),
        col("attempt", Int),
        col("seq", Int),
        col("finished_at_ms", Int),
    ],
    &["run_id", "step_key"],
)
.with_indexes(&[Index::on("idx_workflow_steps_seq", &["run_id", "seq"])])
.since(2);
