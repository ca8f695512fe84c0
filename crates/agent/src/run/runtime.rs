//! The runtime side of a round: the projectors' transient messages for the model call, and the
//! `todo_updated` event when the `todo` tool changed the list.

use power_loop_contracts::event::{EventType, TodoUpdatedPayload};
use power_loop_contracts::{EventPayload, Message, Result, ToolOutput};

use super::state::Run;
use crate::projectors::ProjectionContext;

impl Run {
    /// The configured projectors' messages for round `idx`, in projector order. A failing
    /// projector is logged and contributes nothing.
    pub(super) async fn runtime_messages(&self, idx: u32) -> Vec<Message> {
        let mut out = Vec::new();
        for p in &self.ctx.config.runtime_projectors {
            let ctx = ProjectionContext {
                store: &self.store,
                session_id: &self.sid,
                round_index: idx,
                tools: &self.tool_defs,
            };
            match p.project(ctx).await {
                Ok(msgs) => out.extend(msgs),
                Err(e) => {
                    tracing::warn!(target: "power_loop::agent", session = %self.sid, round = idx, error = %e, "a runtime projector failed; the round goes on without its messages");
                }
            }
        }
        out
    }

    /// Emits `todo_updated` when a successful `todo` call returned its new list (the tool's
    /// `todo` datum: items, rendered text, counts).
    pub(super) fn todo_updated(&self, idx: u32, name: &str, output: &ToolOutput) -> Result<()> {
        if name != "todo" || !output.ok {
            return Ok(());
        }
        let Some(state) = output.data.get("todo") else {
            return Ok(());
        };
        let items = state
            .get("items")
            .and_then(|v| v.as_array())
            .cloned()
            .unwrap_or_default();
        let counts = state
            .get("counts")
            .and_then(|v| v.as_object())
            .cloned()
            .unwrap_or_default();
        let rendered = state
            .get("rendered")
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned();
        self.emit(EventType::TodoUpdated, Some(idx), || {
            EventPayload::TodoUpdated(TodoUpdatedPayload {
                kind: "todo_snapshot".into(),
                items,
                counts,
                text: rendered.clone(),
                rendered,
            })
        })
    }
}
