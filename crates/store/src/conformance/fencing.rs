//! Scenarios for fencing tokens (schema version 3): a writer whose session lease or timer claim
//! was taken over can no longer commit, on every backend; and a version-2 database (today's
//! main) migrates forward with its data intact and fencing working.
//!
//! How the lease is lost is the backends' business (a killed lease connection, a replaced lock
//! file; the backend and agent tests cover those); here the first holder's backend lock is
//! released behind its back while its fenced handle keeps the old token, which is exactly what
//! a worker that has not noticed the loss still holds.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;

use serde_json::json;

use super::{Ctx, code};
use crate::db::{Database, TxMode, Value};
use crate::ddl::statements_since_version;
use crate::schema::schema_migrations_ddl;
use crate::types::timer_status as ts;
use crate::{
    CURRENT_SCHEMA_VERSION, Fence, FenceKind, NewMessage, NewSession, SchemaPolicy, SessionStore,
    StoreOptions, ensure_schema, run_tx, session_lease_name,
};

fn texts(rows: &[crate::MessageRow]) -> Vec<String> {
    rows.iter()
        .map(|r| r.content.clone().unwrap_or_default())
        .collect()
}

/// Appends one user message through `s`, which must succeed.
async fn append(s: &SessionStore, sid: &str, text: &str) {
    s.append_message(sid, NewMessage::user(text))
        .await
        .unwrap_or_else(|e| panic!("appending {text:?}: {e}"));
}

/// Appends one user message through `s`, which must be refused; the error.
async fn refused(s: &SessionStore, sid: &str, text: &str) -> power_loop_contracts::Error {
    match s.append_message(sid, NewMessage::user(text)).await {
        Ok(_) => panic!("appending {text:?} should have been refused"),
        Err(e) => e,
    }
}

/// The session's message texts, in seq order, must be `expected`.
async fn assert_texts(s: &SessionStore, sid: &str, expected: &[&str]) {
    assert_eq!(texts(&s.load_all_messages(sid).await.unwrap()), expected);
}

/// The scenario's store, another handle on the same database (a second worker: it shares the
/// tokens, not the in-memory lease state), and a fresh session.
async fn two_handles(ctx: &Ctx) -> (SessionStore, SessionStore, String) {
    let s = ctx.store().await;
    let sid = s.create_session(NewSession::new()).await.unwrap();
    let other = SessionStore::new(
        Arc::clone(&ctx.db),
        &StoreOptions::new().with_table_prefix(&ctx.prefix),
    )
    .unwrap();
    (s, other, sid)
}

pub async fn lost_session_lease_refuses_every_write(ctx: Ctx) {
    let (s, other, sid) = two_handles(&ctx).await;

    let la = s.acquire_session_lease(&sid).await.unwrap();
    let first = la.token();
    assert!(first >= 1);
    assert_eq!(
        s.fence_token(&session_lease_name(&ctx.prefix, &sid))
            .await
            .unwrap(),
        Some(first)
    );
    let a = s.fenced(la.fence());
    assert_eq!(a.fences().len(), 1);
    append(&a, &sid, "a1").await;
    a.add_note(&sid, "note of a", false).await.unwrap();

    // The first worker's lease is lost; a second worker takes the session over and writes.
    la.lose().await.unwrap();
    let lb = other.acquire_session_lease(&sid).await.unwrap();
    assert_eq!(
        lb.token(),
        first + 1,
        "tokens grow by one per lease, across handles"
    );
    let b = other.fenced(lb.fence());
    append(&b, &sid, "b1").await;

    // Every write of the first worker is refused with the typed error, nothing of it visible.
    let e = a
        .append_messages(
            &sid,
            vec![NewMessage::user("a2"), NewMessage::assistant("a2 answer")],
        )
        .await
        .unwrap_err();
    assert_eq!(code(&e), "session.lease_lost", "{e}");
    assert!(!e.is_retryable());
    assert_eq!(
        e.detail("session_id").and_then(|v| v.as_str()),
        Some(sid.as_str())
    );
    assert_eq!(e.detail("held_token").and_then(|v| v.as_i64()), Some(first));
    assert_eq!(
        e.detail("current_token").and_then(|v| v.as_i64()),
        Some(first + 1)
    );
    let e = a.add_note(&sid, "late note", false).await.unwrap_err();
    assert_eq!(code(&e), "session.lease_lost");
    let e = a
        .set_runtime_state(&sid, "k", json!({"late": true}))
        .await
        .unwrap_err();
    assert_eq!(code(&e), "session.lease_lost");
    let e = a
        .create_timer(&sid, 1, "late timer", None)
        .await
        .unwrap_err();
    assert_eq!(code(&e), "session.lease_lost");
    // Reads are not fenced.
    let rows = a.load_all_messages(&sid).await.unwrap();
    assert_eq!(
        texts(&rows),
        ["a1", "b1"],
        "only the holders' turns, in order"
    );
    let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, [1, 2], "the refused writes left no gap");
    assert_eq!(s.list_notes(&sid).await.unwrap().len(), 1);
    assert!(s.get_runtime_state(&sid, "k").await.unwrap().is_none());
    assert!(s.list_live_timers(&sid).await.unwrap().is_empty());
    // The unfenced view of the same handle (admin tools) still writes.
    a.unfenced()
        .add_note(&sid, "admin note", false)
        .await
        .unwrap();
    // The new holder keeps writing; a fence that never existed is refused too.
    append(&b, &sid, "b2").await;
    let ghost = s.fenced(Fence::new(
        FenceKind::Session {
            session_id: sid.clone(),
        },
        "no-such-fence",
        1,
    ));
    let e = refused(&ghost, &sid, "ghost").await;
    assert_eq!(code(&e), "session.lease_lost");
    assert!(e.detail("current_token").is_none());
    lb.release().await.unwrap();
    assert_texts(&s, &sid, &["a1", "b1", "b2"]).await;
}

/// A writer racing the takeover: every commit of the old holder is ordered before the new
/// holder's first write, whether the new grant took a new token or (the same store taking its
/// released lease back) kept the old one.
pub async fn takeover_orders_the_old_holders_commits_first(ctx: Ctx) {
    let s = ctx.store().await;
    let sid = s.create_session(NewSession::new()).await.unwrap();
    for round in 0..4 {
        let la = s.acquire_session_lease(&sid).await.unwrap();
        let a = s.fenced(la.fence());
        let (a2, sid2) = (a.clone(), sid.clone());
        let (wrote_tx, wrote) = tokio::sync::oneshot::channel::<()>();
        let writer = tokio::spawn(async move {
            let mut ok = 0_u32;
            let mut wrote_tx = Some(wrote_tx);
            loop {
                let m = NewMessage::user(format!("a{round}"));
                match a2.append_message(&sid2, m).await {
                    Ok(_) => {
                        ok += 1;
                        if let Some(t) = wrote_tx.take() {
                            let _ = t.send(());
                        }
                    }
                    Err(e) => {
                        assert_eq!(code(&e), "session.lease_lost", "{e}");
                        return ok;
                    }
                }
            }
        });
        wrote.await.unwrap();
        // Even rounds: released (the same store takes it back with the same token); odd
        // rounds: lost behind the holder's back (the next acquire increments).
        if round % 2 == 0 {
            la.release().await.unwrap();
        } else {
            la.lose().await.unwrap();
        }
        let lb = s.acquire_session_lease(&sid).await.unwrap();
        let b = s.fenced(lb.fence());
        b.append_message(&sid, NewMessage::user(format!("b{round}")))
            .await
            .unwrap();
        let ok = writer.await.unwrap();
        assert!(
            ok >= 1,
            "round {round}: the old holder wrote before the takeover"
        );
        lb.release().await.unwrap();
    }
    let labels = texts(&s.load_all_messages(&sid).await.unwrap());
    for round in 0..4 {
        let b = labels
            .iter()
            .position(|l| *l == format!("b{round}"))
            .unwrap();
        assert!(
            !labels[b..].contains(&format!("a{round}")),
            "round {round}: the released holder committed after the new holder: {labels:?}"
        );
    }
}

/// A store that takes back a lease it released itself keeps the token when nobody took the lease
/// in between, yet a handle fenced by the released grant stays refused; a lease taken by another
/// store in between, or let go without `release`, makes the next acquire increment.
pub async fn released_lease_is_taken_back_with_its_token(ctx: Ctx) {
    let (s, other, sid) = two_handles(&ctx).await;
    let name = session_lease_name(&ctx.prefix, &sid);

    let l1 = s.acquire_session_lease(&sid).await.unwrap();
    let t1 = l1.token();
    let stale = s.fenced(l1.fence());
    append(&stale, &sid, "one").await;
    l1.release().await.unwrap();
    // Refused at once, before anyone takes the lease again.
    let e = refused(&stale, &sid, "stale 1").await;
    assert_eq!(code(&e), "session.lease_lost", "{e}");
    assert_eq!(e.detail("released").and_then(|v| v.as_bool()), Some(true));
    let l2 = s.acquire_session_lease(&sid).await.unwrap();
    assert_eq!(l2.token(), t1, "nobody took the lease in between");
    assert_eq!(s.fence_token(&name).await.unwrap(), Some(t1));
    let e = refused(&stale, &sid, "stale 2").await;
    assert_eq!(code(&e), "session.lease_lost", "{e}");
    append(&s.fenced(l2.fence()), &sid, "two").await;
    l2.release().await.unwrap();

    // Another store takes it in between: both increment from then on.
    let lo = other.acquire_session_lease(&sid).await.unwrap();
    assert_eq!(lo.token(), t1 + 1);
    lo.release().await.unwrap();
    let l3 = s.acquire_session_lease(&sid).await.unwrap();
    assert_eq!(
        l3.token(),
        t1 + 2,
        "the table no longer holds the released token"
    );
    // A lease let go without `release` is not taken back with its token.
    drop(l3);
    // (Servers unlock a dropped lease in the background: poll until it is free.)
    let mut l4 = None;
    for _ in 0..500 {
        l4 = s.try_acquire_session_lease(&sid).await.unwrap();
        if l4.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let l4 = l4.expect("the dropped lease was let go");
    assert_eq!(l4.token(), t1 + 3);
    append(&s.fenced(l4.fence()), &sid, "four").await;
    l4.release().await.unwrap();
    assert_texts(&s, &sid, &["one", "two", "four"]).await;
}

pub async fn lost_timer_claim_cannot_deliver_or_complete(ctx: Ctx) {
    let s = ctx.store().await;
    let sid = s.create_session(NewSession::new()).await.unwrap();
    let now = crate::now_ms();
    let t = s.create_timer(&sid, now - 10, "wake", None).await.unwrap();
    let first = s.claim_due_timers(now, 10, 600_000).await.unwrap();
    assert_eq!(first.len(), 1);
    let c1 = first[0].clone();
    assert_eq!(c1.timer.timer_id, t.timer_id);
    assert_eq!(c1.token, 1);
    let a = s.fenced(c1.fence());
    assert!(a.heartbeat_firing_timer(&sid, t.timer_id).await.unwrap());

    // The first runner stalls past the lease; a second runner claims the firing again.
    let second = s
        .claim_due_timers(now + 10_000_000, 10, 1_000)
        .await
        .unwrap();
    assert_eq!(second.len(), 1);
    let c2 = second[0].clone();
    assert_eq!(c2.token, 2);
    let b = s.fenced(c2.fence());

    // The stale runner can neither heartbeat, deliver, complete nor re-arm.
    for e in [
        a.heartbeat_firing_timer(&sid, t.timer_id)
            .await
            .unwrap_err(),
        a.append_message(&sid, NewMessage::user("<timer id=1> wake"))
            .await
            .unwrap_err(),
        a.finish_firing_timer(&sid, t.timer_id).await.unwrap_err(),
        a.rearm_timer(&sid, t.timer_id, now + 5).await.unwrap_err(),
    ] {
        assert_eq!(code(&e), "timer.claim_lost", "{e}");
        assert_eq!(
            e.detail("timer_id").and_then(|v| v.as_i64()),
            Some(t.timer_id)
        );
        assert_eq!(e.detail("held_token").and_then(|v| v.as_i64()), Some(1));
        assert_eq!(e.detail("current_token").and_then(|v| v.as_i64()), Some(2));
    }
    // The holder delivers once and completes.
    append(&b, &sid, "<timer id=1> wake").await;
    assert!(b.finish_firing_timer(&sid, t.timer_id).await.unwrap());
    let row = s.get_timer(&sid, t.timer_id).await.unwrap().unwrap();
    assert_eq!(row.status, ts::FIRED);
    assert_eq!(row.fire_count, 1, "exactly one completion");
    assert_eq!(
        s.load_all_messages(&sid).await.unwrap().len(),
        1,
        "exactly one delivery"
    );
    // Claims of different timers do not interfere.
    let t2 = s.create_timer(&sid, now - 10, "other", None).await.unwrap();
    let c3 = s.claim_due_timers(now, 10, 600_000).await.unwrap();
    assert_eq!(c3.len(), 1);
    assert_eq!((c3[0].timer.timer_id, c3[0].token), (t2.timer_id, 1));
    assert!(
        s.fenced(c3[0].fence())
            .finish_firing_timer(&sid, t2.timer_id)
            .await
            .unwrap()
    );
}

/// Creates the version-2 schema of `prefix` (what today's main writes) and stamps version 2.
async fn create_v2(db: &dyn Database, prefix: &str) {
    let p = prefix.to_owned();
    run_tx(db, TxMode::Write, move |tx| {
        tx.execute(&schema_migrations_ddl(&p), &[])?;
        let ddl = tx.dialect().ddl(&p);
        let mut v2 = statements_since_version(&ddl, &p, 1);
        v2.extend(statements_since_version(&ddl, &p, 2));
        assert!(!v2.iter().any(|s| s.contains("lease_fences")), "{v2:?}");
        for stmt in &v2 {
            tx.execute(stmt, &[])?;
        }
        tx.execute(
            &format!("INSERT INTO {p}schema_migrations (id, version) VALUES (?, ?)"),
            &[Value::Int(1), Value::Int(2)],
        )?;
        Ok(())
    })
    .await
    .unwrap();
}

pub async fn schema_v2_database_is_migrated_and_fenced(ctx: Ctx) {
    let p = ctx.prefix.clone();
    create_v2(&*ctx.db, &p).await;
    let opts = |policy| {
        StoreOptions::new()
            .with_table_prefix(&p)
            .with_schema_policy(policy)
    };
    // Data written by a version-2 build (a handle that skips the schema check).
    let v2 = SessionStore::new(Arc::clone(&ctx.db), &opts(SchemaPolicy::Verify)).unwrap();
    let sid = v2.create_session(NewSession::new()).await.unwrap();
    append(&v2, &sid, "written by v2").await;
    v2.create_timer(&sid, 5, "v2 timer", None).await.unwrap();

    let e = ensure_schema(&*ctx.db, &p, SchemaPolicy::Verify)
        .await
        .unwrap_err();
    assert_eq!(code(&e), "store.schema_outdated", "{e}");
    assert!(e.to_string().contains(&format!("{p}lease_fences")), "{e}");
    let s = SessionStore::open_database(Arc::clone(&ctx.db), &opts(SchemaPolicy::AutoCreate))
        .await
        .unwrap();
    assert_eq!(
        ensure_schema(&*ctx.db, &p, SchemaPolicy::Verify)
            .await
            .unwrap(),
        CURRENT_SCHEMA_VERSION
    );
    assert_texts(&s, &sid, &["written by v2"]).await;
    // The v2 timer is claimable with a token; the session is leasable and fenced.
    let claims = s
        .claim_due_timers(crate::now_ms(), 10, 600_000)
        .await
        .unwrap();
    assert_eq!(claims.len(), 1);
    assert_eq!(
        (claims[0].timer.note.as_str(), claims[0].token),
        ("v2 timer", 1)
    );
    let l1 = s.acquire_session_lease(&sid).await.unwrap();
    assert_eq!(l1.token(), 1);
    let stale = s.fenced(l1.fence());
    l1.release().await.unwrap();
    let l2 = s.acquire_session_lease(&sid).await.unwrap();
    let e = refused(&stale, &sid, "stale").await;
    assert_eq!(code(&e), "session.lease_lost");
    append(&s.fenced(l2.fence()), &sid, "after the upgrade").await;
    l2.release().await.unwrap();
    assert_texts(&s, &sid, &["written by v2", "after the upgrade"]).await;
}
