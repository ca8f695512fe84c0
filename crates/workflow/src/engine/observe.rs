//! Observability of workflow runs: native `tracing` spans and the `workflow_*` events the
//! metrics sinks count. Neither carries prompt, input or answer content.
//!
//! ```text
//! power_loop.workflow.run     power_loop.workflow.{name, run_id, attempt, status}
//! └─ power_loop.workflow.step power_loop.workflow.{node_type, step_key}   (sequence, parallel,
//!    │                                                                      foreach, branch)
//!    └─ power_loop.workflow.leaf  power_loop.workflow.{step_key, status}, gen_ai.agent.name
//! ```
//!
//! Spans are entered by instrumenting the node futures, so each one closes on every exit path
//! (completion, error, cancellation, or the run future being dropped). Events go on the loop's
//! event bus with the driver session id: `workflow_run_started` / `workflow_run_completed` per
//! attempt, `workflow_leaf_completed` per leaf that ran (not for replayed, skipped or refused
//! leaves). A publishing failure (a failing subscriber) is logged, never fatal to the run.

use std::time::Instant;

use power_loop_agent::StatefulAgentLoop;
use power_loop_contracts::event::{
    WorkflowLeafCompletedPayload, WorkflowRunCompletedPayload, WorkflowRunStartedPayload,
};
use power_loop_contracts::{AgentEvent, EventPayload};
use tracing::Span;
use tracing::field::Empty;

use super::state::{RunCtx, Scope};
use crate::result::AgentResult;
use crate::spec::Node;

/// The span of one run attempt (`status` is recorded when it ends).
pub(crate) fn run_span(name: &str, run_id: Option<&str>, attempt: i64) -> Span {
    tracing::info_span!(target: "power_loop::trace", "power_loop.workflow.run",
        power_loop.workflow.name = %name,
        power_loop.workflow.run_id = run_id.unwrap_or(""),
        power_loop.workflow.attempt = attempt,
        power_loop.workflow.status = Empty)
}

/// The span of a container node (`None` for a leaf, which gets [`leaf_span`]).
pub(crate) fn step_span(node: &Node, scope: &Scope) -> Option<Span> {
    let kind = match node {
        Node::Agent(_) => return None,
        Node::Sequence(_) => "sequence",
        Node::Parallel(_) => "parallel",
        Node::Foreach(_) => "foreach",
        Node::Branch(_) => "branch",
    };
    let key = format!("{}{}", scope.prefix, node.id().unwrap_or(""));
    Some(
        tracing::info_span!(target: "power_loop::trace", "power_loop.workflow.step",
            power_loop.workflow.node_type = kind,
            power_loop.workflow.step_key = %key),
    )
}

/// The span of an agent leaf (`status` is recorded when it settles after running).
pub(crate) fn leaf_span(key: &str, agent: &str) -> Span {
    tracing::info_span!(target: "power_loop::trace", "power_loop.workflow.leaf",
        power_loop.workflow.step_key = %key,
        gen_ai.agent.name = %agent,
        power_loop.workflow.status = Empty)
}

fn publish(lp: &StatefulAgentLoop, session: Option<&str>, payload: EventPayload) {
    let mut ev = AgentEvent::new(payload).with_source("workflow");
    if let Some(s) = session {
        ev = ev.with_session(s);
    }
    if let Err(e) = lp.event_bus().publish(ev) {
        tracing::warn!(target: "power_loop::workflow", error = %e, "publishing a workflow event failed");
    }
}

/// `workflow_run_started`.
pub(crate) fn run_started(
    lp: &StatefulAgentLoop,
    driver: Option<&str>,
    name: &str,
    run_id: Option<&str>,
    attempt: i64,
) {
    publish(
        lp,
        driver,
        EventPayload::WorkflowRunStarted(WorkflowRunStartedPayload {
            workflow: name.to_owned(),
            run_id: run_id.unwrap_or_default().to_owned(),
            attempt,
        }),
    );
}

/// What `workflow_run_completed` reports about an attempt.
pub(crate) struct RunEnd<'a> {
    pub(crate) name: &'a str,
    pub(crate) run_id: Option<&'a str>,
    pub(crate) attempt: i64,
    pub(crate) status: &'a str,
    pub(crate) started: Instant,
    pub(crate) leaves: u64,
}

/// Records the status on the run span and emits `workflow_run_completed`.
pub(crate) fn run_completed(lp: &StatefulAgentLoop, driver: Option<&str>, end: RunEnd<'_>) {
    Span::current().record("power_loop.workflow.status", end.status);
    publish(
        lp,
        driver,
        EventPayload::WorkflowRunCompleted(WorkflowRunCompletedPayload {
            workflow: end.name.to_owned(),
            run_id: end.run_id.unwrap_or_default().to_owned(),
            attempt: end.attempt,
            status: end.status.to_owned(),
            duration_ms: end.started.elapsed().as_secs_f64() * 1000.0,
            leaves: end.leaves,
        }),
    );
}

/// Records the status on the (current) leaf span and emits `workflow_leaf_completed`.
pub(crate) fn leaf_completed(ctx: &RunCtx, agent: &str, r: &AgentResult, started: Instant) {
    let status = r.status.to_string();
    Span::current().record("power_loop.workflow.status", status.as_str());
    publish(
        &ctx.lp,
        ctx.driver.as_deref(),
        EventPayload::WorkflowLeafCompleted(WorkflowLeafCompletedPayload {
            workflow: ctx.name.clone(),
            run_id: ctx.run_id.clone().unwrap_or_default(),
            step_key: r.node_id.clone(),
            agent: agent.to_owned(),
            status,
            duration_ms: started.elapsed().as_secs_f64() * 1000.0,
            total_tokens: r.usage.total_tokens,
        }),
    );
}
