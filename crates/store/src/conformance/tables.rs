//! Scenarios for the reference properties of single tables: the timer state machine, note ids,
//! usage and stats, runtime and shared state, background-task updates.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use serde_json::json;

use super::{Ctx, code};
use crate::types::timer_status as ts;
use crate::{BackgroundTaskUpdate, NewSession, StatsDelta, UsageRecord};

pub async fn timers_follow_the_state_machine(ctx: Ctx) {
    let s = ctx.store().await;
    let sid = s.create_session(NewSession::new()).await.unwrap();
    let now = crate::now_ms();
    let t1 = s
        .create_timer(&sid, now - 1000, "one-shot", None)
        .await
        .unwrap();
    let t2 = s
        .create_timer(&sid, now - 500, "recurring", Some(60))
        .await
        .unwrap();
    let t3 = s
        .create_timer(&sid, now + 3_600_000, "later", Some(0))
        .await
        .unwrap();
    assert_eq!((t1.timer_id, t2.timer_id, t3.timer_id), (1, 2, 3));
    assert_eq!(t3.interval_s, None, "interval 0 means one-shot");
    assert_eq!(s.get_timer(&sid, 1).await.unwrap().unwrap(), t1);
    let due = s.due_timers(Some(now), 50).await.unwrap();
    assert_eq!(
        due.iter().map(|t| t.timer_id).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert!(
        s.transition_timer(&sid, 1, ts::ARMED, ts::FIRING, None)
            .await
            .unwrap()
    );
    assert!(
        !s.transition_timer(&sid, 1, ts::ARMED, ts::FIRING, None)
            .await
            .unwrap(),
        "a second claim must fail"
    );
    assert!(s.finish_firing_timer(&sid, 1).await.unwrap());
    let t = s.get_timer(&sid, 1).await.unwrap().unwrap();
    assert_eq!((t.status.as_str(), t.fire_count), (ts::FIRED, 1));
    assert!(t.last_fired_at.is_some());
    assert!(!s.finish_firing_timer(&sid, 1).await.unwrap());
    assert!(
        s.transition_timer(&sid, 2, ts::ARMED, ts::FIRING, None)
            .await
            .unwrap()
    );
    assert!(s.heartbeat_firing_timer(&sid, 2).await.unwrap());
    assert!(s.finish_firing_timer(&sid, 2).await.unwrap());
    let t = s.get_timer(&sid, 2).await.unwrap().unwrap();
    assert_eq!((t.status.as_str(), t.fire_count), (ts::ARMED, 1));
    assert!(
        t.due_at >= now + 60_000,
        "recurring timer moved by its interval"
    );
    assert!(s.cancel_timer(&sid, 3).await.unwrap());
    let live = s.list_live_timers(&sid).await.unwrap();
    assert_eq!(live.iter().map(|t| t.timer_id).collect::<Vec<_>>(), vec![2]);
    assert!(s.list_timers(&sid, &[]).await.unwrap().is_empty());
    let all = s
        .list_timers(&sid, &[ts::ARMED, ts::FIRING, ts::FIRED, ts::CANCELLED])
        .await
        .unwrap();
    assert_eq!(all.len(), 3);
    // Stale firing rows are recovered; a heartbeat keeps a live claim.
    let t4 = s.create_timer(&sid, now - 10, "stale", None).await.unwrap();
    assert!(
        s.transition_timer(&sid, t4.timer_id, ts::ARMED, ts::FIRING, None)
            .await
            .unwrap()
    );
    assert_eq!(
        s.recover_stale_firing_timers(60_000).await.unwrap(),
        0,
        "fresh claim is not stale"
    );
    assert!(s.heartbeat_firing_timer(&sid, t4.timer_id).await.unwrap());
    assert_eq!(s.recover_stale_firing_timers(-1000).await.unwrap(), 1);
    assert_eq!(
        s.get_timer(&sid, t4.timer_id)
            .await
            .unwrap()
            .unwrap()
            .status,
        ts::ARMED
    );
    assert!(
        !s.heartbeat_firing_timer(&sid, t4.timer_id).await.unwrap(),
        "lost claim"
    );
    assert!(
        s.transition_timer(&sid, t4.timer_id, ts::ARMED, ts::FIRING, None)
            .await
            .unwrap()
    );
    assert!(s.rearm_timer(&sid, t4.timer_id, now + 5).await.unwrap());
    assert_eq!(
        s.get_timer(&sid, t4.timer_id)
            .await
            .unwrap()
            .unwrap()
            .due_at,
        now + 5
    );
    // Prune removes only fired/cancelled.
    assert_eq!(
        s.prune_timers(&sid, &[ts::FIRED, ts::CANCELLED], None)
            .await
            .unwrap(),
        2
    );
    assert_eq!(s.prune_timers(&sid, &[], None).await.unwrap(), 0);
    let left = s
        .list_timers(&sid, &[ts::ARMED, ts::FIRING, ts::FIRED, ts::CANCELLED])
        .await
        .unwrap();
    assert_eq!(
        left.iter().map(|t| t.timer_id).collect::<Vec<_>>(),
        vec![4, 2]
    );
}

pub async fn notes_have_sequential_ids(ctx: Ctx) {
    let s = ctx.store().await;
    let sid = s.create_session(NewSession::new()).await.unwrap();
    let a = s.add_note(&sid, "first", false).await.unwrap();
    let b = s.add_note(&sid, "second", true).await.unwrap();
    assert_eq!((a.note_id, b.note_id), (1, 2));
    assert!(b.pinned);
    assert!(
        !s.update_note(&sid, 99, Some("x".into()), None)
            .await
            .unwrap()
    );
    assert!(
        s.update_note(&sid, 1, Some("first!".into()), Some(true))
            .await
            .unwrap()
    );
    assert_eq!(s.count_notes(&sid).await.unwrap(), 2);
    let list = s.list_notes(&sid).await.unwrap();
    assert_eq!(
        list.iter()
            .map(|n| (n.note_id, n.content.as_str(), n.pinned))
            .collect::<Vec<_>>(),
        vec![(1, "first!", true), (2, "second", true)]
    );
    assert!(s.delete_note(&sid, 1).await.unwrap());
    assert!(!s.delete_note(&sid, 1).await.unwrap());
    assert_eq!(s.count_notes(&sid).await.unwrap(), 1);
    // Orphan notes are allowed (no session check), as in the reference.
    assert_eq!(s.add_note("orphan", "x", false).await.unwrap().note_id, 1);
}

pub async fn usage_and_stats_accumulate(ctx: Ctx) {
    let s = ctx.store().await;
    let sid = s.create_session(NewSession::new()).await.unwrap();
    s.record_usage(&sid, UsageRecord::new(0, Some(10), Some(5), Some(15)))
        .await
        .unwrap();
    s.record_usage(
        &sid,
        UsageRecord::new(0, Some(20), Some(6), Some(26)).with_model("m"),
    )
    .await
    .unwrap();
    s.record_usage(&sid, UsageRecord::new(1, Some(1), None, None))
        .await
        .unwrap();
    let rounds = s.list_usage_rounds(&sid).await.unwrap();
    assert_eq!(rounds.len(), 2);
    assert_eq!(
        (rounds[0].prompt_tokens, rounds[0].model.as_deref()),
        (Some(20), Some("m"))
    );
    assert!(s.get_session_stats(&sid).await.unwrap().is_none());
    s.bump_session_stats(&sid, StatsDelta::new(2, 2, 1, 100, 50, 150))
        .await
        .unwrap();
    let first = s.get_session_stats(&sid).await.unwrap().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    s.bump_session_stats(&sid, StatsDelta::new(1, 1, 0, 10, 5, 15))
        .await
        .unwrap();
    let st = s.get_session_stats(&sid).await.unwrap().unwrap();
    assert_eq!(
        (st.sends, st.rounds, st.llm_calls, st.tool_calls),
        (2, 3, 3, 1)
    );
    assert_eq!(
        (st.prompt_tokens, st.completion_tokens, st.total_tokens),
        (110, 55, 165)
    );
    assert_eq!(st.first_send_at, first.first_send_at);
    assert!(st.last_send_at >= first.last_send_at);
    assert!(
        s.list_session_stats()
            .await
            .unwrap()
            .iter()
            .any(|r| r.session_id == sid)
    );
}

pub async fn runtime_and_shared_state_round_trip(ctx: Ctx) {
    let s = ctx.store().await;
    let sid = s.create_session(NewSession::new()).await.unwrap();
    assert_eq!(s.get_runtime_state(&sid, "todo").await.unwrap(), None);
    s.set_runtime_state(&sid, "todo", json!({"items": ["a"], "n": 1}))
        .await
        .unwrap();
    assert_eq!(
        s.get_runtime_state(&sid, "todo").await.unwrap(),
        Some(json!({"items": ["a"], "n": 1}))
    );
    s.set_runtime_state(&sid, "todo", json!([1, "ü"]))
        .await
        .unwrap();
    assert_eq!(
        s.get_runtime_state(&sid, "todo").await.unwrap(),
        Some(json!([1, "ü"]))
    );
    s.set_runtime_state(&sid, "nulled", serde_json::Value::Null)
        .await
        .unwrap();
    assert_eq!(s.get_runtime_state(&sid, "nulled").await.unwrap(), None);
    assert!(s.delete_runtime_state(&sid, "todo").await.unwrap());
    assert_eq!(s.get_runtime_state(&sid, "todo").await.unwrap(), None);
    let e = s
        .set_runtime_state("ghost", "k", json!(1))
        .await
        .unwrap_err();
    assert_eq!(code(&e), "session.not_found");
    s.set_shared_state("scope:x", "k", json!({"v": 1}))
        .await
        .unwrap();
    assert_eq!(
        s.get_shared_state("scope:x", "k").await.unwrap(),
        Some(json!({"v": 1}))
    );
    s.close_session(&sid, true).await.unwrap();
    assert_eq!(
        s.get_shared_state("scope:x", "k").await.unwrap(),
        Some(json!({"v": 1})),
        "shared state is not session-scoped"
    );
    assert!(s.delete_shared_state("scope:x", "k").await.unwrap());
    assert_eq!(s.get_shared_state("scope:x", "k").await.unwrap(), None);
}

pub async fn background_updates_are_tracked_as_unseen(ctx: Ctx) {
    let s = ctx.store().await;
    let sid = s.create_session(NewSession::new()).await.unwrap();
    s.upsert_background_task(&sid, BackgroundTaskUpdate::new("t1", "sleep 1", "running"))
        .await
        .unwrap();
    let created = s
        .get_background_task(&sid, "t1")
        .await
        .unwrap()
        .unwrap()
        .created_at;
    assert_eq!(
        s.list_unseen_background_updates(&sid).await.unwrap().len(),
        1
    );
    assert_eq!(
        s.mark_background_seen(&sid, &["t1".into()]).await.unwrap(),
        1
    );
    assert!(
        s.list_unseen_background_updates(&sid)
            .await
            .unwrap()
            .is_empty()
    );
    s.upsert_background_task(
        &sid,
        BackgroundTaskUpdate::new("t1", "sleep 1", "completed")
            .with_return_code(0)
            .with_output_tail("ok"),
    )
    .await
    .unwrap();
    let unseen = s.list_unseen_background_updates(&sid).await.unwrap();
    assert_eq!(
        unseen.len(),
        1,
        "an update in the same millisecond is unseen again"
    );
    assert_eq!(
        (
            unseen[0].status.as_str(),
            unseen[0].return_code,
            unseen[0].created_at
        ),
        ("completed", Some(0), created)
    );
    assert_eq!(s.mark_background_seen(&sid, &[]).await.unwrap(), 0);
    assert_eq!(s.list_background_tasks(&sid).await.unwrap().len(), 1);
    let e = s
        .upsert_background_task("ghost", BackgroundTaskUpdate::new("t", "c", "running"))
        .await
        .unwrap_err();
    assert_eq!(code(&e), "session.not_found");
}
