//! Runtime projectors: transient messages rebuilt from the store before every model call of a
//! round (after `round_started`, before `llm.before`). They go at the end of the request's
//! messages only: they are never persisted, never part of the history, and not offered to the
//! round-limit call. Defaults: the session's todo list ([`TodoProjector`]) and the background
//! tasks updated since the model last saw them ([`BackgroundProjector`]).

use power_loop_contracts::{BoxFuture, Message, Result, ToolDefinition};
use power_loop_store::{BackgroundTaskRow, SessionStore};

/// What a projector sees.
#[non_exhaustive]
pub struct ProjectionContext<'a> {
    /// The session's store.
    pub store: &'a SessionStore,
    /// The session.
    pub session_id: &'a str,
    /// The round the messages are for.
    pub round_index: u32,
    /// The tools offered this round.
    pub tools: &'a [ToolDefinition],
}

/// Builds transient messages for one round. A projector error is logged and the round goes on
/// without that projector's messages. Object-safe (stored as `Arc<dyn RuntimeProjector>`).
pub trait RuntimeProjector: Send + Sync {
    /// The messages to add to this round's request (none is fine).
    fn project<'a>(&'a self, ctx: ProjectionContext<'a>) -> BoxFuture<'a, Result<Vec<Message>>>;
}

fn offers(tools: &[ToolDefinition], names: &[&str]) -> bool {
    tools.iter().any(|t| names.contains(&t.name.as_str()))
}

/// The session's todo list (runtime state key `todo`, written by the `todo` tool) as
/// `{"role":"user","name":"runtime_todo_state","content":"<current_todos>\n…\n</current_todos>"}`
/// when a rendered list exists. Reads the store only in rounds that offer the `todo` tool.
#[derive(Debug, Clone, Copy, Default)]
pub struct TodoProjector;

/// The `name` of the todo projection message.
pub const RUNTIME_TODO_STATE: &str = "runtime_todo_state";
/// The `name` of the background-updates projection message.
pub const RUNTIME_BACKGROUND_UPDATES: &str = "runtime_background_updates";

impl RuntimeProjector for TodoProjector {
    fn project<'a>(&'a self, ctx: ProjectionContext<'a>) -> BoxFuture<'a, Result<Vec<Message>>> {
        Box::pin(async move {
            if !offers(ctx.tools, &["todo"]) {
                return Ok(Vec::new());
            }
            let state = ctx.store.get_runtime_state(ctx.session_id, "todo").await?;
            let rendered = state
                .as_ref()
                .and_then(|s| s.get("rendered"))
                .and_then(|r| r.as_str())
                .map(str::trim)
                .unwrap_or("");
            if rendered.is_empty() {
                return Ok(Vec::new());
            }
            Ok(vec![
                Message::user(format!("<current_todos>\n{rendered}\n</current_todos>"))
                    .with_name(RUNTIME_TODO_STATE),
            ])
        })
    }
}

/// Background tasks updated since the model last saw them, as one
/// `{"role":"user","name":"runtime_background_updates","content":"<background_updates>…</background_updates>"}`
/// message (a line per task: id, status, command, then the output tail of a finished task);
/// the tasks are then marked seen, so each update is shown once. Reads the store only in rounds
/// that offer `background_run` or `check_background`.
#[derive(Debug, Clone, Copy, Default)]
pub struct BackgroundProjector;

/// Longest output tail shown per task.
const TAIL_CHARS: usize = 800;

fn render_task(t: &BackgroundTaskRow) -> String {
    let command: String = t.command.chars().take(80).collect();
    let mut line = format!("- {}: [{}] {command}", t.task_id, t.status);
    if let Some(tail) = t
        .output_tail
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let n = tail.chars().count();
        let tail: String = tail.chars().skip(n.saturating_sub(TAIL_CHARS)).collect();
        for l in tail.lines() {
            line.push_str("\n    ");
            line.push_str(l);
        }
    }
    line
}

impl RuntimeProjector for BackgroundProjector {
    fn project<'a>(&'a self, ctx: ProjectionContext<'a>) -> BoxFuture<'a, Result<Vec<Message>>> {
        Box::pin(async move {
            if !offers(ctx.tools, &["background_run", "check_background"]) {
                return Ok(Vec::new());
            }
            let rows = ctx
                .store
                .list_unseen_background_updates(ctx.session_id)
                .await?;
            if rows.is_empty() {
                return Ok(Vec::new());
            }
            let body: Vec<String> = rows.iter().map(render_task).collect();
            let ids: Vec<String> = rows.iter().map(|r| r.task_id.clone()).collect();
            ctx.store.mark_background_seen(ctx.session_id, &ids).await?;
            Ok(vec![
                Message::user(format!(
                    "<background_updates>\n{}\n</background_updates>",
                    body.join("\n")
                ))
                .with_name(RUNTIME_BACKGROUND_UPDATES),
            ])
        })
    }
}
