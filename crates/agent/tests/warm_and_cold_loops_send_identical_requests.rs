//! Warm-vs-cold conformance: the same conversation driven by one long-lived loop and by a fresh
//! loop (and a freshly opened store) per send produces byte-identical LLM requests, including
//! after a system-prompt edit, a pending heal, a tool round and a multimodal input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use power_loop_agent::{AgentLoopConfig, NewSessionOptions, SendOptions, StatefulAgentLoop};
use power_loop_contracts::{ContentPart, Message, ToolCall};
use power_loop_llm::{ScriptedLlm, Step};
use power_loop_store::{PendingChange, PendingState, SessionStore, TurnCommit};
use serde_json::json;
use support::*;

fn script() -> ScriptedLlm {
    ScriptedLlm::new()
        .step(Step::text("first answer").with_tokens(5, 2))
        .step(Step::tool_calls([
            ("echo", json!({"text": "a"})),
            ("write_note", json!({"text": "b"})),
        ]))
        .step(Step::text("after tools"))
        .step(Step::text("with the new prompt"))
        .step(Step::text("healed and continuing"))
        .step(Step::text("saw the picture"))
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Warm,
    Cold,
}

fn make_loop(llm: &ScriptedLlm, store: SessionStore) -> StatefulAgentLoop {
    StatefulAgentLoop::builder(Arc::new(llm.clone()))
        .store(store)
        .config(AgentLoopConfig::default().with_system_prompt("You are terse."))
        .tools(registry())
        .build()
        .unwrap()
}

async fn conversation(mode: Mode) -> (Vec<String>, Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.db");
    let path = path.to_str().unwrap().to_owned();
    let llm = script();
    let store = sqlite_at(&path).await;
    let warm = make_loop(&llm, store.clone());
    let sid = warm
        .new_session(NewSessionOptions::default())
        .await
        .unwrap();
    let lp = |s: &SessionStore| make_loop(&llm, s.clone());
    let mut finals = Vec::new();

    macro_rules! step {
        ($f:expr) => {{
            let (l, s) = if mode == Mode::Warm {
                (warm.clone(), store.clone())
            } else {
                let s = sqlite_at(&path).await;
                (lp(&s), s)
            };
            let f = $f;
            let r = f(l, s).await;
            finals.push(r);
        }};
    }

    let sid2 = sid.clone();
    step!(|l: StatefulAgentLoop, _s| {
        let sid = sid2.clone();
        async move { l.send(&sid, "hello").await.unwrap().final_text }
    });
    let sid2 = sid.clone();
    step!(|l: StatefulAgentLoop, _s| {
        let sid = sid2.clone();
        async move { l.send(&sid, "use tools").await.unwrap().final_text }
    });
    // A prompt edit by another writer.
    store
        .update_session_prompt(&sid, Some("You are now verbose.".into()))
        .await
        .unwrap();
    let sid2 = sid.clone();
    step!(|l: StatefulAgentLoop, _s| {
        let sid = sid2.clone();
        async move { l.send(&sid, "after edit").await.unwrap().final_text }
    });
    // A crashed writer left dangling tool calls; heal on send.
    let call = ToolCall::new("crash_1", "write_note", "{\"text\":\"x\"}");
    let assistant = Message::assistant_tool_calls("", vec![call.clone()]);
    let row = power_loop_store::NewMessage::new("assistant")
        .with_tool_calls(vec![serde_json::to_value(&call).unwrap()])
        .with_round_index(0);
    let _ = assistant;
    store
        .commit_turn(
            &sid,
            TurnCommit::new(vec![row]).with_pending(PendingChange::Set(
                PendingState::from_tool_calls(9, 0, vec![serde_json::to_value(&call).unwrap()]),
            )),
        )
        .await
        .unwrap();
    let sid2 = sid.clone();
    step!(|l: StatefulAgentLoop, _s| {
        let sid = sid2.clone();
        async move {
            l.send_with(&sid, "continue", SendOptions::new().with_heal_pending(true))
                .await
                .unwrap()
                .final_text
        }
    });
    let sid2 = sid.clone();
    step!(|l: StatefulAgentLoop, _s| {
        let sid = sid2.clone();
        async move {
            l.send(
                &sid,
                vec![
                    ContentPart::text("what is this?"),
                    ContentPart::image_url("data:image/png;base64,iVBORw0KGgo="),
                ],
            )
            .await
            .unwrap()
            .final_text
        }
    });
    let reqs = llm
        .requests()
        .iter()
        .map(|r| serde_json::to_string(r).unwrap())
        .collect();
    (reqs, finals)
}

#[tokio::test]
async fn warm_and_cold_loops_send_byte_identical_requests() {
    let (warm, wf) = conversation(Mode::Warm).await;
    let (cold, cf) = conversation(Mode::Cold).await;
    assert_eq!(wf, cf);
    assert_eq!(warm.len(), 6);
    assert_eq!(warm.len(), cold.len());
    for (i, (w, c)) in warm.iter().zip(&cold).enumerate() {
        assert_eq!(w, c, "request {i} differs");
    }
    // The prompt edit reached the model, the heal row is in the history, the image went as a part.
    assert!(warm[3].contains("You are now verbose."));
    assert!(warm[4].contains("<aborted: auto-healed by send(heal_pending=True)>"));
    assert!(warm[5].contains("\"type\":\"image_url\""));
    // The whole history travels: the 6th request carries all earlier turns.
    assert!(warm[5].contains("hello") && warm[5].contains("after tools"));
}

#[tokio::test]
async fn the_warm_loop_serves_sends_from_its_cache() {
    let (store, _d) = sqlite_store().await;
    let llm = ScriptedLlm::new();
    let lp = make_loop(&llm, store);
    let sid = lp.new_session(NewSessionOptions::default()).await.unwrap();
    assert!(lp.prewarm(&sid).await.unwrap());
    for i in 0..5 {
        lp.send(&sid, format!("m{i}")).await.unwrap();
    }
    let st = lp.cache_stats();
    assert_eq!(st.hits, 5, "{st:?}");
    assert_eq!(st.misses, 0);
    assert!(!lp.prewarm("sess_nope").await.unwrap());
}
