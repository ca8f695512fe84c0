//! `validate_workflow` and `create_workflow`.

use std::sync::Arc;

use power_loop_contracts::{Result, ToolDefinition, ToolOutput};
use power_loop_tools::{FnTool, ToolContext, tool_fn};
use serde_json::{Value, json};

use super::{
    NoWorkflowTools, inside_workflow, invalid_spec_output, loop_of, nested_refusal, parse_spec,
};
use crate::detached::start_detached;
use crate::engine::{RunOptions, WorkflowEngine};

const SPEC_HELP: &str = "A WorkflowSpec: {\"name\", \"input\"?, \"budget\"?, \"root\": node}. Nodes: \
{\"type\":\"agent\",\"id\",\"spec\":{\"name\",\"system_prompt\",\"tools\"?,\"max_rounds\"?},\"input\"?,\"inputs_from\"?,\"output_schema\"?}, \
{\"type\":\"sequence\",\"steps\":[…]}, {\"type\":\"parallel\",\"branches\":[…],\"max_concurrency\"?,\"on_error\"?}, \
{\"type\":\"foreach\",\"id\"?,\"items\"|\"items_from\",\"as\",\"body\",\"parallel\"?,\"max_concurrency\"?}, \
{\"type\":\"branch\",\"on\",\"cases\":{…},\"default\"?}. Templates {{input}} / {{item}} are rendered in inputs and system prompts.";

/// The `validate_workflow {spec}` tool: checks a spec without running it. A valid spec gives
/// `valid: NAME (N nodes)`; an invalid one a failed-flagged result listing every problem
/// (also as `data.problems`).
pub fn validate_workflow_tool() -> FnTool {
    let def = ToolDefinition::new(
        "validate_workflow",
        "Check a workflow spec without running it; lists every problem at once so you can fix them all.",
        json!({"type": "object", "properties": {
            "spec": {"type": ["object", "string"], "description": SPEC_HELP}
        }, "required": ["spec"]}),
    );
    tool_fn(def, |_ctx, args| async move {
        Ok(match parse_spec(&args["spec"]) {
            Ok(spec) => ToolOutput::ok(format!(
                "valid: {} ({} nodes)",
                spec.name,
                spec.node_count()
            ))
            .with_data("valid", true),
            Err(e) => invalid_spec_output(&e),
        })
    })
    .concurrent(true)
}

/// The `create_workflow {spec, input?, detached?}` tool: validates the spec (an invalid one is
/// a failed-flagged result listing every problem), then runs it as a journaled run of the
/// calling session. Synchronous by default (the result's summary and run id come back);
/// `detached: true` starts it in the background and returns its run id at once — the session
/// is woken by a durable timer when it ends. Refused inside a workflow (no nesting).
pub fn create_workflow_tool() -> FnTool {
    let def = ToolDefinition::new(
        "create_workflow",
        "Run a deterministic multi-agent workflow (validated first; every problem is reported at once). \
         Without 'detached' it runs now and returns a summary; with detached=true it runs in the background \
         and you are woken with the result when it ends (check it with workflow_status).",
        json!({"type": "object", "properties": {
            "spec": {"type": ["object", "string"], "description": SPEC_HELP},
            "input": {"type": "string", "description": "Overrides the spec's input when non-empty"},
            "detached": {"type": "boolean", "description": "Run in the background and wake me at the end"}
        }, "required": ["spec"]}),
    );
    tool_fn(def, |ctx, args| async move { create(ctx, args).await })
}

async fn create(ctx: ToolContext, args: Value) -> Result<ToolOutput> {
    let lp = loop_of(&ctx, "create_workflow")?;
    let store = lp.store().await?.clone();
    if !ctx.session_id.is_empty() && inside_workflow(&store, &ctx.session_id).await? {
        return Ok(nested_refusal());
    }
    if args.get("spec").is_none_or(Value::is_null) {
        return Ok(ToolOutput::failed(
            "Error: create_workflow requires 'spec'.",
        ));
    }
    let mut spec = match parse_spec(&args["spec"]) {
        Ok(s) => s,
        Err(e) => return Ok(invalid_spec_output(&e)),
    };
    if let Some(input) = args["input"].as_str().filter(|s| !s.is_empty()) {
        spec.input = input.to_owned();
    }
    let detached = args["detached"].as_bool().unwrap_or(false);
    let mut options = RunOptions::new()
        .with_executor(Arc::new(NoWorkflowTools(Arc::new(
            crate::executor::InProcessExecutor,
        ))))
        .with_cancel(ctx.cancel.child_token());
    if detached {
        if ctx.session_id.is_empty() {
            return Ok(ToolOutput::failed(
                "Error: detached workflows need an active session; run without 'detached'.",
            ));
        }
        // The background run outlives this tool call: it gets its own token, not the call's.
        options = options.with_cancel(tokio_util::sync::CancellationToken::new());
        let handle = start_detached(&lp, &ctx.session_id, &spec, options).await?;
        let id = handle.run_id.clone();
        // Dropping the handle leaves the task running; its end is journaled and wakes us.
        drop(handle);
        return Ok(ToolOutput::ok(format!(
            "Started detached workflow '{}' as run {id}. You will be woken with the result when it \
             ends; you may pass your turn now. Check progress with workflow_status(run_id='{id}').",
            spec.name
        ))
        .with_data("run_id", id));
    }
    if !ctx.session_id.is_empty() {
        options = options.with_parent_session(ctx.session_id.clone());
    }
    let out = WorkflowEngine::new((*lp).clone(), options)
        .run(&spec)
        .await?;
    let mut text = out.result.summary();
    if let Some(id) = &out.run_id {
        text.push_str(&format!("\nrun id: {id}"));
    }
    let mut output = ToolOutput::ok(text)
        .with_data("status", out.result.status.as_str())
        .with_data("ok", out.result.ok());
    if let Some(id) = out.run_id {
        output = output.with_data("run_id", id);
    }
    Ok(output)
}
