//! Detached runs (beyond the reference): a run started in the background from a
//! session, whose finish arms the parent's wake timer in the same store transaction, and the
//! `timer.fire` guard that lets exactly one wake per attempt through.

use std::sync::Arc;

use power_loop_agent::{HookHandle, StatefulAgentLoop};
use power_loop_contracts::event::SystemLogPayload;
use power_loop_contracts::hook::{Hook, HookFuture, TimerFireCtx, TimerFireDirective};
use power_loop_contracts::{AgentEvent, Error, EventPayload, Result};
use power_loop_store::{SessionStore, WorkflowRunStatus};
use serde_json::json;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::engine::resume::rehydrate;
use crate::engine::{Attempt, RunOptions, RunOutcome, create_run, execute};
use crate::journal::{WAKE_NOTE_PREFIX, wake_note};
use crate::result::{RunStatus, WorkflowResult};
use crate::spec::WorkflowSpec;

/// A run going on in the background.
#[derive(Debug)]
#[non_exhaustive]
pub struct RunHandle {
    /// The run id (16 lowercase hex digits).
    pub run_id: String,
    /// Cancels the run cooperatively.
    pub cancel: CancellationToken,
    task: JoinHandle<Result<RunOutcome>>,
}

impl RunHandle {
    /// Requests cancellation (leaves stop at their next checkpoint; the run ends `cancelled`).
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// Waits for the run's end. The run is already finished in the store (and the parent's
    /// wake armed) when this returns.
    pub async fn wait(self) -> Result<RunOutcome> {
        match self.task.await {
            Ok(r) => r,
            Err(e) => Err(Error::new(
                power_loop_contracts::ErrorCode::WorkflowFailed,
                format!("the detached run's task ended abnormally: {e}"),
            )),
        }
    }
}

/// Starts `spec` in the background as a journaled run of `parent_session_id` and returns at
/// once. At its end the run is finished in the store and the parent's wake timer (note
/// `workflow:run:{run_id} {status}`) armed in the same transaction; a `system_log` event
/// (source `workflow`) reports it on the loop's bus. The parent must exist
/// (`session.not_found`). Install [`register_wake_guard`] on the loop that runs the timers.
pub async fn start_detached(
    lp: &StatefulAgentLoop,
    parent_session_id: &str,
    spec: &WorkflowSpec,
    mut options: RunOptions,
) -> Result<RunHandle> {
    let store = lp.store().await?;
    if !store.session_exists(parent_session_id).await? {
        return Err(Error::session_not_found(parent_session_id));
    }
    options.parent_session_id = Some(parent_session_id.to_owned());
    options.journal = true;
    let journal = create_run(lp, spec, &options, true).await?;
    let run_id = journal.run_id.clone();
    let cancel = options.cancel.clone();
    let (lp2, spec) = (lp.clone(), spec.clone());
    let task = tokio::spawn(async move {
        let attempt = Attempt {
            journal: Some(journal.clone()),
            wake: true,
            ..Attempt::default()
        };
        let r = execute(&lp2, &options, &spec, attempt).await;
        after_detached(&lp2, &journal.run_id, parent_session(&options), &spec, r).await
    });
    Ok(RunHandle {
        run_id,
        cancel,
        task,
    })
}

/// Resumes the journaled run `run_id` in the background (see [`crate::resume_run`]), with the
/// same finish-and-wake path as [`start_detached`]. The run needs a parent session.
pub async fn resume_detached(
    lp: &StatefulAgentLoop,
    run_id: &str,
    mut options: RunOptions,
) -> Result<RunHandle> {
    let store = lp.store().await?;
    let Some(row) = store.get_workflow_run(run_id).await? else {
        return Err(crate::engine::run_error(format!(
            "cannot resume: no workflow run '{run_id}'"
        )));
    };
    let Some(parent) = row.parent_session_id.clone() else {
        return Err(Error::invalid_argument(format!(
            "run '{run_id}' has no parent session to wake; resume it with resume_run"
        )));
    };
    if !store.session_exists(&parent).await? {
        return Err(Error::session_not_found(&parent));
    }
    let mut r = rehydrate(lp, run_id).await?;
    options.parent_session_id = Some(parent);
    options.journal = true;
    let cancel = options.cancel.clone();
    let lp2 = lp.clone();
    let task = tokio::spawn(async move {
        let attempt = r.attempt(true);
        let out = execute(&lp2, &options, &r.spec, attempt).await;
        after_detached(
            &lp2,
            &r.journal.run_id,
            parent_session(&options),
            &r.spec,
            out,
        )
        .await
    });
    Ok(RunHandle {
        run_id: run_id.to_owned(),
        cancel,
        task,
    })
}

fn parent_session(o: &RunOptions) -> String {
    o.parent_session_id.clone().unwrap_or_default()
}

/// After a detached attempt: on an error, finish the run `failed` (arming the wake; a no-op
/// when the run was already finished), then publish the `system_log` event.
async fn after_detached(
    lp: &StatefulAgentLoop,
    run_id: &str,
    parent: String,
    spec: &WorkflowSpec,
    r: Result<RunOutcome>,
) -> Result<RunOutcome> {
    let (status, event) = match &r {
        Ok(o) => (o.result.status, "completed"),
        Err(e) => {
            if let Ok(store) = lp.store().await
                && let Ok(Some(row)) = store.get_workflow_run(run_id).await
                && row.status == WorkflowRunStatus::Running
            {
                let mut res = WorkflowResult::new(spec.name.clone(), RunStatus::Failed);
                res.errors.push(format!("{} ({})", e.message(), e.code()));
                let f = power_loop_store::WorkflowRunFinish::new(WorkflowRunStatus::Failed)
                    .with_result(res.to_value())
                    .with_error(res.errors[0].clone())
                    .with_wake(wake_note(run_id, RunStatus::Failed));
                if let Err(e2) = store.finish_workflow_run(run_id, row.attempts, f).await {
                    tracing::warn!(run_id, error = %e2, "could not finish a failed detached run");
                }
            }
            (RunStatus::Failed, "failed")
        }
    };
    let level = if status == RunStatus::Failed {
        "error"
    } else {
        "info"
    };
    let msg = json!({"workflow": run_id, "event": event, "status": status.as_str()}).to_string();
    let ev = AgentEvent::new(EventPayload::SystemLog(SystemLogPayload {
        message: msg,
        level: level.into(),
    }))
    .with_source("workflow")
    .with_session(parent.as_str());
    if let Err(e) = lp.event_bus().publish(ev) {
        tracing::debug!(error = %e, "system_log subscriber failed");
    }
    r
}

/// The `timer.fire` guard of workflow wakes (see [`register_wake_guard`]).
struct WakeGuard {
    store: SessionStore,
}

impl Hook for WakeGuard {
    fn timer_fire<'a>(&'a self, ctx: &'a mut TimerFireCtx) -> HookFuture<'a> {
        Box::pin(async move {
            if should_skip(&self.store, ctx).await? == Some(true) {
                ctx.directive = TimerFireDirective::Skip;
            }
            Ok(())
        })
    }
}

/// `Some(true)`: skip this firing; `Some(false)` / `None`: deliver.
async fn should_skip(store: &SessionStore, ctx: &TimerFireCtx) -> Result<Option<bool>> {
    let Some(rest) = ctx.note.strip_prefix(WAKE_NOTE_PREFIX) else {
        return Ok(None);
    };
    let Some(run_id) = rest.split_whitespace().next() else {
        return Ok(None);
    };
    let Some(row) = store.get_workflow_run(run_id).await? else {
        return Ok(Some(false));
    };
    let finished_at = match (row.status, row.finished_at_ms) {
        // Resumed since this wake was armed: the new attempt wakes the parent when it ends.
        (WorkflowRunStatus::Running, _) | (_, None) => return Ok(Some(true)),
        (_, Some(f)) => f,
    };
    // A wake armed by an earlier attempt's finish (due at that finish): stale.
    if ctx.due_at < finished_at {
        return Ok(Some(true));
    }
    if store.mark_workflow_woke(run_id).await? {
        return Ok(Some(false));
    }
    // `woke` was already set for this attempt: deliver only if the parent's history does not
    // hold this attempt's wake yet (the firing that set the flag died before delivering).
    Ok(Some(
        history_has_wake(store, &ctx.session_id, run_id, finished_at).await?,
    ))
}

/// Whether the session has a user message written since `since_ms` that carries the wake note
/// of `run_id`.
async fn history_has_wake(
    store: &SessionStore,
    session_id: &str,
    run_id: &str,
    since_ms: i64,
) -> Result<bool> {
    let needle = format!("{WAKE_NOTE_PREFIX}{run_id} ");
    let rows = store.load_all_messages(session_id).await?;
    Ok(rows
        .iter()
        .rev()
        .take_while(|m| m.created_at >= since_ms)
        .any(|m| m.role == "user" && m.content.as_deref().is_some_and(|c| c.contains(&needle))))
}

/// Installs the wake guard on `lp`'s `timer.fire` hook point: a timer whose note is a workflow
/// wake (`workflow:run:{run_id} …`) is delivered at most once per attempt — the first firing
/// flips the run's `woke` flag (compare-and-set) and delivers; later firings (a duplicate
/// timer, a re-delivery) are skipped when the parent already holds this attempt's wake, and
/// delivered when it does not (the flag was set by a firing that crashed before delivering).
/// Wakes of an earlier attempt, or of a run resumed since, are skipped. Other timers pass.
pub async fn register_wake_guard(lp: &StatefulAgentLoop) -> Result<HookHandle> {
    let store = lp.store().await?.clone();
    Ok(lp.hooks().register(0, Arc::new(WakeGuard { store })))
}
