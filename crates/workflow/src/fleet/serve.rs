//! [`serve_fleet`]: a long-running fleet worker. It claims ready leaves (up to its
//! concurrency), runs each as a sub-agent on the shared store under a lease it keeps renewing,
//! records the result with its claim token, takes over runs whose holder died, and drains on
//! shutdown.

use std::sync::Arc;
use std::time::Duration;

use power_loop_agent::{StatefulAgentLoop, run_agent_spec};
use power_loop_contracts::{Error, ErrorCode, Result};
use power_loop_store::WorkflowLeafRow;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::host::{FleetHost, FleetOptions, FleetReport};
use super::job::{FleetJob, FleetResult};
use super::takeover::take_over;
use crate::executor::LeafOutcome;
use crate::result::LeafStatus;

/// How long a leaf stopped by the drain may take to reach its checkpoint.
const STOP_WAIT: Duration = Duration::from_secs(2);

/// How one claimed leaf ended for this worker.
enum LeafEnd {
    Recorded,
    Released,
    ClaimLost,
    /// Recording failed (store error): the lease will run out and another worker retries.
    Unrecorded,
}

/// Runs a fleet worker until `shutdown` is cancelled, then drains: no new claims or
/// takeovers; running leaves get `options.drain_grace` to finish and record, the rest are
/// stopped and released back to `ready` (claimable at once by other workers); runs this worker
/// took over are let go (their heartbeat stops, so another worker takes them over). Returns
/// what it did; `Err` only when the worker cannot start (a bad option).
pub async fn serve_fleet(
    host: FleetHost,
    options: FleetOptions,
    shutdown: CancellationToken,
) -> Result<FleetReport> {
    if options.worker_id.trim().is_empty() {
        return Err(Error::invalid_argument(
            "a fleet worker needs a non-empty worker id",
        ));
    }
    let lp = host.agent_loop()?;
    let host = Arc::new(host);
    let opts = Arc::new(options);
    let slots = Arc::new(Semaphore::new(opts.concurrency.max(1)));
    let stop_leaves = CancellationToken::new();
    let mut leaves: JoinSet<LeafEnd> = JoinSet::new();
    let mut holders: JoinSet<bool> = JoinSet::new();
    let mut report = FleetReport::default();
    let lease_ms = i64::try_from(opts.lease.as_millis()).unwrap_or(i64::MAX);
    let check_every = (opts.stale_after / 2).max(Duration::from_millis(100));
    let mut next_check = Instant::now();
    tracing::info!(worker = %opts.worker_id, concurrency = opts.concurrency, "fleet worker up");
    loop {
        while let Some(end) = leaves.try_join_next() {
            tally(&mut report, end);
        }
        while let Some(done) = holders.try_join_next() {
            if matches!(done, Ok(true)) {
                report.runs_finished += 1;
            }
        }
        if opts.takeover && Instant::now() >= next_check {
            next_check = Instant::now() + check_every;
            report.runs_taken_over += adopt_orphans(&host, &opts, &mut holders).await;
        }
        let permit = tokio::select! {
            () = shutdown.cancelled() => break,
            p = Arc::clone(&slots).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        match host
            .store
            .claim_workflow_leaf(&opts.worker_id, lease_ms)
            .await
        {
            Ok(Some(row)) => {
                let (h, o, stop, lp) = (
                    Arc::clone(&host),
                    Arc::clone(&opts),
                    stop_leaves.clone(),
                    lp.clone(),
                );
                leaves.spawn(async move {
                    let end = run_claimed(&h, &lp, &o, row, stop).await;
                    drop(permit);
                    end
                });
            }
            Ok(None) => {
                drop(permit);
                idle(&shutdown, opts.poll_interval).await;
            }
            Err(e) => {
                drop(permit);
                tracing::warn!(worker = %opts.worker_id, error = %e, "fleet: claiming a leaf failed");
                idle(&shutdown, opts.poll_interval).await;
            }
        }
    }
    // Drain.
    tracing::info!(worker = %opts.worker_id, running = leaves.len(), "fleet worker draining");
    let grace_end = Instant::now() + opts.drain_grace;
    loop {
        let next = tokio::select! {
            n = leaves.join_next() => n,
            () = tokio::time::sleep_until(grace_end) => break,
        };
        match next {
            Some(end) => tally(&mut report, end),
            None => break,
        }
    }
    stop_leaves.cancel();
    while let Some(end) = leaves.join_next().await {
        tally(&mut report, end);
    }
    holders.abort_all();
    while holders.join_next().await.is_some() {}
    let _ = lp.close(Duration::from_secs(5)).await;
    Ok(report)
}

fn tally(report: &mut FleetReport, end: std::result::Result<LeafEnd, tokio::task::JoinError>) {
    match end {
        Ok(LeafEnd::Recorded) => report.leaves_recorded += 1,
        Ok(LeafEnd::Released) => report.leaves_released += 1,
        Ok(LeafEnd::ClaimLost) => report.claims_lost += 1,
        Ok(LeafEnd::Unrecorded) | Err(_) => {}
    }
}

async fn idle(shutdown: &CancellationToken, d: Duration) {
    tokio::select! {
        () = shutdown.cancelled() => {}
        () = tokio::time::sleep(d) => {}
    }
}

/// Starts a holder task for each orphaned run this worker wins; returns how many it won.
async fn adopt_orphans(
    host: &Arc<FleetHost>,
    opts: &Arc<FleetOptions>,
    holders: &mut JoinSet<bool>,
) -> u64 {
    let older = i64::try_from(opts.stale_after.as_millis()).unwrap_or(i64::MAX);
    let stale = match host.store.stale_workflow_runs(older, 16).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "fleet: listing orphaned runs failed");
            return 0;
        }
    };
    let mut won = 0;
    for row in stale {
        match take_over(host, opts, &row).await {
            Ok(Some(task)) => {
                won += 1;
                holders.spawn(task);
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(run_id = %row.run_id, error = %e, "fleet: taking over a run failed")
            }
        }
    }
    won
}

/// Runs one claimed leaf to its end and records it (or releases it when the drain stops it).
async fn run_claimed(
    host: &FleetHost,
    lp: &StatefulAgentLoop,
    opts: &FleetOptions,
    row: WorkflowLeafRow,
    stop: CancellationToken,
) -> LeafEnd {
    let Some(token) = row.claim_token.clone() else {
        return LeafEnd::Unrecorded;
    };
    let (run_id, key) = (row.run_id.clone(), row.step_key.clone());
    let store = &host.store;
    let leaf_cancel = CancellationToken::new();
    let lost = CancellationToken::new();
    let renew = {
        let (store, run_id, key, token) =
            (store.clone(), run_id.clone(), key.clone(), token.clone());
        let (leaf_cancel, lost) = (leaf_cancel.clone(), lost.clone());
        let lease = opts.lease;
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(lease / 3).await;
                match store
                    .renew_workflow_leaf_claim(&run_id, &key, &token, lease_ms)
                    .await
                {
                    Ok(true) => {}
                    Ok(false) => {
                        lost.cancel();
                        leaf_cancel.cancel();
                        break;
                    }
                    Err(e) => {
                        tracing::warn!(run_id = %run_id, step = %key, error = %e, "fleet: renewing a lease failed");
                    }
                }
            }
        })
    };
    let outcome = match FleetJob::from_value(&row.request) {
        Err(e) => {
            let mut o = LeafOutcome::new(LeafStatus::Failed, format!("[{}]", e.message()));
            o.error = Some(e.message().to_owned());
            o
        }
        Ok(job) => {
            let run = run_job(lp, &job, leaf_cancel.clone());
            tokio::pin!(run);
            tokio::select! {
                o = &mut run => o,
                () = stop.cancelled() => {
                    // The drain's grace is over: stop the leaf at its next checkpoint (briefly
                    // waited for; an in-flight model call is dropped after that). One that
                    // still completed is recorded; any other goes back to `ready`.
                    leaf_cancel.cancel();
                    match tokio::time::timeout(STOP_WAIT, &mut run).await {
                        Ok(o) if o.status == LeafStatus::Completed => o,
                        _ => {
                            renew.abort();
                            return match store.release_workflow_leaf_claim(&run_id, &key, &token).await {
                                Ok(true) => LeafEnd::Released,
                                Ok(false) => LeafEnd::ClaimLost,
                                Err(_) => LeafEnd::Unrecorded,
                            };
                        }
                    }
                }
            }
        }
    };
    renew.abort();
    if lost.is_cancelled() {
        return LeafEnd::ClaimLost;
    }
    let doc = match serde_json::to_value(FleetResult::from_outcome(&outcome, &opts.worker_id)) {
        Ok(d) => d,
        Err(_) => return LeafEnd::Unrecorded,
    };
    match store
        .complete_workflow_leaf(&run_id, &key, &token, outcome.status.as_str(), doc)
        .await
    {
        Ok(()) => LeafEnd::Recorded,
        Err(e) if e.code() == ErrorCode::WorkflowClaimLost => {
            tracing::info!(run_id = %run_id, step = %key, "fleet: claim lost; result not recorded");
            LeafEnd::ClaimLost
        }
        Err(e) => {
            tracing::warn!(run_id = %run_id, step = %key, error = %e, "fleet: recording a leaf failed");
            LeafEnd::Unrecorded
        }
    }
}

/// Runs a job as a sub-agent of its driver session on the shared store.
async fn run_job(lp: &StatefulAgentLoop, job: &FleetJob, cancel: CancellationToken) -> LeafOutcome {
    let r = run_agent_spec(
        lp,
        job.driver_session_id.as_deref(),
        &job.spec,
        &job.input,
        None,
        Some(cancel),
    )
    .await;
    match r {
        Err(e) => failed(&e),
        Ok(r) => LeafOutcome::of_subagent_report(r),
    }
}

fn failed(e: &Error) -> LeafOutcome {
    let mut o = LeafOutcome::new(
        LeafStatus::Failed,
        format!("[fleet worker error] {}", e.message()),
    );
    o.error = Some(format!("{} ({})", e.message(), e.code()));
    o
}
