//! The `messages` table: every message of every session under its per-session `seq` — the
//! row, its state, the logical order of the active window and the table's definition.

use std::borrow::Cow;

use power_loop_contracts::{Error, ErrorCode, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::codec::{JsonMap, StoredRow, decode_json, decode_map, string_enum};
use crate::db::{Row, RowView, Transaction, Value};
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
        MessageRow::from_view(r, &MessagePositions::of(r)?)
    }
}

/// Decodes the `tool_calls_json` column: NULL, empty or JSON `null` → `None`, an array → its items.
fn decode_tool_calls(text: Option<&str>) -> Result<Option<Vec<Json>>> {
    match decode_json("tool_calls_json", text.map(str::to_owned))? {
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
fn decode_meta(text: Option<&str>) -> Result<JsonMap> {
    match text {
        Some("{}") => Ok(JsonMap::new()),
        _ => decode_map("meta_json", text.map(str::to_owned)),
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
    fn of(r: &dyn RowView) -> Result<Self> {
        Ok(MessagePositions {
            session_id: r.position_of("session_id")?,
            seq: r.position_of("seq")?,
            role: r.position_of("role")?,
            name: r.position_of("name")?,
            content: r.position_of("content")?,
            tool_calls_json: r.position_of("tool_calls_json")?,
            tool_call_id: r.position_of("tool_call_id")?,
            round_index: r.position_of("round_index")?,
            state: r.position_of("state")?,
            meta_json: r.position_of("meta_json")?,
            created_at: r.position_of("created_at")?,
        })
    }
}

/// Runs a message query (selected with [`StoredRow::COLUMNS`]) and decodes its rows.
///
/// The window load's hot path: each row is read in place ([`Transaction::fetch_each`]), column
/// positions are found once, on the first row, and each text is copied once, from the driver's
/// buffer into the [`MessageRow`], as a raw driver read copies it.
pub(crate) fn fetch_message_rows(
    tx: &mut dyn Transaction,
    sql: &str,
    params: &[Value],
) -> Result<Vec<MessageRow>> {
    let mut out = Vec::new();
    let mut at: Option<MessagePositions> = None;
    tx.fetch_each(sql, params, &mut |r| {
        let positions = match &at {
            Some(p) => p,
            None => at.insert(MessagePositions::of(r)?),
        };
        out.push(MessageRow::from_view(r, positions)?);
        Ok(())
    })?;
    Ok(out)
}

impl MessageRow {
    /// Decodes `r`, whose columns sit at the positions `at`.
    fn from_view(r: &dyn RowView, at: &MessagePositions) -> Result<Self> {
        let owned = |i: usize, column: &str| -> Result<Option<String>> {
            Ok(r.opt_str_at(i, column)?.map(Cow::into_owned))
        };
        Ok(MessageRow {
            session_id: r.str_at(at.session_id, "session_id")?.into_owned(),
            seq: r.i64_at(at.seq, "seq")?,
            role: r.str_at(at.role, "role")?.into_owned(),
            name: owned(at.name, "name")?,
            content: owned(at.content, "content")?,
            tool_calls: decode_tool_calls(
                r.opt_str_at(at.tool_calls_json, "tool_calls_json")?
                    .as_deref(),
            )?,
            tool_call_id: owned(at.tool_call_id, "tool_call_id")?,
            round_index: r.opt_i64_at(at.round_index, "round_index")?,
            state: MessageState::parse(&r.str_at(at.state, "state")?)?,
            meta: decode_meta(r.opt_str_at(at.meta_json, "meta_json")?.as_deref())?,
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
