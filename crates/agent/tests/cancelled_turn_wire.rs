//! A turn cancelled before the model answered leaves a well-formed history: the next send's
//! request alternates user and assistant turns on both wires (the Anthropic body no longer joins
//! the cancelled question and the new one into one user message).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use power_loop_agent::{
    AgentLoopConfig, NewSessionOptions, RunStatus, SendOptions, StatefulAgentLoop,
};
use power_loop_contracts::{CancellationToken, LlmRequest};
use power_loop_llm::{AnthropicConfig, AnthropicLlm, OpenAiConfig, OpenAiLlm, ScriptedLlm, Step};
use serde_json::Value;
use support::*;

fn roles(body: &Value) -> Vec<String> {
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap().to_owned())
        .collect()
}

/// The wire bodies both providers would send for `req`.
fn bodies(req: &LlmRequest) -> (Value, Value) {
    let anthropic = AnthropicLlm::new(AnthropicConfig::new("http://127.0.0.1:9", "k", "claude-x"))
        .unwrap()
        .request_body(req)
        .unwrap();
    let openai = OpenAiLlm::new(OpenAiConfig::new("http://127.0.0.1:9/v1", "k", "gpt-x"))
        .unwrap()
        .request_body(req)
        .unwrap();
    (anthropic, openai)
}

async fn cancelled_then_sent(cancel_before_start: bool) -> (StatefulAgentLoop, String, LlmRequest) {
    // The first question gets a slow answer (cancelled mid-call), anything else the answer.
    let llm = ScriptedLlm::from_fn(|req| {
        let asks_first = req
            .messages
            .last()
            .is_some_and(|m| m.text() == "first question");
        if asks_first {
            Step::text("never shown").with_delay(Duration::from_secs(30))
        } else {
            Step::text("the answer")
        }
    })
    .record_requests(true);
    let (store, dir) = sqlite_store().await;
    let lp = StatefulAgentLoop::builder(Arc::new(llm.clone()))
        .store(store)
        .config(AgentLoopConfig::default())
        .build()
        .unwrap();
    let sid = lp.new_session(NewSessionOptions::default()).await.unwrap();
    let token = CancellationToken::new();
    let mut subs = Vec::new();
    if cancel_before_start {
        token.cancel();
    } else {
        let t = token.clone();
        let sub = lp.event_bus().subscribe(
            power_loop_contracts::event::EventType::LlmCallStarted,
            move |_| {
                t.cancel();
                Ok(())
            },
        );
        subs.push(sub);
    }
    let r = lp
        .send_with(
            &sid,
            "first question",
            SendOptions::new().with_cancel(token),
        )
        .await
        .unwrap();
    assert_eq!(r.status, RunStatus::Cancelled);
    for s in subs {
        lp.event_bus().unsubscribe(s);
    }
    let r = lp.send(&sid, "second question").await.unwrap();
    assert_eq!(r.final_text, "the answer");
    let req = llm.last_request().unwrap();
    drop(dir);
    (lp, sid, req)
}

#[tokio::test]
async fn a_turn_cancelled_mid_call_replays_as_user_assistant_user() {
    let (lp, sid, req) = cancelled_then_sent(false).await;
    let (anthropic, openai) = bodies(&req);
    assert_eq!(
        roles(&anthropic),
        vec!["user", "assistant", "user"],
        "{anthropic}"
    );
    let text = |i: usize| anthropic["messages"][i]["content"].to_string();
    assert!(text(0).contains("first question") && !text(0).contains("second"));
    assert!(text(1).contains("[cancelled by user]"), "{}", text(1));
    assert!(text(2).contains("second question"));
    let openai_roles: Vec<String> = roles(&openai)
        .into_iter()
        .filter(|r| r != "system")
        .collect();
    assert_eq!(openai_roles, vec!["user", "assistant", "user"], "{openai}");
    // The cancellation is recorded as the assistant's turn of the cancelled send.
    let msgs = lp.get_messages(&sid, false).await.unwrap();
    assert_eq!(msgs[1].text(), "[cancelled by user]");
}

#[tokio::test]
async fn a_turn_cancelled_before_its_first_round_replays_well_formed_too() {
    let (_lp, _sid, req) = cancelled_then_sent(true).await;
    let (anthropic, _) = bodies(&req);
    assert_eq!(
        roles(&anthropic),
        vec!["user", "assistant", "user"],
        "{anthropic}"
    );
}
