#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The providers against the real server, call by call, on both wire formats: streamed chunks
//! in order with the usage the server reported, `max_tokens` and `temperature` on the wire and
//! in effect, `finish_reason: length` surfaced as `FinishReason::Length`, and JSON-schema output.

use futures_util::StreamExt;
use power_loop::{FinishReason, LlmRequest, Message, ResponseFormat, StreamChunk};
use power_loop_real_tests::{Proxy, RealServer, Wire, real_test};
use serde_json::{Value, json};

/// The usage the server itself reported in a recorded streamed answer: (prompt, completion).
fn wire_usage(wire: Wire, sse: &[Value]) -> (u64, u64) {
    match wire {
        Wire::OpenAi => {
            let u = sse
                .iter()
                .rev()
                .find_map(|d| d.get("usage").filter(|u| u.is_object()))
                .expect("a usage chunk (stream_options.include_usage)");
            (
                u["prompt_tokens"].as_u64().unwrap(),
                u["completion_tokens"].as_u64().unwrap(),
            )
        }
        Wire::Anthropic => {
            let start = sse
                .iter()
                .find(|d| d["type"] == "message_start")
                .expect("message_start");
            let delta = sse
                .iter()
                .rev()
                .find(|d| d["type"] == "message_delta")
                .expect("message_delta");
            // Prompt = uncached input + cache reads + cache writes (the server reuses its KV cache).
            let u = &start["message"]["usage"];
            let n = |k: &str| u[k].as_u64().unwrap_or(0);
            (
                n("input_tokens") + n("cache_read_input_tokens") + n("cache_creation_input_tokens"),
                delta["usage"]["output_tokens"].as_u64().unwrap(),
            )
        }
    }
}

/// Streams `req` to the end; returns every chunk.
async fn stream_all(wire: Wire, base: &str, req: LlmRequest) -> Vec<StreamChunk> {
    let llm = wire.llm(base, 64);
    let mut s = llm.stream(req).await.expect("stream starts");
    let mut chunks = Vec::new();
    while let Some(c) = s.next().await {
        chunks.push(c.expect("chunk"));
    }
    chunks
}

async fn streamed_chunks_in_order_with_usage(wire: Wire, server: RealServer) {
    let proxy = Proxy::start(&server.base_url);
    let req = LlmRequest::new(vec![Message::user("Count from one to ten, in words.")])
        .with_system_prompt("You are a helpful assistant.")
        .with_max_tokens(24);
    let chunks = stream_all(wire, &proxy.base_url, req).await;

    // Text deltas first, then exactly one final chunk, last, with the finish reason and usage.
    let texts: Vec<&str> = chunks
        .iter()
        .filter(|c| !c.delta_text.is_empty())
        .map(|c| c.delta_text.as_str())
        .collect();
    assert!(
        texts.len() >= 3,
        "a real stream arrives in pieces: {chunks:?}"
    );
    let finals: Vec<usize> = (0..chunks.len()).filter(|&i| chunks[i].is_final).collect();
    assert_eq!(
        finals,
        vec![chunks.len() - 1],
        "one final chunk, last: {chunks:?}"
    );
    let last_text = chunks
        .iter()
        .rposition(|c| !c.delta_text.is_empty())
        .unwrap();
    assert!(
        last_text < chunks.len() - 1,
        "no text after the final chunk"
    );
    let usage = chunks
        .iter()
        .rev()
        .find_map(|c| c.token_usage)
        .expect("usage reported");
    let finish = chunks.iter().rev().find_map(|c| c.finish_reason.clone());
    assert!(finish.is_some(), "a finish reason: {chunks:?}");

    // The usage is the server's own count, and the text is what the server sent.
    let calls = proxy.model_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].path, wire.path());
    assert_eq!(calls[0].body["stream"], json!(true));
    let (prompt, completion) = wire_usage(wire, &calls[0].sse_data());
    assert!(prompt > 10 && completion > 0, "{prompt} / {completion}");
    assert_eq!(usage.prompt_tokens, Some(prompt));
    assert_eq!(usage.completion_tokens, Some(completion));
    assert!(
        completion <= 24,
        "max_tokens bounds the answer: {completion}"
    );
    let text: String = texts.concat();
    assert!(!text.trim().is_empty());
    eprintln!(
        "{wire:?}: {prompt}+{completion} tokens, {} pieces: {text:?}",
        texts.len()
    );
}
real_test!(
    streamed_chunks_arrive_in_order_with_the_servers_usage,
    super::streamed_chunks_in_order_with_usage
);

async fn max_tokens_cut_surfaces_length(wire: Wire, server: RealServer) {
    let proxy = Proxy::start(&server.base_url);
    let llm = wire.llm(&proxy.base_url, 4000);
    let req = LlmRequest::new(vec![Message::user(
        "Write a long story about a dragon who learns to cook. Use many paragraphs.",
    )])
    .with_max_tokens(7);
    let r = llm.complete(req).await.expect("answer");
    assert_eq!(
        r.finish_reason,
        Some(FinishReason::Length),
        "cut at max_tokens: {r:?}"
    );
    assert_eq!(r.token_usage.completion_tokens, Some(7), "{r:?}");
    assert!(!r.content_text.is_empty());
    let calls = proxy.model_calls();
    assert_eq!(
        calls[0].body["max_tokens"],
        json!(7),
        "the request's cap, not the default"
    );
    // The server said so itself.
    let sse = calls[0].sse_data();
    let said_length = match wire {
        Wire::OpenAi => sse
            .iter()
            .any(|d| d["choices"][0]["finish_reason"] == "length"),
        Wire::Anthropic => sse
            .iter()
            .any(|d| d["delta"]["stop_reason"] == "max_tokens"),
    };
    assert!(said_length, "{:?}", calls[0].response);

    // The provider default applies when the request sets none.
    let llm = wire.llm(&proxy.base_url, 5);
    let r = llm
        .complete(LlmRequest::new(vec![Message::user(
            "Write a long story about a dragon.",
        )]))
        .await
        .expect("answer");
    assert_eq!(r.finish_reason, Some(FinishReason::Length));
    assert_eq!(r.token_usage.completion_tokens, Some(5));
    assert_eq!(proxy.model_calls()[1].body["max_tokens"], json!(5));
}
real_test!(
    max_tokens_cuts_the_answer_and_length_is_surfaced,
    super::max_tokens_cut_surfaces_length
);

async fn temperature_reaches_the_sampler(wire: Wire, server: RealServer) {
    let proxy = Proxy::start(&server.base_url);
    let llm = wire.llm(&proxy.base_url, 32);
    let ask = |t: f64| {
        LlmRequest::new(vec![Message::user(
            "Tell me something about the sea in two sentences.",
        )])
        .with_max_tokens(32)
        .with_temperature(t)
    };
    let a = llm.complete(ask(0.0)).await.expect("answer");
    let b = llm.complete(ask(0.0)).await.expect("answer");
    let hot = llm.complete(ask(2.0)).await.expect("answer");
    let calls = proxy.model_calls();
    let temps: Vec<f64> = calls
        .iter()
        .map(|c| c.body["temperature"].as_f64().unwrap())
        .collect();
    assert_eq!(temps, vec![0.0, 0.0, 2.0], "temperature on the wire");
    // Greedy sampling repeats itself; a hot sampler walks elsewhere. Only the opening words are
    // compared: llama-server batches the two slots' requests together when another test runs at
    // the same time, and a different batch shape changes the float sums enough to flip a
    // near-tie between two tokens somewhere in a long greedy answer.
    let opening = |s: &str| s.split_whitespace().take(6).collect::<Vec<_>>().join(" ");
    assert_eq!(
        opening(&a.content_text),
        opening(&b.content_text),
        "temperature 0 repeats itself: {:?} vs {:?}",
        a.content_text,
        b.content_text
    );
    assert_ne!(
        a.content_text, hot.content_text,
        "temperature 2 changes the answer"
    );
}
real_test!(
    temperature_is_sent_and_changes_sampling,
    super::temperature_reaches_the_sampler
);

async fn json_schema_output(wire: Wire, server: RealServer) {
    let proxy = Proxy::start(&server.base_url);
    let llm = wire.llm(&proxy.base_url, 96);
    let schema = json!({
        "type": "object",
        "properties": {
            "city": {"type": "string", "maxLength": 40},
            "population": {"type": "integer"}
        },
        "required": ["city", "population"],
        "additionalProperties": false
    });
    let req = LlmRequest::new(vec![Message::user(
        "Name a large city and its population. Answer in JSON.",
    )])
    .with_max_tokens(96)
    .with_response_format(ResponseFormat::json_schema("City", schema.clone()));
    let r = llm.complete(req).await.expect("answer");
    let calls = proxy.model_calls();
    match wire {
        Wire::OpenAi => {
            // The schema goes on the wire as response_format; the server constrains sampling.
            assert_eq!(
                calls[0].body["response_format"]["json_schema"]["schema"],
                schema
            );
            let v: Value = serde_json::from_str(r.content_text.trim())
                .unwrap_or_else(|e| panic!("constrained output is JSON ({e}): {r:?}"));
            assert!(v["city"].is_string() && v["population"].is_i64(), "{v}");
            assert_eq!(v.as_object().unwrap().len(), 2, "{v}");
        }
        Wire::Anthropic => {
            // The Messages API has no response_format: the schema rides in the system prompt.
            let system = wire.request_texts(&calls[0].body).remove(0);
            assert!(system.contains("\"population\""), "{system}");
            assert!(!r.raw_text.is_empty());
        }
    }
}
real_test!(
    json_schema_output_is_constrained_on_the_openai_wire,
    super::json_schema_output
);
