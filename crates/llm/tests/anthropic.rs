//! Anthropic Messages transport against a local byte-exact server.
#![cfg(feature = "anthropic")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{
    Reply, TestServer, complete_sse, complete_with_fast_retry, complete_x, events, fast_retry,
    full_request, lookup_schema, typed_events,
};
use futures_util::StreamExt;
use power_loop_contracts::{
    ContentPart, ErrorCode, FinishReason, LlmRequest, LlmService, Message, ToolCall, ToolChoice,
    ToolDefinition,
};
use power_loop_llm::{AnthropicConfig, AnthropicLlm, LlmStack};
use serde_json::json;

fn llm(server: &TestServer) -> AnthropicLlm {
    AnthropicLlm::new(AnthropicConfig::new(
        &server.base,
        "sk-ant-test",
        "claude-sonnet-4-5",
    ))
    .unwrap()
}

const START: &str = r#"{"type":"message_start","message":{"id":"msg_01","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5-20250929","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":25,"cache_creation_input_tokens":0,"cache_read_input_tokens":10,"output_tokens":1}}}"#;

fn text_stream() -> String {
    typed_events(&[
        START,
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
        r#"{"type": "ping"}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":", world"}}"#,
        r#"{"type":"content_block_stop","index":0}"#,
        r#"{"type":"message_delta","delta":{"stop_reason":"end_turn","stop_sequence":null},"usage":{"output_tokens":15}}"#,
        r#"{"type":"message_stop"}"#,
    ])
}

#[tokio::test]
async fn plain_text_stream_usage_and_exact_request_with_headers() {
    let server = TestServer::start(vec![Reply::sse_parts(&[text_stream()])]).await;
    let llm = llm(&server);
    let r = llm
        .complete(LlmRequest::from_prompt("Say hello").with_system_prompt("Be terse."))
        .await
        .unwrap();
    assert_eq!(r.raw_text, "Hello, world");
    assert_eq!(r.finish_reason, Some(FinishReason::Stop));
    assert_eq!(r.response_id.as_deref(), Some("msg_01"));
    assert_eq!(r.model.as_deref(), Some("claude-sonnet-4-5-20250929"));
    assert_eq!(r.token_usage.prompt_tokens, Some(35));
    assert_eq!(r.token_usage.prompt_cached_tokens, Some(10));
    assert_eq!(r.token_usage.completion_tokens, Some(15));
    assert_eq!(r.token_usage.total_tokens, Some(50));

    let q = &server.requests()[0];
    assert_eq!(q.method, "POST");
    assert_eq!(q.path, "/v1/messages");
    assert_eq!(q.header("x-api-key"), Some("sk-ant-test"));
    assert_eq!(q.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(q.header("content-type"), Some("application/json"));
    assert_eq!(q.header("accept"), Some("text/event-stream"));
    assert_eq!(q.header("authorization"), None);
    assert_eq!(
        q.json(),
        json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 8000,
            "temperature": 0.0,
            "system": "Be terse.",
            "messages": [{"role": "user", "content": [{"type": "text", "text": "Say hello"}]}],
            "stream": true
        })
    );
}

#[tokio::test]
async fn split_into_tiny_tcp_writes() {
    let server = TestServer::start(vec![Reply::sse_split(&text_stream(), 5)]).await;
    let r = complete_x(&llm(&server)).await.unwrap();
    assert_eq!(r.raw_text, "Hello, world");
    assert_eq!(r.token_usage.completion_tokens, Some(15));
}

#[tokio::test]
async fn tool_use_split_across_many_input_json_deltas() {
    let args = r#"{"path": "/tmp/ü.txt", "lines": [1, 2, 3]}"#;
    let chars: Vec<char> = args.chars().collect();
    let pieces: Vec<String> = chars.chunks(3).map(|c| c.iter().collect()).collect();
    let mut evs: Vec<(String, String)> = vec![
        ("message_start".into(), START.into()),
        ("content_block_start".into(), r#"{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_01","name":"read_file","input":{}}}"#.into()),
        ("content_block_delta".into(), r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":""}}"#.into()),
    ];
    for p in &pieces {
        evs.push((
            "content_block_delta".into(),
            json!({"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":p}}).to_string(),
        ));
    }
    evs.push((
        "content_block_stop".into(),
        r#"{"type":"content_block_stop","index":0}"#.into(),
    ));
    evs.push(("message_delta".into(), r#"{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":40}}"#.into()));
    evs.push(("message_stop".into(), r#"{"type":"message_stop"}"#.into()));
    let refs: Vec<(&str, &str)> = evs.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let server = TestServer::start(vec![Reply::sse_parts(&[events(&refs)])]).await;
    let r = llm(&server)
        .complete(LlmRequest::from_prompt("read"))
        .await
        .unwrap();
    assert!(pieces.len() > 10);
    assert_eq!(r.finish_reason, Some(FinishReason::ToolCalls));
    assert_eq!(r.tool_calls.len(), 1);
    assert_eq!(r.tool_calls[0].id, "toolu_01");
    assert_eq!(r.tool_calls[0].name(), "read_file");
    assert_eq!(r.tool_calls[0].function.arguments, args);
    assert_eq!(r.token_usage.completion_tokens, Some(40));
}

#[tokio::test]
async fn text_thinking_and_two_parallel_tool_uses() {
    let body = typed_events(&[
        START,
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Two lookups."}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"sig"}}"#,
        r#"{"type":"content_block_stop","index":0}"#,
        r#"{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}"#,
        r#"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Checking both."}}"#,
        r#"{"type":"content_block_stop","index":1}"#,
        r#"{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_a","name":"get_weather","input":{}}}"#,
        r#"{"type":"content_block_start","index":3,"content_block":{"type":"tool_use","id":"toolu_b","name":"get_time","input":{}}}"#,
        r#"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"city\":"}}"#,
        r#"{"type":"content_block_delta","index":3,"delta":{"type":"input_json_delta","partial_json":"{\"tz\":\"UTC\"}"}}"#,
        r#"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"\"Paris\"}"}}"#,
        r#"{"type":"content_block_stop","index":2}"#,
        r#"{"type":"content_block_stop","index":3}"#,
        r#"{"type":"content_block_start","index":4,"content_block":{"type":"tool_use","id":"toolu_c","name":"no_args","input":{}}}"#,
        r#"{"type":"content_block_stop","index":4}"#,
        r#"{"type":"some_future_event"}"#,
        r#"{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":70}}"#,
        r#"{"type":"message_stop"}"#,
    ]);
    let r = complete_sse(llm, body).await.unwrap();
    assert_eq!(r.think, "Two lookups.");
    assert_eq!(r.raw_text, "Checking both.");
    assert_eq!(r.tool_calls.len(), 3);
    assert_eq!(
        (r.tool_calls[0].id.as_str(), r.tool_calls[0].name()),
        ("toolu_a", "get_weather")
    );
    assert_eq!(
        r.tool_calls[0].arguments_json().unwrap(),
        json!({"city": "Paris"})
    );
    assert_eq!(
        (r.tool_calls[1].id.as_str(), r.tool_calls[1].name()),
        ("toolu_b", "get_time")
    );
    assert_eq!(
        r.tool_calls[1].arguments_json().unwrap(),
        json!({"tz": "UTC"})
    );
    assert_eq!(r.tool_calls[2].function.arguments, "{}");
}

#[tokio::test]
async fn overloaded_error_event_mid_stream() {
    let body = typed_events(&[
        START,
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"partial"}}"#,
        r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
    ]);
    let server = TestServer::start(vec![
        Reply::sse_parts(std::slice::from_ref(&body)),
        Reply::sse_parts(&[text_stream()]),
    ])
    .await;
    let mut s = llm(&server)
        .stream(LlmRequest::from_prompt("x"))
        .await
        .unwrap();
    assert_eq!(s.next().await.unwrap().unwrap().delta_text, "partial");
    let err = s.next().await.unwrap().unwrap_err();
    assert_eq!(err.code(), ErrorCode::LlmOverloaded);
    assert!(s.next().await.is_none());

    // An error event before any chunk is retried by the stack.
    let early = typed_events(&[
        START,
        r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
    ]);
    let server = TestServer::start(vec![
        Reply::sse_parts(&[early]),
        Reply::sse_parts(&[text_stream()]),
    ])
    .await;
    let r = complete_with_fast_retry(llm(&server)).await.unwrap();
    assert_eq!(r.raw_text, "Hello, world");
    assert_eq!(server.count(), 2);

    // Other error types are provider errors and not retried.
    let other =
        typed_events(&[r#"{"type":"error","error":{"type":"api_error","message":"boom"}}"#]);
    let server = TestServer::start(vec![
        Reply::sse_parts(&[other]),
        Reply::sse_parts(&[text_stream()]),
    ])
    .await;
    let err = complete_with_fast_retry(llm(&server)).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::LlmProvider);
    assert_eq!(server.count(), 1);
}

#[tokio::test]
async fn malformed_json_event_is_a_protocol_error() {
    let body = format!(
        "{}event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"x\n\n",
        typed_events(&[START])
    );
    let err = complete_sse(llm, body).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::LlmProtocol);
}

#[tokio::test]
async fn cut_off_without_message_stop_is_incomplete() {
    let body = typed_events(&[
        START,
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"The answer"}}"#,
        r#"{"type":"content_block_stop","index":0}"#,
        r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":15}}"#,
    ]);
    let err = complete_sse(llm, body).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::LlmStreamIncomplete);
}

#[tokio::test]
async fn rate_limited_with_retry_after_ms_waits_then_succeeds() {
    let server = TestServer::start(vec![
        Reply::status(429, "Too Many Requests", &[("retry-after-ms", "1200")], r#"{"type":"error","error":{"type":"rate_limit_error","message":"Number of request tokens has exceeded your per-minute rate limit"}}"#),
        Reply::sse_parts(&[text_stream()]),
    ])
    .await;
    let stacked = LlmStack::new()
        .retry(fast_retry())
        .wrap(Arc::new(llm(&server)));
    let t0 = Instant::now();
    let r = complete_x(&stacked).await.unwrap();
    assert_eq!(r.raw_text, "Hello, world");
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    let waited = reqs[1].at.duration_since(reqs[0].at);
    assert!(
        waited >= Duration::from_millis(1200),
        "waited only {waited:?}"
    );
    assert!(t0.elapsed() >= Duration::from_millis(1200));
}

#[tokio::test]
async fn overloaded_529_is_retried() {
    let server = TestServer::start(vec![
        Reply::status(
            529,
            "Overloaded",
            &[],
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        ),
        Reply::sse_parts(&[text_stream()]),
    ])
    .await;
    let raw = llm(&server);
    let r = complete_with_fast_retry(raw).await.unwrap();
    assert_eq!(r.raw_text, "Hello, world");
    assert_eq!(server.count(), 2);

    let server = TestServer::start(vec![Reply::status(
        529,
        "Overloaded",
        &[],
        r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
    )])
    .await;
    let err = complete_x(&llm(&server)).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::LlmOverloaded);
    assert_eq!(
        err.detail("provider_error_type"),
        Some(&json!("overloaded_error"))
    );
}

#[tokio::test]
async fn unauthorized_is_not_retried() {
    let server = TestServer::start(vec![
        Reply::status(401, "Unauthorized", &[], r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#),
        Reply::sse_parts(&[text_stream()]),
    ])
    .await;
    let err = complete_with_fast_retry(llm(&server)).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::LlmAuth);
    assert!(err.message().contains("invalid x-api-key"));
    assert_eq!(server.count(), 1);
}

#[tokio::test]
async fn exact_request_json_for_a_tool_conversation() {
    let server = TestServer::start(vec![Reply::sse_parts(&[text_stream()])]).await;
    let llm = AnthropicLlm::new(
        AnthropicConfig::new(format!("{}/v1/", server.base), "k", "claude-x").with_max_tokens(1024),
    )
    .unwrap();
    let req = full_request(vec![
        Message::system("Memory: likes cats").with_name("memory_1"),
        Message::user(vec![
            ContentPart::text("Look at these"),
            ContentPart::image_url("data:image/jpeg;base64,/9j/4AAQ"),
            ContentPart::image_url("https://example.com/cat.png"),
        ]),
        Message::assistant_tool_calls(
            "Let me check.",
            vec![
                ToolCall::new("toolu_1", "lookup", r#"{"q":"cat"}"#),
                ToolCall::new("toolu_2", "lookup", "not json"),
            ],
        ),
        Message::tool("toolu_1", "a cat"),
        Message::tool("toolu_2", "error: bad args"),
        Message::user("thanks"),
        Message::assistant(""),
        Message::user("and?"),
    ]);
    llm.complete(req).await.unwrap();
    let q = &server.requests()[0];
    assert_eq!(q.path, "/v1/messages");
    assert_eq!(
        q.json(),
        json!({
            "model": "claude-x",
            "max_tokens": 1024,
            "temperature": 0.5,
            "system": "sys\n\nMemory: likes cats\n\nRespond with JSON only: no Markdown, no code fences, no text before or after it. The JSON must match this JSON schema. Schema: {\"required\":[\"x\"],\"type\":\"object\"}",
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "Look at these"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQ"}},
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}}
                ]},
                {"role": "assistant", "content": [
                    {"type": "text", "text": "Let me check."},
                    {"type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {"q": "cat"}},
                    {"type": "tool_use", "id": "toolu_2", "name": "lookup", "input": {"arguments": "not json"}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "a cat"},
                    {"type": "tool_result", "tool_use_id": "toolu_2", "content": "error: bad args"},
                    {"type": "text", "text": "thanks"},
                    {"type": "text", "text": "and?"}
                ]}
            ],
            "tools": [{"name": "lookup", "description": "Look something up", "input_schema": lookup_schema()}],
            "tool_choice": {"type": "tool", "name": "lookup"},
            "stream": true
        })
    );
}

#[tokio::test]
async fn tool_choice_mapping() {
    let llm = AnthropicLlm::new(AnthropicConfig::new("http://h", "k", "m")).unwrap();
    let tools = vec![ToolDefinition::new("t", "", json!("not an object"))];
    let base = LlmRequest::from_prompt("x").with_tools(tools);
    let b = llm
        .request_body(&base.clone().with_tool_choice(ToolChoice::Auto))
        .unwrap();
    assert!(b.get("tool_choice").is_none());
    assert_eq!(
        b["tools"],
        json!([{"name": "t", "input_schema": {"type": "object"}}])
    );
    let b = llm
        .request_body(&base.clone().with_tool_choice(ToolChoice::None))
        .unwrap();
    assert_eq!(b["tool_choice"], json!({"type": "none"}));
    let b = llm
        .request_body(&base.with_tool_choice(ToolChoice::Required))
        .unwrap();
    assert_eq!(b["tool_choice"], json!({"type": "any"}));
    let b = llm
        .request_body(&LlmRequest::from_prompt("x").with_tool_choice(ToolChoice::Required))
        .unwrap();
    assert!(b.get("tool_choice").is_none() && b.get("tools").is_none());
}
