//! Scenarios for the workflow journal's attempts: the resume compare-and-set, the woke flag,
//! stale-run listing with heartbeats, and the cascade from a deleted parent session.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use serde_json::json;

use super::workflows::{parent, run_under, step, timers_of};
use super::{Ctx, code};
use crate::db::{TxMode, Value};
use crate::{NewWorkflowRun, WorkflowRunFinish, WorkflowRunStatus, now_ms, run_tx};

pub async fn workflow_begin_attempt_is_compare_and_set(ctx: Ctx) {
    let s = ctx.store().await;
    let p = parent(&s).await;
    run_under(&s, "run", &p).await;
    assert_eq!(
        s.begin_workflow_attempt("ghost", 1, "w", 1).await.unwrap(),
        None
    );
    let fin = WorkflowRunFinish::new(WorkflowRunStatus::Failed)
        .with_error("x")
        .with_result(json!({"partial": true}));
    assert!(s.finish_workflow_run("run", 1, fin).await.unwrap());
    assert!(s.mark_workflow_woke("run").await.unwrap());

    for round in 1..=2i64 {
        // Two (then eight) concurrent resumers of the same attempt: exactly one wins.
        let n = if round == 1 { 2 } else { 8 };
        let mut tasks = Vec::new();
        for i in 0..n {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                s.begin_workflow_attempt("run", round, &format!("w{i}"), 5000 + i)
                    .await
                    .unwrap()
            }));
        }
        let mut wins = Vec::new();
        for t in tasks {
            if let Some(a) = t.await.unwrap() {
                wins.push(a);
            }
        }
        assert_eq!(wins, [round + 1]);
        let r = s.get_workflow_run("run").await.unwrap().unwrap();
        assert_eq!(r.attempts, round + 1);
        assert_eq!(r.status, WorkflowRunStatus::Running);
        assert_eq!((r.finished_at_ms, &r.error, r.woke), (None, &None, false));
        assert!(r.owner.as_deref().is_some_and(|o| o.starts_with('w')));
        assert!(
            r.heartbeat_at_ms
                .is_some_and(|h| (5000..5000 + n).contains(&h))
        );
        assert_eq!(
            r.result,
            Some(json!({"partial": true})),
            "result kept until overwritten"
        );
    }
    // Attempt 3 is running (a crashed owner): resumable from `running` as well.
    assert_eq!(
        s.begin_workflow_attempt("run", 3, "w", 9).await.unwrap(),
        Some(4)
    );
    assert_eq!(
        s.begin_workflow_attempt("run", 3, "w", 9).await.unwrap(),
        None
    );
    let e = s.begin_workflow_attempt("run", 4, "", 9).await.unwrap_err();
    assert_eq!(code(&e), "invalid_argument");

    // The driver session is recorded only for the live attempt.
    assert!(
        s.set_workflow_driver_session("run", 4, "sess_drv")
            .await
            .unwrap()
    );
    assert!(
        !s.set_workflow_driver_session("run", 3, "sess_old")
            .await
            .unwrap()
    );
    let r = s.get_workflow_run("run").await.unwrap().unwrap();
    assert_eq!(r.driver_session_id.as_deref(), Some("sess_drv"));
}

pub async fn workflow_woke_flips_exactly_once(ctx: Ctx) {
    let s = ctx.store().await;
    let p = parent(&s).await;
    run_under(&s, "run", &p).await;
    assert!(!s.mark_workflow_woke("ghost").await.unwrap());
    for attempt in 1..=2 {
        let fin = WorkflowRunFinish::new(WorkflowRunStatus::Completed).with_wake("wake");
        assert!(s.finish_workflow_run("run", attempt, fin).await.unwrap());
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                s.mark_workflow_woke("run").await.unwrap()
            }));
        }
        let mut flipped = 0;
        for t in tasks {
            flipped += usize::from(t.await.unwrap());
        }
        assert_eq!(flipped, 1, "attempt {attempt}");
        assert!(s.get_workflow_run("run").await.unwrap().unwrap().woke);
        // A resume re-arms the guard for the next attempt.
        assert_eq!(
            s.begin_workflow_attempt("run", attempt, "w", now_ms())
                .await
                .unwrap(),
            Some(attempt + 1)
        );
    }
}

pub async fn workflow_stale_runs_are_listed(ctx: Ctx) {
    let s = ctx.store().await;
    let p = parent(&s).await;
    let now = now_ms();
    for (id, at) in [
        ("old", now - 120_000),
        ("older", now - 180_000),
        ("fresh", now),
    ] {
        s.create_workflow_run(
            NewWorkflowRun::new(id, "w", json!({}), "")
                .with_parent(&p)
                .with_owner("w1")
                .with_now_ms(at),
        )
        .await
        .unwrap();
    }
    s.create_workflow_run(
        NewWorkflowRun::new("done", "w", json!({}), "").with_now_ms(now - 500_000),
    )
    .await
    .unwrap();
    let fin = WorkflowRunFinish::new(WorkflowRunStatus::Completed);
    assert!(s.finish_workflow_run("done", 1, fin).await.unwrap());

    let ids = |rows: Vec<crate::WorkflowRunRow>| -> Vec<String> {
        rows.into_iter().map(|r| r.run_id).collect()
    };
    assert_eq!(
        ids(s.stale_workflow_runs(60_000, 10).await.unwrap()),
        ["older", "old"]
    );
    assert_eq!(
        ids(s.stale_workflow_runs(60_000, 1).await.unwrap()),
        ["older"]
    );
    assert_eq!(
        ids(s.stale_workflow_runs(150_000, 10).await.unwrap()),
        ["older"]
    );
    let e = s.stale_workflow_runs(-1, 10).await.unwrap_err();
    assert_eq!(code(&e), "invalid_argument");

    // A heartbeat keeps a run off the list; only its owner (or anyone, when unowned) may beat.
    assert!(
        s.heartbeat_workflow_run("old", 1, "w1", now_ms())
            .await
            .unwrap()
    );
    assert!(
        !s.heartbeat_workflow_run("older", 1, "intruder", now_ms())
            .await
            .unwrap()
    );
    assert!(
        !s.heartbeat_workflow_run("older", 2, "w1", now_ms())
            .await
            .unwrap()
    );
    assert!(
        !s.heartbeat_workflow_run("done", 1, "w1", now_ms())
            .await
            .unwrap()
    );
    assert_eq!(
        ids(s.stale_workflow_runs(60_000, 10).await.unwrap()),
        ["older"]
    );
    let r = s.get_workflow_run("old").await.unwrap().unwrap();
    assert!(r.heartbeat_at_ms.unwrap() >= now);

    // The resumer takes a stale run over; the old owner's beats then fail.
    assert_eq!(
        s.begin_workflow_attempt("older", 1, "w2", now_ms())
            .await
            .unwrap(),
        Some(2)
    );
    assert!(
        !s.heartbeat_workflow_run("older", 1, "w1", now_ms())
            .await
            .unwrap()
    );
    assert!(
        s.heartbeat_workflow_run("older", 2, "w2", now_ms())
            .await
            .unwrap()
    );
    assert!(s.stale_workflow_runs(60_000, 10).await.unwrap().is_empty());
}

pub async fn workflow_runs_go_with_their_parent_session(ctx: Ctx) {
    let s = ctx.store().await;
    let p = parent(&s).await;
    let keep = parent(&s).await;
    run_under(&s, "gone", &p).await;
    run_under(&s, "kept", &keep).await;
    for run in ["gone", "kept"] {
        assert!(
            s.record_workflow_step(run, 1, step("a", "completed"))
                .await
                .unwrap()
        );
    }
    assert_eq!(s.close_session(&p, true).await.unwrap(), 1);
    assert!(s.get_workflow_run("gone").await.unwrap().is_none());
    assert!(s.list_workflow_steps("gone").await.unwrap().is_empty());
    assert!(s.list_workflow_runs(Some(&p), 10).await.unwrap().is_empty());
    // A worker still executing the deleted run is told to stop, never crashes.
    assert!(
        !s.record_workflow_step("gone", 1, step("b", "completed"))
            .await
            .unwrap()
    );
    let fin = WorkflowRunFinish::new(WorkflowRunStatus::Completed).with_wake("w");
    assert!(!s.finish_workflow_run("gone", 1, fin).await.unwrap());
    assert_eq!(
        s.begin_workflow_attempt("gone", 1, "w", 1).await.unwrap(),
        None
    );
    assert!(
        s.stale_workflow_runs(0, 10)
            .await
            .unwrap()
            .iter()
            .all(|r| r.run_id != "gone")
    );
    assert!(timers_of(&s, &p).await.is_empty());
    // Other parents' runs are untouched.
    assert!(s.get_workflow_run("kept").await.unwrap().is_some());
    assert_eq!(s.list_workflow_steps("kept").await.unwrap().len(), 1);
    let t = s.tables().workflow_steps.clone();
    let rows = run_tx(&*ctx.db, TxMode::Read, move |tx| {
        tx.fetch_all(
            &format!("SELECT run_id FROM {t} WHERE run_id = ?"),
            &[Value::from("gone")],
        )
    })
    .await
    .unwrap();
    assert!(rows.is_empty());
}
