//! `todo`: the agent's task list.

use power_loop_contracts::{Result, ToolDefinition, ToolOutput};
use serde_json::json;

use super::schema::params;
use super::{SharedRef, invalid};
use crate::tool::{FnTool, tool_fn};

const MAX_TODOS: usize = 20;

/// `todo`.
pub(crate) fn todo_tool(shared: SharedRef) -> FnTool {
    let def = ToolDefinition::new(
        "todo",
        "Replace your task list. At most 20 items and at most one item in_progress.",
        params(
            &[(
                "items",
                json!({
                    "type": "array",
                    "items": params(
                        &[
                            ("id", json!({"type": "string"})),
                            ("text", json!({"type": "string"})),
                            (
                                "status",
                                json!({"type": "string", "enum": ["pending", "in_progress", "completed"]}),
                            ),
                        ],
                        &["id", "text", "status"],
                    ),
                }),
            )],
            &["items"],
        ),
    );
    tool_fn(def, move |ctx, args| {
        let shared = shared.clone();
        async move {
            let items = args
                .get("items")
                .and_then(|v| v.as_array())
                .cloned()
                .unwrap_or_default();
            if items.len() > MAX_TODOS {
                return Err(invalid(format!("Max {MAX_TODOS} todos allowed")));
            }
            let mut clean = Vec::new();
            let mut in_progress = 0;
            for (i, item) in items.iter().enumerate() {
                let id = match item.get("id") {
                    Some(serde_json::Value::String(s)) if !s.trim().is_empty() => {
                        s.trim().to_owned()
                    }
                    Some(serde_json::Value::Number(n)) => n.to_string(),
                    _ => (i + 1).to_string(),
                };
                let text = item
                    .get("text")
                    .and_then(|v| v.as_str())
                    .unwrap_or("")
                    .trim();
                if text.is_empty() {
                    return Err(invalid(format!("Item {id}: text required")));
                }
                let status = item
                    .get("status")
                    .and_then(|v| v.as_str())
                    .unwrap_or("pending")
                    .trim()
                    .to_lowercase();
                if !matches!(status.as_str(), "pending" | "in_progress" | "completed") {
                    return Err(invalid(format!("Item {id}: invalid status '{status}'")));
                }
                if status == "in_progress" {
                    in_progress += 1;
                }
                clean.push((id, text.to_owned(), status));
            }
            if in_progress > 1 {
                return Err(invalid("Only one task can be in_progress at a time"));
            }
            let done = clean.iter().filter(|c| c.2 == "completed").count();
            let rendered = if clean.is_empty() {
                "No todos.".to_owned()
            } else {
                let mut lines: Vec<String> = clean
                    .iter()
                    .map(|(id, text, status)| {
                        let mark = match status.as_str() {
                            "completed" => "[x]",
                            "in_progress" => "[>]",
                            _ => "[ ]",
                        };
                        format!("{mark} #{id}: {text}")
                    })
                    .collect();
                lines.push(String::new());
                lines.push(format!("({done}/{} completed)", clean.len()));
                lines.join("\n")
            };
            let state = json!({
                "items": clean.iter().map(|(id, text, status)| json!({"id": id, "text": text, "status": status})).collect::<Vec<_>>(),
                "rendered": rendered,
                "counts": {"total": clean.len(), "completed": done},
            });
            if let (Some(store), false) = (&ctx.store, ctx.session_id.is_empty()) {
                store
                    .set_runtime_state(&ctx.session_id, "todo", state.clone())
                    .await?;
            }
            shared
                .todos
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(ctx.session_id.clone(), state.clone());
            Result::Ok(ToolOutput::ok(rendered).with_data("todo", state))
        }
    })
}
