//! OpenAI-compatible transport against a local byte-exact server.
#![cfg(feature = "openai")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{
    Reply, TestServer, answer_schema, complete_sse, complete_with_fast_retry, complete_x, data,
    fast_retry, full_request, lookup_schema,
};
use futures_util::StreamExt;
use power_loop_contracts::{
    CancellationToken, ContentPart, ErrorCode, FinishReason, LlmRequest, LlmService, Message,
    ToolCall, ToolChoice,
};
use power_loop_llm::{LlmStack, OpenAiConfig, OpenAiLlm, RetryEvent};
use serde_json::json;

fn llm(server: &TestServer) -> OpenAiLlm {
    OpenAiLlm::new(OpenAiConfig::new(
        format!("{}/v1", server.base),
        "sk-test",
        "gpt-4o-mini",
    ))
    .unwrap()
}

const TEXT_STREAM: &[&str] = &[
    r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#,
    r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]}"#,
    r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"lo, "},"finish_reason":null}]}"#,
    r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"world"},"finish_reason":null}]}"#,
    r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
    r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":11,"completion_tokens":3,"total_tokens":14,"prompt_tokens_details":{"cached_tokens":2}}}"#,
    "[DONE]",
];

#[tokio::test]
async fn plain_text_stream_and_exact_request() {
    let server = TestServer::start(vec![Reply::sse_parts(&[data(TEXT_STREAM)])]).await;
    let llm = llm(&server);
    let req = LlmRequest::from_prompt("Say hello").with_system_prompt("You are terse.");
    let r = llm.complete(req).await.unwrap();
    assert_eq!(r.raw_text, "Hello, world");
    assert_eq!(r.content_text, "Hello, world");
    assert_eq!(r.finish_reason, Some(FinishReason::Stop));
    assert_eq!(r.token_usage.prompt_tokens, Some(11));
    assert_eq!(r.token_usage.completion_tokens, Some(3));
    assert_eq!(r.token_usage.total_tokens, Some(14));
    assert_eq!(r.token_usage.prompt_cached_tokens, Some(2));
    assert_eq!(r.model.as_deref(), Some("gpt-4o-mini"));
    assert_eq!(r.response_id.as_deref(), Some("chatcmpl-1"));

    let reqs = server.requests();
    assert_eq!(reqs.len(), 1);
    let q = &reqs[0];
    assert_eq!(q.method, "POST");
    assert_eq!(q.path, "/v1/chat/completions");
    assert_eq!(q.header("authorization"), Some("Bearer sk-test"));
    assert_eq!(q.header("content-type"), Some("application/json"));
    assert_eq!(q.header("accept"), Some("text/event-stream"));
    assert_eq!(
        q.json(),
        json!({
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": "Say hello"}
            ],
            "temperature": 0.0,
            "max_tokens": 8000,
            "stream": true,
            "stream_options": {"include_usage": true}
        })
    );
}

#[tokio::test]
async fn every_chunk_split_into_tiny_tcp_writes() {
    let body = data(TEXT_STREAM);
    let server = TestServer::start(vec![Reply::sse_split(&body, 7)]).await;
    let r = complete_x(&llm(&server)).await.unwrap();
    assert_eq!(r.raw_text, "Hello, world");
    assert_eq!(r.token_usage.total_tokens, Some(14));
}

#[tokio::test]
async fn tool_call_split_across_many_chunks() {
    let args = r#"{"path": "/tmp/a.txt", "content": "héllo\nworld"}"#;
    let mut lines = vec![
        r#"{"id":"c2","model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_abc","type":"function","function":{"name":"write_file","arguments":""}}]},"finish_reason":null}]}"#.to_owned(),
    ];
    let pieces: Vec<String> = {
        let chars: Vec<char> = args.chars().collect();
        chars.chunks(4).map(|c| c.iter().collect()).collect()
    };
    for p in &pieces {
        let frag = json!({"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":p}}]},"finish_reason":null}]});
        lines.push(frag.to_string());
    }
    lines.push(r#"{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":5,"completion_tokens":9,"total_tokens":14}}"#.to_owned());
    lines.push("[DONE]".to_owned());
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let server = TestServer::start(vec![Reply::sse_parts(&[data(&refs)])]).await;
    let r = llm(&server)
        .complete(LlmRequest::from_prompt("write"))
        .await
        .unwrap();
    assert!(pieces.len() > 10, "split into many chunks");
    assert_eq!(r.finish_reason, Some(FinishReason::ToolCalls));
    assert_eq!(r.tool_calls.len(), 1);
    assert_eq!(r.tool_calls[0].id, "call_abc");
    assert_eq!(r.tool_calls[0].name(), "write_file");
    assert_eq!(r.tool_calls[0].function.arguments, args);
    assert_eq!(
        r.tool_calls[0].arguments_json().unwrap()["content"],
        "héllo\nworld"
    );
    assert_eq!(r.token_usage.total_tokens, Some(14));
}

#[tokio::test]
async fn two_parallel_tool_calls_interleaved() {
    let lines = [
        r#"{"id":"c3","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":""}}]}}]}"#,
        r#"{"id":"c3","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_2","type":"function","function":{"name":"get_time","arguments":""}}]}}]}"#,
        r#"{"id":"c3","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\": "}}]}}]}"#,
        r#"{"id":"c3","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"{\"tz\": \"UTC\"}"}}]}}]}"#,
        r#"{"id":"c3","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}}]}}]}"#,
        r#"{"id":"c3","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
        "[DONE]",
    ];
    let server = TestServer::start(vec![Reply::sse_parts(&[data(&lines)])]).await;
    let r = llm(&server)
        .complete(LlmRequest::from_prompt("both"))
        .await
        .unwrap();
    assert_eq!(r.tool_calls.len(), 2);
    assert_eq!(r.tool_calls[0].id, "call_1");
    assert_eq!(r.tool_calls[0].name(), "get_weather");
    assert_eq!(
        r.tool_calls[0].arguments_json().unwrap(),
        json!({"city": "Paris"})
    );
    assert_eq!(r.tool_calls[1].id, "call_2");
    assert_eq!(r.tool_calls[1].name(), "get_time");
    assert_eq!(
        r.tool_calls[1].arguments_json().unwrap(),
        json!({"tz": "UTC"})
    );
    // No usage was sent: empty usage, never a stale value.
    assert_eq!(r.token_usage, Default::default());
}

#[tokio::test]
async fn lenient_parsing_of_compatible_servers() {
    // unknown finish_reason, no id / model / usage, extra fields, reasoning_content deltas,
    // SSE comments and a parallel call that reuses index 0 with a new id.
    let body = concat!(
        ": keep-alive\n\n",
        "data: {\"choices\":[{\"delta\":{\"reasoning_content\":\"think \"},\"logprobs\":null,\"x_extra\":1}]}\n\n",
        "data: {\"choices\":[{\"delta\":{\"reasoning_content\":\"more\"}}]}\n\n",
        "data: {\"choices\":[{\"delta\":{\"content\":\"ok\"}}],\"system_fingerprint\":\"fp\"}\n\n",
        "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"a\",\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]}}]}\n\n",
        "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"b\",\"function\":{\"name\":\"g\",\"arguments\":\"{\\\"x\\\":1}\"}}]}}]}\n\n",
        "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"eos\"}]}\n\n",
        "data: [DONE]\n\n",
    );
    let r = complete_sse(llm, body).await.unwrap();
    assert_eq!(r.think, "think more");
    assert_eq!(r.raw_text, "ok");
    assert_eq!(r.finish_reason, Some(FinishReason::Stop));
    assert_eq!(r.response_id, None);
    assert_eq!(r.model, None);
    assert_eq!(r.tool_calls.len(), 2);
    assert_eq!(
        (r.tool_calls[0].id.as_str(), r.tool_calls[0].name()),
        ("a", "f")
    );
    assert_eq!(
        (r.tool_calls[1].id.as_str(), r.tool_calls[1].name()),
        ("b", "g")
    );
    assert_eq!(r.tool_calls[1].function.arguments, r#"{"x":1}"#);
}

#[tokio::test]
async fn unknown_finish_reason_is_kept_verbatim() {
    let lines = [
        r#"{"choices":[{"delta":{"content":"a"}}]}"#,
        r#"{"choices":[{"delta":{},"finish_reason":"weird_reason"}]}"#,
        "[DONE]",
    ];
    let r = complete_sse(llm, data(&lines)).await.unwrap();
    assert_eq!(
        r.finish_reason,
        Some(FinishReason::Other("weird_reason".into()))
    );
}

#[tokio::test]
async fn error_event_mid_stream_is_typed_and_not_retried_after_first_chunk() {
    let lines = [
        r#"{"choices":[{"delta":{"content":"partial"}}]}"#,
        r#"{"error":{"message":"upstream exploded","type":"server_error"}}"#,
    ];
    let server = TestServer::start(vec![
        Reply::sse_parts(&[data(&lines)]),
        Reply::sse_parts(&[data(TEXT_STREAM)]),
    ])
    .await;
    let raw = llm(&server);
    let mut s = raw.stream(LlmRequest::from_prompt("x")).await.unwrap();
    let first = s.next().await.unwrap().unwrap();
    assert_eq!(first.delta_text, "partial");
    let err = s.next().await.unwrap().unwrap_err();
    assert_eq!(err.code(), ErrorCode::LlmServer);
    assert!(err.message().contains("upstream exploded"));
    assert!(s.next().await.is_none());

    // Through the retry stack: the chunk was already yielded, so the error surfaces as-is.
    let server2 = TestServer::start(vec![
        Reply::sse_parts(&[data(&lines)]),
        Reply::sse_parts(&[data(TEXT_STREAM)]),
    ])
    .await;
    let err = complete_with_fast_retry(llm(&server2)).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::LlmServer);
    assert_eq!(server2.count(), 1);
}

#[tokio::test]
async fn malformed_json_chunk_is_a_protocol_error() {
    let body = "data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: {\"choices\":[{\"delta\":{\"content\":\n\ndata: [DONE]\n\n";
    let err = complete_sse(llm, body).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::LlmProtocol);
}

#[tokio::test]
async fn cut_off_stream_is_an_error_never_a_complete_answer() {
    // No finish_reason, no [DONE]: the server just closes the connection.
    let lines = [
        r#"{"choices":[{"delta":{"content":"The answer is"}}]}"#,
        r#"{"choices":[{"delta":{"content":" forty"}}]}"#,
    ];
    let server = TestServer::start(vec![Reply::sse_parts(&[data(&lines)])]).await;
    let err = complete_x(&llm(&server)).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::LlmStreamIncomplete);

    // finish_reason seen but the stream stops before [DONE]: still incomplete.
    let lines = [
        r#"{"choices":[{"delta":{"content":"hi"}}]}"#,
        r#"{"choices":[{"delta":{},"finish_reason":"stop"}]}"#,
    ];
    let server = TestServer::start(vec![Reply::sse_parts(&[data(&lines)])]).await;
    let err = complete_x(&llm(&server)).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::LlmStreamIncomplete);

    // [DONE] without any finish_reason: incomplete too.
    let lines = [r#"{"choices":[{"delta":{"content":"hi"}}]}"#, "[DONE]"];
    let server = TestServer::start(vec![Reply::sse_parts(&[data(&lines)])]).await;
    let err = complete_x(&llm(&server)).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::LlmStreamIncomplete);

    // Cut in the middle of an event line.
    let server = TestServer::start(vec![Reply::sse_parts(&[
        "data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\ndata: {\"cho",
    ])])
    .await;
    let err = complete_x(&llm(&server)).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::LlmStreamIncomplete);
}

#[tokio::test]
async fn empty_stream_before_first_chunk_is_retried() {
    let server = TestServer::start(vec![
        Reply::sse_parts::<&str>(&[]),
        Reply::sse_parts(&[data(TEXT_STREAM)]),
    ])
    .await;
    let r = complete_with_fast_retry(llm(&server)).await.unwrap();
    assert_eq!(r.raw_text, "Hello, world");
    assert_eq!(server.count(), 2);
}

#[tokio::test]
async fn rate_limited_with_retry_after_waits_then_succeeds() {
    let server = TestServer::start(vec![
        Reply::status(429, "Too Many Requests", &[("retry-after", "1")], r#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#),
        Reply::sse_parts(&[data(TEXT_STREAM)]),
    ])
    .await;
    let events: Arc<Mutex<Vec<RetryEvent>>> = Arc::default();
    let ev = events.clone();
    let policy = fast_retry().on_retry(move |e| ev.lock().unwrap().push(e));
    let stacked = LlmStack::new().retry(policy).wrap(Arc::new(llm(&server)));
    let t0 = Instant::now();
    let r = complete_x(&stacked).await.unwrap();
    assert_eq!(r.raw_text, "Hello, world");
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    let waited = reqs[1].at.duration_since(reqs[0].at);
    assert!(waited >= Duration::from_secs(1), "waited only {waited:?}");
    assert!(t0.elapsed() >= Duration::from_secs(1));
    let events = events.lock().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].attempt, 1);
    assert_eq!(events[0].error_code, ErrorCode::LlmRateLimited);
    assert_eq!(events[0].retry_after, Some(Duration::from_secs(1)));
    assert_eq!(events[0].delay, Duration::from_secs(1));
}

#[tokio::test]
async fn rate_limit_error_keeps_retry_after_ms_detail() {
    let server = TestServer::start(vec![Reply::status(
        429,
        "Too Many Requests",
        &[("retry-after-ms", "250"), ("retry-after", "9")],
        r#"{"error":{"message":"slow down"}}"#,
    )])
    .await;
    let err = complete_x(&llm(&server)).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::LlmRateLimited);
    assert_eq!(err.detail("retry_after_ms"), Some(&json!(250)));
    assert_eq!(err.detail("status"), Some(&json!(429)));
    assert!(err.message().contains("slow down"));
}

#[tokio::test]
async fn unauthorized_is_not_retried() {
    let server = TestServer::start(vec![
        Reply::status(
            401,
            "Unauthorized",
            &[],
            r#"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error"}}"#,
        ),
        Reply::sse_parts(&[data(TEXT_STREAM)]),
    ])
    .await;
    let err = complete_with_fast_retry(llm(&server)).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::LlmAuth);
    assert_eq!(server.count(), 1);
}

#[tokio::test]
async fn status_codes_map_to_error_codes() {
    for (status, code) in [
        (400, ErrorCode::LlmBadRequest),
        (422, ErrorCode::LlmBadRequest),
        (403, ErrorCode::LlmAuth),
        (404, ErrorCode::LlmNotFound),
        (408, ErrorCode::LlmServer),
        (409, ErrorCode::LlmServer),
        (500, ErrorCode::LlmServer),
        (503, ErrorCode::LlmServer),
        (529, ErrorCode::LlmOverloaded),
    ] {
        let server = TestServer::start(vec![Reply::status(status, "X", &[], "{}")]).await;
        let err = complete_x(&llm(&server)).await.unwrap_err();
        assert_eq!(err.code(), code, "status {status}");
    }
}

#[tokio::test]
async fn server_errors_are_retried_then_exhausted() {
    let server = TestServer::start(vec![
        Reply::status(500, "Internal", &[], r#"{"error":{"message":"a"}}"#),
        Reply::status(503, "Unavailable", &[], r#"{"error":{"message":"b"}}"#),
        Reply::sse_parts(&[data(TEXT_STREAM)]),
    ])
    .await;
    let r = complete_with_fast_retry(llm(&server)).await.unwrap();
    assert_eq!(r.raw_text, "Hello, world");
    assert_eq!(server.count(), 3);

    let server = TestServer::start(vec![]).await; // always 500
    let stacked = LlmStack::new()
        .retry(fast_retry().with_max_attempts(3))
        .wrap(Arc::new(llm(&server)));
    let err = complete_x(&stacked).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::LlmRetryExhausted);
    assert_eq!(err.detail("attempts"), Some(&json!(3)));
    assert_eq!(err.detail("last_error_code"), Some(&json!("llm.server")));
    let src = std::error::Error::source(&err).unwrap().to_string();
    assert!(src.contains("llm.server"), "{src}");
    assert_eq!(server.count(), 3);
}

#[tokio::test]
async fn connection_refused_is_a_connection_error_and_retried() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let raw = OpenAiLlm::new(OpenAiConfig::new(format!("http://{addr}/v1"), "k", "m")).unwrap();
    let err = complete_x(&raw).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::LlmConnection);
    let count = Arc::new(Mutex::new(0));
    let c = count.clone();
    let stacked = LlmStack::new()
        .retry(
            fast_retry()
                .with_max_attempts(2)
                .on_retry(move |_| *c.lock().unwrap() += 1),
        )
        .wrap(Arc::new(raw));
    let err = complete_x(&stacked).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::LlmRetryExhausted);
    assert_eq!(*count.lock().unwrap(), 1);
}

#[tokio::test]
async fn cancellation_aborts_a_stalled_request_promptly() {
    let server = TestServer::start(vec![
        Reply::sse_parts(&[data(TEXT_STREAM)]).stalled(Duration::from_secs(30)),
    ])
    .await;
    let stacked = LlmStack::new()
        .retry(fast_retry())
        .wrap(Arc::new(llm(&server)));
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(150)).await;
        t.cancel();
    });
    let t0 = Instant::now();
    let err = stacked
        .complete(LlmRequest::from_prompt("x").with_cancel(token))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Cancelled);
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
}

#[tokio::test]
async fn cancellation_aborts_an_in_flight_stream() {
    let mut parts: Vec<String> = vec![data(&[r#"{"choices":[{"delta":{"content":"a"}}]}"#])];
    for _ in 0..50 {
        parts.push(data(&[r#"{"choices":[{"delta":{"content":"b"}}]}"#]));
    }
    let server = TestServer::start(vec![
        Reply::sse_parts(&parts).with_gap(Duration::from_millis(200)),
    ])
    .await;
    let token = CancellationToken::new();
    let mut s = llm(&server)
        .stream(LlmRequest::from_prompt("x").with_cancel(token.clone()))
        .await
        .unwrap();
    let first = s.next().await.unwrap().unwrap();
    assert!(!first.delta_text.is_empty());
    token.cancel();
    let t0 = Instant::now();
    let err = s.next().await.unwrap().unwrap_err();
    assert_eq!(err.code(), ErrorCode::Cancelled);
    assert!(t0.elapsed() < Duration::from_millis(150));
    assert!(s.next().await.is_none());
}

#[tokio::test]
async fn call_timeout_gives_llm_timeout() {
    let server = TestServer::start(vec![
        Reply::sse_parts(&[data(TEXT_STREAM)]).stalled(Duration::from_secs(30)),
    ])
    .await;
    let stacked = LlmStack::new()
        .retry(fast_retry())
        .call_timeout(Duration::from_millis(300))
        .wrap(Arc::new(llm(&server)));
    let t0 = Instant::now();
    let err = complete_x(&stacked).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::LlmTimeout);
    assert!(t0.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn exact_request_json_with_tools_images_and_tool_messages() {
    let server = TestServer::start(vec![Reply::sse_parts(&[data(TEXT_STREAM)])]).await;
    let llm = llm(&server);
    let req = full_request(vec![
        Message::user(vec![
            ContentPart::text("What is in this image?"),
            ContentPart::image_url("data:image/png;base64,iVBORw0KGgo="),
            ContentPart::text("Be brief."),
        ]),
        Message::assistant_tool_calls(
            "",
            vec![ToolCall::new("call_1", "lookup", r#"{"q":"cat"}"#)],
        ),
        Message::tool("call_1", "a cat"),
        Message::system("Recalled: user likes cats").with_name("memory_1"),
        Message::user("thanks"),
    ])
    .with_model("gpt-4.1")
    .with_max_tokens(256)
    .with_extra("parallel_tool_calls", json!(true))
    .with_extra("user", json!("u-1"))
    .with_extra("extra_body", json!({"top_k": 5}));
    llm.complete(req).await.unwrap();
    let body = server.requests()[0].json();
    assert_eq!(
        body,
        json!({
            "parallel_tool_calls": true,
            "user": "u-1",
            "model": "gpt-4.1",
            "messages": [
                {"role": "system", "content": "sys"},
                {"role": "user", "content": [
                    {"type": "text", "text": "What is in this image?\n\nBe brief."},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
                ]},
                {"role": "assistant", "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{\"q\":\"cat\"}"}}
                ]},
                {"role": "tool", "content": "a cat", "tool_call_id": "call_1"},
                {"role": "system", "content": "Recalled: user likes cats", "name": "memory_1"},
                {"role": "user", "content": "thanks"}
            ],
            "temperature": 0.5,
            "max_tokens": 256,
            "stream": true,
            "stream_options": {"include_usage": true},
            "tools": [{"type": "function", "function": {"name": "lookup", "description": "Look something up", "parameters": lookup_schema()}}],
            "tool_choice": {"type": "function", "function": {"name": "lookup"}},
            "response_format": {"type": "json_schema", "json_schema": {"name": "answer", "schema": answer_schema(), "strict": true}},
            "top_k": 5
        })
    );
    // The assistant tool-call message carries no `content` key at all (not even null).
    assert!(body["messages"][2].get("content").is_none());
}

#[tokio::test]
async fn no_tools_means_no_tool_fields_and_o_series_uses_max_completion_tokens() {
    let server = TestServer::start(vec![Reply::sse_parts(&[data(TEXT_STREAM)])]).await;
    let llm = llm(&server);
    let req = LlmRequest::from_prompt("hi")
        .with_model("o3-mini")
        .with_tool_choice(ToolChoice::Auto)
        .with_extra("parallel_tool_calls", json!(false));
    llm.complete(req).await.unwrap();
    let body = server.requests()[0].json();
    assert_eq!(
        body,
        json!({
            "model": "o3-mini",
            "messages": [{"role": "user", "content": "hi"}],
            "max_completion_tokens": 8000,
            "stream": true,
            "stream_options": {"include_usage": true}
        })
    );
}

#[tokio::test]
async fn capabilities_follow_the_model_prefix_table() {
    let a = OpenAiLlm::new(OpenAiConfig::new("http://x/v1", "k", "qwen2.5-vl-72b")).unwrap();
    assert_eq!(a.capabilities().provider, "dashscope");
    assert!(a.capabilities().supports_image_input);
    assert_eq!(a.model_name(), "qwen2.5-vl-72b");
    assert_eq!(a.url(), "http://x/v1/chat/completions");
    let b = OpenAiLlm::new(OpenAiConfig::new("http://x/v1/", "k", "deepseek-chat")).unwrap();
    assert_eq!(b.capabilities().provider, "deepseek");
    assert!(!b.capabilities().supports_image_input);
    assert_eq!(b.url(), "http://x/v1/chat/completions");
}
