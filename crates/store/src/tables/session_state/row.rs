//! The `session_state` table: the mutable per-session counters (next `seq`, round, fold count)
//! and the pending-tool-call record — the row, the active-window token and the table's
//! definition.

use power_loop_contracts::Result;
use serde::{Deserialize, Serialize};

use super::pending::PendingState;
use crate::codec::stored_row;
use crate::db::Row;
use crate::ddl::model::{ColumnType, Table, col};

use ColumnType::{Int, Key, Text};

stored_row! {
    /// The mutable per-session counters (table `session_state`).
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[non_exhaustive]
    pub struct SessionStateRow {
        /// Session id.
        pub session_id: String => text,
        /// The seq the next message gets.
        pub next_seq: i64 => i64,
        /// Round index of the current/last send.
        pub round_index: i64 => i64,
        /// Number of compactions recorded.
        pub last_compact_seq: i64 => i64,
        /// Unresolved tool calls, `None` when clean.
        pub pending: Option<PendingState> = "pending_json" => decode_pending,
    }
}

/// Decodes the `pending_json` column ([`PendingState::decode`]).
fn decode_pending(r: &Row, column: &str) -> Result<Option<PendingState>> {
    PendingState::decode(r.opt_text(column)?)
}

impl SessionStateRow {
    /// The active-window token of this state.
    pub fn window_token(&self) -> WindowToken {
        WindowToken {
            next_seq: self.next_seq,
            last_compact_seq: self.last_compact_seq,
        }
    }
}

/// The active-window cache token: changes on every append (`next_seq`) and every fold
/// (`last_compact_seq`). A cache whose token differs must extend (only `next_seq` moved) or reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WindowToken {
    /// `session_state.next_seq`.
    pub next_seq: i64,
    /// `session_state.last_compact_seq`.
    pub last_compact_seq: i64,
}

/// The `session_state` table.
pub(crate) const TABLE: Table = Table::new(
    "session_state",
    &[
        col("session_id", Key),
        col("next_seq", Int).default_int(1),
        col("round_index", Int).default_int(0),
        col("last_compact_seq", Int).default_int(0),
        col("pending_json", Text).null(),
    ],
    &["session_id"],
);
