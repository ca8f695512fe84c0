//! `power-loop worker --fleet` processes on a shared server store: three workers run a
//! 200-leaf fan-out while one is SIGKILLed mid-leaf (every leaf's result recorded exactly once,
//! the run completes) on PostgreSQL and MariaDB; SIGTERM drains a worker (no new claims, its
//! leaves released or finished, exit 0); a run whose starter died is completed by a fleet
//! worker's takeover or by `resume_run`. The workers' model is a local OpenAI-wire server
//! that echoes the leaf's input after a delay.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "leaf_support/mod.rs"]
mod leaf_support;
#[path = "support/mod.rs"]
mod support;

use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use leaf_support::{assert_completed, leaf, model, parent_loop, spec};
use power_loop::{
    FleetExecutor, NewSession, ScriptedStep, SessionStore, StoreOptions, WorkflowEngine,
    WorkflowLeafRow, WorkflowLeafState, WorkflowRunOptions, WorkflowRunStatus, resume_run,
};
use serde_json::json;
use support::{Fake, Reply, provider_env};

/// A server DSN from `var`, or `None` (skip) — a failure under `POWER_LOOP_REQUIRE_SERVERS=1`.
fn server(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(d) if !d.trim().is_empty() => Some(d),
        _ => {
            assert!(
                std::env::var("POWER_LOOP_REQUIRE_SERVERS").as_deref() != Ok("1"),
                "{var} is not set but POWER_LOOP_REQUIRE_SERVERS=1"
            );
            eprintln!("skipped: {var} is not set");
            None
        }
    }
}

/// A table prefix no other test (or engineer) uses.
fn unique_prefix(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("f{tag}{:x}{nanos:x}_", std::process::id())
}

async fn open(dsn: &str, prefix: &str) -> SessionStore {
    power_loop::open_store(dsn, StoreOptions::default().with_table_prefix(prefix))
        .await
        .unwrap()
}

/// Starts `power-loop worker --fleet` named `id`, its stderr kept in `dir/{id}.log`.
fn worker(dir: &Path, dsn: &str, prefix: &str, id: &str, fake: &Fake, extra: &[&str]) -> Child {
    let env = provider_env(fake);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut args = vec![
        "worker",
        "--fleet",
        "--dsn",
        dsn,
        "--table-prefix",
        prefix,
        "--worker-id",
        id,
        "--poll-ms",
        "30",
    ];
    args.extend_from_slice(extra);
    let log = std::fs::File::create(dir.join(format!("{id}.log"))).unwrap();
    support::cmd(dir, &env, &args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap()
}

fn signal(child: &Child, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} failed");
}

/// Waits (bounded) for the child to exit; its exit status.
fn wait_exit(
    child: &mut Child,
    within: Duration,
    dir: &Path,
    id: &str,
) -> std::process::ExitStatus {
    let end = Instant::now() + within;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if Instant::now() > end {
            let _ = child.kill();
            let log = std::fs::read_to_string(dir.join(format!("{id}.log"))).unwrap_or_default();
            panic!("worker {id} did not exit within {within:?}; its log:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Polls `f` until it returns `Some` (bounded).
async fn until<T, F, Fut>(what: &str, within: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let end = Instant::now() + within;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

async fn leaves(store: &SessionStore, run_id: &str) -> Vec<WorkflowLeafRow> {
    store.list_workflow_leaves(run_id).await.unwrap()
}

async fn the_run_of(store: &SessionStore, parent: &str) -> String {
    until("the run row", Duration::from_secs(30), || async {
        let runs = store.list_workflow_runs(Some(parent), 5).await.unwrap();
        runs.first().map(|r| r.run_id.clone())
    })
    .await
}

fn fan_out(n: usize, concurrency: usize) -> power_loop::WorkflowSpec {
    spec(
        json!({"name": "fan", "root": {"type": "foreach", "id": "fan",
        "items": (0..n).collect::<Vec<_>>(), "as": "n", "parallel": true,
        "max_concurrency": concurrency, "body": leaf("leaf", "work", "item {{n}}")}}),
    )
}

fn fleet_engine(lp: power_loop::StatefulAgentLoop, parent: &str) -> WorkflowEngine {
    WorkflowEngine::new(
        lp,
        WorkflowRunOptions::new()
            .with_executor(Arc::new(
                FleetExecutor::new().with_poll_interval(Duration::from_millis(40)),
            ))
            .with_parent_session(parent)
            .with_heartbeat_interval(Duration::from_millis(300)),
    )
}

async fn three_workers_one_killed(dsn: &str, tag: &str) {
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique_prefix(tag);
    let store = open(dsn, &prefix).await;
    let fake = Fake::start(|_| Reply::EchoAfter(Duration::from_millis(120)));
    let mut ws: Vec<Child> = (0..3)
        .map(|i| {
            worker(
                dir.path(),
                dsn,
                &prefix,
                &format!("w{i}"),
                &fake,
                &["--concurrency", "6", "--lease-ms", "2000"],
            )
        })
        .collect();
    let holder_llm = model(|_| ScriptedStep::text("the holder never runs a leaf itself"));
    let lp = parent_loop(&holder_llm, &store);
    let parent = store.create_session(NewSession::new()).await.unwrap();
    let engine = fleet_engine(lp, &parent);
    let run = tokio::spawn(async move { engine.run(&fan_out(200, 48)).await });
    let run_id = the_run_of(&store, &parent).await;
    until("40 recorded leaves", Duration::from_secs(90), || async {
        let done = leaves(&store, &run_id)
            .await
            .iter()
            .filter(|l| l.state == WorkflowLeafState::Done)
            .count();
        (done >= 40).then_some(())
    })
    .await;
    // Catch w0 holding claims (stopped, so none of them can finish), then SIGKILL it.
    let orphaned: Vec<String> = until("w0 mid-leaf", Duration::from_secs(60), || async {
        signal(&ws[0], "-STOP");
        let held: Vec<String> = leaves(&store, &run_id)
            .await
            .into_iter()
            .filter(|l| {
                l.state == WorkflowLeafState::Claimed && l.claimed_by.as_deref() == Some("w0")
            })
            .map(|l| l.step_key)
            .collect();
        if held.is_empty() {
            signal(&ws[0], "-CONT");
            None
        } else {
            Some(held)
        }
    })
    .await;
    signal(&ws[0], "-KILL");
    let _ = ws[0].wait();
    let out = tokio::time::timeout(Duration::from_secs(240), run)
        .await
        .expect("the run completes")
        .unwrap()
        .unwrap();
    assert_completed(&out.result);
    // The journal: 200 leaves, each done once, the dead worker's ones claimed again.
    let rows = leaves(&store, &run_id).await;
    assert_eq!(rows.len(), 200);
    let steps = store.list_workflow_steps(&run_id).await.unwrap();
    let items: Vec<_> = steps
        .iter()
        .filter(|s| s.parent_key.as_deref() == Some("fan"))
        .collect();
    assert_eq!(items.len(), 200);
    let mut sessions = HashSet::new();
    let mut texts = HashSet::new();
    for l in &rows {
        assert_eq!(l.state, WorkflowLeafState::Done, "{}", l.step_key);
        let r = l.result.as_ref().unwrap();
        let step = items.iter().find(|s| s.step_key == l.step_key).unwrap();
        assert_eq!(step.status, "completed");
        assert_eq!(r["session_id"].as_str(), step.session_id.as_deref());
        assert!(sessions.insert(step.session_id.clone().unwrap()));
        assert!(texts.insert(step.text.clone()));
        if orphaned.contains(&l.step_key) {
            assert!(
                l.claims >= 2,
                "{} was claimed {} time(s)",
                l.step_key,
                l.claims
            );
            assert_ne!(r["worker"], "w0", "{}", l.step_key);
        }
    }
    for n in 0..200 {
        assert!(
            texts.contains(&format!("echo: item {n}")),
            "item {n} missing"
        );
    }
    // the recorded sessions are in the shared store, children of the run's driver session
    let run_row = store.get_workflow_run(&run_id).await.unwrap().unwrap();
    let driver = run_row.driver_session_id.unwrap();
    let sid = items[0].session_id.clone().unwrap();
    let s = store.get_session(&sid).await.unwrap().unwrap();
    assert_eq!(s.parent_session_id.as_deref(), Some(driver.as_str()));
    // the survivors drain and exit 0
    for (i, w) in ws.iter_mut().enumerate().skip(1) {
        signal(w, "-TERM");
        let st = wait_exit(w, Duration::from_secs(30), dir.path(), &format!("w{i}"));
        assert!(st.success(), "w{i}: {st}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_fleet_workers_run_200_leaves_exactly_once_while_one_is_killed_postgres() {
    let Some(dsn) = server("POWER_LOOP_TEST_PG_DSN") else {
        return;
    };
    three_workers_one_killed(&dsn, "k").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_fleet_workers_run_200_leaves_exactly_once_while_one_is_killed_mariadb() {
    let Some(dsn) = server("POWER_LOOP_TEST_MYSQL_DSN") else {
        return;
    };
    three_workers_one_killed(&dsn, "m").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_a_fleet_worker_releasing_or_finishing_its_leaves() {
    let Some(dsn) = server("POWER_LOOP_TEST_PG_DSN") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique_prefix("d");
    let store = open(&dsn, &prefix).await;
    let fake = Fake::start(|_| Reply::EchoAfter(Duration::from_millis(2500)));
    let holder_llm = model(|_| ScriptedStep::text("unused"));
    let parent = store.create_session(NewSession::new()).await.unwrap();
    let engine = fleet_engine(parent_loop(&holder_llm, &store), &parent);
    let run = tokio::spawn(async move { engine.run(&fan_out(2, 2)).await });
    let run_id = the_run_of(&store, &parent).await;
    // d1 runs one leaf at a time and has almost no grace: SIGTERM releases its leaf.
    let mut d1 = worker(
        dir.path(),
        &dsn,
        &prefix,
        "d1",
        &fake,
        &["--concurrency", "1", "--drain-grace-ms", "100"],
    );
    let held = until("d1's claim", Duration::from_secs(30), || async {
        leaves(&store, &run_id)
            .await
            .into_iter()
            .find(|l| l.claimed_by.as_deref() == Some("d1"))
            .map(|l| l.step_key)
    })
    .await;
    signal(&d1, "-TERM");
    let st = wait_exit(&mut d1, Duration::from_secs(20), dir.path(), "d1");
    assert!(st.success(), "d1: {st}");
    let rows = leaves(&store, &run_id).await;
    assert_eq!(rows.len(), 2);
    for l in &rows {
        assert_eq!(l.state, WorkflowLeafState::Ready, "{}", l.step_key);
        // no claim after SIGTERM: only the leaf d1 held was ever claimed
        let expected = i64::from(l.step_key == held);
        assert_eq!(l.claims, expected, "{}", l.step_key);
    }
    // d2 has a long grace: SIGTERM while both leaves run lets them finish and record.
    let mut d2 = worker(
        dir.path(),
        &dsn,
        &prefix,
        "d2",
        &fake,
        &["--concurrency", "2", "--drain-grace-ms", "20000"],
    );
    until("d2's two claims", Duration::from_secs(30), || async {
        let n = leaves(&store, &run_id)
            .await
            .iter()
            .filter(|l| l.state == WorkflowLeafState::Claimed)
            .count();
        (n == 2).then_some(())
    })
    .await;
    signal(&d2, "-TERM");
    let st = wait_exit(&mut d2, Duration::from_secs(30), dir.path(), "d2");
    assert!(st.success(), "d2: {st}");
    let out = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(out.result.status, WorkflowRunStatus::Completed);
    for l in leaves(&store, &run_id).await {
        assert_eq!(l.state, WorkflowLeafState::Done);
        assert_eq!(l.result.as_ref().unwrap()["worker"], "d2");
        let expected = if l.step_key == held { 2 } else { 1 };
        assert_eq!(l.claims, expected, "{}", l.step_key);
    }
    let log = std::fs::read_to_string(dir.path().join("d2.log")).unwrap();
    assert!(log.contains("2 leaves recorded"), "{log}");
}

/// Starts a fleet run of 10 leaves with no worker up, then lets its starter die (the task
/// holding it is dropped: its heartbeat stops). Returns the run id.
async fn orphaned_run(store: &SessionStore) -> String {
    let holder_llm = model(|_| ScriptedStep::text("unused"));
    let parent = store.create_session(NewSession::new()).await.unwrap();
    let engine = fleet_engine(parent_loop(&holder_llm, store), &parent);
    let run = tokio::spawn(async move { engine.run(&fan_out(10, 10)).await });
    let run_id = the_run_of(store, &parent).await;
    until("10 published leaves", Duration::from_secs(30), || async {
        (leaves(store, &run_id).await.len() == 10).then_some(())
    })
    .await;
    run.abort();
    let _ = run.await;
    run_id
}

fn check_completed_once(rows: &[WorkflowLeafRow]) {
    assert_eq!(rows.len(), 10);
    for l in rows {
        assert_eq!(l.state, WorkflowLeafState::Done);
        assert_eq!(l.claims, 1, "{}", l.step_key);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_worker_takes_over_and_completes_a_run_whose_starter_died() {
    let Some(dsn) = server("POWER_LOOP_TEST_PG_DSN") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique_prefix("t");
    let store = open(&dsn, &prefix).await;
    let fake = Fake::start(|_| Reply::EchoAfter(Duration::from_millis(20)));
    let run_id = orphaned_run(&store).await;
    let mut t1 = worker(
        dir.path(),
        &dsn,
        &prefix,
        "t1",
        &fake,
        &["--stale-after-ms", "1500", "--run-heartbeat-ms", "300"],
    );
    let row = until("the run completed", Duration::from_secs(60), || async {
        let r = store.get_workflow_run(&run_id).await.unwrap().unwrap();
        r.status.is_final().then_some(r)
    })
    .await;
    assert_eq!(row.status.as_str(), "completed", "{:?}", row.error);
    assert_eq!(
        row.attempts, 2,
        "the worker's takeover is the second attempt"
    );
    check_completed_once(&leaves(&store, &run_id).await);
    let result = row.result.unwrap();
    assert_eq!(result["status"], "completed");
    assert_eq!(
        result["results"]["fan"]["payload"]["items"]
            .as_array()
            .unwrap()
            .len(),
        10
    );
    signal(&t1, "-TERM");
    let st = wait_exit(&mut t1, Duration::from_secs(30), dir.path(), "t1");
    assert!(st.success(), "t1: {st}");
    let log = std::fs::read_to_string(dir.path().join("t1.log")).unwrap();
    assert!(log.contains("1 runs taken over"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_run_completes_a_fleet_run_whose_starter_died() {
    let Some(dsn) = server("POWER_LOOP_TEST_PG_DSN") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let prefix = unique_prefix("r");
    let store = open(&dsn, &prefix).await;
    let fake = Fake::start(|_| Reply::EchoAfter(Duration::from_millis(20)));
    let run_id = orphaned_run(&store).await;
    let mut r1 = worker(dir.path(), &dsn, &prefix, "r1", &fake, &["--no-takeover"]);
    let holder_llm = model(|_| ScriptedStep::text("unused"));
    let lp = parent_loop(&holder_llm, &store);
    let opts = WorkflowRunOptions::new().with_executor(Arc::new(
        FleetExecutor::new().with_poll_interval(Duration::from_millis(40)),
    ));
    let out = tokio::time::timeout(Duration::from_secs(60), resume_run(&lp, &run_id, opts))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out.result.status, WorkflowRunStatus::Completed);
    assert_eq!(out.attempt, 2);
    assert!(out.finished_in_store);
    check_completed_once(&leaves(&store, &run_id).await);
    signal(&r1, "-TERM");
    let st = wait_exit(&mut r1, Duration::from_secs(30), dir.path(), "r1");
    assert!(st.success(), "r1: {st}");
}
