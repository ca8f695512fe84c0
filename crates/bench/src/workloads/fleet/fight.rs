//! `--workload W7 --fight` / `W7-fight`: two worker processes send to the same sessions at the
//! same time (see the parent module).

use serde_json::{Value, json};

use super::config::{FleetConfig, run_prefix};
use super::pool::Queueing;
use super::run::run_once;
use super::w7::verdict;
use crate::args::Args;
use crate::workloads::common::{Target, round1, runtime};

/// `--workload W7-fight`.
pub(crate) fn run(args: &Args) -> Result<Value, String> {
    let name = "W7-fight";
    let cfg = FleetConfig::fight(args)?;
    let workers = cfg.workers[0];
    let target = Target::from_args(args, "W7")?;
    let rt = runtime()?;
    let prefix = run_prefix(args, "f_");
    eprintln!(
        "W7-fight: {workers} workers x {} sessions x {} sends each on {} ({prefix}) ...",
        cfg.sessions, cfg.sends, target.backend
    );
    let r = rt.block_on(run_once(
        &target,
        &prefix,
        workers,
        &cfg,
        Queueing::PerWorker,
    ))?;
    let failures: Vec<String> = r.failures.iter().take(5).cloned().collect();
    let report = json!({
        "workload": name,
        "sends_per_s": r.sends_per_s(),
        "lease_violations": r.verdict.violations,
        "lease_held_retries": r.lease_held_retries,
        "send_failures": r.failures.len(),
        "workers": workers,
        "sessions": cfg.sessions,
        "sends_per_worker_per_session": cfg.sends,
        "sends": r.sends,
        "in_flight_per_worker": cfg.in_flight,
        "latency_ms": cfg.latency_ms,
        "lease_wait_ms": cfg.lease_wait_ms,
        "elapsed_ms": round1(r.elapsed.as_secs_f64() * 1e3),
        "sessions_checked": r.verdict.sessions_checked,
        "messages_checked": r.verdict.messages_checked,
        "backend": target.backend,
    });
    verdict(
        name,
        report,
        r.verdict.violations,
        r.failures.len(),
        &failures,
        &r.verdict.examples,
    )
}
