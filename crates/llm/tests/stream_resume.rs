//! OpenAI stream resume: a stream that breaks mid-answer is continued by a new
//! request carrying the answer so far; text is kept once, partial tool calls are discarded.
#![cfg(feature = "openai")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Reply, TestServer, complete_x, data};
use futures_util::StreamExt;
use power_loop_contracts::{ErrorCode, FinishReason, LlmRequest, LlmService, StreamChunk};
use power_loop_llm::openai::DEFAULT_STREAM_RESUME_INSTRUCTION;
use power_loop_llm::{LlmProviderConfig, OpenAiConfig, OpenAiLlm};
use serde_json::json;

fn llm(server: &TestServer, restarts: u32) -> OpenAiLlm {
    OpenAiLlm::new(
        OpenAiConfig::new(format!("{}/v1", server.base), "sk-test", "gpt-4o-mini")
            .with_stream_resume(restarts),
    )
    .unwrap()
}

fn delta(text: &str) -> String {
    json!({"id": "c1", "model": "gpt-4o-mini", "choices": [{"index": 0, "delta": {"content": text}}]})
        .to_string()
}

fn finish(reason: &str) -> String {
    json!({"id": "c2", "model": "gpt-4o-mini", "choices": [{"index": 0, "delta": {}, "finish_reason": reason}]})
        .to_string()
}

fn usage(p: u64, c: u64) -> String {
    json!({"id": "c2", "choices": [], "usage": {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}})
        .to_string()
}

fn tool_fragment(id: Option<&str>, name: Option<&str>, args: &str) -> String {
    let mut call = json!({"index": 0, "function": {"arguments": args}});
    if let Some(id) = id {
        call["id"] = json!(id);
        call["type"] = json!("function");
    }
    if let Some(n) = name {
        call["function"]["name"] = json!(n);
    }
    json!({"id": "c", "choices": [{"index": 0, "delta": {"tool_calls": [call]}}]}).to_string()
}

/// An SSE reply made of `events` (no `[DONE]` unless given): the server then closes the
/// connection, so a reply without `[DONE]` is a stream broken mid-answer.
fn sse(events: &[String]) -> Reply {
    let refs: Vec<&str> = events.iter().map(String::as_str).collect();
    Reply::sse_parts(&[data(&refs)])
}

async fn collect(llm: &OpenAiLlm) -> Vec<power_loop_contracts::Result<StreamChunk>> {
    llm.stream(LlmRequest::from_prompt("Count"))
        .await
        .unwrap()
        .collect()
        .await
}

#[tokio::test]
async fn a_broken_stream_is_continued_with_the_answer_so_far() {
    let server = TestServer::start(vec![
        sse(&[delta("Hel"), delta("lo, ")]),
        sse(&[
            delta("world"),
            finish("stop"),
            usage(30, 2),
            "[DONE]".into(),
        ]),
    ])
    .await;
    let llm = llm(&server, 2);
    let items = collect(&llm).await;
    let chunks: Vec<StreamChunk> = items.into_iter().map(Result::unwrap).collect();
    let texts: Vec<&str> = chunks.iter().map(|c| c.delta_text.as_str()).collect();
    // Every piece once, in order, then one final chunk with the continuation's usage.
    assert_eq!(texts, vec!["Hel", "lo, ", "world", ""]);
    let last = chunks.last().unwrap();
    assert!(last.is_final);
    assert_eq!(last.finish_reason, Some(FinishReason::Stop));
    assert_eq!(last.token_usage.as_ref().unwrap().total_tokens, Some(32));
    assert_eq!(chunks.iter().filter(|c| c.is_final).count(), 1);

    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(
        reqs[1].json()["messages"],
        json!([
            {"role": "user", "content": "Count"},
            {"role": "assistant", "content": "Hello,"},
            {"role": "user", "content": DEFAULT_STREAM_RESUME_INSTRUCTION}
        ])
    );
    assert_eq!(reqs[1].json()["stream"], true);
}

#[tokio::test]
async fn complete_keeps_text_once_drops_a_repeated_restart_and_partial_tool_calls() {
    let server = TestServer::start(vec![
        // Text, then a tool call that breaks off half-way.
        sse(&[
            delta("The answer"),
            tool_fragment(Some("call_broken"), Some("lookup"), "{\"q\":"),
        ]),
        // The continuation restarts the answer (repeat dropped), then calls the tool whole.
        sse(&[
            delta("The ans"),
            delta("wer is 42."),
            tool_fragment(Some("call_ok"), Some("lookup"), "{\"q\":"),
            tool_fragment(None, None, "\"42\"}"),
            finish("tool_calls"),
            usage(50, 9),
            "[DONE]".into(),
        ]),
    ])
    .await;
    let llm = llm(&server, 1);
    let r = llm
        .complete(LlmRequest::from_prompt("Count"))
        .await
        .unwrap();
    assert_eq!(r.raw_text, "The answer is 42.");
    assert_eq!(r.tool_calls.len(), 1, "{:?}", r.tool_calls);
    assert_eq!(r.tool_calls[0].id, "call_ok");
    assert_eq!(r.tool_calls[0].function.arguments, r#"{"q":"42"}"#);
    assert_eq!(r.finish_reason, Some(FinishReason::ToolCalls));
    assert_eq!(r.token_usage.prompt_tokens, Some(50));
    assert_eq!(server.count(), 2);
    let second = server.requests()[1].json();
    assert_eq!(
        second["messages"][1],
        json!({"role": "assistant", "content": "The answer"})
    );
}

#[tokio::test]
async fn a_continuation_that_diverges_is_delivered_whole() {
    let server = TestServer::start(vec![
        sse(&[delta("The answer")]),
        // Starts like the answer so far but is new text: nothing is dropped.
        sse(&[
            delta(" The"),
            delta(" end."),
            finish("stop"),
            "[DONE]".into(),
        ]),
    ])
    .await;
    let r = complete_x(&llm(&server, 1)).await.unwrap();
    assert_eq!(r.raw_text, "The answer The end.");
}

#[tokio::test]
async fn restarts_are_bounded_and_the_last_error_surfaces() {
    let server = TestServer::start(vec![
        sse(&[delta("one ")]),
        sse(&[delta("two ")]),
        sse(&[delta("three")]),
    ])
    .await;
    let items = collect(&llm(&server, 1)).await;
    let texts: Vec<String> = items
        .iter()
        .filter_map(|i| i.as_ref().ok().map(|c| c.delta_text.clone()))
        .collect();
    assert_eq!(texts, vec!["one ", "two "]);
    let err = items.last().unwrap().as_ref().unwrap_err();
    assert_eq!(err.code(), ErrorCode::LlmStreamIncomplete);
    assert_eq!(server.count(), 2, "one restart only");
}

#[tokio::test]
async fn no_resume_before_anything_was_delivered_or_when_off() {
    // Nothing yielded yet: the error is the retry layer's business, not resumed.
    let server = TestServer::start(vec![
        sse(&[tool_fragment(Some("c"), Some("lookup"), "{")]),
        sse(&[delta("never")]),
    ])
    .await;
    let items = collect(&llm(&server, 3)).await;
    assert_eq!(items.len(), 1, "partial tool fragments are never delivered");
    assert_eq!(
        items[0].as_ref().unwrap_err().code(),
        ErrorCode::LlmStreamIncomplete
    );
    assert_eq!(server.count(), 1);

    // Resume off (the default): a broken stream is an error after its text.
    let server = TestServer::start(vec![sse(&[delta("partial")]), sse(&[delta("never")])]).await;
    let off = OpenAiLlm::new(OpenAiConfig::new(
        format!("{}/v1", server.base),
        "k",
        "gpt-4o-mini",
    ))
    .unwrap();
    let e = complete_x(&off).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::LlmStreamIncomplete);
    assert_eq!(server.count(), 1);
}

#[tokio::test]
async fn permanent_errors_mid_stream_are_not_resumed_and_config_wires_restarts() {
    let server = TestServer::start(vec![
        sse(&[
            delta("so far"),
            json!({"error": {"message": "content policy", "type": "invalid_request_error"}})
                .to_string(),
        ]),
        sse(&[delta("x"), finish("stop"), "[DONE]".into()]),
    ])
    .await;
    let e = complete_x(&llm(&server, 3)).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::LlmProvider);
    assert_eq!(server.count(), 1);

    // LlmProviderConfig::stream_max_restarts reaches the transport (through the default stack).
    let server = TestServer::start(vec![
        sse(&[delta("a")]),
        sse(&[delta("b"), finish("stop"), "[DONE]".into()]),
    ])
    .await;
    let cfg = LlmProviderConfig::new("openai", format!("{}/v1", server.base), "k", "gpt-4o-mini")
        .with_stream_max_restarts(1)
        .with_max_retries(0);
    let svc = cfg.build().unwrap();
    let r = complete_x(&svc).await.unwrap();
    assert_eq!(r.raw_text, "ab");
    assert_eq!(server.count(), 2);
}
