//! Scenarios for fleet timer claims, unknown-session errors, large/unicode content and the
//! operator operations (delete, idle listing, stats).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::HashSet;

use serde_json::json;

use super::{Ctx, code};
use crate::types::timer_status as ts;
use crate::{CompactionRequest, NewMessage, NewSession, now_ms};

pub async fn claim_due_timers_exactly_once(ctx: Ctx) {
    let s = ctx.store().await;
    let now = crate::now_ms();
    let mut expected = HashSet::new();
    for k in 0..4 {
        let sid = s.create_session(NewSession::new()).await.unwrap();
        for j in 0..10 {
            let t = s
                .create_timer(&sid, now - 1_000 + j, "due", None)
                .await
                .unwrap();
            expected.insert((sid.clone(), t.timer_id));
        }
        s.create_timer(&sid, now + 3_600_000 + k, "later", None)
            .await
            .unwrap();
    }
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let batch = s.claim_due_timers(now, 3, 600_000).await.unwrap();
                if batch.is_empty() {
                    break;
                }
                for c in batch {
                    let t = c.timer;
                    assert_eq!(t.status, ts::FIRING);
                    got.push((t.session_id.clone(), t.timer_id));
                }
            }
            got
        }));
    }
    let mut claimed = Vec::new();
    for t in tasks {
        claimed.extend(t.await.unwrap());
    }
    let unique: HashSet<_> = claimed.iter().cloned().collect();
    assert_eq!(claimed.len(), unique.len(), "no timer claimed twice");
    assert_eq!(
        unique, expected,
        "every due timer claimed once, nothing else"
    );
    // A crashed claim becomes claimable after its lease; a live one does not.
    let (sid, id) = claimed[0].clone();
    assert!(
        s.claim_due_timers(now, 100, 600_000)
            .await
            .unwrap()
            .is_empty()
    );
    let again = s
        .claim_due_timers(now + 10_000_000, 100, 1_000)
        .await
        .unwrap();
    assert!(
        again
            .iter()
            .any(|c| c.timer.session_id == sid && c.timer.timer_id == id && c.token == 2)
    );
    assert!(s.finish_firing_timer(&sid, id).await.unwrap());
    assert_eq!(
        s.get_timer(&sid, id).await.unwrap().unwrap().status,
        ts::FIRED
    );
    assert_eq!(
        code(&s.claim_due_timers(now, 1, -1).await.unwrap_err()),
        "timer.invalid"
    );
}

pub async fn unknown_session_errors_are_not_found(ctx: Ctx) {
    let s = ctx.store().await;
    let g = "ghost-session";
    assert_eq!(
        code(
            &s.append_message(g, NewMessage::user("x"))
                .await
                .unwrap_err()
        ),
        "session.not_found"
    );
    assert_eq!(
        code(
            &s.append_messages(g, vec![NewMessage::user("x")])
                .await
                .unwrap_err()
        ),
        "session.not_found"
    );
    assert_eq!(
        code(
            &s.record_compaction(g, CompactionRequest::fold(vec![1], "x"))
                .await
                .unwrap_err()
        ),
        "session.not_found"
    );
    assert_eq!(
        code(&s.set_runtime_state(g, "k", json!(1)).await.unwrap_err()),
        "session.not_found"
    );
    assert_eq!(
        code(&s.export_session(g).await.unwrap_err()),
        "session.not_found"
    );
    assert_eq!(
        code(&s.update_pending(g, |p| p).await.unwrap_err()),
        "session.not_found"
    );
    assert_eq!(
        code(
            &s.merge_session_metadata(g, crate::JsonMap::new())
                .await
                .unwrap_err()
        ),
        "session.not_found"
    );
    assert_eq!(
        code(&s.active_window_token(g).await.unwrap_err()),
        "session.not_found"
    );
    assert!(s.get_session(g).await.unwrap().is_none());
    assert!(s.load_active_messages(g, None).await.unwrap().is_empty());
    assert!(!s.archive_session(g).await.unwrap());
}

pub async fn large_and_unicode_content_round_trips(ctx: Ctx) {
    let s = ctx.store().await;
    let sid = s
        .create_session(NewSession::new().with_system_prompt("😀".repeat(20_000)))
        .await
        .unwrap();
    let big = "ä€😀x".repeat(70_000 / 4 + 100);
    assert!(big.len() > 65_536);
    let seq = s
        .append_message(
            &sid,
            NewMessage::assistant(big.clone())
                .with_tool_calls(vec![json!({"id": "c", "arguments": big.clone()})]),
        )
        .await
        .unwrap();
    let m = s.get_message(&sid, seq).await.unwrap().unwrap();
    assert_eq!(m.content.as_deref(), Some(big.as_str()));
    assert_eq!(m.tool_calls.unwrap()[0]["arguments"], json!(big));
    s.set_runtime_state(&sid, "big", json!(big.clone()))
        .await
        .unwrap();
    assert_eq!(
        s.get_runtime_state(&sid, "big").await.unwrap(),
        Some(json!(big))
    );
    assert_eq!(
        s.get_session(&sid)
            .await
            .unwrap()
            .unwrap()
            .system_prompt
            .map(|p| p.chars().count()),
        Some(20_000)
    );
    let quoted = "it's a \"quote\" with ? and % and \\ and ?";
    let seq = s
        .append_message(&sid, NewMessage::user(quoted))
        .await
        .unwrap();
    assert_eq!(
        s.get_message(&sid, seq)
            .await
            .unwrap()
            .unwrap()
            .content
            .as_deref(),
        Some(quoted)
    );
}

pub async fn delete_session_removes_everything_and_refuses_unknown_ids(ctx: Ctx) {
    let s = ctx.store().await;
    let root = s.create_session(NewSession::new()).await.unwrap();
    let child = s
        .create_session(NewSession::new().with_parent(&root))
        .await
        .unwrap();
    let keep = s.create_session(NewSession::new()).await.unwrap();
    s.append_message(&root, NewMessage::user("hello"))
        .await
        .unwrap();
    s.append_message(&child, NewMessage::user("child"))
        .await
        .unwrap();
    s.append_message(&keep, NewMessage::user("kept"))
        .await
        .unwrap();
    let before = s.stats().await.unwrap();
    assert_eq!(before.rows(&s.tables().sessions), Some(3));
    assert_eq!(before.rows(&s.tables().messages), Some(3));
    assert_eq!(before.backend, s.backend_name());

    // Only root sessions older than the cutoff are prune candidates (children go with them).
    let idle = s
        .list_sessions_updated_before(now_ms() + 60_000, 10)
        .await
        .unwrap();
    let ids: Vec<&str> = idle.iter().map(|r| r.session_id.as_str()).collect();
    assert!(
        ids.contains(&root.as_str()) && ids.contains(&keep.as_str()),
        "{ids:?}"
    );
    assert!(!ids.contains(&child.as_str()), "{ids:?}");
    assert!(
        s.list_sessions_updated_before(0, 10)
            .await
            .unwrap()
            .is_empty()
    );

    let deleted = s.delete_session(&root).await.unwrap();
    assert_eq!(deleted.len(), 2, "{deleted:?}");
    assert!(!s.session_exists(&root).await.unwrap());
    assert!(!s.session_exists(&child).await.unwrap());
    assert!(s.session_exists(&keep).await.unwrap());
    let after = s.stats().await.unwrap();
    assert_eq!(after.rows(&s.tables().sessions), Some(1));
    assert_eq!(after.rows(&s.tables().messages), Some(1));

    let e = s.delete_session(&root).await.unwrap_err();
    assert_eq!(e.code().as_str(), "session.not_found");
    let e = s.delete_session("never-existed").await.unwrap_err();
    assert_eq!(e.code().as_str(), "session.not_found");
    assert_eq!(s.stats().await.unwrap().rows(&s.tables().sessions), Some(1));
}
