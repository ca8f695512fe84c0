//! The `notes` table: agent-authored notes — the row and the table's definition.

use serde::{Deserialize, Serialize};

use crate::codec::stored_row;
use crate::ddl::model::{ColumnType, Table, col};

use ColumnType::{Flag, Int, Key, Text};

stored_row! {
    /// An agent-authored note (table `notes`).
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[non_exhaustive]
    pub struct NoteRow {
        /// Session id.
        pub session_id: String => text,
        /// Per-session 1-based id.
        pub note_id: i64 => i64,
        /// Text.
        pub content: String => text,
        /// Pinned notes are always injected and never evicted.
        pub pinned: bool => flag,
        /// Creation time, epoch ms.
        pub created_at: i64 => i64,
        /// Last update, epoch ms.
        pub updated_at: i64 => i64,
    }
}

/// The `notes` table.
pub(crate) const TABLE: Table = Table::new(
    "notes",
    &[
        col("session_id", Key),
        col("note_id", Int),
        col("content", Text),
        col("pinned", Flag).default_int(0),
        col("created_at", Int),
        col("updated_at", Int),
    ],
    &["session_id", "note_id"],
);
