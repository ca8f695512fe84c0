//! The workflow tools (beyond the reference): a model writes, checks, starts and
//! inspects workflows itself.
//!
//! - `validate_workflow {spec}`: every problem of a spec at once, without running it.
//! - `create_workflow {spec, input?, detached?}`: validates, then runs the spec as a journaled
//!   run of the calling session (synchronously — journaled too, unlike the reference — or in
//!   the background with a wake of the session at its end).
//! - `workflow_status {run_id?, detail?}`: one run's status and progress, or the session's runs.
//!
//! An invalid spec is a normal tool result flagged failed that lists every problem, so the
//! model can repair it in one go. Workflows do not nest: the tools refuse to run for a session
//! that belongs to a workflow run (a leaf, its driver, or anything spawned below them), and the
//! leaves of runs started by `create_workflow` do not see these tools at all.

mod create;
mod status;

use std::sync::Arc;

use futures_util::future::BoxFuture;
use power_loop_agent::StatefulAgentLoop;
use power_loop_contracts::{Error, ErrorCode, Result, ToolOutput};
use power_loop_store::SessionStore;
use power_loop_tools::{ToolContext, ToolRegistry};
use serde_json::Value;

use crate::error::WorkflowSpecError;
use crate::executor::{LeafExecutor, LeafOutcome, LeafRequest};
use crate::spec::WorkflowSpec;

pub use create::{create_workflow_tool, validate_workflow_tool};
pub use status::workflow_status_tool;

/// Names of the workflow tools; leaves of a workflow never get them.
pub const WORKFLOW_TOOL_NAMES: &[&str] =
    &["create_workflow", "workflow_status", "validate_workflow"];

/// Registers `create_workflow`, `workflow_status` and `validate_workflow` in `registry`
/// (a name already taken is a `tool.duplicate`-style registry error).
pub fn register_workflow_tools(registry: &mut ToolRegistry) -> Result<()> {
    registry.register(create_workflow_tool())?;
    registry.register(workflow_status_tool())?;
    registry.register(validate_workflow_tool())?;
    Ok(())
}

/// The loop running the calling session, or the "outside a loop" error of `tool`.
fn loop_of(ctx: &ToolContext, tool: &str) -> Result<Arc<StatefulAgentLoop>> {
    ctx.extension::<StatefulAgentLoop>().ok_or_else(|| {
        Error::new(
            ErrorCode::ToolFailed,
            format!("{tool} must be invoked from inside an active StatefulAgentLoop run."),
        )
    })
}

/// Parses the `spec` argument: a JSON object or a JSON string holding one.
fn parse_spec(arg: &Value) -> std::result::Result<WorkflowSpec, WorkflowSpecError> {
    match arg {
        Value::String(s) => WorkflowSpec::from_json_str(s),
        other => WorkflowSpec::from_value(other),
    }
}

/// The failed-flagged result listing every problem of an invalid spec.
fn invalid_spec_output(e: &WorkflowSpecError) -> ToolOutput {
    ToolOutput::failed(format!("Error: {e}"))
        .with_data("problems", e.problems_value())
        .with_data("valid", false)
}

/// How many session links up the chain are inspected (spawn depth is bounded far below this).
const MAX_ANCESTRY: usize = 64;

/// Whether `session_id` belongs to a workflow run: it, or one of its ancestors, is a run's
/// driver session or a leaf (their metadata carries `kind = wf_driver` / `workflow_run_id`).
async fn inside_workflow(store: &SessionStore, session_id: &str) -> Result<bool> {
    let mut current = Some(session_id.to_owned());
    for _ in 0..MAX_ANCESTRY {
        let Some(sid) = current.take() else {
            return Ok(false);
        };
        let Some(row) = store.get_session(&sid).await? else {
            return Ok(false);
        };
        let md = &row.metadata;
        if md.contains_key("workflow_run_id")
            || md.get("kind").and_then(Value::as_str) == Some("wf_driver")
        {
            return Ok(true);
        }
        current = row.parent_session_id;
    }
    Ok(false)
}

/// The refusal of a tool called from inside a workflow.
fn nested_refusal() -> ToolOutput {
    ToolOutput::failed(
        "Error: nested workflow creation is not allowed. Express the additional steps as nodes \
         inside the current WorkflowSpec.",
    )
}

/// Wraps an executor so the leaves it runs never get the workflow tools (an inherited
/// registry — `tools: null` — becomes the parent's tools minus these; a whitelist loses them).
#[derive(Clone)]
pub(crate) struct NoWorkflowTools(pub(crate) Arc<dyn LeafExecutor>);

impl LeafExecutor for NoWorkflowTools {
    fn run_leaf(&self, mut request: LeafRequest) -> BoxFuture<'_, Result<LeafOutcome>> {
        strip_workflow_tools(&mut request);
        self.0.run_leaf(request)
    }
}

/// Removes the workflow tools from a leaf's effective whitelist.
pub(crate) fn strip_workflow_tools(request: &mut LeafRequest) {
    let keep = |n: &String| !WORKFLOW_TOOL_NAMES.contains(&n.as_str());
    match &mut request.spec.tools {
        Some(list) => list.retain(keep),
        None => {
            if let Some(reg) = request.parent.tool_registry()
                && WORKFLOW_TOOL_NAMES.iter().any(|n| reg.has(n))
            {
                request.spec.tools = Some(reg.names().into_iter().filter(keep).collect());
            }
        }
    }
}
