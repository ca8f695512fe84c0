//! Crash-resume: a child process (this test binary re-executed with `PL_WF_CRASH_CHILD=1`)
//! runs a 100-item parallel foreach whose scripted leaves log every model call to a file
//! (append + fsync), and is SIGKILLed mid-way; `resume_run` in this process finishes the run.
//! The call logs prove that no journaled item ran again, and the result equals an
//! uninterrupted run's. On SQLite and PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use power_loop_llm::ScriptedLlm;
use power_loop_store::SessionStore;
use power_loop_workflow::{RunOptions, RunStatus, WorkflowEngine, resume_run};
use serde_json::json;
use support::*;

const CHILD: &str = "PL_WF_CRASH_CHILD";
const ITEMS: usize = 100;

fn fan_spec() -> power_loop_workflow::WorkflowSpec {
    spec(
        json!({"name": "fan", "root": {"type": "sequence", "steps": [
        {"type": "foreach", "id": "fan", "items": (0..ITEMS).collect::<Vec<_>>(), "as": "i",
         "parallel": true, "max_concurrency": 8, "body": leaf("w", "work", "item {{i}}")},
        leaf("end", "sum", "end")]}}),
    )
}

/// A model that appends each call's input to `log` (fsynced) and answers `did {input}`.
fn logging_model(log: Option<String>, delay_ms: u64) -> ScriptedLlm {
    model(move |_, user| {
        if let Some(path) = &log {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .unwrap();
            writeln!(f, "{user}").unwrap();
            f.sync_all().unwrap();
        }
        slow_text(format!("did {user}"), delay_ms)
    })
}

fn log_lines(path: &str) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The child role: run the workflow until killed.
#[test]
fn crash_child() {
    let Ok(dsn) = std::env::var(CHILD) else {
        return;
    };
    let prefix = std::env::var("PL_WF_PREFIX").unwrap();
    let log = std::env::var("PL_WF_LOG").unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let store = store_at(&dsn, &prefix).await;
        let lp = agent_loop(&logging_model(Some(log), 40), &store);
        let _ = WorkflowEngine::builder(lp).build().run(&fan_spec()).await;
        // finished before the kill: keep the process alive so the parent's kill is the end
        tokio::time::sleep(Duration::from_secs(60)).await;
    });
}

async fn completed_item_keys(store: &SessionStore, run_id: &str) -> BTreeSet<String> {
    store
        .list_workflow_steps(run_id)
        .await
        .unwrap()
        .into_iter()
        .filter(|s| s.status == "completed" && s.item_index.is_some())
        .map(|s| s.step_key)
        .collect()
}

/// The completed foreach-item step keys that attempt `attempt` wrote.
async fn items_of_attempt(store: &SessionStore, run_id: &str, attempt: i64) -> BTreeSet<String> {
    store
        .list_workflow_steps(run_id)
        .await
        .unwrap()
        .into_iter()
        .filter(|s| s.status == "completed" && s.item_index.is_some() && s.attempt == attempt)
        .map(|s| s.step_key)
        .collect()
}

async fn crash_then_resume(dsn: &str, prefix: &str) {
    let dir = tempfile::tempdir().unwrap();
    let log1 = dir
        .path()
        .join("calls-child.log")
        .to_str()
        .unwrap()
        .to_owned();
    let log2 = dir
        .path()
        .join("calls-resume.log")
        .to_str()
        .unwrap()
        .to_owned();
    let store = store_at(dsn, prefix).await;
    let mut child = Command::new("/proc/self/exe")
        .args(["--exact", "crash_child", "--nocapture"])
        .env(CHILD, dsn)
        .env("PL_WF_PREFIX", prefix)
        .env("PL_WF_LOG", &log1)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // wait until a good part of the fan-out is journaled, then SIGKILL mid-way
    let deadline = Instant::now() + Duration::from_secs(60);
    let run_id = loop {
        assert!(
            Instant::now() < deadline,
            "the child never journaled 30 items"
        );
        if let Some(run) = store.list_workflow_runs(None, 10).await.unwrap().first()
            && completed_item_keys(&store, &run.run_id).await.len() >= 30
        {
            break run.run_id.clone();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        completed_item_keys(&store, &run_id).await.len() < ITEMS,
        "the child finished before the kill"
    );
    let run = store.get_workflow_run(&run_id).await.unwrap().unwrap();
    assert_eq!(
        run.status.as_str(),
        "running",
        "killed mid-way: still running in the store"
    );

    // resume in this process with a fresh model that logs to another file
    let llm = logging_model(Some(log2.clone()), 0);
    let lp = agent_loop(&llm, &store);
    let out = resume_run(&lp, &run_id, RunOptions::new()).await.unwrap();
    assert_eq!(
        out.result.status,
        RunStatus::Completed,
        "{:?}",
        out.result.errors
    );
    assert!(out.result.ok());
    assert_eq!(out.attempt, 2);
    // What the first attempt journaled is read after the resume: on a server, the killed child's
    // last COMMIT may still land after the kill (the server has it in its socket buffer), and
    // the resume's claim is what closes the first attempt. Steps keep the attempt that wrote them.
    let journaled = items_of_attempt(&store, &run_id, 1).await;
    assert!(
        journaled.len() >= 30,
        "the kill came after 30 journaled items"
    );
    assert_eq!(out.replayed_steps as usize, journaled.len());
    assert_eq!(
        items_of_attempt(&store, &run_id, 2).await.len(),
        ITEMS - journaled.len(),
        "the resume journaled exactly the unfinished items"
    );

    // no journaled item ran again; every other item ran exactly once in the resume
    let resumed: Vec<String> = log_lines(&log2);
    let journaled_inputs: BTreeSet<String> = journaled
        .iter()
        .map(|k| {
            let i: usize = k
                .trim_start_matches("fan[")
                .split(']')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            format!("item {i}")
        })
        .collect();
    for call in &resumed {
        assert!(
            !journaled_inputs.contains(call),
            "journaled item re-ran: {call}"
        );
    }
    let resumed_set: BTreeSet<&String> = resumed.iter().collect();
    assert_eq!(
        resumed_set.len(),
        resumed.len(),
        "an item ran twice in the resume"
    );
    assert_eq!(
        resumed.len(),
        ITEMS - journaled.len() + 1,
        "unfinished items + the final leaf"
    );
    // the child's log holds every journaled item (it really ran them before the kill)
    let child_calls: BTreeSet<String> = log_lines(&log1).into_iter().collect();
    assert!(journaled_inputs.is_subset(&child_calls));

    // the result equals an uninterrupted run's
    let (fresh, _d) = sqlite_store().await;
    let base = WorkflowEngine::builder(agent_loop(&logging_model(None, 0), &fresh))
        .build()
        .run(&fan_spec())
        .await
        .unwrap();
    assert_eq!(
        comparable(&out.result.to_value()),
        comparable(&base.result.to_value())
    );
    let row = store.get_workflow_run(&run_id).await.unwrap().unwrap();
    assert_eq!(row.status.as_str(), "completed");
    assert_eq!(row.attempts, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_fan_out_resumes_only_unfinished_items_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.db");
    crash_then_resume(path.to_str().unwrap(), "").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_fan_out_resumes_only_unfinished_items_postgres() {
    let Some(dsn) = pg_dsn() else { return };
    let prefix = format!("wfc{}_", std::process::id());
    crash_then_resume(&dsn, &prefix).await;
}
