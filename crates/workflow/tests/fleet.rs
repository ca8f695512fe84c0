//! The fleet's leaf claims on the store (exclusive, leased, token-checked, counted) and a fleet
//! worker served in-process running a fan-out published by a `FleetExecutor`, on SQLite and,
//! when configured, PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use power_loop_contracts::ErrorCode;
use power_loop_store::{NewWorkflowRun, SessionStore, WorkflowLeafState};
use power_loop_workflow::{
    FleetExecutor, FleetHost, FleetOptions, LeafStatus, RunOptions, RunStatus, WorkflowEngine,
    serve_fleet,
};
use serde_json::json;
use support::*;
use tokio_util::sync::CancellationToken;

async fn new_run(store: &SessionStore, run_id: &str) {
    store
        .create_workflow_run(NewWorkflowRun::new(run_id, "wf", json!({}), ""))
        .await
        .unwrap();
}

async fn claims_scenario(store: &SessionStore) {
    new_run(store, "run1").await;
    // nothing to claim yet
    assert!(
        store
            .claim_workflow_leaf("w1", 60_000)
            .await
            .unwrap()
            .is_none()
    );
    let row = store
        .publish_workflow_leaf("run1", 1, "a", json!({"job": "a"}))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.state, WorkflowLeafState::Ready);
    assert_eq!(row.claims, 0);
    // publishing under an attempt that does not hold the run writes nothing
    assert!(
        store
            .publish_workflow_leaf("run1", 2, "b", json!({}))
            .await
            .unwrap()
            .is_none()
    );
    // one claimer gets it, a second finds nothing
    let c1 = store.claim_workflow_leaf("w1", 150).await.unwrap().unwrap();
    assert_eq!((c1.step_key.as_str(), c1.claims), ("a", 1));
    assert_eq!(c1.request, json!({"job": "a"}));
    let t1 = c1.claim_token.clone().unwrap();
    assert!(
        store
            .claim_workflow_leaf("w2", 150)
            .await
            .unwrap()
            .is_none()
    );
    // a wrong token cannot record
    let e = store
        .complete_workflow_leaf("run1", "a", "claim_forged", "completed", json!({}))
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::WorkflowClaimLost);
    // w1 "dies": its lease runs out and w2 takes the leaf over (the claim is counted)
    tokio::time::sleep(Duration::from_millis(300)).await;
    let c2 = store
        .claim_workflow_leaf("w2", 60_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((c2.step_key.as_str(), c2.claims), ("a", 2));
    assert_eq!(c2.claimed_by.as_deref(), Some("w2"));
    let t2 = c2.claim_token.clone().unwrap();
    assert_ne!(t1, t2);
    // the zombie w1 can neither renew nor record
    assert!(
        !store
            .renew_workflow_leaf_claim("run1", "a", &t1, 60_000)
            .await
            .unwrap()
    );
    let e = store
        .complete_workflow_leaf("run1", "a", &t1, "completed", json!({"by": "w1"}))
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::WorkflowClaimLost);
    assert!(
        store
            .renew_workflow_leaf_claim("run1", "a", &t2, 60_000)
            .await
            .unwrap()
    );
    store
        .complete_workflow_leaf("run1", "a", &t2, "completed", json!({"by": "w2"}))
        .await
        .unwrap();
    // recorded exactly once: a second record with the same token is refused
    let e = store
        .complete_workflow_leaf("run1", "a", &t2, "completed", json!({"by": "again"}))
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::WorkflowClaimLost);
    let done = store.get_workflow_leaf("run1", "a").await.unwrap().unwrap();
    assert_eq!(done.state, WorkflowLeafState::Done);
    assert_eq!(done.result, Some(json!({"by": "w2"})));
    assert_eq!(done.result_status.as_deref(), Some("completed"));
    // a done leaf is not claimable; re-publishing keeps its result
    assert!(
        store
            .claim_workflow_leaf("w3", 60_000)
            .await
            .unwrap()
            .is_none()
    );
    let again = store
        .publish_workflow_leaf("run1", 1, "a", json!({"job": "a2"}))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.state, WorkflowLeafState::Done);
    // release (a drain) makes a claimed leaf ready again at once, claims kept
    store
        .publish_workflow_leaf("run1", 1, "b", json!({"job": "b"}))
        .await
        .unwrap();
    let cb = store
        .claim_workflow_leaf("w1", 60_000)
        .await
        .unwrap()
        .unwrap();
    let tb = cb.claim_token.clone().unwrap();
    assert!(
        store
            .release_workflow_leaf_claim("run1", "b", &tb)
            .await
            .unwrap()
    );
    assert!(
        !store
            .release_workflow_leaf_claim("run1", "b", &tb)
            .await
            .unwrap()
    );
    let cb2 = store
        .claim_workflow_leaf("w2", 60_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((cb2.step_key.as_str(), cb2.claims), ("b", 2));
    store
        .complete_workflow_leaf(
            "run1",
            "b",
            cb2.claim_token.as_deref().unwrap(),
            "failed",
            json!({}),
        )
        .await
        .unwrap();
    // a resume (attempt 2) re-runs the failed leaf but keeps the completed one
    assert_eq!(
        store
            .begin_workflow_attempt("run1", 1, "resumer", 1)
            .await
            .unwrap(),
        Some(2)
    );
    let b = store
        .publish_workflow_leaf("run1", 2, "b", json!({"job": "b2"}))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(b.state, WorkflowLeafState::Ready);
    assert_eq!(b.request, json!({"job": "b2"}));
    let a = store
        .publish_workflow_leaf("run1", 2, "a", json!({"job": "a3"}))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(a.state, WorkflowLeafState::Done);
    // a ready leaf nobody claimed can be withdrawn; a done one cannot
    assert!(store.withdraw_workflow_leaf("run1", "b").await.unwrap());
    assert!(!store.withdraw_workflow_leaf("run1", "a").await.unwrap());
    assert_eq!(store.list_workflow_leaves("run1").await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaf_claims_are_exclusive_leased_token_checked_and_counted_sqlite() {
    let (store, _dir) = sqlite_store().await;
    claims_scenario(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaf_claims_are_exclusive_leased_token_checked_and_counted_postgres() {
    let Some(dsn) = pg_dsn() else { return };
    let prefix = format!("flc{}_{:x}_", std::process::id(), rand_suffix());
    let store = pg_at(&dsn, &prefix).await;
    claims_scenario(&store).await;
}

fn rand_suffix() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
}

async fn fan_out_through_the_fleet(store: SessionStore) {
    let llm = model(|_, user| power_loop_llm::Step::text(format!("did {user}")));
    let lp = agent_loop(&llm, &store);
    let shutdown = CancellationToken::new();
    let host = FleetHost::new(Arc::new(llm.clone()), store.clone());
    let opts = FleetOptions::new()
        .with_worker_id("inproc")
        .with_concurrency(4)
        .with_poll_interval(Duration::from_millis(20));
    let worker = tokio::spawn(serve_fleet(host, opts, shutdown.clone()));
    let spec = spec(
        json!({"name": "fan", "root": {"type": "foreach", "id": "fan",
        "items": (0..20).collect::<Vec<_>>(), "as": "n", "parallel": true, "max_concurrency": 8,
        "body": leaf("leaf", "work", "item {{n}}")}}),
    );
    let ex = FleetExecutor::new().with_poll_interval(Duration::from_millis(20));
    let out = WorkflowEngine::new(lp, RunOptions::new().with_executor(Arc::new(ex)))
        .run(&spec)
        .await
        .unwrap();
    assert_eq!(
        out.result.status,
        RunStatus::Completed,
        "{:?}",
        out.result.errors
    );
    let run_id = out.run_id.unwrap();
    let leaves = store.list_workflow_leaves(&run_id).await.unwrap();
    assert_eq!(leaves.len(), 20);
    let steps = store.list_workflow_steps(&run_id).await.unwrap();
    for l in &leaves {
        assert_eq!(l.state, WorkflowLeafState::Done);
        assert_eq!(l.claims, 1);
        let step = steps.iter().find(|s| s.step_key == l.step_key).unwrap();
        assert_eq!(step.status, LeafStatus::Completed.as_str());
        let r = l.result.as_ref().unwrap();
        assert_eq!(r["session_id"].as_str(), step.session_id.as_deref());
        assert_eq!(r["worker"], "inproc");
        // the leaf's session is in the shared store, with the answer
        let sid = step.session_id.as_deref().unwrap();
        assert!(store.get_session(sid).await.unwrap().is_some());
    }
    let texts: Vec<&str> = steps.iter().map(|s| s.text.as_str()).collect();
    for n in 0..20 {
        assert!(
            texts.contains(&format!("did item {n}").as_str()),
            "{texts:?}"
        );
    }
    shutdown.cancel();
    let report = worker.await.unwrap().unwrap();
    assert_eq!(report.leaves_recorded, 20);
    assert_eq!(report.claims_lost, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_process_fleet_worker_runs_a_published_fan_out_sqlite() {
    let (store, _dir) = sqlite_store().await;
    fan_out_through_the_fleet(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_executor_refuses_runs_without_a_journal() {
    let (store, _dir) = sqlite_store().await;
    let llm = model(|_, user| power_loop_llm::Step::text(user.to_owned()));
    let lp = agent_loop(&llm, &store);
    let spec = spec(json!({"name": "one", "root": leaf("a", "p", "x")}));
    let out = WorkflowEngine::new(
        lp,
        RunOptions::new()
            .with_journal(false)
            .with_executor(Arc::new(FleetExecutor::new())),
    )
    .run(&spec)
    .await
    .unwrap();
    assert_eq!(out.result.status, RunStatus::Failed);
    assert!(
        out.result
            .errors
            .iter()
            .any(|e| e.contains("journaled runs only")),
        "{:?}",
        out.result.errors
    );
}
