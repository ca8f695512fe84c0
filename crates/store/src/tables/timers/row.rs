//! The `timers` table: durable one-shot and recurring timers — the row, the status labels and
//! the table's definition.

use serde::{Deserialize, Serialize};

use crate::codec::stored_row;
use crate::ddl::model::{ColumnType, Index, Table, col};
use crate::tables::fences::row::{Fence, FenceKind};

use ColumnType::{Int, Key, Label, Text};

/// Timer status strings.
pub mod timer_status {
    /// Waiting for its due time.
    pub const ARMED: &str = "armed";
    /// Claimed by a runner and being delivered.
    pub const FIRING: &str = "firing";
    /// One-shot timer that fired.
    pub const FIRED: &str = "fired";
    /// Cancelled before it fired.
    pub const CANCELLED: &str = "cancelled";
}

stored_row! {
    /// One timer (table `timers`).
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[non_exhaustive]
    pub struct TimerRow {
        /// Session id.
        pub session_id: String => text,
        /// Per-session 1-based id.
        pub timer_id: i64 => i64,
        /// Due time, epoch ms.
        pub due_at: i64 => i64,
        /// The note delivered when it fires.
        pub note: String => text,
        /// `armed`, `firing`, `fired` or `cancelled` (see [`timer_status`]).
        pub status: String => text,
        /// Recurrence interval in seconds (`None` = one-shot).
        pub interval_s: Option<i64> => opt_i64,
        /// How many times it fired.
        pub fire_count: i64 => i64,
        /// Last firing time, epoch ms.
        pub last_fired_at: Option<i64> => opt_i64,
        /// Creation time, epoch ms.
        pub created_at: i64 => i64,
        /// Last change (for `firing` rows: the claim/heartbeat time), epoch ms.
        pub updated_at: i64 => i64,
    }
}

/// A timer claimed by [`crate::SessionStore::claim_due_timers`] with its claim token: the
/// timer's fencing token in `lease_fences` (schema version 3), incremented by every claim.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TimerClaim {
    /// The claimed timer (status `firing`, `updated_at` = claim time).
    pub timer: TimerRow,
    /// The claim token; a later claim of the same timer holds a greater one.
    pub token: i64,
    /// The timer's fence-row name ([`crate::timer_fence_name`]).
    pub fence_name: String,
}

impl TimerClaim {
    /// The fence a store handle checks while acting on this claim: heartbeats, completion,
    /// re-arming and the delivery's writes then fail with `timer.claim_lost` once another
    /// runner has claimed the timer again (see [`crate::SessionStore::fenced`]).
    pub fn fence(&self) -> Fence {
        Fence::new(
            FenceKind::TimerClaim {
                session_id: self.timer.session_id.clone(),
                timer_id: self.timer.timer_id,
            },
            self.fence_name.clone(),
            self.token,
        )
    }
}

/// The `timers` table.
pub(crate) const TABLE: Table = Table::new(
    "timers",
    &[
        col("session_id", Key),
        col("timer_id", Int),
        col("due_at", Int),
        col("note", Text),
        col("status", Label).default_str("armed"),
        col("interval_s", Int).null(),
        col("fire_count", Int).default_int(0),
        col("last_fired_at", Int).null(),
        col("created_at", Int),
        col("updated_at", Int),
    ],
    &["session_id", "timer_id"],
)
.with_indexes(&[Index::on("idx_timers_due", &["status", "due_at"])]);
