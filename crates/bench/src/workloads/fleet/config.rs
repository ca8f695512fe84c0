//! The W7 knobs (with the defaults and a `--smoke` configuration), the turn texts and
//! answers both sides agree on, and the worker's loop.

use std::sync::Arc;
use std::time::Duration;

use power_loop::{AgentLoopConfig, LlmRequest, ScriptedLlm, ScriptedStep, StatefulAgentLoop};

use super::check::answer_for;
use crate::args::Args;

/// What one W7 (or fight) run is made of.
#[derive(Debug, Clone)]
pub(crate) struct FleetConfig {
    /// Sessions driven (W7 default 10,000; the fight's default 100).
    pub(crate) sessions: usize,
    /// Sends per session (W7), or per session and worker (fight).
    pub(crate) sends: usize,
    /// Sends in flight per worker process (default 8).
    pub(crate) in_flight: usize,
    /// The scripted model's answer delay (default 20 ms, a sleep, not CPU).
    pub(crate) latency_ms: u64,
    /// Worker-process counts to run, one after another (W7 default 1, 2 and 4; the fight: 2).
    pub(crate) workers: Vec<usize>,
    /// The loop's `lease_wait` in the workers (`None`: the loop's default).
    pub(crate) lease_wait_ms: Option<u64>,
    /// `--pool`, passed on to every worker (`None`: the store's default pool).
    pub(crate) pool: Option<String>,
}

impl FleetConfig {
    /// W7's knobs: `--sessions --sends --in-flight --latency-ms --workers --lease-wait-ms`;
    /// `--smoke` shrinks the defaults (300 sessions × 2 sends over 1 and 2 workers).
    pub(crate) fn w7(args: &Args) -> Result<Self, String> {
        let smoke = args.flag("smoke");
        Self::parse(
            args,
            if smoke { 300 } else { 10_000 },
            if smoke { 2 } else { 3 },
            if smoke { "1,2" } else { "1,2,4" },
            None,
        )
    }

    /// The fight's knobs: the same keys; defaults 100 sessions × 5 sends per worker, two workers,
    /// `lease_wait` 0 so every collision surfaces as a `session.lease_held` the worker retries
    /// (`--smoke`: 20 sessions × 2 sends).
    pub(crate) fn fight(args: &Args) -> Result<Self, String> {
        let smoke = args.flag("smoke");
        let c = Self::parse(
            args,
            if smoke { 20 } else { 100 },
            if smoke { 2 } else { 5 },
            "2",
            Some(0),
        )?;
        if c.workers.len() != 1 || c.workers[0] < 2 {
            return Err("the fight runs one worker count of at least 2 (`--workers 2`)".into());
        }
        Ok(c)
    }

    fn parse(
        args: &Args,
        sessions: usize,
        sends: usize,
        workers: &str,
        lease_wait_ms: Option<u64>,
    ) -> Result<Self, String> {
        let workers = parse_workers(args.get("workers").unwrap_or(workers))?;
        let lease_wait_ms = match args.get("lease-wait-ms") {
            None => lease_wait_ms,
            Some(v) => Some(
                v.parse()
                    .map_err(|_| format!("--lease-wait-ms must be a number, got `{v}`"))?,
            ),
        };
        Ok(FleetConfig {
            sessions: args.usize_or("sessions", sessions)?.max(1),
            sends: args.usize_or("sends", sends)?.max(1),
            in_flight: args.usize_or("in-flight", 8)?.max(1),
            latency_ms: u64::try_from(args.usize_or("latency-ms", 20)?).unwrap_or(u64::MAX),
            workers,
            lease_wait_ms,
            pool: args.get("pool").map(str::to_owned),
        })
    }
}

/// The table prefix of one run: `--table-prefix` + `suffix` when given, else a fresh
/// `bw7_<pid><nanos>_<suffix>` (at most 24 characters, the store's limit, for suffixes of up to
/// 4), so every run starts on empty tables of its own.
pub(crate) fn run_prefix(args: &Args, suffix: &str) -> String {
    if let Some(p) = args.get("table-prefix") {
        return format!("{p}{suffix}");
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "bw7_{:05x}{:06x}_{suffix}",
        std::process::id() & 0xf_ffff,
        nanos & 0xff_ffff
    )
}

/// `1,2,4` → `[1, 2, 4]` (each at least 1, at most 64).
fn parse_workers(v: &str) -> Result<Vec<usize>, String> {
    let out: Vec<usize> = v
        .split(',')
        .map(|p| p.trim().parse::<usize>())
        .collect::<Result<_, _>>()
        .map_err(|_| format!("--workers must be a list like 1,2,4, got `{v}`"))?;
    if out.is_empty() || out.iter().any(|n| *n == 0 || *n > 64) {
        return Err(format!("--workers counts must be 1..=64, got `{v}`"));
    }
    Ok(out)
}

/// The user text of send `k` of `chain` on session number `session`: unique per turn, so the
/// checker can tell every acknowledged turn apart.
pub(crate) fn turn_text(tag: &str, session: usize, chain: usize, k: usize) -> String {
    format!("{tag} session {session} chain {chain} send {k}")
}

/// The worker's scripted model: after `latency` (an async sleep), it answers the last user
/// message with [`answer_for`] of its text, so every answer names the turn it belongs to.
pub(crate) fn scripted_model(latency: Duration) -> ScriptedLlm {
    ScriptedLlm::from_fn(move |req: &LlmRequest| {
        ScriptedStep::text(answer_for(&req.last_user_text())).with_delay(latency)
    })
    .record_requests(false)
}

/// The worker's loop: the scripted model (no retry layer: it never fails), the session lease on,
/// `lease_wait` when given.
pub(crate) fn worker_loop(
    dsn: &str,
    options: power_loop::StoreOptions,
    latency: Duration,
    lease_wait: Option<Duration>,
) -> Result<StatefulAgentLoop, String> {
    let mut b = StatefulAgentLoop::builder(Arc::new(scripted_model(latency)))
        .dsn(dsn)
        .store_options(options)
        .config(AgentLoopConfig::default().with_session_lease(true));
    if let Some(w) = lease_wait {
        b = b.lease_wait(w);
    }
    b.build().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_lists_parse_and_reject_nonsense() {
        assert_eq!(parse_workers("1,2,4"), Ok(vec![1, 2, 4]));
        assert_eq!(parse_workers(" 3 "), Ok(vec![3]));
        assert!(parse_workers("0").is_err());
        assert!(parse_workers("1,,2").is_err());
        assert!(parse_workers("two").is_err());
    }
}
