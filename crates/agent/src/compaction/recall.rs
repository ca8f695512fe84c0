//! The `recall_compacted` tool: reads back messages a compaction
//! folded out of the calling session's active window.

use std::sync::Arc;

use power_loop_contracts::{Error, ErrorCode, Result, ToolDefinition, ToolOutput};
use power_loop_store::{MessageRow, MessageState};
use power_loop_tools::{FnTool, ToolContext, tool_fn};
use serde_json::{Value, json};

use crate::StatefulAgentLoop;

/// Upper clamp of `limit`.
pub const RECALL_COMPACTED_MAX_LIMIT: usize = 50;
/// Characters of content shown per message before ` …[truncated]`.
pub const RECALL_COMPACTED_CONTENT_CHARS: usize = 2000;
const DEFAULT_LIMIT: usize = 20;

/// The filters of one recall.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecallQuery {
    /// Case-insensitive substring of the content (blank = no filter).
    pub query: Option<String>,
    /// Lowest seq (inclusive).
    pub from_seq: Option<i64>,
    /// Highest seq (inclusive).
    pub to_seq: Option<i64>,
    /// Maximum messages shown (clamped to 1..=50; `0`/absent = 20).
    pub limit: Option<i64>,
}

impl RecallQuery {
    /// Reads the tool arguments; non-integer numbers are rejected.
    pub fn from_args(args: &Value) -> Result<Self> {
        let int = |k: &str| -> Result<Option<i64>> {
            match args.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v.as_i64().map(Some).ok_or_else(|| {
                    Error::new(
                        ErrorCode::ToolInvalidArgs,
                        format!("`{k}` must be an integer, got {v}"),
                    )
                }),
            }
        };
        let query = match args.get("query") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(v) => {
                return Err(Error::new(
                    ErrorCode::ToolInvalidArgs,
                    format!("`query` must be a string, got {v}"),
                ));
            }
        };
        Ok(RecallQuery {
            query,
            from_seq: int("from_seq")?,
            to_seq: int("to_seq")?,
            limit: int("limit")?,
        })
    }
}

/// Formats the recall of `rows` (any rows: only `compacted_out` ones are considered) per spec.
pub fn format_recall(rows: &[MessageRow], q: &RecallQuery) -> String {
    let limit = match q.limit {
        None | Some(0) => DEFAULT_LIMIT,
        Some(n) => n.clamp(1, RECALL_COMPACTED_MAX_LIMIT as i64) as usize,
    };
    let needle = q
        .query
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_lowercase);
    let mut matched: Vec<&MessageRow> = rows
        .iter()
        .filter(|r| r.state == MessageState::CompactedOut)
        .filter(|r| q.from_seq.is_none_or(|f| r.seq >= f))
        .filter(|r| q.to_seq.is_none_or(|t| r.seq <= t))
        .filter(|r| match &needle {
            None => true,
            Some(n) => r
                .content
                .as_deref()
                .is_some_and(|c| c.to_lowercase().contains(n.as_str())),
        })
        .collect();
    matched.sort_by_key(|r| r.seq);
    if matched.is_empty() {
        return "No compacted (folded-out) messages match this query/range.".to_owned();
    }
    let total = matched.len();
    let shown = &matched[total.saturating_sub(limit)..];
    let blocks: Vec<String> = shown
        .iter()
        .map(|r| {
            let header = match r.round_index {
                Some(round) => format!("[seq {} \u{b7} {} \u{b7} round {round}]", r.seq, r.role),
                None => format!("[seq {} \u{b7} {}]", r.seq, r.role),
            };
            let content = r.content.as_deref().unwrap_or("");
            let body = if content.chars().count() > RECALL_COMPACTED_CONTENT_CHARS {
                let cut: String = content
                    .chars()
                    .take(RECALL_COMPACTED_CONTENT_CHARS)
                    .collect();
                format!("{cut} …[truncated]")
            } else {
                content.to_owned()
            };
            format!("{header}\n{body}")
        })
        .collect();
    let mut head = format!("{} of {total} compacted message(s)", shown.len());
    if total > shown.len() {
        head.push_str(&format!(
            " (showing the {} most recent; narrow with query/from_seq/to_seq)",
            shown.len()
        ));
    }
    format!("{head}:\n\n{}", blocks.join("\n\n"))
}

/// The tool definition of `recall_compacted`.
pub fn recall_compacted_definition() -> ToolDefinition {
    ToolDefinition::new(
        "recall_compacted",
        "Fetch messages that context compaction folded out of the active window. Use only when \
         the compact note lacks a detail you need. Filter by case-insensitive substring (query) \
         and/or seq range; returns at most `limit` (default 20, max 50) of the most recent matches.",
        json!({
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "Case-insensitive substring to look for in the folded messages."},
                "from_seq": {"type": "integer", "description": "Lowest message seq to include."},
                "to_seq": {"type": "integer", "description": "Highest message seq to include."},
                "limit": {"type": "integer", "description": "Maximum messages returned (1-50, default 20)."}
            }
        }),
    )
}

/// The `recall_compacted` tool. It needs the running loop (found in the call context's
/// extensions) and a session; otherwise the call fails with a message saying so. Read-only and
/// scoped to the calling session.
pub fn recall_compacted_tool() -> FnTool {
    tool_fn(
        recall_compacted_definition(),
        |ctx: ToolContext, args: Value| async move {
            let q = RecallQuery::from_args(&args)?;
            let lp: Option<Arc<StatefulAgentLoop>> = ctx.extensions.get::<StatefulAgentLoop>();
            let (Some(lp), false) = (lp, ctx.session_id.is_empty()) else {
                return Ok(ToolOutput::failed(
                    "Error: no active StatefulAgentLoop session/store is available for this tool call.",
                ));
            };
            let rows = lp
                .store()
                .await?
                .load_all_messages(&ctx.session_id)
                .await?;
            Ok(ToolOutput::ok(format_recall(&rows, &q)))
        },
    )
    .concurrent(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(seq: i64, state: &str, content: Option<&str>, round: Option<i64>) -> MessageRow {
        serde_json::from_value(json!({
            "session_id": "s", "seq": seq, "role": if seq % 2 == 0 { "assistant" } else { "user" },
            "name": null, "content": content, "tool_calls": null, "tool_call_id": null,
            "round_index": round, "state": state, "meta": {}, "created_at": 0
        }))
        .unwrap()
    }

    fn q(
        query: Option<&str>,
        from: Option<i64>,
        to: Option<i64>,
        limit: Option<i64>,
    ) -> RecallQuery {
        RecallQuery {
            query: query.map(str::to_owned),
            from_seq: from,
            to_seq: to,
            limit,
        }
    }

    #[test]
    fn formats_filters_and_clamps() {
        let mut rows: Vec<MessageRow> = (1..=60)
            .map(|s| {
                row(
                    s,
                    "compacted_out",
                    Some(&format!("msg {s}")),
                    (s % 2 == 0).then_some(s / 2),
                )
            })
            .collect();
        rows.push(row(61, "active", Some("msg 61"), None));
        rows.push(row(62, "compacted_out", None, None));
        // only active/none match → the exact no-match line
        assert_eq!(
            format_recall(&rows, &q(Some("msg 61"), None, None, None)),
            "No compacted (folded-out) messages match this query/range."
        );
        let out = format_recall(&rows, &q(Some("  MSG 1 "), Some(1), Some(19), None));
        assert_eq!(
            out,
            "11 of 11 compacted message(s):\n\n[seq 1 \u{b7} user]\nmsg 1\n\n[seq 10 \u{b7} assistant \u{b7} round 5]\nmsg 10\n\n[seq 11 \u{b7} user]\nmsg 11\n\n[seq 12 \u{b7} assistant \u{b7} round 6]\nmsg 12\n\n[seq 13 \u{b7} user]\nmsg 13\n\n[seq 14 \u{b7} assistant \u{b7} round 7]\nmsg 14\n\n[seq 15 \u{b7} user]\nmsg 15\n\n[seq 16 \u{b7} assistant \u{b7} round 8]\nmsg 16\n\n[seq 17 \u{b7} user]\nmsg 17\n\n[seq 18 \u{b7} assistant \u{b7} round 9]\nmsg 18\n\n[seq 19 \u{b7} user]\nmsg 19"
        );
        // default 20, the most recent ones, ascending
        let out = format_recall(&rows, &q(None, None, None, Some(0)));
        assert!(out.starts_with("20 of 61 compacted message(s) (showing the 20 most recent; narrow with query/from_seq/to_seq):\n\n[seq 42 "), "{out}");
        assert!(out.ends_with("[seq 62 \u{b7} assistant]\n"));
        // clamp to 50 and to 1
        assert!(format_recall(&rows, &q(None, None, None, Some(500))).starts_with("50 of 61"));
        assert!(format_recall(&rows, &q(None, None, None, Some(-3))).starts_with("1 of 61"));
    }

    #[test]
    fn truncates_long_content() {
        let long = "é".repeat(2500);
        let rows = vec![row(1, "compacted_out", Some(&long), None)];
        let out = format_recall(&rows, &RecallQuery::default());
        assert!(out.ends_with(&format!("{} …[truncated]", "é".repeat(2000))));
        assert!(RecallQuery::from_args(&json!({"limit": "x"})).is_err());
        assert_eq!(
            RecallQuery::from_args(&json!({"query": "a", "limit": 3})).unwrap(),
            q(Some("a"), None, None, Some(3))
        );
    }
}
