//! Both providers accept a server that answers a streaming request with a plain JSON body
//! (`content-type: application/json`): the same chunks and response as the SSE path.
#![cfg(all(feature = "openai", feature = "anthropic"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Reply, TestServer, complete_x, data, typed_events};
use futures_util::StreamExt;
use power_loop_contracts::{ErrorCode, FinishReason, LlmRequest, LlmService, Result, StreamChunk};
use power_loop_llm::{AnthropicConfig, AnthropicLlm, OpenAiConfig, OpenAiLlm};

fn openai(server: &TestServer) -> OpenAiLlm {
    OpenAiLlm::new(OpenAiConfig::new(
        format!("{}/v1", server.base),
        "sk-test",
        "gpt-4o-mini",
    ))
    .unwrap()
}

fn anthropic(server: &TestServer) -> AnthropicLlm {
    AnthropicLlm::new(AnthropicConfig::new(
        &server.base,
        "sk-ant-test",
        "claude-sonnet-4-5",
    ))
    .unwrap()
}

fn ok_json(body: &str) -> Reply {
    Reply::status(200, "OK", &[], body)
}

async fn chunks(llm: &dyn LlmService) -> Vec<Result<StreamChunk>> {
    llm.stream(LlmRequest::from_prompt("x"))
        .await
        .unwrap()
        .collect()
        .await
}

const OPENAI_BODY: &str = r#"{"id":"chatcmpl-9","object":"chat.completion","created":1,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Hello, world","reasoning_content":"think first","tool_calls":[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},{"id":"call_2","type":"function","function":{"name":"get_time","arguments":"{}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":11,"completion_tokens":3,"total_tokens":14,"prompt_tokens_details":{"cached_tokens":2}}}"#;

/// The same answer as [`OPENAI_BODY`], streamed in pieces.
const OPENAI_SSE: &[&str] = &[
    r#"{"id":"chatcmpl-9","model":"gpt-4o-mini","choices":[{"index":0,"delta":{"role":"assistant","reasoning_content":"think first"}}]}"#,
    r#"{"id":"chatcmpl-9","model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"Hello, "}}]}"#,
    r#"{"id":"chatcmpl-9","model":"gpt-4o-mini","choices":[{"index":0,"delta":{"content":"world"}}]}"#,
    r#"{"id":"chatcmpl-9","model":"gpt-4o-mini","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\""}}]}}]}"#,
    r#"{"id":"chatcmpl-9","model":"gpt-4o-mini","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":":\"Paris\"}"}}]}}]}"#,
    r#"{"id":"chatcmpl-9","model":"gpt-4o-mini","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_2","type":"function","function":{"name":"get_time","arguments":"{}"}}]}}]}"#,
    r#"{"id":"chatcmpl-9","model":"gpt-4o-mini","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
    r#"{"id":"chatcmpl-9","model":"gpt-4o-mini","choices":[],"usage":{"prompt_tokens":11,"completion_tokens":3,"total_tokens":14,"prompt_tokens_details":{"cached_tokens":2}}}"#,
    "[DONE]",
];

#[tokio::test]
async fn openai_json_body_gives_the_response_of_the_sse_path() {
    let server = TestServer::start(vec![
        ok_json(OPENAI_BODY),
        Reply::sse_parts(&[data(OPENAI_SSE)]),
    ])
    .await;
    let llm = openai(&server);
    let from_json = complete_x(&llm).await.unwrap();
    let from_sse = complete_x(&llm).await.unwrap();
    assert_eq!(from_json, from_sse);
    assert_eq!(from_json.raw_text, "Hello, world");
    assert_eq!(from_json.think, "think first");
    let calls: Vec<(&str, &str, &str)> = from_json
        .tool_calls
        .iter()
        .map(|c| {
            (
                c.id.as_str(),
                c.function.name.as_str(),
                c.function.arguments.as_str(),
            )
        })
        .collect();
    assert_eq!(
        calls,
        vec![
            ("call_1", "get_weather", r#"{"city":"Paris"}"#),
            ("call_2", "get_time", "{}")
        ]
    );
    assert_eq!(from_json.finish_reason, Some(FinishReason::ToolCalls));
    assert_eq!(from_json.token_usage.total_tokens, Some(14));
    assert_eq!(from_json.token_usage.prompt_cached_tokens, Some(2));
    assert_eq!(from_json.response_id.as_deref(), Some("chatcmpl-9"));
    // The request was a streaming one both times.
    for q in server.requests() {
        assert_eq!(q.json()["stream"], true);
        assert_eq!(q.header("accept"), Some("text/event-stream"));
    }
}

#[tokio::test]
async fn openai_json_body_gives_the_chunks_of_a_one_event_stream() {
    // The SSE form of the same answer as one event: chunk for chunk identical.
    let one_event = OPENAI_BODY.replace("\"message\":", "\"delta\":");
    let server = TestServer::start(vec![
        ok_json(OPENAI_BODY),
        Reply::sse_parts(&[data(&[&one_event, "[DONE]"])]),
    ])
    .await;
    let llm = openai(&server);
    let a: Vec<StreamChunk> = chunks(&llm).await.into_iter().map(Result::unwrap).collect();
    let b: Vec<StreamChunk> = chunks(&llm).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(a, b);
    assert_eq!(a.len(), 2, "{a:?}");
    assert_eq!(a[0].delta_text, "Hello, world");
    assert_eq!(a[0].think, "think first");
    assert_eq!(a[0].delta_tool_calls.len(), 2);
    assert!(a[1].is_final);
    assert_eq!(a[1].token_usage.as_ref().unwrap().prompt_tokens, Some(11));
}

#[tokio::test]
async fn openai_json_body_variants_and_failures() {
    let server = TestServer::start(vec![
        // No finish_reason in a complete body: a natural stop, not a truncation.
        ok_json(r#"{"id":"c","choices":[{"message":{"role":"assistant","content":"ok"}}]}"#),
        // An error object with a 200 status.
        ok_json(r#"{"error":{"message":"upstream overloaded","type":"server_error"}}"#),
        // No choices at all.
        ok_json(r#"{"id":"c","object":"chat.completion"}"#),
        // Not JSON.
        ok_json("<html>gateway</html>"),
        // SSE bytes mislabelled as JSON.
        Reply::status(
            200,
            "OK",
            &[],
            &data(&[
                r#"{"choices":[{"delta":{"content":"sse anyway"},"finish_reason":"stop"}]}"#,
                "[DONE]",
            ]),
        ),
    ])
    .await;
    let llm = openai(&server);
    let r = complete_x(&llm).await.unwrap();
    assert_eq!(r.raw_text, "ok");
    assert_eq!(r.finish_reason, Some(FinishReason::Stop));
    let e = complete_x(&llm).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::LlmServer);
    assert!(e.message().contains("upstream overloaded"), "{e}");
    let e = complete_x(&llm).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::LlmProtocol);
    assert!(e.message().contains("choices"), "{e}");
    let e = complete_x(&llm).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::LlmProtocol);
    assert!(e.message().contains("not valid JSON"), "{e}");
    assert_eq!(complete_x(&llm).await.unwrap().raw_text, "sse anyway");
}

const ANTHROPIC_BODY: &str = r#"{"id":"msg_01","type":"message","role":"assistant","model":"claude-sonnet-4-5-20250929","content":[{"type":"thinking","thinking":"Let me think","signature":"sig"},{"type":"text","text":"Hello, world"},{"type":"tool_use","id":"toolu_01","name":"get_weather","input":{"city":"Paris"}},{"type":"tool_use","id":"toolu_02","name":"get_time","input":{}}],"stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":25,"cache_creation_input_tokens":0,"cache_read_input_tokens":10,"output_tokens":15}}"#;

fn anthropic_sse() -> String {
    typed_events(&[
        r#"{"type":"message_start","message":{"id":"msg_01","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5-20250929","stop_reason":null,"usage":{"input_tokens":25,"cache_creation_input_tokens":0,"cache_read_input_tokens":10,"output_tokens":1}}}"#,
        r#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}"#,
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Let me think"}}"#,
        r#"{"type":"content_block_stop","index":0}"#,
        r#"{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}"#,
        r#"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Hello, world"}}"#,
        r#"{"type":"content_block_stop","index":1}"#,
        r#"{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"toolu_01","name":"get_weather","input":{}}}"#,
        r#"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"city\":\"Paris\"}"}}"#,
        r#"{"type":"content_block_stop","index":2}"#,
        r#"{"type":"content_block_start","index":3,"content_block":{"type":"tool_use","id":"toolu_02","name":"get_time","input":{}}}"#,
        r#"{"type":"content_block_stop","index":3}"#,
        r#"{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":15}}"#,
        r#"{"type":"message_stop"}"#,
    ])
}

#[tokio::test]
async fn anthropic_json_body_gives_the_chunks_and_response_of_the_sse_path() {
    let server = TestServer::start(vec![
        ok_json(ANTHROPIC_BODY),
        Reply::sse_parts(&[anthropic_sse()]),
        ok_json(ANTHROPIC_BODY),
    ])
    .await;
    let llm = anthropic(&server);
    let from_json = complete_x(&llm).await.unwrap();
    let from_sse = complete_x(&llm).await.unwrap();
    assert_eq!(from_json, from_sse);
    assert_eq!(from_json.raw_text, "Hello, world");
    assert_eq!(from_json.think, "Let me think");
    assert_eq!(from_json.tool_calls.len(), 2);
    assert_eq!(from_json.tool_calls[0].id, "toolu_01");
    assert_eq!(
        from_json.tool_calls[0].function.arguments,
        r#"{"city":"Paris"}"#
    );
    assert_eq!(from_json.tool_calls[1].function.arguments, "{}");
    assert_eq!(from_json.finish_reason, Some(FinishReason::ToolCalls));
    assert_eq!(from_json.token_usage.prompt_tokens, Some(35));
    assert_eq!(from_json.token_usage.prompt_cached_tokens, Some(10));
    assert_eq!(from_json.token_usage.completion_tokens, Some(15));
    assert_eq!(from_json.response_id.as_deref(), Some("msg_01"));

    // Chunk by chunk, as the SSE path gives them: think, text, the first call whole, the second
    // call's head and its `{}` arguments at its block stop, then the final chunk.
    let c: Vec<StreamChunk> = chunks(&llm).await.into_iter().map(Result::unwrap).collect();
    assert_eq!(c.len(), 6, "{c:?}");
    assert_eq!(c[0].think, "Let me think");
    assert_eq!(c[1].delta_text, "Hello, world");
    assert_eq!(
        c[2].delta_tool_calls[0].name.as_deref(),
        Some("get_weather")
    );
    assert_eq!(c[2].delta_tool_calls[0].arguments, r#"{"city":"Paris"}"#);
    assert_eq!(c[3].delta_tool_calls[0].name.as_deref(), Some("get_time"));
    assert_eq!(c[4].delta_tool_calls[0].arguments, "{}");
    assert!(c[5].is_final);
    assert_eq!(server.requests()[0].json()["stream"], true);
}

#[tokio::test]
async fn anthropic_json_error_body_and_bad_body() {
    let server = TestServer::start(vec![
        ok_json(r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#),
        ok_json(r#"{"id":"msg_02","type":"message"}"#),
        Reply::status(
            200,
            "OK",
            &[("x-note", "json content type, stop reason end_turn")],
            r#"{"id":"msg_03","type":"message","role":"assistant","model":"m","content":[{"type":"text","text":"plain"}],"stop_reason":"end_turn","usage":{"input_tokens":3,"output_tokens":2}}"#,
        ),
    ])
    .await;
    let llm = anthropic(&server);
    let e = complete_x(&llm).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::LlmOverloaded);
    let e = complete_x(&llm).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::LlmProtocol);
    let r = complete_x(&llm).await.unwrap();
    assert_eq!(r.raw_text, "plain");
    assert_eq!(r.finish_reason, Some(FinishReason::Stop));
    assert_eq!(r.token_usage.total_tokens, Some(5));
}
