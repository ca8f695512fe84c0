//! Resuming a journaled run in any process (beyond the reference): a
//! compare-and-set on the attempt counter admits one resumer, the stored spec is validated
//! again, every completed step — each foreach item's leaves included — is replayed from the
//! journal, and only unfinished work runs.

use power_loop_agent::StatefulAgentLoop;
use power_loop_contracts::Result;
use power_loop_store::{WorkflowRunRow, now_ms};

use super::{Attempt, RunOptions, RunOutcome, execute, run_error};
use crate::journal::{Journal, new_owner, replay_cache};
use crate::spec::WorkflowSpec;

/// What a resume starts from: the run row, its spec, the new attempt's journal and the cache.
pub(crate) struct Rehydrated {
    pub(crate) row: WorkflowRunRow,
    pub(crate) spec: WorkflowSpec,
    pub(crate) journal: Journal,
    pub(crate) replay: std::collections::HashMap<String, crate::result::AgentResult>,
}

impl Rehydrated {
    /// The attempt it runs (its journal, replaying the cache, on the run's driver session);
    /// takes the cache. `wake`: its finish arms the parent's wake.
    pub(crate) fn attempt(&mut self, wake: bool) -> Attempt {
        Attempt {
            journal: Some(self.journal.clone()),
            replay: std::mem::take(&mut self.replay),
            reuse_driver: self.row.driver_session_id.clone(),
            wake,
        }
    }
}

/// Claims the next attempt of `run_id` and loads what it replays. Errors (code
/// `workflow.failed`): unknown run, a stored spec that no longer validates, or another
/// resumer that claimed the attempt first.
pub(crate) async fn rehydrate(lp: &StatefulAgentLoop, run_id: &str) -> Result<Rehydrated> {
    let store = lp.store().await?.clone();
    let Some(row) = store.get_workflow_run(run_id).await? else {
        return Err(
            run_error(format!("cannot resume: no workflow run '{run_id}'"))
                .with_detail("run_id", run_id),
        );
    };
    let mut spec = WorkflowSpec::from_value(&row.spec).map_err(|e| {
        run_error(format!(
            "cannot resume run '{run_id}': its stored spec no longer validates: {e}"
        ))
        .with_detail("run_id", run_id)
    })?;
    spec.input = row.input.clone();
    let owner = new_owner();
    let Some(attempt) = store
        .begin_workflow_attempt(run_id, row.attempts, &owner, now_ms())
        .await?
    else {
        return Err(run_error(format!(
            "cannot resume run '{run_id}': another process resumed it first (attempt {} is taken)",
            row.attempts + 1
        ))
        .with_detail("run_id", run_id)
        .with_detail("reason", "resume_conflict"));
    };
    // Read the steps after the claim: the previous attempt can no longer add any.
    let steps = store.list_workflow_steps(run_id).await?;
    Ok(Rehydrated {
        replay: replay_cache(&steps),
        journal: Journal {
            store,
            run_id: run_id.to_owned(),
            attempt,
            owner,
        },
        spec,
        row,
    })
}

/// Resumes the journaled run `run_id` (in this or any other process) and waits for it: one
/// resumer wins the attempt (a concurrent second gets a `workflow.failed` error with detail
/// `reason = resume_conflict`); completed steps are replayed without calling the executor
/// (their usage counted once, their errors not added again), everything else runs; re-run
/// leaves carry the same idempotency key `{run_id}:{step_key}`. The previous attempt's driver
/// session is reused when it still exists. No wake is armed (see
/// [`crate::resume_detached`]). `options.parent_session_id` is taken from the run.
pub async fn resume_run(
    lp: &StatefulAgentLoop,
    run_id: &str,
    options: RunOptions,
) -> Result<RunOutcome> {
    let r = rehydrate(lp, run_id).await?;
    execute_rehydrated(lp, r, options).await
}

/// Runs an attempt already claimed by [`rehydrate`] to its end (the body of [`resume_run`]).
pub(crate) async fn execute_rehydrated(
    lp: &StatefulAgentLoop,
    mut r: Rehydrated,
    mut options: RunOptions,
) -> Result<RunOutcome> {
    options.parent_session_id = r.row.parent_session_id.clone();
    options.journal = true;
    let attempt = r.attempt(false);
    execute(lp, &options, &r.spec, attempt).await
}
