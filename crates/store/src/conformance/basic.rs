//! Scenarios for the reference properties (spec §14, items 1–12).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use power_loop_contracts::Error;
use serde_json::json;

use super::Ctx;
use crate::db::{TxMode, Value};
use crate::types::timer_status as ts;
use crate::{
    BackgroundTaskUpdate, CompactionRequest, MessageState, NewMessage, NewSession, SessionKind,
    SessionStatus, StatsDelta, SubagentLifecycle, UsageRecord, run_tx,
};

fn code(e: &Error) -> &'static str {
    e.code().as_str()
}

pub async fn seq_starts_at_one_and_is_gapless(ctx: Ctx) {
    let s = ctx.store().await;
    let sid = s.create_session(NewSession::new()).await.unwrap();
    assert!(sid.starts_with("sess_") && sid.len() == 29, "{sid}");
    for i in 1..=5 {
        let seq = s
            .append_message(&sid, NewMessage::user(format!("m{i}")))
            .await
            .unwrap();
        assert_eq!(seq, i);
    }
    let seqs = s
        .append_messages(
            &sid,
            vec![NewMessage::user("a"), NewMessage::assistant("b")],
        )
        .await
        .unwrap();
    assert_eq!(seqs, vec![6, 7]);
    let st = s.get_state(&sid).await.unwrap().unwrap();
    assert_eq!(st.next_seq, 8);
    let (row, state) = s.get_session_and_state(&sid).await.unwrap();
    assert_eq!(row, s.get_session(&sid).await.unwrap());
    assert_eq!(state.as_ref(), Some(&st));
    let all = s.load_all_messages(&sid).await.unwrap();
    assert_eq!(
        all.iter().map(|m| m.seq).collect::<Vec<_>>(),
        (1..=7).collect::<Vec<_>>()
    );
    assert_eq!(all[0].content.as_deref(), Some("m1"));
    assert_eq!(all[0].state, MessageState::Active);
    assert!(all[0].meta.is_empty());
    assert_eq!(all[0].tool_calls, None);
}

pub async fn seq_is_gapless_under_concurrency(ctx: Ctx) {
    let s = ctx.store().await;
    let sid = s.create_session(NewSession::new()).await.unwrap();
    let mut tasks = Vec::new();
    for t in 0..16 {
        let s = s.clone();
        let sid = sid.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for i in 0..25 {
                if i % 5 == 4 {
                    let seqs = s
                        .append_messages(
                            &sid,
                            vec![
                                NewMessage::user(format!("{t}-{i}a")),
                                NewMessage::user(format!("{t}-{i}b")),
                            ],
                        )
                        .await
                        .unwrap();
                    got.extend(seqs);
                } else {
                    got.push(
                        s.append_message(&sid, NewMessage::user(format!("{t}-{i}")))
                            .await
                            .unwrap(),
                    );
                }
            }
            got
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort_unstable();
    let n = 16 * (25 + 5);
    assert_eq!(
        all,
        (1..=n as i64).collect::<Vec<_>>(),
        "seqs must be unique and gap-free"
    );
    let rows = s.load_all_messages(&sid).await.unwrap();
    assert_eq!(rows.len(), n);
    assert_eq!(
        s.get_state(&sid).await.unwrap().unwrap().next_seq,
        n as i64 + 1
    );
}

pub async fn append_to_unknown_session_fails_and_writes_nothing(ctx: Ctx) {
    let s = ctx.store().await;
    let e = s
        .append_message("nope", NewMessage::user("x"))
        .await
        .unwrap_err();
    assert_eq!(code(&e), "session.not_found");
    assert!(s.load_all_messages("nope").await.unwrap().is_empty());
    assert!(s.get_state("nope").await.unwrap().is_none());
    assert_eq!(s.get_session_and_state("nope").await.unwrap(), (None, None));
    let e = s
        .record_compaction("nope", CompactionRequest::range(1, 2, "n"))
        .await
        .unwrap_err();
    assert_eq!(code(&e), "session.not_found");
}

pub async fn transaction_rolls_back_on_error(ctx: Ctx) {
    let s = ctx.store().await;
    let t = s.tables().clone();
    let sessions = t.sessions.clone();
    let r: power_loop_contracts::Result<()> = run_tx(&*ctx.db, TxMode::Write, move |tx| {
        tx.fetch_all(&format!("SELECT session_id FROM {sessions}"), &[])?;
        tx.execute(
            &format!(
                "INSERT INTO {sessions} (session_id, created_at, updated_at) VALUES (?, ?, ?)"
            ),
            &[Value::from("ghost"), Value::Int(1), Value::Int(1)],
        )?;
        Err(Error::internal("boom"))
    })
    .await;
    assert_eq!(r.unwrap_err().message(), "boom");
    assert!(
        s.get_session("ghost").await.unwrap().is_none(),
        "a failed tx must leave no trace"
    );
    let sessions = t.sessions.clone();
    run_tx(&*ctx.db, TxMode::Write, move |tx| {
        tx.execute(
            &format!(
                "INSERT INTO {sessions} (session_id, created_at, updated_at) VALUES (?, ?, ?)"
            ),
            &[Value::from("real"), Value::Int(1), Value::Int(1)],
        )?;
        Ok(())
    })
    .await
    .unwrap();
    let row = s.get_session("real").await.unwrap().unwrap();
    assert_eq!(row.status, SessionStatus::Active);
    assert_eq!(row.kind, SessionKind::Root);
    // A failing statement inside a store op rolls the whole op back.
    let sid = s
        .create_session(NewSession::new().with_id("dup"))
        .await
        .unwrap();
    let e = s
        .create_session(NewSession::new().with_id(sid.clone()))
        .await
        .unwrap_err();
    assert_eq!(code(&e), "session.exists");
}

pub async fn compaction_folds_and_orders_logically(ctx: Ctx) {
    let s = ctx.store().await;
    let sid = s.create_session(NewSession::new()).await.unwrap();
    for i in 1..=4 {
        s.append_message(&sid, NewMessage::user(format!("m{i}")))
            .await
            .unwrap();
    }
    let req = CompactionRequest::fold(vec![1, 2, 2], "summary one")
        .with_tokens(Some(100), Some(10))
        .with_round_index(3);
    assert_eq!(s.record_compaction(&sid, req).await.unwrap(), (1, 5));
    let active = s.load_active_messages(&sid, None).await.unwrap();
    assert_eq!(
        active.iter().map(|m| m.seq).collect::<Vec<_>>(),
        vec![5, 3, 4]
    );
    let note = &active[0];
    assert_eq!(note.role, "system");
    assert_eq!(note.name.as_deref(), Some("compact_note"));
    assert_eq!(note.meta["ord"], json!(1));
    assert_eq!(note.meta["from_seq"], json!(1));
    assert_eq!(note.meta["to_seq"], json!(2));
    assert_eq!(note.meta["original_tokens"], json!(100));
    assert_eq!(note.meta["summary_tokens"], json!(10));
    assert_eq!(note.meta["compacted_at_round"], json!(3));
    let folded: Vec<i64> = s
        .load_all_messages(&sid)
        .await
        .unwrap()
        .iter()
        .filter(|m| m.state == MessageState::CompactedOut)
        .map(|m| m.seq)
        .collect();
    assert_eq!(folded, vec![1, 2]);
    let j = s.list_compactions(&sid).await.unwrap();
    assert_eq!(j.len(), 1);
    assert_eq!(
        (j[0].compact_seq, j[0].note_seq, j[0].from_seq, j[0].to_seq),
        (1, 5, 1, 2)
    );
    // Second fold including the first note and seq 3, positioned at the note's slot.
    s.append_message(&sid, NewMessage::user("m6"))
        .await
        .unwrap();
    let req = CompactionRequest::fold(vec![5, 3], "summary two").with_order_key(1);
    assert_eq!(s.record_compaction(&sid, req).await.unwrap(), (2, 7));
    let active = s.load_active_messages(&sid, None).await.unwrap();
    assert_eq!(
        active.iter().map(|m| m.seq).collect::<Vec<_>>(),
        vec![7, 4, 6]
    );
    assert_eq!(
        s.get_state(&sid).await.unwrap().unwrap().last_compact_seq,
        2
    );
    // Tail read is inclusive.
    let tail = s.load_active_messages(&sid, Some(6)).await.unwrap();
    assert_eq!(
        tail.iter().map(|m| m.seq).collect::<Vec<_>>(),
        vec![7, 6],
        "logical order: the note (ord 1) first"
    );
    // Legacy range mode marks the inclusive range.
    let sid2 = s.create_session(NewSession::new()).await.unwrap();
    for i in 1..=5 {
        s.append_message(&sid2, NewMessage::user(format!("x{i}")))
            .await
            .unwrap();
    }
    assert_eq!(
        s.record_compaction(&sid2, CompactionRequest::range(2, 4, "r"))
            .await
            .unwrap(),
        (1, 6)
    );
    let active = s.load_active_messages(&sid2, None).await.unwrap();
    assert_eq!(
        active.iter().map(|m| m.seq).collect::<Vec<_>>(),
        vec![1, 6, 5]
    );
}

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

pub async fn close_session_cascades_by_lifecycle(ctx: Ctx) {
    let s = ctx.store().await;
    let p = s.create_session(NewSession::new()).await.unwrap();
    let linked = s
        .create_session(
            NewSession::new()
                .with_parent(&p)
                .with_lifecycle(SubagentLifecycle::Linked),
        )
        .await
        .unwrap();
    let eph = s
        .create_session(NewSession::new().with_parent(&p))
        .await
        .unwrap();
    let det = s
        .create_session(
            NewSession::new()
                .with_parent(&p)
                .with_lifecycle(SubagentLifecycle::Detached),
        )
        .await
        .unwrap();
    s.append_message(&linked, NewMessage::user("x"))
        .await
        .unwrap();
    s.add_note(&eph, "n", false).await.unwrap();
    assert_eq!(s.list_children(&p).await.unwrap().len(), 3);
    assert_eq!(s.close_session(&p, true).await.unwrap(), 3);
    assert!(s.get_session(&p).await.unwrap().is_none());
    assert!(s.get_session(&linked).await.unwrap().is_none());
    assert!(s.load_all_messages(&linked).await.unwrap().is_empty());
    assert!(s.list_notes(&eph).await.unwrap().is_empty());
    let d = s.get_session(&det).await.unwrap().unwrap();
    assert_eq!(d.parent_session_id, None);
    assert_eq!(s.close_session("unknown", true).await.unwrap(), 0);
    // cascade = false keeps children and clears their parent id.
    let p2 = s.create_session(NewSession::new()).await.unwrap();
    let c2 = s
        .create_session(
            NewSession::new()
                .with_parent(&p2)
                .with_lifecycle(SubagentLifecycle::Linked),
        )
        .await
        .unwrap();
    assert_eq!(
        s.close_session_tree(&p2, false).await.unwrap(),
        vec![p2.clone()]
    );
    assert_eq!(
        s.get_session(&c2).await.unwrap().unwrap().parent_session_id,
        None
    );
}

pub async fn sub_agent_depth_is_enforced(ctx: Ctx) {
    let s = ctx.store().await;
    s.set_max_spawn_depth(2).unwrap();
    assert_eq!(
        code(&s.set_max_spawn_depth(0).unwrap_err()),
        "invalid_argument"
    );
    let root = s
        .create_session(NewSession::new().with_kind(SessionKind::Subagent))
        .await
        .unwrap();
    assert_eq!(
        s.get_session(&root).await.unwrap().unwrap().kind,
        SessionKind::Subagent,
        "kind stored as given without parent"
    );
    let c1 = s
        .create_session(
            NewSession::new()
                .with_parent(&root)
                .with_spawn_tool_call_id("call_1"),
        )
        .await
        .unwrap();
    let c2 = s
        .create_session(NewSession::new().with_parent(&c1))
        .await
        .unwrap();
    let row = s.get_session(&c2).await.unwrap().unwrap();
    assert_eq!((row.spawn_depth, row.kind), (2, SessionKind::Subagent));
    let e = s
        .create_session(NewSession::new().with_parent(&c2))
        .await
        .unwrap_err();
    assert_eq!(code(&e), "subagent.depth_exceeded");
    let e = s
        .create_session(NewSession::new().with_parent("missing"))
        .await
        .unwrap_err();
    assert_eq!(code(&e), "session.not_found");
    assert_eq!(
        s.get_session(&c1)
            .await
            .unwrap()
            .unwrap()
            .spawn_tool_call_id
            .as_deref(),
        Some("call_1")
    );
}

pub async fn session_rows_round_trip(ctx: Ctx) {
    let s = ctx.store().await;
    let mut cfg = crate::JsonMap::new();
    cfg.insert("max_rounds".into(), json!(8));
    let mut meta = crate::JsonMap::new();
    meta.insert("user".into(), json!("zoë"));
    let sid = s
        .create_session(
            NewSession::new()
                .with_id("my-id")
                .with_system_prompt("be brief")
                .with_model("gpt")
                .with_config(cfg.clone())
                .with_metadata(meta.clone()),
        )
        .await
        .unwrap();
    assert_eq!(sid, "my-id");
    let row = s.get_session(&sid).await.unwrap().unwrap();
    assert_eq!(
        (row.system_prompt.as_deref(), row.model.as_deref()),
        (Some("be brief"), Some("gpt"))
    );
    assert_eq!((row.config.clone(), row.metadata.clone()), (cfg, meta));
    assert_eq!(
        (row.status, row.kind, row.lifecycle, row.spawn_depth),
        (
            SessionStatus::Active,
            SessionKind::Root,
            SubagentLifecycle::Ephemeral,
            0
        )
    );
    assert_eq!(row.created_at, row.updated_at);
    let plain = s.create_session(NewSession::new()).await.unwrap();
    let prow = s.get_session(&plain).await.unwrap().unwrap();
    assert!(prow.config.is_empty() && prow.metadata.is_empty());
    assert!(s.archive_session(&sid).await.unwrap());
    assert!(!s.archive_session("ghost").await.unwrap());
    assert_eq!(
        s.get_session(&sid).await.unwrap().unwrap().status,
        SessionStatus::Archived
    );
    s.append_message(
        &sid,
        NewMessage::user("archived sessions still accept writes"),
    )
    .await
    .unwrap();
    assert!(s.update_session_prompt(&sid, None).await.unwrap());
    assert_eq!(
        s.get_session(&sid).await.unwrap().unwrap().system_prompt,
        None
    );
    let mut patch = crate::JsonMap::new();
    patch.insert("k".into(), json!(1));
    patch.insert("user".into(), serde_json::Value::Null);
    let merged = s.merge_session_metadata(&sid, patch).await.unwrap();
    assert_eq!(serde_json::Value::Object(merged), json!({"k": 1}));
    assert!(s.session_exists(&sid).await.unwrap());
}
