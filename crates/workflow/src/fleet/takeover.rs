//! Taking over a run whose holder died: a fleet worker resumes it (one resumer wins the
//! attempt by compare-and-set) with a [`FleetExecutor`], so finished leaves are replayed or
//! reused and only the rest are published again; a detached run still wakes its parent.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use power_loop_contracts::{ErrorCode, Result};
use power_loop_store::WorkflowRunRow;

use super::executor::FleetExecutor;
use super::host::{FleetHost, FleetOptions};
use crate::detached::resume_detached;
use crate::engine::RunOptions;
use crate::engine::resume::{execute_rehydrated, rehydrate};

/// Claims the next attempt of the orphaned run `row` and returns the task that holds it to
/// its end (true when it finished in the store); `None` when another process won the attempt.
pub(crate) async fn take_over(
    host: &Arc<FleetHost>,
    opts: &Arc<FleetOptions>,
    row: &WorkflowRunRow,
) -> Result<Option<BoxFuture<'static, bool>>> {
    let lp = host.agent_loop()?;
    let options = RunOptions::new()
        .with_executor(Arc::new(
            FleetExecutor::new().with_poll_interval(opts.poll_interval),
        ))
        .with_heartbeat_interval(opts.run_heartbeat);
    let run_id = row.run_id.clone();
    let store = host.store.clone();
    let parent_alive = match &row.parent_session_id {
        Some(p) if row.detached => store.session_exists(p).await?,
        _ => false,
    };
    if parent_alive {
        // A detached run keeps its wake: the same path as `resume_detached`.
        match resume_detached(&lp, &run_id, options).await {
            Ok(handle) => {
                tracing::info!(run_id = %run_id, "fleet: took over an orphaned detached run");
                Ok(Some(Box::pin(async move {
                    let r = handle.wait().await;
                    let _ = lp.close(std::time::Duration::from_secs(5)).await;
                    r.is_ok_and(|o| o.finished_in_store)
                })))
            }
            Err(e) if is_conflict(&e) => Ok(None),
            Err(e) => Err(e),
        }
    } else {
        // Claim the attempt here (so a lost race is known now), then hold it in the task.
        let r = rehydrate(&lp, &run_id).await;
        match r {
            Ok(r) => {
                tracing::info!(run_id = %run_id, "fleet: took over an orphaned run");
                Ok(Some(Box::pin(async move {
                    let out = execute_rehydrated(&lp, r, options).await;
                    let _ = lp.close(std::time::Duration::from_secs(5)).await;
                    out.is_ok_and(|o| o.finished_in_store)
                })))
            }
            Err(e) if is_conflict(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

fn is_conflict(e: &power_loop_contracts::Error) -> bool {
    e.code() == ErrorCode::WorkflowFailed
        && e.detail("reason").and_then(|v| v.as_str()) == Some("resume_conflict")
}
