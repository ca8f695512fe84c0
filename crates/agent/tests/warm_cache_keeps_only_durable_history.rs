//! The warm window cache holds the durable history only: content a run adds to its working
//! history without persisting it (recalled memory, a hook's rewrite of the messages) never
//! reaches the next send, a failed send costs a reload but not correctness, and the warm loop
//! still serves its sends from the cache. Checked by comparing a long-lived loop with a fresh
//! loop per send (both must send byte-identical requests).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use power_loop_agent::{AgentHooks, AgentLoopConfig, NewSessionOptions, StatefulAgentLoop};
use power_loop_contracts::{ErrorCode, Message};
use power_loop_llm::{ScriptedLlm, Step};
use power_loop_store::SessionStore;
use support::*;

fn script() -> ScriptedLlm {
    ScriptedLlm::new()
        .step(Step::text("one"))
        .step(Step::error(ErrorCode::LlmBadRequest))
        .step(Step::text("three"))
        .step(Step::text("four"))
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Warm,
    Cold,
}

fn make_loop(llm: &ScriptedLlm, store: SessionStore, hooks: AgentHooks) -> StatefulAgentLoop {
    StatefulAgentLoop::builder(Arc::new(llm.clone()))
        .store(store)
        .config(
            AgentLoopConfig::default()
                .with_system_prompt("You are terse.")
                .with_memory(Some(Arc::new(TestMemory {
                    recalled: vec![Message::user("the user likes tea").with_name("fact")],
                    ..TestMemory::default()
                }))),
        )
        .hooks(hooks)
        .build()
        .unwrap()
}

/// Runs four sends (the second fails) and returns the serialized requests and cache hits.
async fn conversation(mode: Mode) -> (Vec<String>, u64) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.db");
    let path = path.to_str().unwrap().to_owned();
    let llm = script();
    // The very first round of the conversation gets a transient note from a hook.
    let hooks = AgentHooks::new();
    let once = Arc::new(AtomicBool::new(true));
    hooks.on_round_start(0, move |ctx| {
        if once.swap(false, Ordering::SeqCst) {
            ctx.messages.push(Message::system("transient note"));
        }
        Ok(())
    });
    let store = sqlite_at(&path).await;
    let warm = make_loop(&llm, store.clone(), hooks.clone());
    let sid = warm
        .new_session(NewSessionOptions::default())
        .await
        .unwrap();
    assert!(warm.prewarm(&sid).await.unwrap());
    for (i, text) in ["first", "second", "third", "fourth"].iter().enumerate() {
        let lp = match mode {
            Mode::Warm => warm.clone(),
            Mode::Cold => make_loop(&llm, sqlite_at(&path).await, hooks.clone()),
        };
        let out = lp.send(&sid, *text).await;
        assert_eq!(out.is_err(), i == 1, "send {i}: {out:?}");
    }
    let reqs = llm
        .requests()
        .iter()
        .map(|r| serde_json::to_string(r).unwrap())
        .collect();
    (reqs, warm.cache_stats().hits)
}

#[tokio::test]
async fn transient_history_never_reaches_the_cache() {
    let (warm, hits) = conversation(Mode::Warm).await;
    let (cold, _) = conversation(Mode::Cold).await;
    assert_eq!(warm.len(), 4);
    assert_eq!(warm, cold);
    // The hook's note was in the first request only; the fact is recalled once per request.
    assert!(warm[0].contains("transient note"));
    for (i, r) in warm.iter().enumerate() {
        assert!(i == 0 || !r.contains("transient note"), "request {i}: {r}");
        assert_eq!(
            r.matches("the user likes tea").count(),
            1,
            "request {i}: {r}"
        );
    }
    // Every earlier turn travels, including the user message of the failed send.
    assert!(warm[3].contains("first") && warm[3].contains("second") && warm[3].contains("three"));
    // Sends 1 and 2 were served from the cache; 3 reloaded after the failure; 4 was a hit.
    assert_eq!(hits, 3);
}
