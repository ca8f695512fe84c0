//! The run journal on the store (beyond the reference: dedicated tables, one row per
//! step including each foreach item, attempt-checked writes). This module converts between the
//! engine's results and the store's rows.

use std::collections::HashMap;

use power_loop_contracts::Result;
use power_loop_store::{
    SessionStore, WorkflowRunFinish, WorkflowRunStatus, WorkflowStepInput, WorkflowStepRow,
};

use crate::result::{
    AgentResult, LeafStatus, RunStatus, WorkflowResult, usage_from_value, usage_value,
};

/// Prefix of a detached run's wake note: `workflow:run:{run_id} {status}`.
pub const WAKE_NOTE_PREFIX: &str = "workflow:run:";

/// The wake note of a finished run.
pub fn wake_note(run_id: &str, status: RunStatus) -> String {
    format!("{WAKE_NOTE_PREFIX}{run_id} {status}")
}

/// A fresh run id: 16 lowercase hex digits.
pub fn new_run_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// A fresh owner token for one attempt in this process.
pub(crate) fn new_owner() -> String {
    format!("pid{}-{:08x}", std::process::id(), rand::random::<u32>())
}

/// The journal of one attempt of one run.
#[derive(Debug, Clone)]
pub(crate) struct Journal {
    pub(crate) store: SessionStore,
    pub(crate) run_id: String,
    pub(crate) attempt: i64,
    pub(crate) owner: String,
}

impl Journal {
    /// Records a settled step; false when the store refused it (another attempt owns the run).
    pub(crate) async fn record(
        &self,
        key: &str,
        node_id: &str,
        item: Option<&(String, i64)>,
        r: &AgentResult,
    ) -> Result<bool> {
        let mut step = WorkflowStepInput::new(key, node_id, r.status.as_str())
            .with_text(r.text.clone())
            .with_usage(usage_value(&r.usage, true));
        if let Some((parent, i)) = item {
            step = step.with_item(parent.clone(), *i);
        }
        if let Some(s) = &r.session_id {
            step = step.with_session(s.clone());
        }
        if let Some(p) = &r.payload {
            step = step.with_payload(p.clone());
        }
        if let Some(e) = &r.error {
            step = step.with_error(e.clone());
        }
        self.store
            .record_workflow_step(&self.run_id, self.attempt, step)
            .await
    }

    /// Finishes the attempt with `result` (and arms the parent's wake in the same transaction
    /// when `wake`); false when another attempt owns the run or it was already finished.
    pub(crate) async fn finish(&self, result: &WorkflowResult, wake: bool) -> Result<bool> {
        let mut f =
            WorkflowRunFinish::new(store_status(result.status)).with_result(result.to_value());
        if let Some(e) = result.errors.first() {
            f = f.with_error(e.clone());
        }
        if wake {
            f = f.with_wake(wake_note(&self.run_id, result.status));
        }
        self.store
            .finish_workflow_run(&self.run_id, self.attempt, f)
            .await
    }
}

/// The store's status for a run status.
pub(crate) fn store_status(s: RunStatus) -> WorkflowRunStatus {
    match s {
        RunStatus::Completed => WorkflowRunStatus::Completed,
        RunStatus::Failed => WorkflowRunStatus::Failed,
        RunStatus::BudgetExceeded => WorkflowRunStatus::BudgetExceeded,
        RunStatus::Cancelled => WorkflowRunStatus::Cancelled,
    }
}

/// A journal row as a result (`node_id` = the step key, as in the run's `results`).
pub(crate) fn step_result(s: &WorkflowStepRow) -> AgentResult {
    let mut r = AgentResult::new(
        s.step_key.clone(),
        LeafStatus::parse(&s.status).unwrap_or(LeafStatus::Failed),
    );
    r.text = s.text.clone();
    r.payload = s.payload.clone().filter(|p| !p.is_null());
    r.usage = usage_from_value(Some(&s.usage));
    r.session_id = s.session_id.clone();
    r.error = s.error.clone();
    r
}

/// The replay cache of a resume: every completed step, by step key.
pub(crate) fn replay_cache(steps: &[WorkflowStepRow]) -> HashMap<String, AgentResult> {
    steps
        .iter()
        .filter(|s| s.status == LeafStatus::Completed.as_str())
        .map(|s| (s.step_key.clone(), step_result(s)))
        .collect()
}
