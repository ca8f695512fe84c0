//! Scenarios for the workflow journal: runs and steps, attempt compare-and-set, first finish
//! wins, the finish + wake transaction, the woke flag, stale runs and the parent cascade.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use power_loop_contracts::Error;
use serde_json::json;

use super::Ctx;
use crate::db::{TxMode, Value};
use crate::ddl::statement_table;
use crate::{
    NewSession, NewWorkflowRun, SessionStore, WorkflowRunFinish, WorkflowRunStatus,
    WorkflowStepInput, now_ms, run_tx, timer_status,
};

fn code(e: &Error) -> &'static str {
    e.code().as_str()
}

fn spec() -> serde_json::Value {
    json!({"name": "research", "root": {"type": "agent", "id": "a", "input": "ü ☃ {{x}}"}})
}

async fn parent(s: &SessionStore) -> String {
    s.create_session(NewSession::new()).await.unwrap()
}

async fn run_under(s: &SessionStore, run_id: &str, parent: &str) {
    s.create_workflow_run(
        NewWorkflowRun::new(run_id, "research", spec(), "topic")
            .with_parent(parent)
            .with_detached(true)
            .with_owner("worker-1"),
    )
    .await
    .unwrap();
}

fn step(key: &str, status: &str) -> WorkflowStepInput {
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

async fn timers_of(s: &SessionStore, sid: &str) -> Vec<crate::TimerRow> {
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
