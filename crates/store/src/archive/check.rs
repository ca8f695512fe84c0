//! Validation of a session archive before import: version, shape, internal consistency and
//! the values of typed columns. Any finding rejects the whole archive (nothing is written)
//! with `store.archive_invalid` naming the table, row and column.

use std::collections::HashSet;

use power_loop_contracts::{Error, ErrorCode, Result, ToolCall};
use serde_json::Value as Json;

use super::document::SessionArchive;
use crate::codec::JsonMap;
use crate::schema::CURRENT_SCHEMA_VERSION;
use crate::tables::messages::row::MessageState;
use crate::tables::sessions::row::{SessionStatus, SubagentLifecycle};
use crate::tables::timers::row::timer_status;

/// Roles a stored message may have (the chat roles of the OpenAI and Anthropic APIs).
const ROLES: &[&str] = &[
    "system",
    "developer",
    "user",
    "assistant",
    "tool",
    "function",
];

pub(crate) fn archive_error(msg: String) -> Error {
    Error::new(ErrorCode::StoreArchiveInvalid, msg)
}

fn row_error(table: &str, index: usize, column: &str, msg: String) -> Error {
    archive_error(format!(
        "archive table `{table}` row {index} column `{column}`: {msg}"
    ))
    .with_detail("table", table)
    .with_detail("row", index)
    .with_detail("column", column)
}

fn int_field(row: &JsonMap, col: &str) -> Option<i64> {
    row.get(col).and_then(Json::as_i64)
}

fn rows<'a>(a: &'a SessionArchive, table: &str) -> &'a [JsonMap] {
    a.tables.get(table).map_or(&[], Vec::as_slice)
}

/// A short, printable rendering of an offending value.
fn shown(v: &Json) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(60).collect::<String>())
    } else {
        s
    }
}

/// Checks everything about the archive that can be checked without the database.
pub(crate) fn validate_archive(a: &SessionArchive) -> Result<()> {
    check_version(a.schema_version)?;
    check_shape(a)?;
    check_values(a)
}

fn check_version(v: i64) -> Result<()> {
    if v < 1 {
        return Err(archive_error(format!(
            "export schema_version {v} is not a schema version (versions start at 1)"
        )));
    }
    if v > CURRENT_SCHEMA_VERSION {
        return Err(archive_error(format!(
            "export schema_version {v} is newer than this power_loop build supports (max {CURRENT_SCHEMA_VERSION})"
        )));
    }
    Ok(())
}

fn check_shape(a: &SessionArchive) -> Result<()> {
    for table in ["sessions", "session_state"] {
        let n = rows(a, table).len();
        if n != 1 {
            return Err(archive_error(format!(
                "the archive must hold exactly one `{table}` row, found {n}"
            )));
        }
    }
    let state = &rows(a, "session_state")[0];
    let next_seq = int_field(state, "next_seq").ok_or_else(|| {
        archive_error("`session_state.next_seq` is missing or not an integer".into())
    })?;
    let last_compact = int_field(state, "last_compact_seq").unwrap_or(0);
    let mut seen = HashSet::new();
    for m in rows(a, "messages") {
        let seq = int_field(m, "seq")
            .ok_or_else(|| archive_error("a message row has no integer `seq`".into()))?;
        if seq < 1 || seq >= next_seq {
            return Err(archive_error(format!(
                "message seq {seq} is outside 1..next_seq ({next_seq}); the archive is inconsistent"
            )));
        }
        if !seen.insert(seq) {
            return Err(archive_error(format!(
                "message seq {seq} appears twice in the archive"
            )));
        }
    }
    for c in rows(a, "compactions") {
        let cs = int_field(c, "compact_seq")
            .ok_or_else(|| archive_error("a compaction row has no integer `compact_seq`".into()))?;
        if cs > last_compact {
            return Err(archive_error(format!(
                "compaction {cs} is beyond last_compact_seq {last_compact}; the archive is inconsistent"
            )));
        }
    }
    Ok(())
}

/// A text column restricted to a set of values (`required`: absent or null is refused too).
fn check_enum(
    table: &str,
    index: usize,
    row: &JsonMap,
    column: &str,
    required: bool,
    ok: impl Fn(&str) -> bool,
) -> Result<()> {
    match row.get(column) {
        None | Some(Json::Null) if !required => Ok(()),
        Some(Json::String(s)) if ok(s) => Ok(()),
        None | Some(Json::Null) => Err(row_error(table, index, column, "is missing".into())),
        Some(v) => Err(row_error(
            table,
            index,
            column,
            format!("holds {} which is not an allowed value", shown(v)),
        )),
    }
}

/// A `*_json` column holding text must hold valid JSON.
fn check_json_columns(table: &str, index: usize, row: &JsonMap) -> Result<()> {
    for (col, v) in row {
        if let (true, Json::String(text)) = (col.ends_with("_json"), v)
            && !text.is_empty()
            && let Err(e) = serde_json::from_str::<Json>(text)
        {
            return Err(row_error(
                table,
                index,
                col,
                format!("is not valid JSON ({e})"),
            ));
        }
    }
    Ok(())
}

/// `tool_calls_json`: null/empty, or a JSON array of `{id, type: "function", function: {name,
/// arguments}}` objects (the OpenAI `tool_calls` shape).
fn check_tool_calls(index: usize, row: &JsonMap) -> Result<()> {
    let col = "tool_calls_json";
    let parsed = match row.get(col) {
        None | Some(Json::Null) => return Ok(()),
        Some(Json::String(t)) if t.is_empty() => return Ok(()),
        Some(Json::String(t)) => serde_json::from_str::<Json>(t)
            .map_err(|e| row_error("messages", index, col, format!("is not valid JSON ({e})")))?,
        Some(other) => other.clone(),
    };
    if parsed.is_null() {
        return Ok(());
    }
    if !parsed.is_array() {
        return Err(row_error(
            "messages",
            index,
            col,
            format!(
                "holds {} where an array of tool calls was expected",
                shown(&parsed)
            ),
        ));
    }
    serde_json::from_value::<Vec<ToolCall>>(parsed).map(|_| ()).map_err(|e| {
        row_error(
            "messages",
            index,
            col,
            format!("is not an array of {{id, type: \"function\", function: {{name, arguments}}}} tool calls ({e})"),
        )
    })
}

fn check_values(a: &SessionArchive) -> Result<()> {
    for (table, list) in &a.tables {
        for (i, row) in list.iter().enumerate() {
            check_json_columns(table, i, row)?;
        }
    }
    for (i, row) in rows(a, "sessions").iter().enumerate() {
        check_enum("sessions", i, row, "status", false, |s| {
            SessionStatus::parse(s).is_ok()
        })?;
        check_enum("sessions", i, row, "lifecycle", false, |s| {
            SubagentLifecycle::parse(s).is_ok()
        })?;
    }
    for (i, row) in rows(a, "messages").iter().enumerate() {
        check_enum("messages", i, row, "role", true, |s| ROLES.contains(&s))?;
        check_enum("messages", i, row, "state", false, |s| {
            MessageState::parse(s).is_ok()
        })?;
        check_tool_calls(i, row)?;
    }
    for (i, row) in rows(a, "timers").iter().enumerate() {
        check_enum("timers", i, row, "status", true, |s| {
            [
                timer_status::ARMED,
                timer_status::FIRING,
                timer_status::FIRED,
                timer_status::CANCELLED,
            ]
            .contains(&s)
        })?;
    }
    Ok(())
}
