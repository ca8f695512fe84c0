//! Scenarios for the durable turn, pending state and multi-handle sequences.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use serde_json::json;

use super::{Ctx, code};
use crate::{
    NewMessage, NewSession, PendingChange, PendingState, StatsDelta, TurnCommit, UsageRecord,
};

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
    let all = super::append_concurrently(&[a.clone(), b.clone()], &sid, 8, 10, None).await;
    assert_eq!(all, (1..=80).collect::<Vec<_>>());
    assert_eq!(b.get_state(&sid).await.unwrap().unwrap().next_seq, 81);
}

/// Deferred writes ([`crate::db::Transaction::execute_deferred`]) are all-or-nothing: a failing
/// one (a duplicate key) fails the whole transaction with the typed error a plain `execute` gives
/// and leaves nothing; successful ones are seen by the body's later statements and, once
/// committed, by other handles. Then the same for a whole durable turn, whose writes are all
/// deferred (multi-row message insert included).
pub async fn deferred_writes_are_all_or_nothing(ctx: Ctx) {
    use crate::db::{TxMode, Value};
    use crate::run_tx;

    let t = format!("{}deferred_probe", ctx.prefix);
    let create = format!("CREATE TABLE {t} (id BIGINT PRIMARY KEY, v BIGINT NOT NULL)");
    super::port::exec(&*ctx.db, &create, vec![]).await.unwrap();
    let insert = format!("INSERT INTO {t} (id, v) VALUES (?, ?)");
    let rows_sql = format!("SELECT id, v FROM {t} ORDER BY id");
    let db = std::sync::Arc::clone(&ctx.db);
    let rows = move || {
        let db = std::sync::Arc::clone(&db);
        let sql = rows_sql.clone();
        async move {
            super::port::query(&*db, &sql, vec![])
                .await
                .unwrap()
                .iter()
                .map(|row| (row.i64("id").unwrap(), row.i64("v").unwrap()))
                .collect::<Vec<_>>()
        }
    };

    // Successful deferred writes: later statements of the body see them; the commit keeps them.
    let (ins, t2) = (insert.clone(), t.clone());
    let seen = run_tx(&*ctx.db, TxMode::Write, move |tx| {
        tx.execute_deferred(&ins, &[Value::Int(1), Value::Int(10)])?;
        tx.execute_deferred(&ins, &[Value::Int(2), Value::Int(20)])?;
        let row = tx
            .fetch_optional(&format!("SELECT COUNT(*) AS n FROM {t2}"), &[])?
            .unwrap();
        tx.execute_deferred(
            &format!("UPDATE {t2} SET v = v + ? WHERE id = ?"),
            &[Value::Int(5), Value::Int(2)],
        )?;
        row.i64("n")
    })
    .await
    .unwrap();
    assert_eq!(seen, 2, "a later statement sees deferred writes");
    assert_eq!(rows().await, vec![(1, 10), (2, 25)]);

    // A plain execute of a duplicate key gives the reference error code.
    let ins = insert.clone();
    let plain = run_tx(&*ctx.db, TxMode::Write, move |tx| {
        tx.execute(&ins, &[Value::Int(1), Value::Int(1)])?;
        Ok(())
    })
    .await
    .unwrap_err();

    // A failing deferred write among good ones, surfacing only at commit: nothing is kept.
    let (ins, t2) = (insert.clone(), t.clone());
    let e = run_tx(&*ctx.db, TxMode::Write, move |tx| {
        tx.execute_deferred(&ins, &[Value::Int(3), Value::Int(30)])?;
        tx.execute_deferred(&ins, &[Value::Int(1), Value::Int(99)])?;
        tx.execute_deferred(
            &format!("UPDATE {t2} SET v = v + ? WHERE id = ?"),
            &[Value::Int(100), Value::Int(2)],
        )?;
        tx.execute_deferred(&ins, &[Value::Int(4), Value::Int(40)])
    })
    .await
    .unwrap_err();
    assert_eq!(code(&e), code(&plain), "{e} vs {plain}");
    assert_eq!(code(&e), "store.constraint", "{e}");
    assert_eq!(
        rows().await,
        vec![(1, 10), (2, 25)],
        "nothing of the failed transaction persists"
    );

    // A failing deferred write surfacing at the next statement: the body sees the error.
    let (ins, t2) = (insert.clone(), t.clone());
    let e = run_tx(&*ctx.db, TxMode::Write, move |tx| {
        tx.execute_deferred(&ins, &[Value::Int(5), Value::Int(50)])?;
        tx.execute_deferred(&ins, &[Value::Int(2), Value::Int(0)])?;
        tx.fetch_all(&format!("SELECT id FROM {t2}"), &[])?;
        Ok(())
    })
    .await
    .unwrap_err();
    assert_eq!(code(&e), "store.constraint", "{e}");
    assert_eq!(rows().await, vec![(1, 10), (2, 25)]);
    super::port::exec(&*ctx.db, &format!("DROP TABLE {t}"), vec![])
        .await
        .unwrap();

    // The durable turn: a clashing message row (seq 4 planted ahead of next_seq 3) makes the
    // multi-row insert fail; nothing of the turn (state, messages, usage, stats) persists.
    let s = ctx.store().await;
    let other = crate::SessionStore::new(
        std::sync::Arc::clone(&ctx.db),
        &crate::StoreOptions::new().with_table_prefix(&ctx.prefix),
    )
    .unwrap();
    let sid = s.create_session(NewSession::new()).await.unwrap();
    s.commit_turn(
        &sid,
        TurnCommit::new(vec![NewMessage::user("a"), NewMessage::assistant("b")])
            .with_round_index(0)
            .with_usage(UsageRecord::new(0, Some(1), Some(1), Some(2)))
            .with_stats(StatsDelta::new(1, 1, 0, 1, 1, 2)),
    )
    .await
    .unwrap();
    let plant = format!(
        "INSERT INTO {} (session_id, seq, role, name, content, tool_calls_json, tool_call_id, \
         round_index, state, meta_json, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        s.tables().messages
    );
    let planted_sid = sid.clone();
    run_tx(&*ctx.db, TxMode::Write, move |tx| {
        tx.execute(
            &plant,
            &[
                Value::from(planted_sid.as_str()),
                Value::Int(4),
                Value::from("user"),
                Value::Null,
                Value::from("planted"),
                Value::Null,
                Value::Null,
                Value::Null,
                Value::from("active"),
                Value::from("{}"),
                Value::Int(0),
            ],
        )
    })
    .await
    .unwrap();
    let state = other.get_state(&sid).await.unwrap().unwrap();
    let session = other.get_session(&sid).await.unwrap().unwrap();
    let stats = other.get_session_stats(&sid).await.unwrap();
    let usage = other.list_usage_rounds(&sid).await.unwrap();
    let messages = other.load_all_messages(&sid).await.unwrap();
    assert_eq!(state.next_seq, 3);
    let e = s
        .commit_turn(
            &sid,
            TurnCommit::new(vec![
                NewMessage::user("c"),
                NewMessage::assistant("d"),
                NewMessage::user("e"),
            ])
            .with_round_index(1)
            .with_pending(PendingChange::Set(PendingState::from_tool_calls(
                1,
                1,
                vec![json!({"id": "x"})],
            )))
            .with_usage(UsageRecord::new(1, Some(3), Some(3), Some(6)))
            .with_stats(StatsDelta::new(1, 1, 0, 3, 3, 6)),
        )
        .await
        .unwrap_err();
    assert_eq!(code(&e), "store.constraint", "{e}");
    assert_eq!(other.get_state(&sid).await.unwrap().unwrap(), state);
    assert_eq!(other.get_session(&sid).await.unwrap().unwrap(), session);
    assert_eq!(other.get_session_stats(&sid).await.unwrap(), stats);
    assert_eq!(other.list_usage_rounds(&sid).await.unwrap(), usage);
    assert_eq!(other.load_all_messages(&sid).await.unwrap(), messages);

    // A successful multi-message turn is wholly visible through another handle.
    let fresh = s.create_session(NewSession::new()).await.unwrap();
    let texts: Vec<String> = (0..70).map(|i| format!("m{i}")).collect();
    let seqs = s
        .commit_turn(
            &fresh,
            TurnCommit::new(texts.iter().map(|t| NewMessage::user(t.as_str())).collect())
                .with_round_index(2)
                .with_usage(UsageRecord::new(2, Some(3), Some(4), Some(7)))
                .with_stats(StatsDelta::new(1, 1, 0, 3, 4, 7)),
        )
        .await
        .unwrap();
    assert_eq!(seqs, (1..=70).collect::<Vec<_>>());
    let got = other.load_all_messages(&fresh).await.unwrap();
    assert_eq!(
        got.iter()
            .map(|m| (m.seq, m.content.clone().unwrap_or_default()))
            .collect::<Vec<_>>(),
        (1..=70).zip(texts).collect::<Vec<_>>()
    );
    let st = other.get_state(&fresh).await.unwrap().unwrap();
    assert_eq!((st.next_seq, st.round_index), (71, 2));
    assert_eq!(other.list_usage_rounds(&fresh).await.unwrap().len(), 1);
    let stats = other.get_session_stats(&fresh).await.unwrap().unwrap();
    assert_eq!((stats.sends, stats.total_tokens), (1, 7));
}
