//! Durable timers on SQLite: a wake-up set by the scripted model through `schedule_wakeup`
//! fires after a restart (new loop, new runner, same file) and its note reaches the model; a
//! recurring timer fires N times and collapses missed periods; the `timer.fire` hook's skip,
//! cancel and postpone; the wake-up tools' texts; crashed claims are re-fired exactly once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use power_loop_agent::timers::{TIMER_PREAMBLE, timer_message};
use power_loop_agent::{
    FiringOutcome, NewSessionOptions, StatefulAgentLoop, TimerDue, TimerRunner, TimerRunnerOptions,
    register_timer_tools,
};
use power_loop_contracts::hook::TimerFireDirective;
use power_loop_contracts::{EventPayload, Role};
use power_loop_llm::{ScriptedLlm, Step};
use power_loop_store::{SessionStore, now_ms, timer_status};
use power_loop_tools::ToolRegistry;
use serde_json::json;
use support::*;

fn timer_registry() -> ToolRegistry {
    let mut r = ToolRegistry::new();
    register_timer_tools(&mut r).unwrap();
    r
}

fn build(llm: &ScriptedLlm, store: SessionStore) -> StatefulAgentLoop {
    StatefulAgentLoop::builder(Arc::new(llm.clone()))
        .store(store)
        .tools(timer_registry())
        .build()
        .unwrap()
}

async fn timer_messages(store: &SessionStore, sid: &str, id: i64) -> usize {
    let tag = format!("<timer id={id}>");
    store
        .load_all_messages(sid)
        .await
        .unwrap()
        .iter()
        .filter(|m| m.role == "user" && m.content.as_deref().unwrap_or("").starts_with(&tag))
        .count()
}

fn fast_runner(lp: &StatefulAgentLoop, lease_ms: u64) -> Arc<TimerRunner> {
    TimerRunner::new(
        lp.clone(),
        TimerRunnerOptions::default()
            .with_poll_interval(Duration::from_millis(20))
            .with_lease(Duration::from_millis(lease_ms))
            .with_retry_delay(Duration::from_millis(200)),
    )
}

#[tokio::test]
async fn one_shot_wakeup_set_by_the_model_fires_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("timers.db");
    let path = path.to_str().unwrap();

    // Process 1: the model schedules a wake-up, then the process goes away.
    let sid = {
        let llm = ScriptedLlm::new()
            .tool_call(
                "schedule_wakeup",
                json!({"delay_seconds": 5, "note": "  check the nightly build  "}),
            )
            .then_text("I'll check back in 5 seconds.");
        let lp = build(&llm, sqlite_at(path).await);
        let sid = lp.new_session(NewSessionOptions::default()).await.unwrap();
        let r = lp.send(&sid, "remind me about the build").await.unwrap();
        assert_eq!(r.final_text, "I'll check back in 5 seconds.");
        let msgs = lp.get_messages(&sid, false).await.unwrap();
        let tool_msg = msgs.iter().find(|m| m.role == Role::Tool).unwrap();
        assert_eq!(
            tool_msg.text(),
            "Wake-up #1 scheduled in 5s. You'll receive your note."
        );
        let timers = lp.list_timers(&sid).await.unwrap();
        assert_eq!(timers.len(), 1);
        assert_eq!(timers[0].note, "check the nightly build");
        let due = timers[0].due_at - now_ms();
        assert!((3_000..=5_000).contains(&due), "due in {due} ms");
        lp.close(Duration::from_secs(5)).await.unwrap();
        sid
    };

    // Process 2: a new loop and runner on the same file.
    let llm = ScriptedLlm::new().then_text("Build checked: green.");
    let lp = build(&llm, sqlite_at(path).await);
    let log = record(lp.event_bus());
    let runner = fast_runner(&lp, 60_000);
    assert!(
        runner.run_once(now_ms()).await.unwrap().is_empty(),
        "not due yet"
    );
    let fired = runner.run_once(now_ms() + 6_000).await.unwrap();
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].outcome, FiringOutcome::Delivered);
    assert!(!fired[0].deduplicated);

    let expected = timer_message(1, "check the nightly build");
    assert!(expected.contains(TIMER_PREAMBLE));
    let store = lp.store().await.unwrap();
    let rows = store.load_all_messages(&sid).await.unwrap();
    assert!(
        rows.iter()
            .any(|m| m.role == "user" && m.content.as_deref() == Some(expected.as_str())),
        "the note was delivered into the session"
    );
    assert_eq!(
        rows.last().unwrap().content.as_deref(),
        Some("Build checked: green.")
    );
    let req = llm.last_request().unwrap();
    assert!(
        req.messages.iter().any(|m| m.text() == expected),
        "the model saw the note"
    );
    let t = store.get_timer(&sid, 1).await.unwrap().unwrap();
    assert_eq!(t.status, timer_status::FIRED);
    assert_eq!(t.fire_count, 1);
    assert!(t.last_fired_at.is_some());
    let outcomes: Vec<String> = log
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match &e.payload {
            EventPayload::TimerFired(p) => Some(format!("{}:{}", p.timer_id, p.outcome)),
            _ => None,
        })
        .collect();
    assert_eq!(outcomes, ["1:delivered"]);
    assert!(runner.run_once(now_ms() + 60_000).await.unwrap().is_empty());
}

#[tokio::test]
async fn background_runner_fires_and_shuts_down() {
    let (store, _dir) = sqlite_store().await;
    let llm = ScriptedLlm::new();
    let lp = build(&llm, store.clone());
    let sid = lp.new_session(NewSessionOptions::default()).await.unwrap();
    lp.schedule_timer(&sid, TimerDue::InSeconds(0), "ping", None)
        .await
        .unwrap();
    let runner = fast_runner(&lp, 60_000);
    runner.start().unwrap();
    runner.start().unwrap();
    assert!(runner.is_running());
    let t0 = Instant::now();
    while store.get_timer(&sid, 1).await.unwrap().unwrap().status != timer_status::FIRED {
        assert!(t0.elapsed() < Duration::from_secs(10), "timer never fired");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    runner.shutdown().await;
    assert!(!runner.is_running());
    assert_eq!(timer_messages(&store, &sid, 1).await, 1);
}

#[tokio::test]
async fn recurring_timer_fires_n_times_and_collapses_missed_periods() {
    let (store, _dir) = sqlite_store().await;
    let llm = ScriptedLlm::new();
    let lp = build(&llm, store.clone());
    let sid = lp.new_session(NewSessionOptions::default()).await.unwrap();
    let t = lp
        .schedule_timer(&sid, TimerDue::InSeconds(0), "poll the queue", Some(1))
        .await
        .unwrap();
    let runner = fast_runner(&lp, 60_000);
    const N: i64 = 5;
    for i in 1..=N {
        // Each poll is 1.5 s "later" than the last re-arm (due = finish + 1 s).
        let fired = runner.run_once(now_ms() + 1_500).await.unwrap();
        assert_eq!(fired.len(), 1, "firing {i}");
        assert_eq!(fired[0].outcome, FiringOutcome::Delivered);
        let row = store.get_timer(&sid, t.timer_id).await.unwrap().unwrap();
        assert_eq!(row.status, timer_status::ARMED);
        assert_eq!(row.fire_count, i);
        assert!(row.due_at > now_ms(), "re-armed into the future");
    }
    assert_eq!(timer_messages(&store, &sid, t.timer_id).await, 5);
    assert_eq!(llm.call_count(), 5);

    // Downtime: 10 periods missed → one firing, re-armed one period after it.
    let late = lp
        .schedule_timer(&sid, TimerDue::AtMs(now_ms() - 10_000), "late", Some(1))
        .await
        .unwrap();
    lp.cancel_timer(&sid, t.timer_id).await.unwrap();
    let now = now_ms();
    let fired = runner.run_once(now).await.unwrap();
    assert_eq!(fired.len(), 1);
    assert!(
        runner.run_once(now).await.unwrap().is_empty(),
        "missed periods collapsed"
    );
    let row = store.get_timer(&sid, late.timer_id).await.unwrap().unwrap();
    assert_eq!(row.fire_count, 1);
    assert!(row.due_at >= now + 1_000 && row.due_at <= now_ms() + 1_000);
}

#[tokio::test]
async fn timer_fire_hook_skips_cancels_postpones_and_rewrites() {
    let (store, _dir) = sqlite_store().await;
    let llm = ScriptedLlm::new();
    let lp = build(&llm, store.clone());
    let log = record(lp.event_bus());
    lp.hooks().on_timer_fire(0, |ctx| {
        match ctx.note.as_str() {
            "skip" => ctx.directive = TimerFireDirective::Skip,
            "cancel" => ctx.directive = TimerFireDirective::Cancel,
            "later" => ctx.postpone_s = 30.0,
            _ => ctx.message = format!("{}\n(rewritten)", ctx.message),
        }
        Ok(())
    });
    let sid = lp.new_session(NewSessionOptions::default()).await.unwrap();
    for note in ["skip", "cancel", "later", "deliver"] {
        lp.schedule_timer(&sid, TimerDue::InSeconds(0), note, None)
            .await
            .unwrap();
    }
    // An orphan timer (its session no longer exists) is cancelled.
    let gone = "a-deleted-session".to_owned();
    store
        .create_timer(&gone, now_ms(), "orphan", None)
        .await
        .unwrap();

    let mut fired = lp_runner_once(&lp).await;
    fired.sort();
    assert_eq!(
        fired,
        [
            (gone.clone(), 1, FiringOutcome::Cancelled.as_str()),
            (sid.clone(), 1, "skipped"),
            (sid.clone(), 2, "cancelled"),
            (sid.clone(), 3, "postponed"),
            (sid.clone(), 4, "delivered"),
        ]
        .map(|(s, i, o)| (s, i, o.to_owned()))
    );
    let st = |id| {
        let store = store.clone();
        let sid = sid.clone();
        async move { store.get_timer(&sid, id).await.unwrap().unwrap() }
    };
    assert_eq!(st(1).await.status, timer_status::FIRED);
    assert_eq!(st(1).await.fire_count, 1);
    assert_eq!(st(2).await.status, timer_status::CANCELLED);
    let later = st(3).await;
    assert_eq!(later.status, timer_status::ARMED);
    assert!(later.due_at >= now_ms() + 25_000);
    assert_eq!(later.fire_count, 0);
    let rows = store.load_all_messages(&sid).await.unwrap();
    let users: Vec<_> = rows.iter().filter(|m| m.role == "user").collect();
    assert_eq!(
        users.len(),
        1,
        "only the delivered timer reached the session"
    );
    assert!(
        users[0]
            .content
            .as_deref()
            .unwrap()
            .ends_with("(rewritten)")
    );
    let n = log
        .lock()
        .unwrap()
        .iter()
        .filter(|e| matches!(e.payload, EventPayload::TimerFired(_)))
        .count();
    assert_eq!(n, 5);
}

async fn lp_runner_once(lp: &StatefulAgentLoop) -> Vec<(String, i64, String)> {
    fast_runner(lp, 60_000)
        .run_once(now_ms())
        .await
        .unwrap()
        .into_iter()
        .map(|f| (f.session_id, f.timer_id, f.outcome.as_str().to_owned()))
        .collect()
}

#[tokio::test]
async fn wakeup_tools_validate_list_cancel_and_budget() {
    let (store, _dir) = sqlite_store().await;
    let mut steps = vec![
        Step::tool_call("schedule_wakeup", json!({"delay_seconds": 4, "note": "x"})),
        Step::tool_call(
            "schedule_wakeup",
            json!({"delay_seconds": 10, "note": "x", "every_seconds": 3_000_000}),
        ),
        Step::tool_call(
            "schedule_wakeup",
            json!({"delay_seconds": 10, "note": "   "}),
        ),
        Step::tool_call(
            "schedule_wakeup",
            json!({"delay_seconds": 60, "note": "standup", "every_seconds": 3600}),
        ),
        Step::tool_call("list_wakeups", json!({})),
        Step::tool_call("cancel_wakeup", json!({"timer_id": 1})),
        Step::tool_call("cancel_wakeup", json!({"timer_id": 1})),
        Step::tool_call("list_wakeups", json!({})),
        Step::tool_call("current_time", json!({})),
    ];
    for i in 0..11 {
        steps.push(Step::tool_call(
            "schedule_wakeup",
            json!({"delay_seconds": 100 + i, "note": format!("n{i}")}),
        ));
    }
    steps.push(Step::text("done"));
    let llm = ScriptedLlm::new().steps(steps);
    let lp = build(&llm, store.clone());
    let sid = lp.new_session(NewSessionOptions::default()).await.unwrap();
    lp.send(&sid, "go").await.unwrap();
    let outs: Vec<String> = lp
        .get_messages(&sid, false)
        .await
        .unwrap()
        .iter()
        .filter(|m| m.role == Role::Tool)
        .map(|m| m.text())
        .collect();
    assert!(
        outs[0].contains("delay_seconds must be between 5 and 2592000"),
        "{}",
        outs[0]
    );
    assert!(
        outs[1].contains("every_seconds must be between 5 and 2592000"),
        "{}",
        outs[1]
    );
    assert!(outs[2].contains("note is required — write what future-you should do"));
    assert_eq!(
        outs[3],
        "Recurring wake-up #1 scheduled: first in 60s, then every 3600s until you cancel it."
    );
    assert!(
        outs[4] == "#1 in 59s (every 3600s, fired 0x) (armed): standup"
            || outs[4] == "#1 in 60s (every 3600s, fired 0x) (armed): standup",
        "{}",
        outs[4]
    );
    assert_eq!(outs[5], "Wake-up #1 cancelled.");
    assert_eq!(outs[6], "Wake-up #1 not found or already fired.");
    assert_eq!(outs[7], "No wake-ups scheduled.");
    let re = outs[8].as_bytes();
    assert!(re.len() > 20 && re[4] == b'-' && re[10] == b' ' && outs[8].ends_with("day)"));
    for (i, o) in outs[9..19].iter().enumerate() {
        assert_eq!(
            o,
            &format!(
                "Wake-up #{} scheduled in {}s. You'll receive your note.",
                i + 2,
                100 + i
            )
        );
    }
    assert_eq!(
        outs[19],
        "Budget exceeded: 10 wake-ups already scheduled. Cancel or merge some first \
         (list_wakeups / cancel_wakeup)."
    );
    assert_eq!(lp.list_timers(&sid).await.unwrap().len(), 10);
}

#[tokio::test]
async fn crashed_claim_is_refired_once_after_the_lease() {
    let (store, _dir) = sqlite_store().await;
    let llm = ScriptedLlm::new();
    let lp = build(&llm, store.clone());
    let s1 = lp.new_session(NewSessionOptions::default()).await.unwrap();
    let s2 = lp.new_session(NewSessionOptions::default()).await.unwrap();

    // Crash 1: a runner claimed the timer of s1 and died before delivering.
    lp.schedule_timer(&s1, TimerDue::InSeconds(0), "before-delivery crash", None)
        .await
        .unwrap();
    assert_eq!(
        store
            .claim_due_timers(now_ms(), 10, 300)
            .await
            .unwrap()
            .len(),
        1
    );

    // Crash 2: a runner claimed the timer of s2, delivered the note (persisted) and died
    // while the model was still answering.
    lp.schedule_timer(&s2, TimerDue::InSeconds(0), "after-delivery crash", None)
        .await
        .unwrap();
    let hung_llm = ScriptedLlm::new().with_delay(Duration::from_secs(3600));
    let crashed = build(&hung_llm, store.clone());
    let crashed_runner = fast_runner(&crashed, 60_000);
    let r = tokio::time::timeout(
        Duration::from_millis(500),
        crashed_runner.run_once(now_ms()),
    )
    .await;
    assert!(r.is_err(), "the crashed runner never finished");
    drop(crashed_runner);
    drop(crashed);
    assert_eq!(
        timer_messages(&store, &s2, 1).await,
        1,
        "delivered before the crash"
    );

    let runner = fast_runner(&lp, 1_500);
    assert!(
        runner.run_once(now_ms()).await.unwrap().is_empty(),
        "live claims are not taken over"
    );
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    let mut fired = runner.run_once(now_ms()).await.unwrap();
    fired.sort_by_key(|f| f.session_id == s2);
    assert_eq!(fired.len(), 2);
    assert!(fired.iter().all(|f| f.outcome == FiringOutcome::Delivered));
    assert!(
        !fired[0].deduplicated,
        "s1 had not been delivered: delivered now"
    );
    assert!(
        fired[1].deduplicated,
        "s2 was delivered before the crash: not again"
    );
    assert_eq!(llm.call_count(), 1, "one new model call (s1 only)");
    for sid in [&s1, &s2] {
        assert_eq!(timer_messages(&store, sid, 1).await, 1);
        let t = store.get_timer(sid, 1).await.unwrap().unwrap();
        assert_eq!((t.status.as_str(), t.fire_count), (timer_status::FIRED, 1));
    }
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    assert!(runner.run_once(now_ms() + 60_000).await.unwrap().is_empty());
}

#[tokio::test]
async fn failed_delivery_is_rearmed_and_retried() {
    let (store, _dir) = sqlite_store().await;
    let llm = ScriptedLlm::new();
    let lp = build(&llm, store.clone());
    let sid = lp.new_session(NewSessionOptions::default()).await.unwrap();
    lp.schedule_timer(&sid, TimerDue::InSeconds(0), "retry me", None)
        .await
        .unwrap();
    let fail = lp.hooks().on_timer_fire(0, |_ctx| {
        Err(power_loop_contracts::Error::invalid_argument("hook broke"))
    });
    let runner = fast_runner(&lp, 60_000);
    let fired = runner.run_once(now_ms()).await.unwrap();
    assert_eq!(fired[0].outcome, FiringOutcome::Failed);
    assert!(fired[0].error.as_deref().unwrap().contains("hook broke"));
    let t = store.get_timer(&sid, 1).await.unwrap().unwrap();
    assert_eq!((t.status.as_str(), t.fire_count), (timer_status::ARMED, 0));
    assert!(lp.hooks().unregister(fail));
    let fired = runner.run_once(now_ms() + 1_000).await.unwrap();
    assert_eq!(fired[0].outcome, FiringOutcome::Delivered);
    assert_eq!(timer_messages(&store, &sid, 1).await, 1);
}
