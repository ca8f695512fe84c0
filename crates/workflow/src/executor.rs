//! The executor seam: how one agent leaf runs. The engine hands a [`LeafRequest`] to
//! a [`LeafExecutor`] and reads back a [`LeafOutcome`]; [`InProcessExecutor`] (the default) runs
//! the leaf as a linked sub-agent session of the run's driver session, on a sibling loop of the
//! parent. A subprocess executor implements the same trait.

use futures_util::future::BoxFuture;
use power_loop_agent::{AgentSpec, RunUsage, StatefulAgentLoop, SubagentReport, run_agent_spec};
use power_loop_contracts::Result;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::result::LeafStatus;

/// Everything an executor needs to run one leaf.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LeafRequest {
    /// The effective sub-agent: the node's spec with the rendered system prompt, lifecycle
    /// `linked`, the node's output schema and the run metadata (`workflow_run_id`,
    /// `workflow_node_id`, `workflow_step_key`, `idempotency_key`).
    pub spec: AgentSpec,
    /// The rendered user input (with the `inputs_from` context appended).
    pub input: String,
    /// The loop that started the run (model, store, hooks, tools of the leaves).
    pub parent: StatefulAgentLoop,
    /// The run's driver session: leaves are its linked children.
    pub driver_session_id: Option<String>,
    /// The journal key of this leaf (`research`, `fanout[3]/research`).
    pub step_key: String,
    /// Cancelled when the run (or a halting sibling) stops; the leaf stops at its next checkpoint.
    pub cancel: CancellationToken,
    /// The journaled run's attempt that runs the leaf (`None` without a journal): an executor
    /// that writes to the journal (the fleet) writes under it.
    pub attempt: Option<i64>,
}

impl LeafRequest {
    /// A request (for executors tested on their own; the engine builds its own).
    pub fn new(
        spec: AgentSpec,
        input: impl Into<String>,
        parent: StatefulAgentLoop,
        driver_session_id: Option<String>,
        step_key: impl Into<String>,
        cancel: CancellationToken,
    ) -> Self {
        LeafRequest {
            spec,
            input: input.into(),
            parent,
            driver_session_id,
            step_key: step_key.into(),
            cancel,
            attempt: None,
        }
    }

    /// Sets the journaled run's attempt.
    pub fn with_attempt(mut self, attempt: i64) -> Self {
        self.attempt = Some(attempt);
        self
    }
}

/// How one leaf ended, as the executor saw it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct LeafOutcome {
    /// The leaf's session, when one exists.
    pub session_id: Option<String>,
    /// The leaf's status.
    pub status: LeafStatus,
    /// The final text.
    pub final_text: String,
    /// Rounds run.
    pub rounds: u32,
    /// Tokens used.
    pub usage: RunUsage,
    /// The validated structured answer, when the spec has an output schema and the child
    /// validated it.
    pub payload: Option<Value>,
    /// Why the leaf failed.
    pub error: Option<String>,
    /// The private database of an out-of-process leaf.
    pub db_path: Option<String>,
}

impl LeafOutcome {
    /// An outcome with this status and text, nothing else.
    pub fn new(status: LeafStatus, final_text: impl Into<String>) -> Self {
        LeafOutcome {
            session_id: None,
            status,
            final_text: final_text.into(),
            rounds: 0,
            usage: RunUsage::default(),
            payload: None,
            error: None,
            db_path: None,
        }
    }

    /// The outcome of a leaf that ran as a sub-agent and ended with `status` (the sub-agent's
    /// status name; an unknown one is a failure) and `final_text`. Its error: none when it
    /// completed, the text when it was rejected, else one naming the status.
    pub(crate) fn of_subagent(status: &str, final_text: String) -> Self {
        let status = LeafStatus::parse(status).unwrap_or(LeafStatus::Failed);
        let error = match status {
            LeafStatus::Completed => None,
            LeafStatus::Rejected => Some(final_text.clone()),
            other => Some(format!("the sub-agent ended with status {other}")),
        };
        let mut o = LeafOutcome::new(status, final_text);
        o.error = error;
        o
    }

    /// [`of_subagent`](Self::of_subagent) for a sub-agent run in this process, with its session,
    /// rounds, usage and structured answer.
    pub(crate) fn of_subagent_report(r: SubagentReport) -> Self {
        LeafReport::from_subagent(r).into_outcome(LeafOutcome::of_subagent)
    }
}

/// How a leaf's sub-agent ran, as it travels between processes: the part of a leaf's result
/// that a subprocess worker's [`WorkerReport`](crate::WorkerReport) and a fleet worker's
/// [`FleetResult`](crate::FleetResult) share. Both flatten it, so its fields sit at the top
/// level of their JSON documents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LeafReport {
    /// The leaf's session id.
    pub session_id: Option<String>,
    /// The status: the sub-agent's (`completed`, `failed`, `cancelled`, `hit_round_limit`, …)
    /// in a worker report, the leaf's in a fleet result.
    pub status: String,
    /// The final text.
    pub final_text: String,
    /// Rounds run.
    pub rounds: u32,
    /// Tokens used.
    pub usage: RunUsage,
    /// The validated structured answer.
    #[serde(default)]
    pub payload: Option<Value>,
}

impl LeafReport {
    /// The report of a sub-agent run (its own status).
    pub fn from_subagent(r: SubagentReport) -> Self {
        LeafReport {
            session_id: r.session_id,
            status: r.status,
            final_text: r.final_text,
            rounds: r.rounds,
            usage: r.usage,
            payload: r.structured,
        }
    }

    /// The report of a leaf's outcome (the leaf status).
    pub fn from_outcome(o: &LeafOutcome) -> Self {
        LeafReport {
            session_id: o.session_id.clone(),
            status: o.status.as_str().to_owned(),
            final_text: o.final_text.clone(),
            rounds: o.rounds,
            usage: o.usage,
            payload: o.payload.clone(),
        }
    }

    /// The outcome this report stands for: `base` reads the status and final text (it decides
    /// the leaf status and error), the report fills in the session, rounds, usage and payload.
    pub(crate) fn into_outcome(
        self,
        base: impl FnOnce(&str, String) -> LeafOutcome,
    ) -> LeafOutcome {
        let mut o = base(&self.status, self.final_text);
        o.session_id = self.session_id;
        o.rounds = self.rounds;
        o.usage = self.usage;
        o.payload = self.payload;
        o
    }
}

/// Runs workflow leaves. Object-safe: the engine holds an `Arc<dyn LeafExecutor>`.
///
/// An `Err` is a raw leaf error (the engine turns it into a failed leaf and a run error under
/// the enclosing node's `on_error`); a leaf that ran and did not complete is an `Ok` outcome
/// with its status.
pub trait LeafExecutor: Send + Sync {
    /// Runs one leaf to its end (or until `request.cancel` stops it).
    fn run_leaf(&self, request: LeafRequest) -> BoxFuture<'_, Result<LeafOutcome>>;
}

/// The default executor: each leaf is a sub-agent ([`run_agent_spec`]) linked to the driver
/// session, sharing the parent loop's model, store, hooks, event bus and (filtered) tools.
#[derive(Debug, Clone, Copy, Default)]
pub struct InProcessExecutor;

impl InProcessExecutor {
    /// The executor.
    pub fn new() -> Self {
        InProcessExecutor
    }
}

impl LeafExecutor for InProcessExecutor {
    fn run_leaf(&self, request: LeafRequest) -> BoxFuture<'_, Result<LeafOutcome>> {
        Box::pin(async move {
            let r = run_agent_spec(
                &request.parent,
                request.driver_session_id.as_deref(),
                &request.spec,
                &request.input,
                None,
                Some(request.cancel.clone()),
            )
            .await?;
            Ok(LeafOutcome::of_subagent_report(r))
        })
    }
}
