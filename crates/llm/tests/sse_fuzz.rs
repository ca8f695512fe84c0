//! Property tests: random bytes and random chunk splits fed to both SSE decoders never panic, and
//! a valid recorded stream decodes to the same answer however it is split.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(any(feature = "openai", feature = "anthropic"))]

use bytes::Bytes;
use futures_util::StreamExt;
use power_loop_contracts::{LlmResponse, LlmStream, Result, StreamAggregator};
use proptest::prelude::*;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

fn pieces(data: &[u8], cuts: &[usize]) -> Pieces {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
    points.push(0);
    points.push(data.len());
    points.sort_unstable();
    points.dedup();
    points
        .windows(2)
        .map(|w| Ok(Bytes::copy_from_slice(&data[w[0]..w[1]])))
        .collect()
}

fn run(rt: &tokio::runtime::Runtime, stream: LlmStream) -> (usize, Result<LlmResponse>) {
    rt.block_on(async move {
        let mut s = stream;
        let mut agg = StreamAggregator::new();
        let mut n = 0;
        while let Some(item) = s.next().await {
            n += 1;
            match item {
                Ok(c) => agg.push(&c),
                Err(e) => return (n, Err(e)),
            }
        }
        (n, agg.finish())
    })
}

type Pieces = Vec<std::result::Result<Bytes, String>>;

/// The answer the OpenAI-compatible decoder makes of the byte stream `pieces`.
#[cfg(feature = "openai")]
fn decode_openai(pieces: Pieces) -> Result<LlmResponse> {
    let stream = power_loop_llm::openai::decode_stream(futures_util::stream::iter(pieces));
    run(&runtime(), stream).1
}

/// The answer the Anthropic decoder makes of the byte stream `pieces`.
#[cfg(feature = "anthropic")]
fn decode_anthropic(pieces: Pieces) -> Result<LlmResponse> {
    let stream = power_loop_llm::anthropic::decode_stream(futures_util::stream::iter(pieces));
    run(&runtime(), stream).1
}

#[cfg(feature = "openai")]
const OPENAI: &str = concat!(
    "data: {\"id\":\"x\",\"model\":\"m\",\"choices\":[{\"delta\":{\"content\":\"Hé\"}}]}\r\n\r\n",
    ": comment\n\n",
    "data: {\"choices\":[{\"delta\":{\"reasoning_content\":\"hm\"}}]}\n\n",
    "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"c\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\"\"}}]}}]}\n\n",
    "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\":1}\"}}]}}]}\n\n",
    "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n",
    "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}\n\n",
    "data: [DONE]\n\n",
);

#[cfg(feature = "anthropic")]
const ANTHROPIC: &str = concat!(
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m1\",\"model\":\"c\",\"usage\":{\"input_tokens\":3}}}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
    "event: ping\ndata: {\"type\":\"ping\"}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hé\"}}\n\n",
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\",\"input\":{}}}\n\n",
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"a\\\":1}\"}}\n\n",
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
    "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{\"output_tokens\":4}}\n\n",
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
);

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[cfg(feature = "openai")]
    #[test]
    fn openai_random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512), cuts in proptest::collection::vec(any::<usize>(), 0..8)) {
        // Random bytes essentially never form a complete stream; either way no panic.
        let _ = decode_openai(pieces(&data, &cuts));
    }

    #[cfg(feature = "openai")]
    #[test]
    fn openai_sse_shaped_garbage_never_panics(lines in proptest::collection::vec(prop_oneof![
        Just("data: [DONE]".to_owned()),
        Just("data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":3}]}}]}".to_owned()),
        Just("data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"id\":\"z\",\"function\":{\"arguments\":5}}]}}]}".to_owned()),
        Just("data: {\"choices\":[{\"finish_reason\":\"stop\",\"delta\":{\"content\":[{\"type\":\"thinking\",\"text\":\"t\"},\"s\"]}}]}".to_owned()),
        Just("data: {\"usage\":{\"prompt_tokens\":\"x\",\"completion_tokens\":-1}}".to_owned()),
        Just("data: {\"error\":null}".to_owned()),
        Just("event: error".to_owned()),
        Just("".to_owned()),
        "[ -~]{0,40}".prop_map(|s| format!("data: {s}")),
    ], 0..20), cuts in proptest::collection::vec(any::<usize>(), 0..8)) {
        let body = lines.join("\n") + "\n\n";
        let _ = decode_openai(pieces(body.as_bytes(), &cuts));
    }

    #[cfg(feature = "openai")]
    #[test]
    fn openai_valid_stream_same_answer_for_any_split(cuts in proptest::collection::vec(any::<usize>(), 0..40)) {
        let r = decode_openai(pieces(OPENAI.as_bytes(), &cuts)).unwrap();
        prop_assert_eq!(r.raw_text.as_str(), "Hé");
        prop_assert_eq!(r.think.as_str(), "hm");
        prop_assert_eq!(r.tool_calls[0].function.arguments.as_str(), "{\"a\":1}");
        prop_assert_eq!(r.token_usage.total_tokens, Some(7));
    }

    #[cfg(feature = "openai")]
    #[test]
    fn openai_any_truncation_is_never_complete(at in 0usize..10_000) {
        let cut = at % OPENAI.len();
        // Everything before the final `data: [DONE]` line is incomplete.
        prop_assume!(cut < OPENAI.find("data: [DONE]").unwrap() + "data: [DONE]".len());
        let r = decode_openai(vec![Ok(Bytes::copy_from_slice(&OPENAI.as_bytes()[..cut]))]);
        prop_assert!(r.is_err());
    }

    #[cfg(feature = "anthropic")]
    #[test]
    fn anthropic_random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512), cuts in proptest::collection::vec(any::<usize>(), 0..8)) {
        let _ = decode_anthropic(pieces(&data, &cuts));
    }

    #[cfg(feature = "anthropic")]
    #[test]
    fn anthropic_event_shaped_garbage_never_panics(lines in proptest::collection::vec(prop_oneof![
        Just("event: message_stop\ndata: {}".to_owned()),
        Just("data: {\"type\":\"content_block_delta\",\"index\":99,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\"}}".to_owned()),
        Just("data: {\"type\":\"content_block_start\",\"index\":-1,\"content_block\":{\"type\":\"tool_use\",\"input\":[1]}}".to_owned()),
        Just("data: {\"type\":\"content_block_stop\",\"index\":\"x\"}".to_owned()),
        Just("data: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":1e30}}".to_owned()),
        Just("data: {\"type\":\"error\"}".to_owned()),
        Just("data: 17".to_owned()),
        Just("".to_owned()),
        "[ -~]{0,40}".prop_map(|s| format!("data: {s}")),
    ], 0..20), cuts in proptest::collection::vec(any::<usize>(), 0..8)) {
        let body = lines.join("\n\n") + "\n\n";
        let _ = decode_anthropic(pieces(body.as_bytes(), &cuts));
    }

    #[cfg(feature = "anthropic")]
    #[test]
    fn anthropic_valid_stream_same_answer_for_any_split(cuts in proptest::collection::vec(any::<usize>(), 0..40)) {
        let r = decode_anthropic(pieces(ANTHROPIC.as_bytes(), &cuts)).unwrap();
        prop_assert_eq!(r.raw_text.as_str(), "Hé");
        prop_assert_eq!(r.tool_calls[0].function.arguments.as_str(), "{\"a\":1}");
        prop_assert_eq!(r.token_usage.total_tokens, Some(7));
    }

    #[cfg(feature = "anthropic")]
    #[test]
    fn anthropic_any_truncation_is_never_complete(at in 0usize..10_000) {
        let cut = at % ANTHROPIC.len();
        prop_assume!(cut < ANTHROPIC.find("event: message_stop").unwrap() + 10);
        let r = decode_anthropic(vec![Ok(Bytes::copy_from_slice(&ANTHROPIC.as_bytes()[..cut]))]);
        prop_assert!(r.is_err());
    }
}
