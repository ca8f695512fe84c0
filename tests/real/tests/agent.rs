#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The agent loop against the real server, on both wire formats: streamed events in order with
//! the usage counted, `max_tokens` and the `length` finish reason seen by an `llm.after` hook,
//! structured output against a JSON schema, and cancellation mid-stream with the session usable
//! afterwards.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use power_loop::{
    AgentLoopConfig, CancellationToken, EventFilter, EventPayload, EventType, FinishReason,
    NewSessionOptions, RunStatus, SendOptions, StructuredOutputSpec,
};
use power_loop_real_tests::wire::sqlite_dsn;
use power_loop_real_tests::{Proxy, RealServer, Wire, real_test};
use serde_json::{Value, json};

/// Position of the first event of `ty` in `seen` (panics when absent).
fn pos(seen: &[EventType], ty: EventType) -> usize {
    seen.iter()
        .position(|t| *t == ty)
        .unwrap_or_else(|| panic!("no {} in {seen:?}", ty.as_str()))
}

async fn events_in_order_with_usage(wire: Wire, server: RealServer) {
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(&server.base_url);
    let agent = wire.agent(&proxy.base_url, &sqlite_dsn(&dir), 32);
    let seen = Arc::new(Mutex::new(Vec::<EventType>::new()));
    let deltas = Arc::new(Mutex::new(String::new()));
    let completed = Arc::new(Mutex::new(Vec::<(Option<u64>, Option<u64>)>::new()));
    let (s, d, c) = (seen.clone(), deltas.clone(), completed.clone());
    agent.event_bus().subscribe(EventFilter::All, move |e| {
        s.lock().unwrap().push(e.event_type());
        match &e.payload {
            EventPayload::StreamDelta(p) if !p.is_think => d.lock().unwrap().push_str(&p.text),
            EventPayload::LlmCallCompleted(p) => c
                .lock()
                .unwrap()
                .push((p.prompt_tokens, p.completion_tokens)),
            _ => {}
        }
        Ok(())
    });
    let sid = agent
        .new_session(NewSessionOptions::default().with_system_prompt("You are a poet."))
        .await
        .unwrap();
    let r = agent
        .send(&sid, "Write four short lines about rain.")
        .await
        .unwrap();
    assert_eq!(r.status, RunStatus::Completed, "{r:?}");
    let seen = seen.lock().unwrap().clone();

    // The documented order of one round.
    let order = [
        EventType::SessionStarted,
        EventType::RoundStarted,
        EventType::StreamStarted,
        EventType::LlmCallStarted,
        EventType::StreamDelta,
        EventType::LlmCallCompleted,
        EventType::StreamCompleted,
        EventType::UsageUpdated,
        EventType::RoundCompleted,
        EventType::SessionEnded,
    ];
    let at: Vec<usize> = order.iter().map(|t| pos(&seen, *t)).collect();
    assert!(
        at.windows(2).all(|w| w[0] < w[1]),
        "{order:?} at {at:?} in {seen:?}"
    );
    assert_eq!(seen.first(), Some(&EventType::SessionStarted));
    assert_eq!(seen.last(), Some(&EventType::SessionEnded));
    let n_deltas = seen
        .iter()
        .filter(|t| **t == EventType::StreamDelta)
        .count();
    assert!(n_deltas >= 3, "the answer streamed in pieces: {n_deltas}");
    let last_delta = seen
        .iter()
        .rposition(|t| *t == EventType::StreamDelta)
        .unwrap();
    assert!(last_delta < pos(&seen, EventType::LlmCallCompleted));

    // The streamed pieces are the answer; the run's usage is the server's count for the call.
    assert_eq!(deltas.lock().unwrap().as_str(), r.final_text);
    let completed = completed.lock().unwrap().clone();
    assert_eq!(completed.len(), 1);
    let (p, c) = completed[0];
    assert_eq!(r.usage.calls, 1);
    assert_eq!(Some(r.usage.prompt_tokens), p);
    assert_eq!(Some(r.usage.completion_tokens), c);
    assert!(r.usage.prompt_tokens > 10 && r.usage.completion_tokens > 0);
    assert!(r.usage.completion_tokens <= 32);
    assert_eq!(
        r.usage.total_tokens,
        r.usage.prompt_tokens + r.usage.completion_tokens
    );
    let calls = proxy.model_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].body["max_tokens"], json!(32));
    agent.close(Duration::from_secs(10)).await.unwrap();
}
real_test!(
    stream_events_arrive_in_order_and_usage_is_counted,
    super::events_in_order_with_usage
);

async fn length_seen_by_the_loop(wire: Wire, server: RealServer) {
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(&server.base_url);
    let agent = wire.agent_with(
        &proxy.base_url,
        &sqlite_dsn(&dir),
        6,
        AgentLoopConfig::new(),
    );
    let reasons = Arc::new(Mutex::new(Vec::new()));
    let r2 = reasons.clone();
    agent.hooks().on_llm_after(0, move |ctx| {
        r2.lock().unwrap().push(ctx.output.finish_reason.clone());
        Ok(())
    });
    let sid = agent
        .new_session(NewSessionOptions::default())
        .await
        .unwrap();
    let r = agent
        .send(&sid, "Write a long essay about the history of bread.")
        .await
        .unwrap();
    assert_eq!(r.status, RunStatus::Completed, "{r:?}");
    assert_eq!(r.usage.completion_tokens, 6, "{r:?}");
    assert!(!r.final_text.is_empty());
    assert_eq!(
        reasons.lock().unwrap().clone(),
        vec![Some(FinishReason::Length)]
    );
    assert_eq!(proxy.model_calls()[0].body["max_tokens"], json!(6));
    assert_eq!(proxy.model_calls()[0].body["temperature"], json!(0.0));
    // The cut answer is stored as the turn's answer.
    let msgs = agent.get_messages(&sid, false).await.unwrap();
    assert_eq!(msgs.last().unwrap().text(), r.final_text);
}
real_test!(
    max_tokens_cut_is_seen_as_length_by_the_loop,
    super::length_seen_by_the_loop
);

async fn structured_answer(wire: Wire, server: RealServer) {
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(&server.base_url);
    let schema = json!({
        "type": "object",
        "properties": {
            "colors": {"type": "array", "items": {"type": "string", "maxLength": 20},
                       "minItems": 1, "maxItems": 3}
        },
        "required": ["colors"],
        "additionalProperties": false
    });
    let agent = wire.agent_with(
        &proxy.base_url,
        &sqlite_dsn(&dir),
        64,
        AgentLoopConfig::new()
            .with_structured_output(Some(StructuredOutputSpec::new("Colors", schema.clone())))
            .with_structured_output_retries(1),
    );
    let sid = agent
        .new_session(NewSessionOptions::default())
        .await
        .unwrap();
    let r = agent
        .send(&sid, "List three colors of the rainbow as JSON.")
        .await
        .unwrap();
    assert_eq!(r.status, RunStatus::Completed, "{r:?}");
    let calls = proxy.model_calls();
    match wire {
        Wire::OpenAi => {
            assert_eq!(
                calls[0].body["response_format"]["json_schema"]["schema"],
                schema
            );
            let v: Value = r.structured.clone().unwrap_or_else(|| panic!("{r:?}"));
            let colors = v["colors"].as_array().unwrap();
            assert!((1..=3).contains(&colors.len()) && colors.iter().all(Value::is_string));
            assert_eq!(r.structured_error, None);
            assert_eq!(r.rounds, 1, "valid at once: no repair round");
        }
        Wire::Anthropic => {
            let system = wire.request_texts(&calls[0].body).remove(0);
            assert!(
                system.contains("\"colors\""),
                "schema instruction: {system}"
            );
            // Unconstrained on this wire: a valid answer, or a typed error after the repairs.
            match &r.structured {
                Some(v) => assert!(v["colors"].is_array(), "{v}"),
                None => {
                    assert!(r.structured_error.is_some(), "{r:?}");
                    assert_eq!(calls.len(), 2, "one repair round was asked for");
                }
            }
        }
    }
}
real_test!(
    structured_output_validates_against_the_schema,
    super::structured_answer
);

async fn cancel_mid_stream(wire: Wire, server: RealServer) {
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(&server.base_url);
    let agent = wire.agent(&proxy.base_url, &sqlite_dsn(&dir), 400);
    let token = CancellationToken::new();
    let pieces = Arc::new(Mutex::new(0usize));
    let (t, p) = (token.clone(), pieces.clone());
    let sub = agent
        .event_bus()
        .subscribe(EventType::StreamDelta, move |_| {
            let mut n = p.lock().unwrap();
            *n += 1;
            if *n == 3 {
                t.cancel();
            }
            Ok(())
        });
    let sid = agent
        .new_session(NewSessionOptions::default())
        .await
        .unwrap();
    let r = tokio::time::timeout(
        Duration::from_secs(60),
        agent.send_with(
            &sid,
            "Write a very long story about a lighthouse keeper, with ten chapters.",
            SendOptions::new().with_cancel(token),
        ),
    )
    .await
    .expect("the cancelled send returns promptly")
    .unwrap();
    assert_eq!(r.status, RunStatus::Cancelled, "{r:?}");
    agent.event_bus().unsubscribe(sub);
    // The stream was cut: the server's answer never reached its end on the wire.
    let cut = &proxy.model_calls()[0];
    let sse = cut.sse_data();
    assert!(!cut.response.contains("[DONE]"), "{}", cut.response);
    assert!(!sse.iter().any(|d| d["type"] == "message_stop"));
    assert!(sse.len() < 200, "cut early: {} events", sse.len());
    assert!(agent.get_pending(&sid).await.unwrap().is_none());

    // The session goes on: the next send completes and carries the new input last.
    let next = agent.send(&sid, "Say hello.").await.unwrap();
    assert_eq!(next.status, RunStatus::Completed, "{next:?}");
    assert!(!next.final_text.is_empty());
    let calls = proxy.model_calls();
    assert_eq!(calls.len(), 2);
    let texts = wire.request_texts(&calls[1].body);
    // (The cancelled turn has no answer; the Anthropic wire joins the two user turns into one.)
    assert!(
        texts.last().is_some_and(|t| t.ends_with("Say hello.")),
        "{texts:?}"
    );
    assert!(
        texts.iter().any(|t| t.contains("lighthouse keeper")),
        "the cancelled input stays in the history: {texts:?}"
    );
}
real_test!(
    cancel_mid_stream_leaves_the_session_usable,
    super::cancel_mid_stream
);
