//! Typed rows of the fleet's leaf claims (table `workflow_leaves`, schema version 4); the
//! operations are in `leaves`.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::codec::stored_row;
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

stored_row! {
    /// One published leaf (table `workflow_leaves`).
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[non_exhaustive]
    pub struct WorkflowLeafRow {
        /// The run.
        pub run_id: String => text,
        /// The engine's step key of the leaf, unique within the run.
        pub step_key: String => text,
        /// Ready, claimed or done.
        pub state: WorkflowLeafState => label,
        /// The run attempt that published it last.
        pub attempt: i64 => i64,
        /// What the worker needs to run it (column `request_json`; opaque to the store).
        pub request: Json = "request_json" => json_or_null,
        /// The worker holding (or that last held) the claim.
        pub claimed_by: Option<String> => opt_text,
        /// The token of the current claim; recording a result must present it.
        pub claim_token: Option<String> => opt_text,
        /// When the current claim's lease runs out, epoch ms.
        pub claim_expires_at_ms: Option<i64> => opt_i64,
        /// How many times it was claimed (a claim taken over after a worker died counts again).
        pub claims: i64 => i64,
        /// The recorded result's leaf status (`completed`, `failed`, …), once done.
        pub result_status: Option<String> => opt_text,
        /// The recorded result (column `result_json`; opaque to the store), once done.
        pub result: Option<Json> = "result_json" => opt_json,
        /// When it was first published, epoch ms.
        pub created_at_ms: i64 => i64,
        /// Last change, epoch ms.
        pub updated_at_ms: i64 => i64,
        /// When its result was recorded, epoch ms.
        pub finished_at_ms: Option<i64> => opt_i64,
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
