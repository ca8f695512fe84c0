//! Scenarios for the reference properties: gap-free seq, transactions, compaction folds,
//! session lifecycle cascades, sub-agent depth and session rows (the per-table ones are in
//! `tables.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use power_loop_contracts::Error;
use serde_json::json;

use super::{Ctx, code};
use crate::db::{TxMode, Value};
use crate::{
    CompactionRequest, MessageState, NewMessage, NewSession, SessionKind, SessionStatus,
    SubagentLifecycle, run_tx,
};

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
    let all = super::append_concurrently(std::slice::from_ref(&s), &sid, 16, 25, Some(5)).await;
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
    let folded = super::compacted_seqs(&s, &sid).await;
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
