//! Introspection of journaled runs (beyond the reference: every journaled run,
//! synchronous or detached, with per-step progress).

use power_loop_contracts::Result;
use power_loop_store::{SessionStore, WorkflowRunRow, WorkflowRunStatus};
use serde_json::{Map, Value, json};

use crate::journal::step_result;
use crate::result::{AgentResult, LeafStatus};
use crate::spec::WorkflowSpec;

/// One journaled step as introspection shows it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct StepView {
    /// The step key (`research`, `fanout[3]/research`, `fanout`).
    pub step_key: String,
    /// The spec node.
    pub node_id: String,
    /// The foreach item index, for an item's step.
    pub item_index: Option<i64>,
    /// The attempt that recorded it.
    pub attempt: i64,
    /// The recorded result.
    pub result: AgentResult,
    /// When it settled (epoch ms).
    pub finished_at_ms: i64,
}

/// A run's status and progress.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RunStatusView {
    /// The run's id, workflow, status, attempts, mode, parent, creation and finish times (the
    /// line [`list_runs`] shows for it).
    pub summary: RunSummary,
    /// The session that drives the current (or last) attempt.
    pub driver_session_id: Option<String>,
    /// Whether this attempt's wake was let through.
    pub woke: bool,
    /// Steps settled (each journaled step, items' leaves and aggregates included).
    pub finished_steps: usize,
    /// Completed steps among them.
    pub completed_steps: usize,
    /// Nodes of the spec (containers and leaves; a foreach body counts once).
    pub total_nodes: usize,
    /// Every journaled step, in recording order.
    pub steps: Vec<StepView>,
    /// The run-level error (first error of the finished attempt).
    pub error: Option<String>,
    /// Errors of the finished attempt's result.
    pub errors: Vec<String>,
    /// The result document of the finished attempt.
    pub result: Option<Value>,
    /// Last write (epoch ms).
    pub updated_at_ms: i64,
    /// Last heartbeat of the running attempt (epoch ms).
    pub heartbeat_at_ms: Option<i64>,
}

impl RunStatusView {
    /// The JSON form (for `workflow status --json` and the `workflow_status` tool).
    pub fn to_value(&self) -> Value {
        let steps: Vec<Value> = self
            .steps
            .iter()
            .map(|s| {
                let mut m = Map::new();
                m.insert("step_key".into(), s.step_key.clone().into());
                m.insert("node_id".into(), s.node_id.clone().into());
                m.insert(
                    "item_index".into(),
                    s.item_index.map_or(Value::Null, Value::from),
                );
                m.insert("attempt".into(), s.attempt.into());
                m.insert("status".into(), s.result.status.as_str().into());
                m.insert(
                    "session_id".into(),
                    s.result.session_id.clone().map_or(Value::Null, Value::from),
                );
                m.insert(
                    "error".into(),
                    s.result.error.clone().map_or(Value::Null, Value::from),
                );
                m.insert("finished_at_ms".into(), s.finished_at_ms.into());
                Value::Object(m)
            })
            .collect();
        let r = &self.summary;
        json!({
            "run_id": r.run_id,
            "workflow": r.workflow,
            "status": r.status.as_str(),
            "attempts": r.attempts,
            "detached": r.detached,
            "parent_session_id": r.parent_session_id,
            "driver_session_id": self.driver_session_id,
            "woke": self.woke,
            "progress": {
                "finished_steps": self.finished_steps,
                "completed_steps": self.completed_steps,
                "total_nodes": self.total_nodes,
            },
            "steps": steps,
            "error": self.error,
            "errors": self.errors,
            "created_at_ms": r.created_at_ms,
            "updated_at_ms": self.updated_at_ms,
            "heartbeat_at_ms": self.heartbeat_at_ms,
            "finished_at_ms": r.finished_at_ms,
        })
    }
}

/// A run's status, progress, steps and errors, or `None` for an unknown run id.
pub async fn get_run(store: &SessionStore, run_id: &str) -> Result<Option<RunStatusView>> {
    let Some(row) = store.get_workflow_run(run_id).await? else {
        return Ok(None);
    };
    let steps: Vec<StepView> = store
        .list_workflow_steps(run_id)
        .await?
        .iter()
        .map(|s| StepView {
            step_key: s.step_key.clone(),
            node_id: s.node_id.clone(),
            item_index: s.item_index,
            attempt: s.attempt,
            result: step_result(s),
            finished_at_ms: s.finished_at_ms,
        })
        .collect();
    Ok(Some(view(row, steps)))
}

fn view(mut row: WorkflowRunRow, steps: Vec<StepView>) -> RunStatusView {
    let total_nodes = WorkflowSpec::from_value(&row.spec).map_or(0, |s| s.node_count());
    let errors = row
        .result
        .as_ref()
        .and_then(|r| r.get("errors"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    RunStatusView {
        finished_steps: steps.len(),
        completed_steps: steps
            .iter()
            .filter(|s| s.result.status == LeafStatus::Completed)
            .count(),
        total_nodes,
        steps,
        errors,
        driver_session_id: row.driver_session_id.take(),
        woke: row.woke,
        error: row.error.take(),
        result: row.result.take(),
        updated_at_ms: row.updated_at_ms,
        heartbeat_at_ms: row.heartbeat_at_ms,
        summary: summary(row),
    }
}

/// One line of [`list_runs`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RunSummary {
    /// The run id.
    pub run_id: String,
    /// The workflow's name.
    pub workflow: String,
    /// `running`, `completed`, `failed`, `cancelled` or `budget_exceeded`.
    pub status: WorkflowRunStatus,
    /// Attempts so far (1 + resumes).
    pub attempts: i64,
    /// Started in the background.
    pub detached: bool,
    /// The parent session.
    pub parent_session_id: Option<String>,
    /// Creation time (epoch ms).
    pub created_at_ms: i64,
    /// Finish time of the last attempt (epoch ms; `None` while running).
    pub finished_at_ms: Option<i64>,
}

impl RunSummary {
    /// The JSON form (one element of `workflow list --json`).
    pub fn to_value(&self) -> Value {
        json!({
            "run_id": self.run_id,
            "workflow": self.workflow,
            "status": self.status.as_str(),
            "attempts": self.attempts,
            "detached": self.detached,
            "parent_session_id": self.parent_session_id,
            "created_at_ms": self.created_at_ms,
            "finished_at_ms": self.finished_at_ms,
        })
    }
}

/// The summary line of a run row (the rest of the row is dropped).
fn summary(r: WorkflowRunRow) -> RunSummary {
    RunSummary {
        run_id: r.run_id,
        workflow: r.workflow,
        status: r.status,
        attempts: r.attempts,
        detached: r.detached,
        parent_session_id: r.parent_session_id,
        created_at_ms: r.created_at_ms,
        finished_at_ms: r.finished_at_ms,
    }
}

/// Up to `limit` runs in creation order: those of `parent_session_id`, or all for `None`.
pub async fn list_runs(
    store: &SessionStore,
    parent_session_id: Option<&str>,
    limit: usize,
) -> Result<Vec<RunSummary>> {
    Ok(store
        .list_workflow_runs(parent_session_id, limit)
        .await?
        .into_iter()
        .map(summary)
        .collect())
}
