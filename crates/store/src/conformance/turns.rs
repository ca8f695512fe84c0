//! Scenarios for the durable turn, pending state and multi-handle sequences.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    unused_imports
)]

use power_loop_contracts::Error;
use serde_json::json;

use super::Ctx;
use crate::{
    NewMessage, NewSession, PendingChange, PendingState, StatsDelta, TurnCommit, UsageRecord,
};

fn code(e: &Error) -> &'static str {
    e.code().as_str()
}

pub async fn pending_state_round_trips(ctx: Ctx) {
    let s = ctx.store().await;
    let sid = s.create_session(NewSession::new()).await.unwrap();
    assert_eq!(s.get_pending(&sid).await.unwrap(), None);
    let p = PendingState::from_tool_calls(
        2,
        1,
        vec![
            json!({"id": "c1", "function": {"name": "a"}}),
            json!({"id": "c2"}),
        ],
    );
    assert!(s.set_pending(&sid, Some(p.clone())).await.unwrap());
    assert_eq!(s.get_pending(&sid).await.unwrap(), Some(p));
    assert!(
        s.set_pending(&sid, Some(PendingState::default()))
            .await
            .unwrap()
    );
    assert_eq!(
        s.get_pending(&sid).await.unwrap(),
        None,
        "empty pending is stored as NULL"
    );
    assert!(!s.set_pending("ghost", None).await.unwrap());
    let got = s
        .update_pending(&sid, |cur| {
            assert!(cur.is_none());
            Some(PendingState::from_tool_calls(
                1,
                0,
                vec![json!({"id": "z"})],
            ))
        })
        .await
        .unwrap();
    assert_eq!(got.unwrap().tool_call_ids, vec!["z"]);
    assert!(s.set_round_index(&sid, 4).await.unwrap());
    assert_eq!(s.get_state(&sid).await.unwrap().unwrap().round_index, 4);
}

pub async fn commit_turn_is_one_transaction(ctx: Ctx) {
    let s = ctx.store().await;
    let sid = s.create_session(NewSession::new()).await.unwrap();
    let calls = vec![
        json!({"id": "c1", "type": "function"}),
        json!({"id": "c2", "type": "function"}),
    ];
    let seqs = s
        .commit_turn(
            &sid,
            TurnCommit::new(vec![
                NewMessage::user("hi"),
                NewMessage::assistant("")
                    .with_tool_calls(calls.clone())
                    .with_round_index(0),
            ])
            .with_round_index(0)
            .with_pending(PendingChange::Set(PendingState::from_tool_calls(
                2, 0, calls,
            )))
            .with_usage(UsageRecord::new(0, Some(5), Some(2), Some(7))),
        )
        .await
        .unwrap();
    assert_eq!(seqs, vec![1, 2]);
    assert_eq!(
        s.get_pending(&sid).await.unwrap().unwrap().tool_call_ids,
        vec!["c1", "c2"]
    );
    s.commit_turn(
        &sid,
        TurnCommit::new(vec![NewMessage::tool("c2", "r2").with_round_index(1)])
            .with_pending(PendingChange::ResolveToolResults),
    )
    .await
    .unwrap();
    let p = s.get_pending(&sid).await.unwrap().unwrap();
    assert_eq!(
        (p.tool_call_ids.clone(), p.round_index),
        (vec!["c1".to_owned()], 1)
    );
    s.commit_turn(
        &sid,
        TurnCommit::new(vec![
            NewMessage::tool("c1", "r1"),
            NewMessage::assistant("done"),
        ])
        .with_pending(PendingChange::ResolveToolResults)
        .with_stats(StatsDelta::new(2, 2, 2, 10, 5, 15)),
    )
    .await
    .unwrap();
    assert_eq!(s.get_pending(&sid).await.unwrap(), None);
    assert_eq!(s.get_session_stats(&sid).await.unwrap().unwrap().sends, 1);
    assert_eq!(s.load_all_messages(&sid).await.unwrap().len(), 5);
    let msgs = s.load_all_messages(&sid).await.unwrap();
    assert_eq!(msgs[1].tool_calls.as_ref().map(Vec::len), Some(2));
    // A failing turn writes nothing (the pending update panics-free error path).
    let before = s.get_state(&sid).await.unwrap().unwrap();
    let e = s
        .commit_turn(
            "ghost",
            TurnCommit::new(vec![NewMessage::user("x")]).with_stats(StatsDelta::default()),
        )
        .await
        .unwrap_err();
    assert_eq!(code(&e), "session.not_found");
    assert!(s.get_session_stats("ghost").await.unwrap().is_none());
    assert_eq!(s.get_state(&sid).await.unwrap().unwrap(), before);
}

pub async fn separate_store_handles_share_one_sequence(ctx: Ctx) {
    let a = ctx.store().await;
    let opts = crate::StoreOptions::new().with_table_prefix(&ctx.prefix);
    let b = crate::SessionStore::new(std::sync::Arc::clone(&ctx.db), &opts).unwrap();
    let sid = a.create_session(NewSession::new()).await.unwrap();
    let mut tasks = Vec::new();
    for t in 0..8 {
        let s = if t % 2 == 0 { a.clone() } else { b.clone() };
        let sid = sid.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            for i in 0..10 {
                got.push(
                    s.append_message(&sid, NewMessage::user(format!("{t}-{i}")))
                        .await
                        .unwrap(),
                );
            }
            got
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort_unstable();
    assert_eq!(all, (1..=80).collect::<Vec<_>>());
    assert_eq!(b.get_state(&sid).await.unwrap().unwrap().next_seq, 81);
}
