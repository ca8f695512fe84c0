//! One fleet run: fresh tables under their own prefix, the sessions created up front, the
//! workers started and driven, then every session checked from the store.

use std::sync::Arc;
use std::time::Duration;

use power_loop::{NewSessionOptions, ScriptedLlm, StatefulAgentLoop};
use tokio::task::JoinSet;

use super::check::{Verdict, count_violations};
use super::config::FleetConfig;
use super::pool::{Queueing, Workers};
use crate::workloads::common::Target;

/// The figures of one run.
pub(crate) struct RunReport {
    /// Sends acknowledged.
    pub(crate) sends: usize,
    /// From the first job to the last answer.
    pub(crate) elapsed: Duration,
    /// Failed sends (`session: code: message`).
    pub(crate) failures: Vec<String>,
    /// `session.lease_held` errors retried by the workers.
    pub(crate) lease_held_retries: u64,
    /// What the store holds, checked against the acknowledged turns.
    pub(crate) verdict: Verdict,
}

impl RunReport {
    /// Acknowledged sends per second.
    pub(crate) fn sends_per_s(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            (self.sends as f64 / s).round()
        } else {
            0.0
        }
    }
}

/// Runs `workers` worker processes over `cfg.sessions` new sessions in tables `prefix`.
pub(crate) async fn run_once(
    target: &Target,
    prefix: &str,
    workers: usize,
    cfg: &FleetConfig,
    queueing: Queueing,
) -> Result<RunReport, String> {
    let options = target.options.clone().with_table_prefix(prefix);
    // The parent's loop only creates the sessions and reads them back: it never sends.
    let lp = StatefulAgentLoop::builder(Arc::new(ScriptedLlm::new()))
        .dsn(&target.dsn)
        .store_options(options)
        .build()
        .map_err(|e| e.to_string())?;
    let store = lp.store().await.map_err(|e| e.to_string())?.clone();
    let sids = create_sessions(&lp, cfg.sessions).await?;
    let mut fleet = Workers::start(workers, &target.dsn, prefix, cfg).await?;
    let outcome = fleet.drive(&sids, cfg, queueing).await?;
    let verdict = count_violations(&store, outcome.acked, 16).await?;
    match lp.close(Duration::from_secs(60)).await {
        Ok(true) => {}
        Ok(false) => return Err("closing the parent loop timed out".into()),
        Err(e) => return Err(format!("closing the parent loop: {e}")),
    }
    Ok(RunReport {
        sends: outcome.sends,
        elapsed: outcome.elapsed,
        failures: outcome.failures,
        lease_held_retries: outcome.lease_held_retries,
        verdict,
    })
}

/// Creates `n` sessions, 16 at a time; returns their ids in creation order.
async fn create_sessions(lp: &StatefulAgentLoop, n: usize) -> Result<Vec<String>, String> {
    let mut ids = vec![String::new(); n];
    let mut set = JoinSet::new();
    let mut next = 0;
    loop {
        while set.len() < 16 && next < n {
            let lp = lp.clone();
            let i = next;
            set.spawn(async move { (i, lp.new_session(NewSessionOptions::default()).await) });
            next += 1;
        }
        let Some(joined) = set.join_next().await else {
            break;
        };
        let (i, r) = joined.map_err(|e| format!("a session-creating task failed: {e}"))?;
        ids[i] = r.map_err(|e| format!("creating a session: {e}"))?;
    }
    Ok(ids)
}
