//! The `messages` table: every message of every session under its per-session `seq` — the
//! row, its state, the logical order of the active window and the table's definition.

use power_loop_contracts::{Error, ErrorCode, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::codec::{JsonMap, StoredRow, decode_json, decode_map, string_enum};
use crate::db::Row;
use crate::ddl::model::{ColumnType, Index, Table, col};

use ColumnType::{Int, Key, Label, Text};

string_enum! {
    /// Whether a message is in the active window or folded out by a compaction.
    MessageState { /// In the active window.
        Active => "active", /// Folded out by a compaction (kept for recall and audit).
        CompactedOut => "compacted_out" }
}

/// One message (table `messages`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MessageRow {
    /// Session id.
    pub session_id: String,
    /// Per-session, 1-based, gap-free identity.
    pub seq: i64,
    /// Role (`user`, `assistant`, `tool`, `system`…); not validated.
    pub role: String,
    /// Name (tool name, `compact_note`, …).
    pub name: Option<String>,
    /// Text content.
    pub content: Option<String>,
    /// Tool calls of an assistant message (`None` when it has none).
    pub tool_calls: Option<Vec<Json>>,
    /// Tool call answered by a `tool` message.
    pub tool_call_id: Option<String>,
    /// Round of the send that wrote it.
    pub round_index: Option<i64>,
    /// Active or folded out.
    pub state: MessageState,
    /// Free metadata (empty object when not given).
    pub meta: JsonMap,
    /// Creation time, epoch ms.
    pub created_at: i64,
}

impl StoredRow for MessageRow {
    const COLUMNS: &'static str = "session_id, seq, role, name, content, tool_calls_json, tool_call_id, round_index, state, meta_json, created_at";

    fn from_row(r: &Row) -> Result<Self> {
        Self::from_owned_row(r.clone())
    }
}

/// Decodes the `tool_calls_json` column: NULL, empty or JSON `null` → `None`, an array → its items.
fn decode_tool_calls(text: Option<String>) -> Result<Option<Vec<Json>>> {
    match decode_json("tool_calls_json", text)? {
        None | Some(Json::Null) => Ok(None),
        Some(Json::Array(items)) => Ok(Some(items)),
        Some(other) => Err(Error::new(
            ErrorCode::StoreDecode,
            format!("column `tool_calls_json` holds `{other}` where an array was expected"),
        )),
    }
}

impl MessageRow {
    /// Decodes one row selected with [`StoredRow::COLUMNS`], moving its text out of the row
    /// instead of copying it: a window load reads every message once, so each text is copied
    /// only from the driver into the row (as a raw driver read does), never a second time here.
    pub(crate) fn from_owned_row(mut r: Row) -> Result<Self> {
        let meta = decode_map("meta_json", r.take_opt_text("meta_json")?)?;
        let tool_calls = decode_tool_calls(r.take_opt_text("tool_calls_json")?)?;
        Ok(MessageRow {
            session_id: r.take_text("session_id")?,
            seq: r.i64("seq")?,
            role: r.take_text("role")?,
            name: r.take_opt_text("name")?,
            content: r.take_opt_text("content")?,
            tool_calls,
            tool_call_id: r.take_opt_text("tool_call_id")?,
            round_index: r.opt_i64("round_index")?,
            state: MessageState::parse(&r.take_text("state")?)?,
            meta,
            created_at: r.i64("created_at")?,
        })
    }

    /// The logical-order key: a compact note sorts at its `meta.ord`, others at `seq`.
    pub fn logical_ord(&self) -> i64 {
        if self.name.as_deref() == Some("compact_note")
            && let Some(ord) = self.meta.get("ord").and_then(json_as_i64)
        {
            return ord;
        }
        self.seq
    }
}

fn json_as_i64(v: &Json) -> Option<i64> {
    match v {
        Json::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Json::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Sorts rows into logical order: key `(logical_ord, seq)`.
pub fn sort_logical(rows: &mut [MessageRow]) {
    rows.sort_by_key(|m| (m.logical_ord(), m.seq));
}

/// The `messages` table.
pub(crate) const TABLE: Table = Table::new(
    "messages",
    &[
        col("session_id", Key),
        col("seq", Int),
        col("role", Label),
        col("name", Key).null(),
        col("content", Text).null(),
        col("tool_calls_json", Text).null(),
        col("tool_call_id", Key).null(),
        col("round_index", Int).null(),
        col("state", Label).default_str("active"),
        col("meta_json", Text).null(),
        col("created_at", Int),
    ],
    &["session_id", "seq"],
)
.with_indexes(&[Index::on(
    "idx_messages_session_state",
    &["session_id", "state", "seq"],
)]);
