//! Scenarios for the workflow journal: runs and steps, first finish wins and the finish + wake
//! transaction (attempts, the woke flag, stale runs and the parent cascade are in
//! `workflow_attempts`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use serde_json::json;

use super::{Ctx, code};
use crate::db::TxMode;
use crate::ddl::statement_table;
use crate::{
    NewSession, NewWorkflowRun, SessionStore, WorkflowRunFinish, WorkflowRunStatus,
    WorkflowStepInput, now_ms, run_tx, timer_status,
};

pub(super) fn spec() -> serde_json::Value {
    json!({"name": "research", "root": {"type": "agent", "id": "a", "input": "ü ☃ {{x}}"}})
}

pub(super) async fn parent(s: &SessionStore) -> String {
    s.create_session(NewSession::new()).await.unwrap()
}

pub(super) async fn run_under(s: &SessionStore, run_id: &str, parent: &str) {
    s.create_workflow_run(
        NewWorkflowRun::new(run_id, "research", spec(), "topic")
            .with_parent(parent)
            .with_detached(true)
            .with_owner("worker-1"),
    )
    .await
    .unwrap();
}

pub(super) fn step(key: &str, status: &str) -> WorkflowStepInput {
    WorkflowStepInput::new(key, key.rsplit('/').next().unwrap_or(key), status)
}

pub async fn workflow_runs_create_get_list(ctx: Ctx) {
    let s = ctx.store().await;
    let p = parent(&s).await;
    let other = parent(&s).await;
    let before = now_ms();
    run_under(&s, "r1", &p).await;
    run_under(&s, "r0", &p).await; // same millisecond: still listed after r1
    run_under(&s, "r2", &other).await;
    s.create_workflow_run(
        NewWorkflowRun::new("free", "solo", json!({"k": [1, 2.5, null]}), "")
            .with_now_ms(before - 10),
    )
    .await
    .unwrap();

    let r = s.get_workflow_run("r1").await.unwrap().unwrap();
    assert_eq!(r.run_id, "r1");
    assert_eq!(r.parent_session_id.as_deref(), Some(p.as_str()));
    assert_eq!(
        (r.workflow.as_str(), r.input.as_str()),
        ("research", "topic")
    );
    assert_eq!(r.spec, spec());
    assert_eq!(r.status, WorkflowRunStatus::Running);
    assert!(r.detached && !r.woke);
    assert_eq!(r.attempts, 1);
    assert_eq!(r.owner.as_deref(), Some("worker-1"));
    assert_eq!(r.heartbeat_at_ms, Some(r.created_at_ms));
    assert!(r.created_at_ms >= before && r.updated_at_ms == r.created_at_ms);
    assert_eq!(
        (r.finished_at_ms, &r.result, &r.error),
        (None, &None, &None)
    );
    assert_eq!(r.driver_session_id, None);
    let free = s.get_workflow_run("free").await.unwrap().unwrap();
    assert_eq!(free.parent_session_id, None);
    assert_eq!(free.spec, json!({"k": [1, 2.5, null]}));
    assert!(!free.detached);
    assert_eq!(free.created_at_ms, before - 10);
    assert!(s.get_workflow_run("nope").await.unwrap().is_none());

    let ids = |rows: Vec<crate::WorkflowRunRow>| -> Vec<String> {
        rows.into_iter().map(|r| r.run_id).collect()
    };
    assert_eq!(
        ids(s.list_workflow_runs(Some(&p), 10).await.unwrap()),
        ["r1", "r0"]
    );
    assert_eq!(
        ids(s.list_workflow_runs(Some(&p), 1).await.unwrap()),
        ["r1"]
    );
    assert!(s.list_workflow_runs(Some(&p), 0).await.unwrap().is_empty());
    assert!(s.list_workflow_runs(Some("x"), 9).await.unwrap().is_empty());
    let all = ids(s.list_workflow_runs(None, 10).await.unwrap());
    assert_eq!(all.len(), 4);
    assert_eq!(all[0], "free");
    let pos = |id: &str| all.iter().position(|x| x == id).unwrap();
    assert!(pos("r1") < pos("r0"));

    // Refusals, all typed and writing nothing.
    let e = s
        .create_workflow_run(NewWorkflowRun::new("r1", "w", json!({}), ""))
        .await
        .unwrap_err();
    assert_eq!(code(&e), "store.constraint", "{e}");
    let e = s
        .create_workflow_run(NewWorkflowRun::new("r9", "w", json!({}), "").with_parent("ghost"))
        .await
        .unwrap_err();
    assert_eq!(code(&e), "session.not_found", "{e}");
    for bad in [String::new(), "x".repeat(256)] {
        let e = s
            .create_workflow_run(NewWorkflowRun::new(bad, "w", json!({}), ""))
            .await
            .unwrap_err();
        assert_eq!(code(&e), "invalid_argument", "{e}");
    }
    assert!(s.get_workflow_run("r9").await.unwrap().is_none());
    assert_eq!(s.list_workflow_runs(None, 100).await.unwrap().len(), 4);
}

pub async fn workflow_steps_upsert_and_resequence(ctx: Ctx) {
    let s = ctx.store().await;
    let p = parent(&s).await;
    run_under(&s, "run", &p).await;
    assert!(
        s.record_workflow_step(
            "run",
            1,
            step("plan", "completed")
                .with_session("sess_leaf")
                .with_text("a plan ☃")
                .with_payload(json!({"items": ["x", "y"]}))
                .with_usage(json!({"total_tokens": 12}))
                .with_finished_at_ms(42)
        )
        .await
        .unwrap()
    );
    for i in 0..3 {
        let st = step(&format!("fanout[{i}]/research"), "completed")
            .with_item("fanout", i)
            .with_text(format!("item {i}"));
        assert!(s.record_workflow_step("run", 1, st).await.unwrap());
    }
    let failed = step("fanout[1]/research", "failed")
        .with_item("fanout", 1)
        .with_error("boom");
    assert!(s.record_workflow_step("run", 1, failed).await.unwrap());

    let steps = s.list_workflow_steps("run").await.unwrap();
    let keys: Vec<&str> = steps.iter().map(|s| s.step_key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "plan",
            "fanout[0]/research",
            "fanout[2]/research",
            "fanout[1]/research"
        ]
    );
    let seqs: Vec<i64> = steps.iter().map(|s| s.seq).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert_eq!(seqs[3], 5, "the replaced step took the next seq");
    let plan = &steps[0];
    assert_eq!(plan.node_id, "plan");
    assert_eq!((plan.item_index, plan.parent_key.as_deref()), (None, None));
    assert_eq!(plan.session_id.as_deref(), Some("sess_leaf"));
    assert_eq!(plan.text, "a plan ☃");
    assert_eq!(plan.payload, Some(json!({"items": ["x", "y"]})));
    assert_eq!(plan.usage, json!({"total_tokens": 12}));
    assert_eq!((plan.attempt, plan.finished_at_ms), (1, 42));
    let replaced = &steps[3];
    assert_eq!(replaced.status, "failed");
    assert_eq!(replaced.error.as_deref(), Some("boom"));
    assert_eq!(replaced.text, "", "replacing rewrites every column");
    assert_eq!(
        (replaced.item_index, replaced.parent_key.as_deref()),
        (Some(1), Some("fanout"))
    );
    assert_eq!(replaced.usage, json!({}));
    assert!(s.list_workflow_steps("other").await.unwrap().is_empty());

    // Bad step input is refused before anything is written.
    for bad in [
        WorkflowStepInput::new("", "n", "completed"),
        WorkflowStepInput::new("k", "n", ""),
        WorkflowStepInput::new("k", "n", "s".repeat(33)),
    ] {
        let e = s.record_workflow_step("run", 1, bad).await.unwrap_err();
        assert_eq!(code(&e), "invalid_argument", "{e}");
    }
    assert_eq!(s.list_workflow_steps("run").await.unwrap().len(), 4);

    // A batch is one transaction: seqs in the given order, a repeated key keeps its last
    // version, and one bad step refuses the whole batch.
    let batch = vec![
        step("fanout[3]/research", "completed").with_item("fanout", 3),
        step("fanout", "running"),
        step("fanout[3]/research", "failed").with_item("fanout", 3),
    ];
    assert!(s.record_workflow_steps("run", 1, batch).await.unwrap());
    let bad = vec![
        step("x", "completed"),
        WorkflowStepInput::new("y", "", "completed"),
    ];
    let e = s.record_workflow_steps("run", 1, bad).await.unwrap_err();
    assert_eq!(code(&e), "invalid_argument", "{e}");
    assert!(s.record_workflow_steps("run", 1, Vec::new()).await.unwrap());
    assert!(!s.record_workflow_steps("run", 2, Vec::new()).await.unwrap());
    let steps = s.list_workflow_steps("run").await.unwrap();
    let tail: Vec<(&str, &str, i64)> = steps[4..]
        .iter()
        .map(|s| (s.step_key.as_str(), s.status.as_str(), s.seq))
        .collect();
    assert_eq!(
        tail,
        [
            ("fanout", "running", 7),
            ("fanout[3]/research", "failed", 8)
        ]
    );
    assert_eq!(steps.len(), 6);
}

pub async fn workflow_steps_refused_on_finished_or_stale_attempt(ctx: Ctx) {
    let s = ctx.store().await;
    let p = parent(&s).await;
    run_under(&s, "run", &p).await;
    assert!(
        !s.record_workflow_step("ghost", 1, step("a", "completed"))
            .await
            .unwrap()
    );
    assert!(
        !s.record_workflow_step("run", 2, step("a", "completed"))
            .await
            .unwrap()
    );
    assert!(
        !s.record_workflow_step("run", 0, step("a", "completed"))
            .await
            .unwrap()
    );
    assert!(
        s.record_workflow_step("run", 1, step("a", "completed"))
            .await
            .unwrap()
    );
    let fin = WorkflowRunFinish::new(WorkflowRunStatus::Completed);
    assert!(s.finish_workflow_run("run", 1, fin).await.unwrap());
    assert!(
        !s.record_workflow_step("run", 1, step("b", "completed"))
            .await
            .unwrap()
    );
    assert_eq!(
        s.begin_workflow_attempt("run", 1, "w2", now_ms())
            .await
            .unwrap(),
        Some(2)
    );
    // The zombie attempt 1 is refused; attempt 2 writes.
    assert!(
        !s.record_workflow_step("run", 1, step("b", "completed"))
            .await
            .unwrap()
    );
    assert!(
        s.record_workflow_step("run", 2, step("b", "completed"))
            .await
            .unwrap()
    );
    let steps = s.list_workflow_steps("run").await.unwrap();
    let got: Vec<(&str, i64)> = steps
        .iter()
        .map(|s| (s.step_key.as_str(), s.attempt))
        .collect();
    assert_eq!(got, [("a", 1), ("b", 2)]);
}

pub async fn workflow_first_finish_wins(ctx: Ctx) {
    let s = ctx.store().await;
    let p = parent(&s).await;
    run_under(&s, "run", &p).await;
    let e = s
        .finish_workflow_run("run", 1, WorkflowRunFinish::new(WorkflowRunStatus::Running))
        .await
        .unwrap_err();
    assert_eq!(code(&e), "invalid_argument");
    assert!(
        !s.finish_workflow_run("run", 2, WorkflowRunFinish::new(WorkflowRunStatus::Failed))
            .await
            .unwrap()
    );
    assert!(
        !s.finish_workflow_run(
            "ghost",
            1,
            WorkflowRunFinish::new(WorkflowRunStatus::Failed)
        )
        .await
        .unwrap()
    );
    let mut tasks = Vec::new();
    let statuses = [
        WorkflowRunStatus::Completed,
        WorkflowRunStatus::Failed,
        WorkflowRunStatus::Cancelled,
        WorkflowRunStatus::BudgetExceeded,
    ];
    for i in 0..8 {
        let s = s.clone();
        let status = statuses[i % 4];
        tasks.push(tokio::spawn(async move {
            let fin = WorkflowRunFinish::new(status)
                .with_result(json!({"winner": i}))
                .with_error(format!("e{i}"))
                .with_finished_at_ms(1000 + i as i64);
            (i, s.finish_workflow_run("run", 1, fin).await.unwrap())
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        let (i, won) = t.await.unwrap();
        if won {
            winners.push(i);
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    let w = winners[0];
    let r = s.get_workflow_run("run").await.unwrap().unwrap();
    assert_eq!(r.status, statuses[w % 4]);
    assert_eq!(r.result, Some(json!({"winner": w})));
    assert_eq!(r.error, Some(format!("e{w}")));
    assert_eq!(r.finished_at_ms, Some(1000 + w as i64));
    assert_eq!(r.owner, None, "finishing clears the owner");
    assert!(r.status.is_final());
}

pub(super) async fn timers_of(s: &SessionStore, sid: &str) -> Vec<crate::TimerRow> {
    s.list_timers(
        sid,
        &[
            timer_status::ARMED,
            timer_status::FIRING,
            timer_status::FIRED,
        ],
    )
    .await
    .unwrap()
}

pub async fn workflow_finish_and_wake_are_atomic(ctx: Ctx) {
    let s = ctx.store().await;
    let p = parent(&s).await;
    run_under(&s, "run", &p).await;
    let wake = || {
        WorkflowRunFinish::new(WorkflowRunStatus::Completed).with_wake("workflow:run:run completed")
    };

    // A finish that fails after its run update leaves neither the update nor a timer.
    let timers = s.tables().timers.clone();
    run_tx(&*ctx.db, TxMode::Write, move |tx| {
        tx.execute(&format!("DROP TABLE {timers}"), &[]).map(|_| ())
    })
    .await
    .unwrap();
    let e = s.finish_workflow_run("run", 1, wake()).await.unwrap_err();
    assert!(code(&e).starts_with("store."), "{e}");
    let r = s.get_workflow_run("run").await.unwrap().unwrap();
    assert_eq!(
        (r.status, r.finished_at_ms),
        (WorkflowRunStatus::Running, None)
    );
    let prefix = ctx.prefix.clone();
    run_tx(&*ctx.db, TxMode::Write, move |tx| {
        let ddl = tx.dialect().ddl(&prefix);
        for stmt in ddl {
            if statement_table(&stmt, &prefix).is_some_and(|t| t.name == "timers") {
                tx.execute(&stmt, &[])?;
            }
        }
        Ok(())
    })
    .await
    .unwrap();
    assert!(timers_of(&s, &p).await.is_empty());

    // The winning finish arms exactly one wake, due at once; a losing one arms none.
    let before = now_ms();
    assert!(s.finish_workflow_run("run", 1, wake()).await.unwrap());
    assert!(!s.finish_workflow_run("run", 1, wake()).await.unwrap());
    let t = timers_of(&s, &p).await;
    assert_eq!(t.len(), 1, "{t:?}");
    assert_eq!(t[0].note, "workflow:run:run completed");
    assert_eq!((t[0].status.as_str(), t[0].interval_s), ("armed", None));
    assert!(t[0].due_at >= before && t[0].due_at <= now_ms());
    assert_eq!(s.due_timers(None, 10).await.unwrap().len(), 1);

    // A resumed attempt arms its own wake.
    assert_eq!(
        s.begin_workflow_attempt("run", 1, "w", now_ms())
            .await
            .unwrap(),
        Some(2)
    );
    assert!(s.finish_workflow_run("run", 2, wake()).await.unwrap());
    assert_eq!(timers_of(&s, &p).await.len(), 2);

    // A wake needs a parent session: refused, and the run stays running.
    s.create_workflow_run(NewWorkflowRun::new("free", "w", json!({}), ""))
        .await
        .unwrap();
    let e = s.finish_workflow_run("free", 1, wake()).await.unwrap_err();
    assert_eq!(code(&e), "invalid_argument", "{e}");
    let r = s.get_workflow_run("free").await.unwrap().unwrap();
    assert_eq!(r.status, WorkflowRunStatus::Running);
}
