//! The `session_state` table: the mutable per-session counters (next `seq`, round, fold count)
//! and the pending-tool-call record — the row, the active-window token and the table's
//! definition.

use power_loop_contracts::Result;
use serde::{Deserialize, Serialize};

use super::pending::PendingState;
use crate::codec::StoredRow;
use crate::db::Row;
use crate::ddl::model::{ColumnType, Table, col};

use ColumnType::{Int, Key, Text};

/// The mutable per-session counters (table `session_state`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SessionStateRow {
    /// Session id.
    pub session_id: String,
    /// The seq the next message gets.
    pub next_seq: i64,
    /// Round index of the current/last send.
    pub round_index: i64,
    /// Number of compactions recorded.
    pub last_compact_seq: i64,
    /// Unresolved tool calls, `None` when clean.
    pub pending: Option<PendingState>,
}

impl StoredRow for SessionStateRow {
    const COLUMNS: &'static str =
        "session_id, next_seq, round_index, last_compact_seq, pending_json";

    fn from_row(r: &Row) -> Result<Self> {
        Ok(SessionStateRow {
            session_id: r.text("session_id")?,
            next_seq: r.i64("next_seq")?,
            round_index: r.i64("round_index")?,
            last_compact_seq: r.i64("last_compact_seq")?,
            pending: PendingState::decode(r.opt_text("pending_json")?)?,
        })
    }
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
