//! Typed rows of the workflow journal (tables `workflow_runs` and `workflow_steps`).

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::codec::{stored_row, string_enum};
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

stored_row! {
    /// One workflow run (table `workflow_runs`).
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[non_exhaustive]
    pub struct WorkflowRunRow {
        /// Run id (chosen by the engine).
        pub run_id: String => text,
        /// The session that started the run (woken when a detached run finishes); `None` for a
        /// run without a parent session.
        pub parent_session_id: Option<String> => opt_text,
        /// The workflow's name.
        pub workflow: String => text,
        /// The workflow spec as canonical JSON (column `spec_json`).
        pub spec: Json = "spec_json" => json,
        /// The run's input text.
        pub input: String => text,
        /// Status of the current attempt.
        pub status: WorkflowRunStatus => label,
        /// Started in the background (its parent is woken through a durable timer).
        pub detached: bool => flag,
        /// Current attempt number (1 for the first run, +1 per resume).
        pub attempts: i64 => i64,
        /// The parent's wake for the current attempt was delivered.
        pub woke: bool => flag,
        /// The session driving the current attempt, once recorded.
        pub driver_session_id: Option<String> => opt_text,
        /// The run's result document (column `result_json`), once finished.
        pub result: Option<Json> = "result_json" => opt_json,
        /// The run-level error of a failed run.
        pub error: Option<String> => opt_text,
        /// Opaque token of whoever runs the current attempt (cleared when it finishes).
        pub owner: Option<String> => opt_text,
        /// The owner's last heartbeat, epoch ms.
        pub heartbeat_at_ms: Option<i64> => opt_i64,
        /// Creation time, epoch ms (strictly increasing per parent session).
        pub created_at_ms: i64 => i64,
        /// Last write to the run or its journal, epoch ms.
        pub updated_at_ms: i64 => i64,
        /// When the current attempt finished, epoch ms.
        pub finished_at_ms: Option<i64> => opt_i64,
    }
}

stored_row! {
    /// One journaled step of a run (table `workflow_steps`): a settled leaf, a foreach item's
    /// leaf or an aggregate, keyed by the engine's `step_key`.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[non_exhaustive]
    pub struct WorkflowStepRow {
        /// The run.
        pub run_id: String => text,
        /// The engine's key of the step, unique within the run (e.g. `research`,
        /// `fanout[17]/research`).
        pub step_key: String => text,
        /// The spec node the step ran.
        pub node_id: String => text,
        /// The foreach item index (`None` for top-level leaves and aggregates).
        pub item_index: Option<i64> => opt_i64,
        /// The step key of the enclosing foreach, for an item's step.
        pub parent_key: Option<String> => opt_text,
        /// The step's status, in the engine's vocabulary (`completed`, `failed`, …).
        pub status: String => text,
        /// The leaf's session, if it ran in one.
        pub session_id: Option<String> => opt_text,
        /// The step's text output.
        pub text: String => text,
        /// Its structured payload (column `payload_json`).
        pub payload: Option<Json> = "payload_json" => opt_json,
        /// Its token usage document (column `usage_json`).
        pub usage: Json = "usage_json" => json,
        /// Its error.
        pub error: Option<String> => opt_text,
        /// The run attempt that recorded it.
        pub attempt: i64 => i64,
        /// Recording order within the run (1-based, increasing; re-recording a step moves it
        /// last).
        pub seq: i64 => i64,
        /// When the step settled, epoch ms.
        pub finished_at_ms: i64 => i64,
    }
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
