//! The `notes` table: agent-authored notes — the row and the table's definition.

use power_loop_contracts::Result;
use serde::{Deserialize, Serialize};

use crate::codec::StoredRow;
use crate::db::Row;
use crate::ddl::model::{ColumnType, Table, col};

use ColumnType::{Flag, Int, Key, Text};

/// An agent-authored note (table `notes`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct NoteRow {
    /// Session id.
    pub session_id: String,
    /// Per-session 1-based id.
    pub note_id: i64,
    /// Text.
    pub content: String,
    /// Pinned notes are always injected and never evicted.
    pub pinned: bool,
    /// Creation time, epoch ms.
    pub created_at: i64,
    /// Last update, epoch ms.
    pub updated_at: i64,
}

impl StoredRow for NoteRow {
    const COLUMNS: &'static str = "session_id, note_id, content, pinned, created_at, updated_at";

    fn from_row(r: &Row) -> Result<Self> {
        Ok(NoteRow {
            session_id: r.text("session_id")?,
            note_id: r.i64("note_id")?,
            content: r.text("content")?,
            pinned: r.i64("pinned")? != 0,
            created_at: r.i64("created_at")?,
            updated_at: r.i64("updated_at")?,
        })
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
