//! The echo provider of last user message (or a fixed reply / prefix), fixed usage
//! 1/1/2, never tool calls, no streamed text deltas.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use power_loop_contracts::{
    CancellationToken, ErrorCode, FinishReason, LlmRequest, LlmService, Message, StreamChunk,
};
use power_loop_llm::{EchoLlm, LlmProviderConfig};

fn conversation() -> LlmRequest {
    LlmRequest::new(vec![
        Message::user("first question"),
        Message::assistant("an answer"),
        Message::user("second question"),
        Message::assistant("the last message is not a user one"),
    ])
}

#[tokio::test]
async fn echoes_the_last_user_message_with_fixed_usage_and_no_deltas() {
    let llm = EchoLlm::new();
    let chunks: Vec<StreamChunk> = llm
        .stream(conversation())
        .await
        .unwrap()
        .map(Result::unwrap)
        .collect()
        .await;
    assert_eq!(chunks.len(), 1, "one final chunk, nothing streamed");
    let c = &chunks[0];
    assert!(c.is_final);
    assert!(c.delta_text.is_empty() && c.think.is_empty() && c.delta_tool_calls.is_empty());
    assert_eq!(c.whole_text, "second question");

    let r = llm.complete(conversation()).await.unwrap();
    assert_eq!(r.raw_text, "second question");
    assert_eq!(r.content_text, "second question");
    assert!(r.tool_calls.is_empty());
    assert_eq!(r.finish_reason, Some(FinishReason::Stop));
    assert_eq!(r.token_usage.prompt_tokens, Some(1));
    assert_eq!(r.token_usage.completion_tokens, Some(1));
    assert_eq!(r.token_usage.total_tokens, Some(2));
    assert_eq!(r.model.as_deref(), Some("echo"));
    assert_eq!(llm.call_count(), 2);
    assert!(!llm.capabilities().supports_stream);

    // No user message at all: an empty answer.
    let r = llm
        .complete(LlmRequest::new(vec![Message::assistant("hi")]))
        .await
        .unwrap();
    assert_eq!(r.raw_text, "");
}

#[tokio::test]
async fn reply_prefix_and_delay() {
    let r = EchoLlm::new()
        .with_prefix("echo: ")
        .complete(conversation())
        .await
        .unwrap();
    assert_eq!(r.raw_text, "echo: second question");
    let r = EchoLlm::new()
        .with_prefix("ignored")
        .with_reply("fixed")
        .complete(conversation())
        .await
        .unwrap();
    assert_eq!(r.raw_text, "fixed");

    let slow = EchoLlm::new().with_delay(Duration::from_millis(80));
    let t0 = Instant::now();
    slow.complete(conversation()).await.unwrap();
    assert!(t0.elapsed() >= Duration::from_millis(80));
    // The delay is cancellable.
    let token = CancellationToken::new();
    let slow = EchoLlm::new().with_delay(Duration::from_secs(30));
    let mut req = conversation();
    req.cancel = Some(token.clone());
    let t = token.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(30)).await;
        t.cancel();
    });
    let t0 = Instant::now();
    let e = slow.complete(req).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::Cancelled);
    assert!(t0.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn the_echo_and_stub_provider_keys_build_it_from_config() {
    for key in ["echo", "stub", " ECHO "] {
        let cfg = LlmProviderConfig::from_lookup("P", "", |name| match name {
            "P_PROVIDER" => Some(key.to_owned()),
            "P_ECHO_PREFIX" => Some(">> ".to_owned()),
            _ => None,
        })
        .unwrap();
        let svc = cfg.build().unwrap();
        let mut stream = svc.stream(conversation()).await.unwrap();
        let only = stream.next().await.unwrap().unwrap();
        assert!(stream.next().await.is_none());
        assert!(only.delta_text.is_empty(), "no stream_delta text");
        assert_eq!(only.whole_text, ">> second question");
        assert_eq!(only.token_usage.unwrap().total_tokens, Some(2));
        assert_eq!(svc.model_name(), "echo");
    }
}
