//! [`FleetExecutor`]: the run's holder does not run leaves itself; it publishes each one as a
//! `ready` row of the store's `workflow_leaves` table and waits for a fleet worker
//! ([`serve_fleet`](super::serve_fleet)) to record its result there.

use std::time::Duration;

use futures_util::future::BoxFuture;
use power_loop_contracts::{Error, Result};
use power_loop_store::{SessionStore, WorkflowLeafState};

use super::job::{FleetJob, FleetResult};
use crate::executor::{LeafExecutor, LeafOutcome, LeafRequest};
use crate::result::LeafStatus;

/// Publishes leaves for a fleet of workers and waits for their results (needs a journaled run
/// on a store the workers share: PostgreSQL or MySQL for several machines; SQLite works for
/// workers on one host). Each leaf is published once per run: a new holder of the run (a
/// resume, a fleet worker taking over an orphaned run) finds leaves already claimed or done
/// and waits for, or reuses, their results instead of running them again.
#[derive(Debug, Clone)]
pub struct FleetExecutor {
    poll_interval: Duration,
}

impl Default for FleetExecutor {
    fn default() -> Self {
        FleetExecutor {
            poll_interval: Duration::from_millis(200),
        }
    }
}

impl FleetExecutor {
    /// An executor polling every 200 ms for results.
    pub fn new() -> Self {
        FleetExecutor::default()
    }

    /// How often a waiting leaf looks for its result (at least 10 ms).
    pub fn with_poll_interval(mut self, d: Duration) -> Self {
        self.poll_interval = d.max(Duration::from_millis(10));
        self
    }
}

/// Withdraws the leaf's `ready` row when its waiter goes away before the result came (a
/// halting sibling dropped it), so no worker runs a leaf nobody waits for.
struct WithdrawOnDrop {
    store: SessionStore,
    run_id: String,
    step_key: String,
    armed: bool,
}

impl Drop for WithdrawOnDrop {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let (store, run, key) = (
                self.store.clone(),
                self.run_id.clone(),
                self.step_key.clone(),
            );
            rt.spawn(async move {
                let _ = store.withdraw_workflow_leaf(&run, &key).await;
            });
        }
    }
}

impl LeafExecutor for FleetExecutor {
    fn run_leaf(&self, request: LeafRequest) -> BoxFuture<'_, Result<LeafOutcome>> {
        Box::pin(async move {
            let run_id = request
                .spec
                .metadata
                .get("workflow_run_id")
                .and_then(|v| v.as_str())
                .map(str::to_owned);
            let (Some(run_id), Some(attempt)) = (run_id, request.attempt) else {
                return Err(Error::invalid_argument(
                    "the fleet executor runs leaves of journaled runs only; turn the run's journal on",
                ));
            };
            let store = request.parent.store().await?.clone();
            let job = serde_json::to_value(FleetJob::from_request(&request))
                .map_err(|e| Error::invalid_argument(format!("cannot encode the leaf job: {e}")))?;
            let Some(row) = store
                .publish_workflow_leaf(&run_id, attempt, &request.step_key, job)
                .await?
            else {
                let mut o = LeafOutcome::new(LeafStatus::Cancelled, "[the run moved on]");
                o.error = Some(
                    "the run is no longer held by this attempt (finished or resumed elsewhere)"
                        .into(),
                );
                return Ok(o);
            };
            if row.state == WorkflowLeafState::Done {
                return Ok(FleetResult::outcome_of(row.result.as_ref()));
            }
            let mut guard = WithdrawOnDrop {
                store: store.clone(),
                run_id: run_id.clone(),
                step_key: request.step_key.clone(),
                armed: true,
            };
            loop {
                tokio::select! {
                    () = tokio::time::sleep(self.poll_interval) => {}
                    () = request.cancel.cancelled() => {
                        guard.armed = false;
                        let withdrawn = store.withdraw_workflow_leaf(&run_id, &request.step_key).await?;
                        let mut o = LeafOutcome::new(LeafStatus::Cancelled, "[cancelled by orchestrator]");
                        o.error = Some(if withdrawn {
                            "cancelled before a fleet worker claimed it".into()
                        } else {
                            "cancelled while a fleet worker ran it (its result is not used)".into()
                        });
                        return Ok(o);
                    }
                }
                match store.get_workflow_leaf(&run_id, &request.step_key).await {
                    Ok(Some(r)) if r.state == WorkflowLeafState::Done => {
                        guard.armed = false;
                        return Ok(FleetResult::outcome_of(r.result.as_ref()));
                    }
                    Ok(Some(_)) => {}
                    Ok(None) => {
                        guard.armed = false;
                        let mut o = LeafOutcome::new(LeafStatus::Failed, "[leaf withdrawn]");
                        o.error = Some("the published leaf was withdrawn before it ran".into());
                        return Ok(o);
                    }
                    Err(e) => {
                        tracing::warn!(run_id = %run_id, step = %request.step_key, error = %e, "fleet: polling a leaf failed");
                    }
                }
            }
        })
    }
}
