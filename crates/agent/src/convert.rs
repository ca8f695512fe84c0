//! Conversions between pipeline messages and store rows, shared by the warm and the
//! cold path so both build byte-identical prompts.
//!
//! Multimodal content is stored as the JSON text of its parts with `meta.content_parts = true`
//! and comes back as parts (so images reach the provider through the loop).

use power_loop_contracts::{Content, ContentPart, Message, Role, ToolCall};
use power_loop_store::{JsonMap, MessageRow, NewMessage};
use serde_json::Value;

const PARTS_KEY: &str = "content_parts";

/// A message as it will be stored.
pub(crate) fn to_new_message(m: &Message, round_index: Option<i64>) -> NewMessage {
    let mut n = NewMessage::new(m.role.as_str());
    match &m.content {
        None => {}
        Some(Content::Text(t)) => n.content = Some(t.clone()),
        Some(Content::Parts(parts)) => {
            n.content = Some(serde_json::to_string(parts).unwrap_or_default());
            let mut meta = JsonMap::new();
            meta.insert(PARTS_KEY.into(), Value::Bool(true));
            n.meta = Some(meta);
        }
    }
    if !m.tool_calls.is_empty() {
        n.tool_calls = Some(
            m.tool_calls
                .iter()
                .filter_map(|c| serde_json::to_value(c).ok())
                .collect(),
        );
    }
    n.tool_call_id = m.tool_call_id.clone();
    // The reference does not store the name of assistant messages.
    if m.role != Role::Assistant {
        n.name = m.name.clone().filter(|s| !s.is_empty());
    }
    n.round_index = round_index;
    n
}

fn content_of(content: Option<&str>, parts: bool) -> Option<Content> {
    let text = content?;
    if parts && let Ok(p) = serde_json::from_str::<Vec<ContentPart>>(text) {
        return Some(Content::Parts(p));
    }
    Some(Content::Text(text.to_owned()))
}

fn calls_of(raw: Option<&Vec<Value>>) -> Vec<ToolCall> {
    raw.map(|v| {
        v.iter()
            .filter_map(|c| serde_json::from_value::<ToolCall>(c.clone()).ok())
            .collect()
    })
    .unwrap_or_default()
}

fn build(
    role: &str,
    content: Option<&str>,
    parts: bool,
    name: Option<&str>,
    tool_calls: Option<&Vec<Value>>,
    tool_call_id: Option<&str>,
) -> Message {
    Message {
        role: Role::parse(role).unwrap_or(Role::User),
        content: content_of(content, parts),
        name: name.filter(|s| !s.is_empty()).map(str::to_owned),
        tool_calls: calls_of(tool_calls),
        tool_call_id: tool_call_id.filter(|s| !s.is_empty()).map(str::to_owned),
    }
}

/// What the model sees for a stored row.
pub(crate) fn row_to_message(r: &MessageRow) -> Message {
    let parts = r.meta.get(PARTS_KEY).and_then(Value::as_bool) == Some(true);
    build(
        &r.role,
        r.content.as_deref(),
        parts,
        r.name.as_deref(),
        r.tool_calls.as_ref(),
        r.tool_call_id.as_deref(),
    )
}

/// What the model will see for a message once stored (same mapping as [`row_to_message`]).
pub(crate) fn stored_view(n: &NewMessage) -> Message {
    let parts = n
        .meta
        .as_ref()
        .and_then(|m| m.get(PARTS_KEY))
        .and_then(Value::as_bool)
        == Some(true);
    build(
        &n.role,
        n.content.as_deref(),
        parts,
        n.name.as_deref(),
        n.tool_calls.as_ref(),
        n.tool_call_id.as_deref(),
    )
}

/// JSON text of a value (non-ASCII kept, compact).
pub(crate) fn json_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Sanitized tool calls: arguments made valid JSON text (`{}` when unrecoverable).
pub(crate) fn sanitize_calls(calls: &[ToolCall]) -> Vec<ToolCall> {
    calls
        .iter()
        .map(|c| {
            let mut c = c.clone();
            let raw = c.function.arguments.trim();
            if raw.is_empty() {
                c.function.arguments = "{}".to_owned();
            } else if serde_json::from_str::<Value>(raw).is_err() {
                let repaired = raw
                    .replace('\n', "\\n")
                    .replace('\r', "\\r")
                    .replace('\t', "\\t");
                c.function.arguments = if serde_json::from_str::<Value>(&repaired).is_ok() {
                    repaired
                } else {
                    "{}".to_owned()
                };
            }
            c
        })
        .collect()
}

/// Decoded arguments of a call (object, else `{}`).
pub(crate) fn call_args(c: &ToolCall) -> Value {
    match power_loop_tools::decode_arguments(&c.function.arguments) {
        Ok(v) if v.is_object() => v,
        _ => Value::Object(serde_json::Map::new()),
    }
}

/// Truncates a tool result to `max` characters with the reference's marker.
pub(crate) fn truncate_output(s: String, max: usize) -> String {
    let total = s.chars().count();
    if total <= max {
        return s;
    }
    let keep = max.saturating_sub(50);
    let head: String = s.chars().take(keep).collect();
    format!("{head}\n... (truncated, {total} total chars)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_view_matches_row_mapping_for_parts() {
        let m = Message::user(vec![
            ContentPart::text("look"),
            ContentPart::image_url("data:image/png;base64,AAAA"),
        ]);
        let n = to_new_message(&m, None);
        assert_eq!(stored_view(&n), m);
        let a = Message::assistant_tool_calls("", vec![ToolCall::new("c1", "x", "{\"a\":1}")]);
        assert_eq!(stored_view(&to_new_message(&a, Some(0))), a);
    }

    #[test]
    fn sanitize_and_truncate() {
        let c = sanitize_calls(&[
            ToolCall::new("a", "t", ""),
            ToolCall::new("b", "t", "{\"x\": \"l1\nl2\"}"),
            ToolCall::new("c", "t", "nope"),
        ]);
        assert_eq!(c[0].function.arguments, "{}");
        assert_eq!(c[1].function.arguments, "{\"x\": \"l1\\nl2\"}");
        assert_eq!(c[2].function.arguments, "{}");
        let t = truncate_output("x".repeat(120), 100);
        assert!(t.ends_with("(truncated, 120 total chars)"));
        assert!(t.starts_with(&"x".repeat(50)));
    }
}
