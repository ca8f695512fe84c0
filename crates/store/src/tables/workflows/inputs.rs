//! Inputs of the workflow-journal writes, and their validation (bad input is a typed
//! `invalid_argument` before anything is written, never a driver error or a silent truncation).

use power_loop_contracts::{Error, Result};
use serde_json::Value as Json;

use super::rows::WorkflowRunStatus;

/// Longest id or key the journal stores (`Key` columns are `VARCHAR(255)` on MySQL).
pub(crate) const MAX_KEY_CHARS: usize = 255;
/// Longest step status (`Label` columns are `VARCHAR(32)` on MySQL).
pub(crate) const MAX_LABEL_CHARS: usize = 32;

/// What [`crate::SessionStore::create_workflow_run`] writes: a run in status `running`,
/// attempt 1.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct NewWorkflowRun {
    /// Run id (non-empty, at most 255 characters, unique in the store).
    pub run_id: String,
    /// The session that starts the run; it must exist. `None`: a run without a parent.
    pub parent_session_id: Option<String>,
    /// The workflow's name.
    pub workflow: String,
    /// The workflow spec (stored as compact JSON).
    pub spec: Json,
    /// The run's input text.
    pub input: String,
    /// Started in the background.
    pub detached: bool,
    /// Who runs attempt 1 (an opaque token), if known at creation.
    pub owner: Option<String>,
    /// Creation time, epoch ms (default: the clock). Also the first heartbeat.
    pub now_ms: Option<i64>,
}

impl NewWorkflowRun {
    /// A run of `workflow` with `spec` and `input`, without a parent, not detached.
    pub fn new(
        run_id: impl Into<String>,
        workflow: impl Into<String>,
        spec: Json,
        input: impl Into<String>,
    ) -> Self {
        NewWorkflowRun {
            run_id: run_id.into(),
            parent_session_id: None,
            workflow: workflow.into(),
            spec,
            input: input.into(),
            detached: false,
            owner: None,
            now_ms: None,
        }
    }
    /// Sets the parent session.
    pub fn with_parent(mut self, parent_session_id: impl Into<String>) -> Self {
        self.parent_session_id = Some(parent_session_id.into());
        self
    }
    /// Marks the run detached (or not).
    pub fn with_detached(mut self, detached: bool) -> Self {
        self.detached = detached;
        self
    }
    /// Sets the owner of attempt 1.
    pub fn with_owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self
    }
    /// Sets the creation time (epoch ms) instead of the clock.
    pub fn with_now_ms(mut self, now_ms: i64) -> Self {
        self.now_ms = Some(now_ms);
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        check_key("run_id", &self.run_id)?;
        if let Some(p) = &self.parent_session_id {
            check_key("parent_session_id", p)?;
        }
        if let Some(o) = &self.owner {
            check_key("owner", o)?;
        }
        Ok(())
    }
}

/// One settled step for [`crate::SessionStore::record_workflow_step`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct WorkflowStepInput {
    /// The engine's key of the step, unique within the run (non-empty, ≤ 255 characters).
    pub step_key: String,
    /// The spec node (non-empty, ≤ 255 characters).
    pub node_id: String,
    /// The foreach item index, for an item's step.
    pub item_index: Option<i64>,
    /// The enclosing foreach's step key, for an item's step.
    pub parent_key: Option<String>,
    /// Status in the engine's vocabulary (non-empty, ≤ 32 characters).
    pub status: String,
    /// The leaf's session.
    pub session_id: Option<String>,
    /// Text output.
    pub text: String,
    /// Structured payload.
    pub payload: Option<Json>,
    /// Token usage document (default `{}`).
    pub usage: Json,
    /// Error text.
    pub error: Option<String>,
    /// When the step settled, epoch ms (default: the clock).
    pub finished_at_ms: Option<i64>,
}

impl WorkflowStepInput {
    /// A step of node `node_id` under `step_key` with `status`; empty text, usage `{}`.
    pub fn new(
        step_key: impl Into<String>,
        node_id: impl Into<String>,
        status: impl Into<String>,
    ) -> Self {
        WorkflowStepInput {
            step_key: step_key.into(),
            node_id: node_id.into(),
            item_index: None,
            parent_key: None,
            status: status.into(),
            session_id: None,
            text: String::new(),
            payload: None,
            usage: Json::Object(serde_json::Map::new()),
            error: None,
            finished_at_ms: None,
        }
    }
    /// Makes it item `index` of the foreach step `parent_key`.
    pub fn with_item(mut self, parent_key: impl Into<String>, index: i64) -> Self {
        self.parent_key = Some(parent_key.into());
        self.item_index = Some(index);
        self
    }
    /// Sets the leaf's session.
    pub fn with_session(mut self, session_id: impl Into<String>) -> Self {
        self.session_id = Some(session_id.into());
        self
    }
    /// Sets the text output.
    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        self.text = text.into();
        self
    }
    /// Sets the structured payload.
    pub fn with_payload(mut self, payload: Json) -> Self {
        self.payload = Some(payload);
        self
    }
    /// Sets the usage document.
    pub fn with_usage(mut self, usage: Json) -> Self {
        self.usage = usage;
        self
    }
    /// Sets the error text.
    pub fn with_error(mut self, error: impl Into<String>) -> Self {
        self.error = Some(error.into());
        self
    }
    /// Sets the settle time (epoch ms) instead of the clock.
    pub fn with_finished_at_ms(mut self, ms: i64) -> Self {
        self.finished_at_ms = Some(ms);
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        check_key("step_key", &self.step_key)?;
        check_key("node_id", &self.node_id)?;
        check_label("status", &self.status)?;
        if let Some(p) = &self.parent_key {
            check_key("parent_key", p)?;
        }
        if let Some(s) = &self.session_id {
            check_key("session_id", s)?;
        }
        Ok(())
    }
}

/// The parent-session wake armed by a finish: a durable timer due at once with `note`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkflowWake {
    /// The timer's note (what the parent receives when it fires).
    pub note: String,
}

impl WorkflowWake {
    /// A wake with this note.
    pub fn new(note: impl Into<String>) -> Self {
        WorkflowWake { note: note.into() }
    }
}

/// How [`crate::SessionStore::finish_workflow_run`] ends an attempt.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct WorkflowRunFinish {
    /// The final status (anything but `Running`).
    pub status: WorkflowRunStatus,
    /// The result document.
    pub result: Option<Json>,
    /// The run-level error.
    pub error: Option<String>,
    /// When it finished, epoch ms (default: the clock).
    pub finished_at_ms: Option<i64>,
    /// Arm the parent's wake timer in the same transaction (the run needs a parent session).
    pub wake: Option<WorkflowWake>,
}

impl WorkflowRunFinish {
    /// A finish with `status`, no result, no error, no wake.
    pub fn new(status: WorkflowRunStatus) -> Self {
        WorkflowRunFinish {
            status,
            result: None,
            error: None,
            finished_at_ms: None,
            wake: None,
        }
    }
    /// Sets the result document.
    pub fn with_result(mut self, result: Json) -> Self {
        self.result = Some(result);
        self
    }
    /// Sets the run-level error.
    pub fn with_error(mut self, error: impl Into<String>) -> Self {
        self.error = Some(error.into());
        self
    }
    /// Sets the finish time (epoch ms) instead of the clock.
    pub fn with_finished_at_ms(mut self, ms: i64) -> Self {
        self.finished_at_ms = Some(ms);
        self
    }
    /// Arms the parent's wake timer with `note` atomically with the finish.
    pub fn with_wake(mut self, note: impl Into<String>) -> Self {
        self.wake = Some(WorkflowWake::new(note));
        self
    }

    pub(crate) fn validate(&self) -> Result<()> {
        if self.status == WorkflowRunStatus::Running {
            return Err(Error::invalid_argument(
                "a workflow run cannot be finished with status `running`; use completed, failed, cancelled or budget_exceeded",
            ));
        }
        Ok(())
    }
}

/// A non-empty key of at most [`MAX_KEY_CHARS`] characters.
pub(crate) fn check_key(field: &str, value: &str) -> Result<()> {
    check_len(field, value, MAX_KEY_CHARS)
}

fn check_label(field: &str, value: &str) -> Result<()> {
    check_len(field, value, MAX_LABEL_CHARS)
}

fn check_len(field: &str, value: &str, max: usize) -> Result<()> {
    let n = value.chars().count();
    if n == 0 || n > max {
        return Err(Error::invalid_argument(format!(
            "workflow journal field `{field}` must be 1 to {max} characters long, got {n}"
        ))
        .with_detail("field", field));
    }
    Ok(())
}
