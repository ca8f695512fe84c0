//! Detached runs: the finish arms the parent's wake in the same transaction; the wake guard
//! lets exactly one delivery through per attempt — a duplicate timer is skipped, a firing that
//! set the flag and died before delivering is delivered again, and a process killed between
//! the run's end and the wake still wakes the parent once after a restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use power_loop_agent::{
    EventFilter, FiringOutcome, StatefulAgentLoop, TimerRunner, TimerRunnerOptions,
};
use power_loop_contracts::EventPayload;
use power_loop_llm::Step;
use power_loop_store::{SessionStore, now_ms};
use power_loop_workflow::{RunOptions, get_run, register_wake_guard, start_detached};
use serde_json::json;
use support::*;

const CHILD: &str = "PL_WF_DETACHED_CHILD";

fn two_leaves() -> power_loop_workflow::WorkflowSpec {
    spec(
        json!({"name": "bg", "root": {"type": "sequence", "steps": [leaf("a", "p", "x"), leaf("b", "p", "y")]}}),
    )
}

fn lp_over(store: &SessionStore) -> StatefulAgentLoop {
    agent_loop(
        &model(|_, u| Step::text(format!("seen {}", u.len()))),
        store,
    )
}

/// How many user messages of `sid` carry the wake of `run_id`.
async fn wakes(store: &SessionStore, sid: &str, run_id: &str) -> usize {
    let needle = format!("workflow:run:{run_id} ");
    store
        .load_all_messages(sid)
        .await
        .unwrap()
        .iter()
        .filter(|m| m.role == "user" && m.content.as_deref().is_some_and(|c| c.contains(&needle)))
        .count()
}

async fn fire(lp: &StatefulAgentLoop) -> Vec<FiringOutcome> {
    let runner = TimerRunner::new(lp.clone(), TimerRunnerOptions::default());
    runner
        .run_once(now_ms() + 1_000)
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.outcome)
        .collect()
}

#[tokio::test]
async fn parent_is_woken_exactly_once_per_attempt() {
    let (store, _d) = sqlite_store().await;
    let lp = lp_over(&store);
    register_wake_guard(&lp).await.unwrap();
    let logs = Arc::new(Mutex::new(Vec::new()));
    let l2 = logs.clone();
    lp.event_bus().subscribe(EventFilter::All, move |ev| {
        if let EventPayload::SystemLog(p) = &ev.payload {
            l2.lock()
                .unwrap()
                .push((ev.source.clone(), p.message.clone(), p.level.clone()));
        }
        Ok(())
    });
    let parent = lp.new_session(Default::default()).await.unwrap();
    let h = start_detached(&lp, &parent, &two_leaves(), RunOptions::new())
        .await
        .unwrap();
    let run_id = h.run_id.clone();
    let out = h.wait().await.unwrap();
    assert!(out.result.ok());
    // finished and armed atomically: one live timer with the note
    let timers = store.list_live_timers(&parent).await.unwrap();
    assert_eq!(timers.len(), 1);
    assert_eq!(timers[0].note, format!("workflow:run:{run_id} completed"));
    let logs = logs.lock().unwrap().clone();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].0.as_deref(), Some("workflow"));
    assert_eq!(logs[0].2, "info");
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&logs[0].1).unwrap(),
        json!({"workflow": run_id, "event": "completed", "status": "completed"})
    );

    assert_eq!(fire(&lp).await, [FiringOutcome::Delivered]);
    assert_eq!(wakes(&store, &parent, &run_id).await, 1);
    assert!(get_run(&store, &run_id).await.unwrap().unwrap().woke);
    // a duplicate timer for the same attempt is skipped
    store
        .create_timer(
            &parent,
            now_ms(),
            &format!("workflow:run:{run_id} completed"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(fire(&lp).await, [FiringOutcome::Skipped]);
    assert_eq!(wakes(&store, &parent, &run_id).await, 1);

    // a firing that flipped `woke` and died before delivering: the next firing delivers
    let h = start_detached(&lp, &parent, &two_leaves(), RunOptions::new())
        .await
        .unwrap();
    let run2 = h.run_id.clone();
    h.wait().await.unwrap();
    assert!(store.mark_workflow_woke(&run2).await.unwrap());
    assert_eq!(fire(&lp).await, [FiringOutcome::Delivered]);
    assert_eq!(wakes(&store, &parent, &run2).await, 1);
    store
        .create_timer(
            &parent,
            now_ms(),
            &format!("workflow:run:{run2} completed"),
            None,
        )
        .await
        .unwrap();
    assert_eq!(fire(&lp).await, [FiringOutcome::Skipped]);
    assert_eq!(wakes(&store, &parent, &run2).await, 1);
}

/// The child role: start a detached run, wait for its end (finish + wake armed), then hang
/// until killed — no timer runner ever runs here.
#[test]
fn detached_child() {
    let Ok(path) = std::env::var(CHILD) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let store = sqlite_at(&path).await;
        let lp = lp_over(&store);
        let parent = lp.new_session(Default::default()).await.unwrap();
        let h = start_detached(&lp, &parent, &two_leaves(), RunOptions::new())
            .await
            .unwrap();
        h.wait().await.unwrap();
        tokio::time::sleep(Duration::from_secs(60)).await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wake_survives_a_kill_between_the_finish_and_the_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("det.db").to_str().unwrap().to_owned();
    let store = sqlite_at(&path).await;
    let mut child = Command::new("/proc/self/exe")
        .args(["--exact", "detached_child", "--nocapture"])
        .env(CHILD, &path)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let run = loop {
        assert!(Instant::now() < deadline, "the child's run never finished");
        if let Some(r) = store.list_workflow_runs(None, 1).await.unwrap().first()
            && r.status.as_str() == "completed"
        {
            break r.clone();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    child.kill().unwrap();
    child.wait().unwrap();
    // "restart": this process opens the database, installs the guard and runs the timers
    let parent = run.parent_session_id.clone().unwrap();
    assert_eq!(wakes(&store, &parent, &run.run_id).await, 0);
    let lp = lp_over(&store);
    register_wake_guard(&lp).await.unwrap();
    assert_eq!(fire(&lp).await, [FiringOutcome::Delivered]);
    assert_eq!(fire(&lp).await, Vec::<FiringOutcome>::new());
    assert_eq!(wakes(&store, &parent, &run.run_id).await, 1);
}
