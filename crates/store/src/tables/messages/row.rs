//! The `messages` table: every message of every session under its per-session `seq` — the
//! row, its state, the logical order of the active window and the table's definition.

use std::sync::Arc;

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
        let at = MessagePositions::of(r)?;
        Self::take_from(r.clone(), &at)
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

/// Decodes the `meta_json` column; the common empty object (`{}`, what the store writes when a
/// message has no metadata) skips the JSON parser.
fn decode_meta(text: Option<String>) -> Result<JsonMap> {
    match text.as_deref() {
        Some("{}") => Ok(JsonMap::new()),
        _ => decode_map("meta_json", text),
    }
}

/// Where each column of a message row sits in a result row: looked up by name once per result
/// instead of once per value.
struct MessagePositions {
    session_id: usize,
    seq: usize,
    role: usize,
    name: usize,
    content: usize,
    tool_calls_json: usize,
    tool_call_id: usize,
    round_index: usize,
    state: usize,
    meta_json: usize,
    created_at: usize,
}

impl MessagePositions {
    fn of(r: &Row) -> Result<Self> {
        Ok(MessagePositions {
            session_id: r.index_of("session_id")?,
            seq: r.index_of("seq")?,
            role: r.index_of("role")?,
            name: r.index_of("name")?,
            content: r.index_of("content")?,
            tool_calls_json: r.index_of("tool_calls_json")?,
            tool_call_id: r.index_of("tool_call_id")?,
            round_index: r.index_of("round_index")?,
            state: r.index_of("state")?,
            meta_json: r.index_of("meta_json")?,
            created_at: r.index_of("created_at")?,
        })
    }
}

/// Decodes the rows of one message query (selected with [`StoredRow::COLUMNS`]).
///
/// The window load's hot path: column positions are found once per result (every row of a
/// result shares its column list), and each text is **moved** from the driver's row into the
/// [`MessageRow`], so it is copied once (driver → row), as a raw driver read copies it.
pub(crate) fn decode_message_rows(rows: Vec<Row>) -> Result<Vec<MessageRow>> {
    let mut out = Vec::with_capacity(rows.len());
    // The positions and the column list they were found in.
    let mut cached: Option<(Arc<[String]>, MessagePositions)> = None;
    for r in rows {
        let (columns, at) = match cached.take() {
            Some((columns, at)) if Arc::ptr_eq(&columns, r.shared_columns()) => (columns, at),
            _ => (Arc::clone(r.shared_columns()), MessagePositions::of(&r)?),
        };
        out.push(MessageRow::take_from(r, &at)?);
        cached = Some((columns, at));
    }
    Ok(out)
}

impl MessageRow {
    /// Decodes `r`, whose columns sit at the positions `at`.
    fn take_from(mut r: Row, at: &MessagePositions) -> Result<Self> {
        let meta = decode_meta(r.take_opt_text_at(at.meta_json, "meta_json")?)?;
        let tool_calls =
            decode_tool_calls(r.take_opt_text_at(at.tool_calls_json, "tool_calls_json")?)?;
        Ok(MessageRow {
            session_id: r.take_text_at(at.session_id, "session_id")?,
            seq: r.i64_at(at.seq, "seq")?,
            role: r.take_text_at(at.role, "role")?,
            name: r.take_opt_text_at(at.name, "name")?,
            content: r.take_opt_text_at(at.content, "content")?,
            tool_calls,
            tool_call_id: r.take_opt_text_at(at.tool_call_id, "tool_call_id")?,
            round_index: r.opt_i64_at(at.round_index, "round_index")?,
            state: MessageState::parse(&r.take_text_at(at.state, "state")?)?,
            meta,
            created_at: r.i64_at(at.created_at, "created_at")?,
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
