//! `background_run` and `check_background`.

use std::sync::Arc;
use std::time::Duration;

use power_loop_contracts::{CancellationToken, Error, ErrorCode, ToolDefinition, ToolOutput};

use super::bash::check_policy;
use super::{SharedRef, invalid};
use power_loop_store::BackgroundTaskUpdate;

use super::schema::{params, string_prop};
use crate::backend::{MemoryToolStore, ToolStore};
use crate::shell::run_one_shot;
use crate::text::{str_arg, truncate_chars};
use crate::tool::{FnTool, ToolContext, tool_fn};

/// Tracks background tasks when no store is attached, and cancels all on drop.
#[derive(Default)]
pub(crate) struct BackgroundManager {
    pub(crate) fallback: MemoryToolStore,
    pub(crate) shutdown: CancellationToken,
}

impl Drop for BackgroundManager {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn store_of(shared: &SharedRef, ctx: &ToolContext) -> Arc<dyn ToolStore> {
    match &ctx.store {
        Some(s) if !ctx.session_id.is_empty() => s.clone(),
        _ => Arc::new(shared.background.fallback.clone()),
    }
}

fn short(cmd: &str) -> String {
    cmd.chars().take(80).collect()
}

fn task_id() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..8)
        .map(|_| char::from_digit(rng.random_range(0..16), 16).unwrap_or('0'))
        .collect()
}

/// `background_run`.
pub(crate) fn background_run_tool(shared: SharedRef) -> FnTool {
    let def = ToolDefinition::new(
        "background_run",
        "Start a long-running shell command in the background and return at once with a task id; check it later with check_background.",
        params(
            &[("command", string_prop("The command to run."))],
            &["command"],
        ),
    );
    tool_fn(def, move |ctx, args| {
        let shared = shared.clone();
        async move {
            let command = str_arg(&args, "command").to_owned();
            if command.trim().is_empty() {
                return Err(invalid("command is required"));
            }
            check_policy(&ctx, &command)?;
            let ws = ctx.env.require_workspace()?.to_path_buf();
            ctx.env.shell_backend.ensure_available(&ws).await?;
            let store = store_of(&shared, &ctx);
            let id = task_id();
            let session_id = ctx.session_id.clone();
            let mut rec = BackgroundTaskUpdate::new(id.clone(), command.clone(), "running");
            store.upsert_background_task(&session_id, &rec).await?;
            let backend = ctx.env.shell_backend.clone();
            let timeout = ctx.env.background_timeout_secs.max(1);
            let cancel = shared.background.shutdown.child_token();
            tokio::spawn(async move {
                let r = run_one_shot(
                    backend.as_ref(),
                    &ws,
                    &command,
                    Duration::from_secs(timeout),
                    &cancel,
                )
                .await;
                match r {
                    Ok(out) if out.timed_out => {
                        rec.status = "timeout".to_owned();
                        rec.output_tail = Some(format!("Error: Timeout ({timeout}s)"));
                    }
                    Ok(out) if out.cancelled => {
                        rec.status = "cancelled".to_owned();
                        rec.output_tail = Some(truncate_chars(out.output.trim()));
                    }
                    Ok(out) => {
                        rec.status = match out.exit_code {
                            Some(0) => "completed".to_owned(),
                            Some(c) => format!("failed({c})"),
                            None => "failed(?)".to_owned(),
                        };
                        rec.return_code = out.exit_code.map(i64::from);
                        rec.output_tail = Some(truncate_chars(out.output.trim()));
                    }
                    Err(e) => {
                        rec.status = "error".to_owned();
                        rec.output_tail = Some(format!("Error: {}", e.message()));
                    }
                }
                let _ = store.upsert_background_task(&session_id, &rec).await;
            });
            Ok(ToolOutput::ok(format!(
                "Background task {id} started: {}",
                short(str_arg(&args, "command"))
            ))
            .with_data("task_id", id))
        }
    })
}

/// `check_background`.
pub(crate) fn check_background_tool(shared: SharedRef) -> FnTool {
    let def = ToolDefinition::new(
        "check_background",
        "Show one background task (with task_id) or list all background tasks of this session.",
        params(
            &[(
                "task_id",
                string_prop("Task id from background_run; omit to list all."),
            )],
            &[],
        ),
    );
    tool_fn(def, move |ctx, args| {
        let shared = shared.clone();
        async move {
            let store = store_of(&shared, &ctx);
            let id = str_arg(&args, "task_id").trim();
            if !id.is_empty() {
                return match store.get_background_task(&ctx.session_id, id).await? {
                    Some(t) => Ok(ToolOutput::ok(format!(
                        "[{}] {}\n{}",
                        t.status,
                        short(&t.command),
                        t.output_tail
                            .as_deref()
                            .filter(|s| !s.is_empty())
                            .unwrap_or(if t.status == "running" {
                                "(running)"
                            } else {
                                "(no output)"
                            })
                    ))),
                    None => Err(Error::new(
                        ErrorCode::ToolFailed,
                        format!("Unknown task {id}"),
                    )),
                };
            }
            let tasks = store.list_background_tasks(&ctx.session_id).await?;
            if tasks.is_empty() {
                return Ok(ToolOutput::ok("No background tasks."));
            }
            let lines: Vec<String> = tasks
                .iter()
                .map(|t| format!("{}: [{}] {}", t.task_id, t.status, short(&t.command)))
                .collect();
            Ok(ToolOutput::ok(lines.join("\n")))
        }
    })
    .concurrent(true)
}
