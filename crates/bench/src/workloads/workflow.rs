//! W5 (workflow fan-out): a journaled workflow whose root is a parallel `foreach` over
//! `--items` items (default 500) with `max_concurrency` `--concurrency` (default 50); each item
//! is one scripted agent leaf (a sub-agent session: create + send + journal step). The clock
//! runs from starting the run to its result, with the store already open. Afterwards the
//! journal is checked: one completed step per item plus the completed aggregate. `--pg` (or a
//! `--dsn postgres://…`) runs it on PostgreSQL, `--mysql` on MySQL / MariaDB. `--journal off`
//! is a diagnostic only (no run row, no steps: shows what the journal costs).
//! `--executor subprocess` runs every leaf in its own worker process: this binary re-executed
//! as the hidden `W5-worker` workload (the host binary serving as its own worker), its session
//! in a SQLite file in the leaf's directory and merged into the parent's store afterwards.
//! `--executor fleet [--workers N]` publishes every leaf for a fleet: N fleet workers
//! (`serve_fleet` tasks in this process, default 3, sharing `--concurrency` between them) claim,
//! run and record them through the store's `workflow_leaves` table.

use std::sync::Arc;
use std::time::{Duration, Instant};

use power_loop::{
    CancellationToken, FleetExecutor, FleetHost, FleetOptions, InProcessExecutor, LeafExecutor,
    ScriptedLlm, ScriptedStep, SubprocessExecutor, WorkerHost, WorkflowEngine,
    WorkflowRunOptions as RunOptions, WorkflowSpec, serve_fleet, serve_worker,
};
use serde_json::json;

use super::common::{ANSWER, Target, close, err, peak_rss_mb, round1, runtime};
use crate::args::Args;

/// The foreach node's id (its aggregate's step key).
const FANOUT: &str = "fanout";

/// The W5 spec: `fanout` = parallel foreach over `items` strings, one agent leaf each.
fn spec(items: usize, concurrency: usize) -> Result<WorkflowSpec, String> {
    let list: Vec<String> = (0..items).map(|i| format!("topic {i}")).collect();
    let v = json!({
        "name": "w5-fanout",
        "input": "quarterly review",
        "root": {
            "type": "foreach", "id": FANOUT, "items": list, "as": "topic",
            "parallel": true, "max_concurrency": concurrency,
            "body": {
                "type": "agent", "id": "summarize",
                "spec": {"name": "summarizer", "system_prompt": "Summarize one topic of the {{input}}."},
                "input": "Topic: {{topic}}"
            }
        }
    });
    WorkflowSpec::from_value(&v).map_err(|e| format!("W5: the bench spec is invalid: {e}"))
}

/// `--workload W5`.
pub(crate) fn run(args: &Args) -> Result<serde_json::Value, String> {
    let name = "W5";
    let items = args.usize_or("items", 500)?.max(1);
    let concurrency = args.usize_or("concurrency", 50)?.max(1);
    let journal = match args.get("journal").unwrap_or("on") {
        "on" => true,
        "off" => false,
        other => return Err(format!("--journal must be on or off, got `{other}`")),
    };
    let executor: Arc<dyn LeafExecutor> = match args.get("executor").unwrap_or("in-process") {
        "in-process" => Arc::new(InProcessExecutor::new()),
        "subprocess" => {
            let exe = std::env::current_exe().map_err(|e| format!("{name}: current_exe: {e}"))?;
            Arc::new(
                SubprocessExecutor::builder(exe)
                    .args(vec!["--workload".into(), "W5-worker".into()])
                    .build(),
            )
        }
        "fleet" => Arc::new(FleetExecutor::new().with_poll_interval(Duration::from_millis(20))),
        other => {
            return Err(format!(
                "--executor must be in-process, subprocess or fleet, got `{other}`"
            ));
        }
    };
    let executor_name = args.get("executor").unwrap_or("in-process").to_owned();
    let fleet_workers = if executor_name == "fleet" {
        args.usize_or("workers", 3)?.max(1)
    } else {
        0
    };
    let spec = spec(items, concurrency)?;
    let target = Target::from_args(args, name)?;
    let rt = runtime()?;
    let llm = ScriptedLlm::from_fn(|_req| ScriptedStep::text(ANSWER)).record_requests(false);
    let lp = target.agent_loop(Arc::new(llm), None)?;
    let (outcome, elapsed, steps) = rt.block_on(async {
        // Open the store before the clock starts (a server pool connects here).
        let store = lp.store().await.map_err(err)?.clone();
        let engine = WorkflowEngine::new(
            lp.clone(),
            RunOptions::new()
                .with_journal(journal)
                .with_executor(executor),
        );
        // `--executor fleet`: N fleet workers (tasks of this process, each with its own claim
        // loop on the shared store) run the leaves the run publishes.
        let shutdown = CancellationToken::new();
        let mut workers = Vec::new();
        for i in 0..fleet_workers {
            let host = FleetHost::new(Arc::clone(lp.llm()), store.clone());
            let opts = FleetOptions::new()
                .with_worker_id(format!("bench-w{i}"))
                .with_concurrency(concurrency.div_ceil(fleet_workers))
                .with_poll_interval(Duration::from_millis(20))
                .with_takeover(false);
            workers.push(tokio::spawn(serve_fleet(host, opts, shutdown.clone())));
        }
        let t = Instant::now();
        let outcome = engine
            .run(&spec)
            .await
            .map_err(|e| format!("{name}: run: {e}"))?;
        let elapsed = t.elapsed();
        shutdown.cancel();
        for w in workers {
            w.await
                .map_err(|e| format!("{name}: a fleet worker panicked: {e}"))?
                .map_err(|e| format!("{name}: a fleet worker failed: {e}"))?;
        }
        let steps = match (&outcome.run_id, journal) {
            (Some(run_id), true) => store
                .list_workflow_steps(run_id)
                .await
                .map_err(|e| format!("{name}: reading the journal: {e}"))?,
            (None, true) => return Err(format!("{name}: the journaled run has no run id")),
            (_, false) => Vec::new(),
        };
        close(&lp).await?;
        Ok::<_, String>((outcome, elapsed, steps))
    })?;
    let rss = peak_rss_mb();
    if !outcome.result.ok() {
        return Err(format!(
            "{name}: the run ended {} with errors {:?}",
            outcome.result.status, outcome.result.errors
        ));
    }
    let item_steps = steps
        .iter()
        .filter(|s| s.item_index.is_some() && s.status == "completed")
        .count();
    let aggregate = steps
        .iter()
        .filter(|s| s.step_key == FANOUT && s.item_index.is_none() && s.status == "completed")
        .count();
    if journal && (item_steps != items || aggregate != 1 || steps.len() != items + 1) {
        return Err(format!(
            "{name}: the journal holds {} steps ({item_steps} completed item steps, {aggregate} \
             completed aggregate); expected {items} + 1",
            steps.len()
        ));
    }
    let wall = elapsed.as_secs_f64();
    Ok(json!({
        "workload": name,
        "wall_s": (wall * 1e4).round() / 1e4,
        "leaves": outcome.executed_leaves,
        "journal_steps": steps.len(),
        "sends_per_s": (items as f64 / wall).round(),
        "max_concurrency": concurrency,
        "peak_rss_mb": rss,
        "elapsed_ms": round1(wall * 1e3),
        "backend": target.backend,
        "lease": target.lease,
        "journal": journal,
        "executor": executor_name,
        "fleet_workers": fleet_workers,
    }))
}

/// The hidden `W5-worker` workload: serves one leaf over stdin/stdout (started by the
/// subprocess executor of `--executor subprocess`).
pub(crate) fn run_worker(_args: &Args) -> Result<serde_json::Value, String> {
    let rt = runtime()?;
    let host = WorkerHost::new(|dsn, prefix| {
        Box::pin(async move {
            power_loop::open_store(
                &dsn,
                power_loop::StoreOptions::default().with_table_prefix(prefix),
            )
            .await
        })
    });
    let code = rt.block_on(serve_worker(
        host,
        tokio::io::BufReader::new(tokio::io::stdin()),
        tokio::io::stdout(),
    ));
    rt.shutdown_background();
    if code == 0 {
        Ok(serde_json::Value::Null)
    } else {
        Err("the worker could not run its leaf".into())
    }
}
