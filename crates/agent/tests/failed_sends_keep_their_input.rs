//! A send that ends without an answer still leaves its user message durable, exactly once
//! (the reference persists the input before the pipeline, and rows appended before a failure
//! stay). Since the input is committed together with the run's first durable write,
//! these are the paths where it must be committed alone or must not be committed twice: the
//! error path before the first model call (a failing `llm.before` hook), the error path after a
//! tool round (the input went in with the tool-call record), cancellation before the first round
//! and during the model call (each closed by an assistant `[cancelled by user]` marker, so
//! the history keeps alternating), and a degraded call (from another loop). Each is checked from an
//! independent store handle; the session is never left pending, and the next send works and
//! shows the model every stored input exactly once. SQLite always; PostgreSQL with
//! `POWER_LOOP_TEST_PG_DSN`; MySQL/MariaDB with `POWER_LOOP_TEST_MYSQL_DSN` (failing instead of
//! skipping when `POWER_LOOP_REQUIRE_SERVERS=1`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/durability.rs"]
mod durability;
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use durability::{Target, well_formed};
use power_loop_agent::{AgentLoopConfig, RunStatus, SendOptions, StatefulAgentLoop};
use power_loop_contracts::{Error, ErrorCode};
use power_loop_llm::{Fallback, ScriptedLlm, Step};
use serde_json::json;
use support::registry;
use tokio_util::sync::CancellationToken;

/// The stored sends (user text → shape of the rows after it), read from a fresh handle; also
/// checks the transcript is well formed with nothing pending.
async fn stored(target: &Target, sid: &str) -> Vec<(String, Vec<String>)> {
    let outside = target.open().await;
    let rows = outside.load_all_messages(sid).await.unwrap();
    let pending = outside.get_pending(sid).await.unwrap();
    assert!(pending.is_none(), "left pending: {pending:?}");
    let groups = well_formed(&rows, None);
    outside.close().await.unwrap();
    groups
        .iter()
        .map(|g| (g.label().to_owned(), g.shape()))
        .collect()
}

async fn scenario(target: Target) {
    let llm = ScriptedLlm::new();
    let store = target.open().await;
    let lp = StatefulAgentLoop::builder(Arc::new(llm.clone()))
        .store(store.clone())
        .tools(registry())
        .build()
        .unwrap();
    // A failing `llm.before` hook in round `fail_round` takes the error path (the send fails).
    let fail_round = Arc::new(AtomicU32::new(u32::MAX));
    let f = Arc::clone(&fail_round);
    lp.hooks().on_llm_before(0, move |ctx| {
        if ctx.round_index == f.load(Ordering::SeqCst) {
            return Err(Error::new(ErrorCode::HookFailed, "policy down"));
        }
        Ok(())
    });
    let sid = lp
        .new_session(power_loop_agent::NewSessionOptions::default())
        .await
        .unwrap();
    let mut want: Vec<(String, Vec<String>)> = Vec::new();

    // Error path before the first model call: the input alone.
    fail_round.store(0, Ordering::SeqCst);
    let e = lp.send(&sid, "fails at once").await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::HookFailed, "{e}");
    want.push(("fails at once".into(), vec![]));
    assert_eq!(stored(&target, &sid).await, want);

    // Error after a tool round: the input was committed with the tool-call record, once.
    fail_round.store(1, Ordering::SeqCst);
    llm.push(Step::tool_call("echo", json!({"text": "side"})));
    let e = lp.send(&sid, "fails after a tool").await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::HookFailed, "{e}");
    want.push((
        "fails after a tool".into(),
        vec![r#"assistant+calls["echo"]"#.into(), "tool:side".into()],
    ));
    assert_eq!(stored(&target, &sid).await, want);
    fail_round.store(u32::MAX, Ordering::SeqCst);

    // Cancelled before the first round.
    let token = CancellationToken::new();
    token.cancel();
    let r = lp
        .send_with(
            &sid,
            "cancelled before",
            SendOptions::new().with_cancel(token),
        )
        .await
        .unwrap();
    assert_eq!(r.status, RunStatus::Cancelled, "{r:?}");
    // The unanswered turn is closed by the cancellation marker (a well-formed history).
    want.push((
        "cancelled before".into(),
        vec!["assistant:[cancelled by user]".into()],
    ));
    assert_eq!(stored(&target, &sid).await, want);

    // Cancelled while the model is answering.
    llm.push(Step::text("too late").with_delay(Duration::from_secs(30)));
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        t.cancel();
    });
    let r = lp
        .send_with(
            &sid,
            "cancelled during",
            SendOptions::new().with_cancel(token),
        )
        .await
        .unwrap();
    assert_eq!(r.status, RunStatus::Cancelled, "{r:?}");
    want.push((
        "cancelled during".into(),
        vec!["assistant:[cancelled by user]".into()],
    ));
    assert_eq!(stored(&target, &sid).await, want);

    // Degraded (the model keeps failing, no retry layer; another loop, as another worker would be).
    let failing = ScriptedLlm::new().fallback(Fallback::Error(ErrorCode::LlmServer));
    let degrading = StatefulAgentLoop::builder(Arc::new(failing))
        .store(store.clone())
        .config(AgentLoopConfig::default())
        .build()
        .unwrap();
    let r = degrading.send(&sid, "degraded").await.unwrap();
    assert_eq!(r.status, RunStatus::Degraded, "{r:?}");
    want.push((
        "degraded".into(),
        vec![format!("assistant:{}", r.final_text)],
    ));
    assert_eq!(stored(&target, &sid).await, want);

    // The session keeps working, and the model sees every stored input once.
    llm.push(Step::text("fine"));
    let r = lp.send(&sid, "next").await.unwrap();
    assert_eq!(r.final_text, "fine");
    let req = llm.last_request().unwrap();
    for (text, _) in &want {
        let n = req.messages.iter().filter(|m| m.text() == *text).count();
        assert_eq!(n, 1, "the model saw {text:?} {n} times");
    }
    want.push(("next".into(), vec!["assistant:fine".into()]));
    assert_eq!(stored(&target, &sid).await, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sends_keep_their_input_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    scenario(Target::sqlite(&dir)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sends_keep_their_input_on_postgres() {
    let Some(target) = Target::server("POWER_LOOP_TEST_PG_DSN", "dfail") else {
        return;
    };
    scenario(target).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_sends_keep_their_input_on_mysql() {
    let Some(target) = Target::server("POWER_LOOP_TEST_MYSQL_DSN", "dfail") else {
        return;
    };
    scenario(target).await;
}
