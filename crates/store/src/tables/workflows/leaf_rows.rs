//! Typed rows of the fleet's leaf claims (table `workflow_leaves`, schema version 4); the
//! operations are in `leaves`.

use power_loop_contracts::Result;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::codec::{StoredRow, decode_json};
use crate::db::Row;
use crate::ddl::model::{ColumnType, Index, Table, col};

use ColumnType::{Int, Key, Label, Text};

crate::codec::string_enum! {
    /// Where a published leaf is in its life.
    WorkflowLeafState {
        /// Waiting for a worker.
        Ready => "ready",
        /// A worker holds it under a lease (claimable again once the lease expired).
        Claimed => "claimed",
        /// Its result is recorded.
        Done => "done",
    }
}

/// One published leaf (table `workflow_leaves`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WorkflowLeafRow {
    /// The run.
    pub run_id: String,
    /// The engine's step key of the leaf, unique within the run.
    pub step_key: String,
    /// Ready, claimed or done.
    pub state: WorkflowLeafState,
    /// The run attempt that published it last.
    pub attempt: i64,
    /// What the worker needs to run it (column `request_json`; opaque to the store).
    pub request: Json,
    /// The worker holding (or that last held) the claim.
    pub claimed_by: Option<String>,
    /// The token of the current claim; recording a result must present it.
    pub claim_token: Option<String>,
    /// When the current claim's lease runs out, epoch ms.
    pub claim_expires_at_ms: Option<i64>,
    /// How many times it was claimed (a claim taken over after a worker died counts again).
    pub claims: i64,
    /// The recorded result's leaf status (`completed`, `failed`, …), once done.
    pub result_status: Option<String>,
    /// The recorded result (column `result_json`; opaque to the store), once done.
    pub result: Option<Json>,
    /// When it was first published, epoch ms.
    pub created_at_ms: i64,
    /// Last change, epoch ms.
    pub updated_at_ms: i64,
    /// When its result was recorded, epoch ms.
    pub finished_at_ms: Option<i64>,
}

impl StoredRow for WorkflowLeafRow {
    const COLUMNS: &'static str = "run_id, step_key, state, attempt, request_json, claimed_by, claim_token, claim_expires_at_ms, claims, result_status, result_json, created_at_ms, updated_at_ms, finished_at_ms";

    fn from_row(r: &Row) -> Result<Self> {
        Ok(WorkflowLeafRow {
            run_id: r.text("run_id")?,
            step_key: r.text("step_key")?,
            state: WorkflowLeafState::parse(&r.text("state")?)?,
            attempt: r.i64("attempt")?,
            request: decode_json("request_json", Some(r.text("request_json")?))?
                .unwrap_or(Json::Null),
            claimed_by: r.opt_text("claimed_by")?,
            claim_token: r.opt_text("claim_token")?,
            claim_expires_at_ms: r.opt_i64("claim_expires_at_ms")?,
            claims: r.i64("claims")?,
            result_status: r.opt_text("result_status")?,
            result: decode_json("result_json", r.opt_text("result_json")?)?,
            created_at_ms: r.i64("created_at_ms")?,
            updated_at_ms: r.i64("updated_at_ms")?,
            finished_at_ms: r.opt_i64("finished_at_ms")?,
        })
    }
}

/// The `workflow_leaves` table.
pub(crate) const LEAVES_TABLE: Table = Table::new(
    "workflow_leaves",
    &[
        col("run_id", Key),
        col("step_key", Key),
        col("state", Label),
        col("attempt", Int),
        col("request_json", Text),
        col("claimed_by", Key).null(),
        col("claim_token", Key).null(),
        col("claim_expires_at_ms", Int).null(),
        col("claims", Int).default_int(0),
        col("result_status", Label).null(),
        col("result_json", Text).null(),
        col("created_at_ms", Int),
        col("updated_at_ms", Int),
        col("finished_at_ms", Int).null(),
    ],
    &["run_id", "step_key"],
)
.with_indexes(&[Index::on(
    "idx_workflow_leaves_state",
    &["state", "created_at_ms"],
)])
.since(4);
