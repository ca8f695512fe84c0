//! W7 (fleet): several worker PROCESSES serve sessions from one store (PostgreSQL with `--pg`),
//! any process may receive any session, and the session leases serialize the writers.
//!
//! - `--workload W7`: `--sessions` sessions (default 10,000) × `--sends` sends (default 3),
//!   driven once per worker count in `--workers` (default `1,2,4`), each run on fresh tables.
//!   Every worker (this binary re-executed as the hidden `W7-worker`) has at most `--in-flight`
//!   sends in flight (default 8) and a scripted model that answers after `--latency-ms` (default
//!   20, an async sleep), so the figure measures coordination rather than CPU. The sends come
//!   from one shared queue in the parent: a session's send `k + 1` is handed to whichever worker
//!   has a free slot once send `k` was acknowledged, so sessions are not partitioned per worker.
//!   Reports `sends_per_s_by_workers`, `scaling_4_vs_1` and `lease_violations`.
//! - `--workload W7 --fight` (or `W7-fight`): two workers (`--workers 2`) both send to the same
//!   `--sessions` sessions (default 100), `--sends` each (default 5), in the same order, so
//!   they collide on every session; the loop's `lease_wait` is 0 (`--lease-wait-ms`), so each
//!   collision is a `session.lease_held` the worker retries and counts.
//!
//! `lease_violations` is counted from the store afterwards (see [`check`]), independently of
//! the mechanism that serialized the writers. `--smoke` shrinks both to a quick run.

mod check;
mod config;
mod fight;
mod pool;
mod run;
mod w7;
mod worker;

use crate::args::Args;

pub(crate) use fight::run as run_fight;
pub(crate) use worker::run_worker;

/// `--workload W7` (`--fight`: the two-process fight).
pub(crate) fn run(args: &Args) -> Result<serde_json::Value, String> {
    if args.flag("fight") {
        fight::run(args)
    } else {
        w7::run(args)
    }
}
