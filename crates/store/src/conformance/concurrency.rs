//! Scenarios for the properties beyond the reference under concurrency: unique ids, atomic
//! read-modify-write of runtime and shared state, compare-and-set on the blackboard, session
//! leases and the window token.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use serde_json::json;

use super::{Ctx, code};
use crate::{Blackboard, CompactionRequest, NewMessage, NewSession};

pub async fn timer_and_note_ids_unique_under_concurrency(ctx: Ctx) {
    let s = ctx.store().await;
    let sid = s.create_session(NewSession::new()).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..12 {
        let s = s.clone();
        let sid = sid.clone();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for j in 0..5 {
                let t = s
                    .create_timer(&sid, 1_000 + i * 10 + j, "n", None)
                    .await
                    .unwrap();
                let n = s.add_note(&sid, &format!("{i}-{j}"), false).await.unwrap();
                ids.push((t.timer_id, n.note_id));
            }
            ids
        }));
    }
    let mut timers = Vec::new();
    let mut notes = Vec::new();
    for t in tasks {
        for (a, b) in t.await.unwrap() {
            timers.push(a);
            notes.push(b);
        }
    }
    timers.sort_unstable();
    notes.sort_unstable();
    assert_eq!(timers, (1..=60).collect::<Vec<_>>());
    assert_eq!(notes, (1..=60).collect::<Vec<_>>());
    assert_eq!(s.count_notes(&sid).await.unwrap(), 60);
}

pub async fn runtime_state_rmw_is_atomic_under_concurrency(ctx: Ctx) {
    let s = ctx.store().await;
    let sid = s.create_session(NewSession::new()).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let s = s.clone();
        let sid = sid.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..10 {
                s.update_runtime_state(&sid, "counter", |cur| {
                    Some(json!(cur.and_then(|v| v.as_i64()).unwrap_or(0) + 1))
                })
                .await
                .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        s.get_runtime_state(&sid, "counter").await.unwrap(),
        Some(json!(100))
    );
    assert_eq!(
        s.update_runtime_state(&sid, "counter", |_| None)
            .await
            .unwrap(),
        None
    );
    assert_eq!(s.get_runtime_state(&sid, "counter").await.unwrap(), None);
    assert!(
        s.compare_and_set_runtime_state(&sid, "k", None, Some(json!(1)))
            .await
            .unwrap()
    );
    assert!(
        !s.compare_and_set_runtime_state(&sid, "k", None, Some(json!(2)))
            .await
            .unwrap()
    );
    assert!(
        s.compare_and_set_runtime_state(&sid, "k", Some(json!(1)), Some(json!(2)))
            .await
            .unwrap()
    );
    assert_eq!(
        s.get_runtime_state(&sid, "k").await.unwrap(),
        Some(json!(2))
    );
    assert!(
        !s.compare_and_set_runtime_state(&sid, "absent", Some(json!(1)), Some(json!(3)))
            .await
            .unwrap()
    );
    assert_eq!(s.get_runtime_state(&sid, "absent").await.unwrap(), None);
    let e = s
        .update_runtime_state("ghost", "k", |_| None)
        .await
        .unwrap_err();
    assert_eq!(code(&e), "session.not_found");
}

pub async fn shared_state_cas_and_blackboard_are_atomic(ctx: Ctx) {
    let s = ctx.store().await;
    // CAS increments from many tasks: each success is exactly one step.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut wins = 0;
            while wins < 5 {
                let cur = s.get_shared_state("scope", "n").await.unwrap();
                let next = json!(cur.as_ref().and_then(|v| v.as_i64()).unwrap_or(0) + 1);
                if s.compare_and_set_shared_state("scope", "n", cur, Some(next))
                    .await
                    .unwrap()
                {
                    wins += 1;
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        s.get_shared_state("scope", "n").await.unwrap(),
        Some(json!(40))
    );
    let board = Blackboard::new(s.clone(), "b1").unwrap();
    assert_eq!(
        code(&Blackboard::new(s.clone(), "").unwrap_err()),
        "blackboard.invalid"
    );
    let mut tasks = Vec::new();
    for i in 0..10 {
        let board = board.clone();
        tasks.push(tokio::spawn(async move {
            board
                .post(&format!("  post {i} "), None, Some("w"))
                .await
                .unwrap()
                .id
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(t.await.unwrap());
    }
    ids.sort_unstable();
    assert_eq!(ids, (1..=10).collect::<Vec<_>>());
    let doc = board.read().await.unwrap();
    assert_eq!((doc.entries.len(), doc.next_id), (10, 11));
    assert!(
        doc.entries
            .iter()
            .all(|e| e.text.starts_with("post ") && e.created_at.ends_with('Z'))
    );
    assert_eq!(
        board.update(3, None, Some("done")).await.unwrap().status,
        "done"
    );
    assert_eq!(
        code(&board.update(99, Some("x"), None).await.unwrap_err()),
        "blackboard.invalid"
    );
    assert_eq!(board.remove(3).await.unwrap().id, 3);
    assert_eq!(
        code(&board.remove(3).await.unwrap_err()),
        "blackboard.invalid"
    );
    let small = Blackboard::new(s.clone(), "b2").unwrap().with_limits(1, 4);
    assert_eq!(
        small.post("abcdefgh", Some("k"), None).await.unwrap().text,
        "abcd"
    );
    assert_eq!(
        code(&small.post("more", None, None).await.unwrap_err()),
        "blackboard.invalid"
    );
    assert_eq!(
        code(&small.post("   ", None, None).await.unwrap_err()),
        "blackboard.invalid"
    );
}

pub async fn session_lease_excludes_other_holders(ctx: Ctx) {
    let s = ctx.store().await;
    let sid = s.create_session(NewSession::new()).await.unwrap();
    let lease = s.acquire_session_lease(&sid).await.unwrap();
    assert_eq!(lease.session_id(), sid);
    let e = s.acquire_session_lease(&sid).await.unwrap_err();
    assert_eq!(code(&e), "session.lease_held");
    assert!(s.try_acquire_session_lease(&sid).await.unwrap().is_none());
    let other = s.acquire_session_lease("another-session").await.unwrap();
    lease.release().await.unwrap();
    let again = s.acquire_session_lease(&sid).await.unwrap();
    again.release().await.unwrap();
    other.release().await.unwrap();
    // Concurrent contenders: exactly one wins while the winner holds it.
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let s = s.clone();
        let sid = sid.clone();
        tasks.push(tokio::spawn(async move {
            s.try_acquire_session_lease(&sid).await.unwrap()
        }));
    }
    let mut held = Vec::new();
    for t in tasks {
        if let Some(l) = t.await.unwrap() {
            held.push(l);
        }
    }
    assert_eq!(held.len(), 1, "exactly one contender holds the lease");
    for l in held {
        l.release().await.unwrap();
    }
}

pub async fn window_token_tracks_appends_and_folds(ctx: Ctx) {
    let s = ctx.store().await;
    let sid = s.create_session(NewSession::new()).await.unwrap();
    let t0 = s.active_window_token(&sid).await.unwrap();
    assert_eq!((t0.next_seq, t0.last_compact_seq), (1, 0));
    for i in 0..3 {
        s.append_message(&sid, NewMessage::user(format!("m{i}")))
            .await
            .unwrap();
    }
    let (t1, rows) = s.load_active_window(&sid).await.unwrap();
    assert_eq!((t1.next_seq, t1.last_compact_seq), (4, 0));
    assert_eq!(rows.len(), 3);
    s.record_compaction(&sid, CompactionRequest::fold(vec![1], "s"))
        .await
        .unwrap();
    let t2 = s.active_window_token(&sid).await.unwrap();
    assert_eq!((t2.next_seq, t2.last_compact_seq), (5, 1));
    assert_ne!(t1, t2);
    assert_eq!(
        code(&s.active_window_token("ghost").await.unwrap_err()),
        "session.not_found"
    );
    assert_eq!(
        code(&s.load_active_window("ghost").await.unwrap_err()),
        "session.not_found"
    );
}
