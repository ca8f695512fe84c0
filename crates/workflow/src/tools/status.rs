//! `workflow_status`.

use power_loop_contracts::{Result, ToolDefinition, ToolOutput};
use power_loop_tools::{FnTool, ToolContext, tool_fn};
use serde_json::{Value, json};

use super::loop_of;
use crate::introspect::{get_run, list_runs};

/// How many of the session's runs `workflow_status` lists without a run id.
const LIST_LIMIT: usize = 50;

/// The `workflow_status {run_id?, detail?}` tool. With a run id: the run as pretty JSON
/// (status, attempts, progress, errors, timestamps; `detail: true` adds every journaled step),
/// or `No workflow run '{id}' found.`. Without: the calling session's runs, one line each
/// (`{run_id}  {status:<14} {workflow} ({n} steps)`), or `No workflow runs.`.
pub fn workflow_status_tool() -> FnTool {
    let def = ToolDefinition::new(
        "workflow_status",
        "Show a workflow run's status and progress (run_id), or list this session's runs (no run_id). \
         detail=true adds every finished step.",
        json!({"type": "object", "properties": {
            "run_id": {"type": "string"},
            "detail": {"type": "boolean"}
        }}),
    );
    tool_fn(def, |ctx, args| async move { status(ctx, args).await }).concurrent(true)
}

async fn status(ctx: ToolContext, args: Value) -> Result<ToolOutput> {
    let lp = loop_of(&ctx, "workflow_status")?;
    if ctx.session_id.is_empty() {
        return Ok(ToolOutput::failed("Error: no active session."));
    }
    let store = lp.store().await?;
    if let Some(run_id) = args["run_id"].as_str().filter(|s| !s.trim().is_empty()) {
        let Some(view) = get_run(store, run_id.trim()).await? else {
            return Ok(ToolOutput::ok(format!("No workflow run '{run_id}' found.")));
        };
        let mut v = view.to_value();
        if !args["detail"].as_bool().unwrap_or(false)
            && let Some(m) = v.as_object_mut()
        {
            m.remove("steps");
        }
        return Ok(ToolOutput::ok(serde_json::to_string_pretty(&v)?)
            .with_data("status", view.summary.status.as_str()));
    }
    let runs = list_runs(store, Some(&ctx.session_id), LIST_LIMIT).await?;
    if runs.is_empty() {
        return Ok(ToolOutput::ok("No workflow runs."));
    }
    let mut lines = Vec::with_capacity(runs.len());
    for r in &runs {
        let steps = store.list_workflow_steps(&r.run_id).await?.len();
        lines.push(format!(
            "{}  {:<14} {} ({steps} steps)",
            r.run_id,
            r.status.as_str(),
            r.workflow
        ));
    }
    Ok(ToolOutput::ok(lines.join("\n")))
}
