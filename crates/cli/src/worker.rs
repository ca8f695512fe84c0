//! `power-loop worker`: without flags, serves one workflow leaf over stdin/stdout (the worker
//! protocol of `power_loop::SubprocessExecutor`; the parent starts it, it is not meant for a
//! terminal). With `--fleet`, a long-running fleet worker on a shared store
//! (`power_loop::serve_fleet`): it claims ready leaves, runs them, records their results, takes
//! over runs whose holder died, and drains on SIGTERM.

use std::time::Duration;

use power_loop::{
    CancellationToken, FleetHost, FleetOptions, Result, StoreOptions, WorkerHost, redact_dsn,
    serve_fleet,
};

use crate::open::{Access, open_store};
use crate::{Cli, exit, provider};

/// The `worker` command's help epilogue.
pub(crate) const WORKER_HELP: &str = "\
Fleet mode (--fleet) runs leaves of workflow runs whose holder uses the fleet executor
(power_loop::FleetExecutor). Start as many workers as you like, on any machines that reach the
store (PostgreSQL or MySQL; SQLite only for workers on one host):

  power-loop worker --fleet --dsn postgres://app@db/app --concurrency 8

Guarantees: a leaf is claimed by one worker at a time (FOR UPDATE SKIP LOCKED) under a lease
the worker renews; a worker that dies is detected when its lease runs out and the leaf is
claimed again (the claim is counted); a result is recorded only with the live claim's token,
so every leaf's result is recorded exactly once. A run whose holder died (stale heartbeat) is
taken over by a fleet worker and completed.
SIGTERM or Ctrl-C drains: no new claims; running leaves get --drain-grace-ms to finish, the
rest are stopped and released back to ready; exit code 0 after a clean drain.
The model comes from the POWER_LOOP_* variables (or --offline); fleet workers use the network
directly (the model and the store), unlike sandboxed subprocess leaves.";

/// The flags of `power-loop worker`.
#[derive(Debug, clap::Args)]
pub(crate) struct WorkerArgs {
    /// Run as a long-running fleet worker on the `--dsn` store instead of serving one leaf
    /// over stdin/stdout.
    #[arg(long)]
    pub(crate) fleet: bool,
    /// Leaves run at once.
    #[arg(long, default_value_t = 4, requires = "fleet")]
    pub(crate) concurrency: usize,
    /// A claim's lease in milliseconds (renewed every third of it while a leaf runs).
    #[arg(long, default_value_t = 30_000, requires = "fleet")]
    pub(crate) lease_ms: u64,
    /// Pause between claim attempts when nothing is ready, in milliseconds.
    #[arg(long, default_value_t = 200, requires = "fleet")]
    pub(crate) poll_ms: u64,
    /// On SIGTERM, how long running leaves may still finish before they are released, in
    /// milliseconds.
    #[arg(long, default_value_t = 30_000, requires = "fleet")]
    pub(crate) drain_grace_ms: u64,
    /// A running run whose heartbeat is older than this (ms) is taken over.
    #[arg(long, default_value_t = 60_000, requires = "fleet")]
    pub(crate) stale_after_ms: u64,
    /// Heartbeat interval (ms) of the runs this worker takes over.
    #[arg(long, default_value_t = 10_000, requires = "fleet")]
    pub(crate) run_heartbeat_ms: u64,
    /// Do not take over runs whose holder died.
    #[arg(long, requires = "fleet")]
    pub(crate) no_takeover: bool,
    /// This worker's name in the claims (default: derived from the pid).
    #[arg(long, requires = "fleet")]
    pub(crate) worker_id: Option<String>,
    /// Give leaves the default tools of this preset (`core`, `explore`, `full`) over
    /// `--workspace` (each leaf's spec whitelist filters them).
    #[arg(long, requires_all = ["fleet", "workspace"])]
    pub(crate) tool_preset: Option<String>,
    /// The leaves' workspace directory (with `--tool-preset`).
    #[arg(long, requires = "tool_preset")]
    pub(crate) workspace: Option<std::path::PathBuf>,
    /// At the end, print what the worker did as one JSON line.
    #[arg(long, requires = "fleet")]
    pub(crate) json: bool,
}

/// Runs the worker on this process's stdin/stdout; true when it reported a result.
pub(crate) async fn run() -> bool {
    let host = WorkerHost::new(|dsn, prefix| {
        Box::pin(async move {
            power_loop::open_store(&dsn, StoreOptions::default().with_table_prefix(prefix)).await
        })
    });
    let stdin = tokio::io::BufReader::new(tokio::io::stdin());
    let code = power_loop::serve_worker(host, stdin, tokio::io::stdout()).await;
    code == 0
}

/// `power-loop worker --fleet`: serves until SIGTERM / Ctrl-C, then drains; exit code 0.
pub(crate) async fn fleet(cli: &Cli, args: &WorkerArgs) -> Result<u8> {
    let (llm, offline) = provider::choose(cli.offline)?;
    let store = open_store(cli, Access::Existing).await?;
    let mut host = FleetHost::new(llm, store.clone());
    if let (Some(preset), Some(ws)) = (&args.tool_preset, &args.workspace) {
        host = host.with_tools(preset.clone(), ws.clone())?;
    }
    let ms = Duration::from_millis;
    let mut opts = FleetOptions::new()
        .with_concurrency(args.concurrency)
        .with_lease(ms(args.lease_ms))
        .with_poll_interval(ms(args.poll_ms))
        .with_drain_grace(ms(args.drain_grace_ms))
        .with_takeover(!args.no_takeover)
        .with_stale_after(ms(args.stale_after_ms))
        .with_run_heartbeat(ms(args.run_heartbeat_ms));
    if let Some(id) = &args.worker_id {
        opts = opts.with_worker_id(id.clone());
    }
    let shutdown = CancellationToken::new();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => eprintln!("power-loop: SIGTERM; draining the fleet worker"),
                _ = tokio::signal::ctrl_c() => eprintln!("power-loop: interrupted; draining the fleet worker"),
            }
            shutdown.cancel();
        });
    }
    eprintln!(
        "power-loop: fleet worker {} on {} ({}, {} at once{}); SIGTERM drains it",
        opts.worker_id,
        redact_dsn(&cli.dsn),
        store.backend_name(),
        opts.concurrency,
        if offline { ", offline model" } else { "" }
    );
    let report = serve_fleet(host, opts, shutdown).await?;
    eprintln!(
        "power-loop: fleet worker drained: {} leaves recorded, {} released, {} claims lost, {} runs taken over",
        report.leaves_recorded, report.leaves_released, report.claims_lost, report.runs_taken_over
    );
    if args.json {
        crate::output::json(&serde_json::json!({
            "leaves_recorded": report.leaves_recorded,
            "leaves_released": report.leaves_released,
            "claims_lost": report.claims_lost,
            "runs_taken_over": report.runs_taken_over,
            "runs_finished": report.runs_finished,
        }))?;
    }
    let _ = store.close().await;
    Ok(exit::OK)
}
