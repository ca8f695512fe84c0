//! `--workload W7`: the same work over 1, 2 and 4 worker processes (see the parent module).

use serde_json::{Map, Value, json};

use super::config::{FleetConfig, run_prefix};
use super::pool::Queueing;
use super::run::run_once;
use crate::args::Args;
use crate::workloads::common::{Target, round1, round2, runtime};

/// `--workload W7`.
pub(crate) fn run(args: &Args) -> Result<Value, String> {
    let name = "W7";
    let cfg = FleetConfig::w7(args)?;
    let target = Target::from_args(args, name)?;
    let rt = runtime()?;
    let (mut rates, mut elapsed) = (Map::new(), Map::new());
    let (mut violations, mut checked, mut messages, mut retries, mut failed) = (0, 0, 0, 0, 0);
    let (mut failures, mut examples) = (Vec::new(), Vec::new());
    let mut by_count = Vec::new();
    for &n in &cfg.workers {
        let prefix = run_prefix(args, &format!("{n}w_"));
        eprintln!(
            "W7: {n} worker(s), {} sessions x {} sends on {} ({prefix}) ...",
            cfg.sessions, cfg.sends, target.backend
        );
        let r = rt.block_on(run_once(&target, &prefix, n, &cfg, Queueing::Shared))?;
        let rate = r.sends_per_s();
        eprintln!(
            "W7: {n} worker(s): {rate} sends/s, {} violations, {} failed sends",
            r.verdict.violations,
            r.failures.len()
        );
        rates.insert(n.to_string(), json!(rate));
        elapsed.insert(n.to_string(), json!(round1(r.elapsed.as_secs_f64() * 1e3)));
        violations += r.verdict.violations;
        checked += r.verdict.sessions_checked;
        messages += r.verdict.messages_checked;
        retries += r.lease_held_retries;
        failed += r.failures.len();
        failures.extend(r.failures.into_iter().take(5));
        examples.extend(r.verdict.examples);
        by_count.push((n, rate));
    }
    let rate_of = |w: usize| by_count.iter().find(|(n, _)| *n == w).map(|(_, r)| *r);
    let scaling = match (rate_of(1), rate_of(4)) {
        (Some(one), Some(four)) if one > 0.0 => json!(round2(four / one)),
        _ => Value::Null,
    };
    let report = json!({
        "workload": name,
        "sends_per_s_by_workers": rates,
        "scaling_4_vs_1": scaling,
        "lease_violations": violations,
        "send_failures": failed,
        "lease_held_retries": retries,
        "sessions": cfg.sessions,
        "sends_per_session": cfg.sends,
        "in_flight_per_worker": cfg.in_flight,
        "latency_ms": cfg.latency_ms,
        "elapsed_ms_by_workers": elapsed,
        "sessions_checked": checked,
        "messages_checked": messages,
        "backend": target.backend,
    });
    verdict(name, report, violations, failed, &failures, &examples)
}

/// The report, or (after printing it) an error when a session was violated or a send failed
/// (`failures`: a few of the `failed` sends; `examples`: a few violations).
pub(crate) fn verdict(
    name: &str,
    report: Value,
    violations: usize,
    failed: usize,
    failures: &[String],
    examples: &[String],
) -> Result<Value, String> {
    if violations == 0 && failed == 0 {
        return Ok(report);
    }
    println!("{report}");
    Err(format!(
        "{name}: {violations} lease violation(s) {examples:?}, {failed} failed send(s) {failures:?}"
    ))
}
