//! Lenient parsing of chat-completions SSE events.

use std::collections::VecDeque;

use eventsource_stream::Event;
use power_loop_contracts::{
    Error, ErrorCode, FinishReason, Result, StreamChunk, TokenUsage, ToolCallDelta,
};
use serde_json::Value;

use crate::http::{SseParser, protocol_error};

const PROVIDER: &str = "the OpenAI-compatible server";

/// One tool call being reassembled: (id, name known).
#[derive(Debug, Default)]
struct CallSlot {
    id: Option<String>,
    named: bool,
    /// The index the server used for it.
    wire_index: Option<u64>,
}

/// Interprets `data:` events until `data: [DONE]`.
#[derive(Debug, Default)]
pub(crate) struct OpenAiSseParser {
    calls: Vec<CallSlot>,
    finish: Option<FinishReason>,
    usage: Option<TokenUsage>,
    model: Option<String>,
    response_id: Option<String>,
    done: bool,
    saw_event: bool,
}

impl OpenAiSseParser {
    fn on_json(&mut self, v: &Value, out: &mut VecDeque<StreamChunk>) -> Result<()> {
        if let Some(err) = v.get("error").filter(|e| !e.is_null()) {
            return Err(stream_error_event(err));
        }
        if let Some(id) = v
            .get("id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            self.response_id = Some(id.to_owned());
        }
        if let Some(m) = v
            .get("model")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            self.model = Some(m.to_owned());
        }
        if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
            self.usage = Some(normalize_usage(u));
        }
        let Some(choice) = v
            .get("choices")
            .and_then(Value::as_array)
            .and_then(|c| c.first())
        else {
            return Ok(());
        };
        if let Some(fr) = choice
            .get("finish_reason")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            self.finish = Some(FinishReason::parse(fr));
        }
        // Some servers send `message` instead of `delta` (non-delta chunks).
        let Some(delta) = choice.get("delta").or_else(|| choice.get("message")) else {
            return Ok(());
        };
        let mut chunk = StreamChunk::default();
        match delta.get("content") {
            Some(Value::String(s)) => chunk.delta_text.push_str(s),
            Some(Value::Array(parts)) => {
                for p in parts {
                    let text = match p {
                        Value::String(s) => Some(s.as_str()),
                        _ => p
                            .get("text")
                            .or_else(|| p.get("content"))
                            .and_then(Value::as_str),
                    };
                    let Some(text) = text else { continue };
                    let kind = p
                        .get("type")
                        .or_else(|| p.get("role"))
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_ascii_lowercase();
                    if ["reason", "think", "thought"]
                        .iter()
                        .any(|k| kind.contains(k))
                    {
                        chunk.think.push_str(text);
                    } else {
                        chunk.delta_text.push_str(text);
                    }
                }
            }
            _ => {}
        }
        if chunk.delta_text.is_empty()
            && let Some(t) = delta.get("text").and_then(Value::as_str)
        {
            chunk.delta_text.push_str(t);
        }
        for key in [
            "reasoning_content",
            "reasoning",
            "thinking",
            "thinking_content",
            "reasoning_text",
            "thought",
        ] {
            if let Some(t) = delta
                .get(key)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            {
                chunk.think.push_str(t);
                break;
            }
        }
        if let Some(calls) = delta.get("tool_calls").and_then(Value::as_array) {
            for (pos, c) in calls.iter().enumerate() {
                chunk.delta_tool_calls.push(self.tool_delta(c, pos));
            }
        } else if let Some(fc) = delta.get("function_call").filter(|f| f.is_object()) {
            let wrapped = serde_json::json!({"index": 0, "function": fc});
            chunk.delta_tool_calls.push(self.tool_delta(&wrapped, 0));
        }
        if !chunk.delta_text.is_empty()
            || !chunk.think.is_empty()
            || !chunk.delta_tool_calls.is_empty()
        {
            out.push_back(chunk);
        }
        Ok(())
    }

    /// Maps a wire tool-call fragment to a delta with a stable slot index (merge key: a known id,
    /// else a known wire index, else a new slot).
    fn tool_delta(&mut self, c: &Value, pos: usize) -> ToolCallDelta {
        let id = c
            .get("id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty());
        let wire_index = c.get("index").and_then(Value::as_u64);
        let func = c.get("function");
        let name = func
            .and_then(|f| f.get("name"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty());
        let args = func
            .and_then(|f| f.get("arguments"))
            .map(|a| match a {
                Value::String(s) => s.clone(),
                Value::Null => String::new(),
                other => other.to_string(),
            })
            .unwrap_or_default();
        let by_id = id.and_then(|id| self.calls.iter().position(|s| s.id.as_deref() == Some(id)));
        let slot = match by_id {
            Some(p) => p,
            None => {
                let by_index = wire_index.and_then(|wi| {
                    self.calls.iter().position(|s| {
                        s.wire_index == Some(wi)
                            && (id.is_none() || s.id.is_none() || s.id.as_deref() == id)
                    })
                });
                match by_index {
                    Some(p) => p,
                    None if wire_index.is_none() && id.is_none() => {
                        // No key at all: a continuation of the call at this position, if any.
                        if pos < self.calls.len() {
                            pos
                        } else {
                            self.new_slot(None)
                        }
                    }
                    None => self.new_slot(wire_index),
                }
            }
        };
        let mut out = ToolCallDelta {
            index: slot as u32,
            arguments: args,
            ..Default::default()
        };
        if let Some(s) = self.calls.get_mut(slot) {
            if let Some(id) = id
                && s.id.as_deref() != Some(id)
            {
                s.id = Some(id.to_owned());
                out.id = Some(id.to_owned());
            }
            if let Some(n) = name
                && !s.named
            {
                s.named = true;
                out.name = Some(n.to_owned());
            }
        }
        out
    }

    /// Ends the answer: the final chunk with the finish reason, usage, model and response id.
    fn push_final(&mut self, out: &mut VecDeque<StreamChunk>) {
        self.done = true;
        let mut last = StreamChunk::finished(self.finish.take(), self.usage.take());
        last.model = self.model.take();
        last.response_id = self.response_id.take();
        out.push_back(last);
    }

    fn new_slot(&mut self, wire_index: Option<u64>) -> usize {
        self.calls.push(CallSlot {
            wire_index,
            ..Default::default()
        });
        self.calls.len() - 1
    }
}

impl SseParser for OpenAiSseParser {
    fn on_event(&mut self, event: &Event, out: &mut VecDeque<StreamChunk>) -> Result<()> {
        let data = event.data.trim();
        if data.is_empty() {
            return Ok(());
        }
        self.saw_event = true;
        if data == "[DONE]" {
            if self.finish.is_none() {
                return Err(Error::new(
                    ErrorCode::LlmStreamIncomplete,
                    "the OpenAI-compatible stream sent [DONE] without any finish_reason; the answer may be truncated and was discarded (retry the call)",
                ));
            }
            self.push_final(out);
            return Ok(());
        }
        let v: Value = serde_json::from_str(data).map_err(|e| protocol_error(PROVIDER, data, e))?;
        if event.event == "error" {
            return Err(stream_error_event(v.get("error").unwrap_or(&v)));
        }
        self.on_json(&v, out)
    }

    fn is_done(&self) -> bool {
        self.done
    }

    /// A `chat.completion` object (`choices[0].message`, `finish_reason`, `usage`): read like one
    /// stream event whose `delta` is the whole message, then ended like `[DONE]`. The body was
    /// read to its end, so a missing `finish_reason` is taken as `stop`; a body without
    /// `choices` is `llm.protocol`.
    fn on_json_body(&mut self, body: &Value, out: &mut VecDeque<StreamChunk>) -> Result<()> {
        self.saw_event = true;
        self.on_json(body, out)?;
        let has_choice = body
            .get("choices")
            .and_then(Value::as_array)
            .is_some_and(|c| !c.is_empty());
        if !has_choice {
            let shown: String = body.to_string().chars().take(200).collect();
            return Err(Error::new(
                ErrorCode::LlmProtocol,
                format!(
                    "the OpenAI-compatible server answered with a JSON body without `choices`: {shown}"
                ),
            ));
        }
        if self.finish.is_none() {
            self.finish = Some(FinishReason::Stop);
        }
        self.push_final(out);
        Ok(())
    }

    fn incomplete_error(&self) -> Error {
        let what = match (self.saw_event, self.finish.is_some()) {
            (false, _) => "before sending any event",
            (true, false) => "without a finish_reason and without [DONE]",
            (true, true) => "after its finish_reason but without [DONE]",
        };
        Error::new(
            ErrorCode::LlmStreamIncomplete,
            format!(
                "the OpenAI-compatible stream ended {what}; the partial answer was discarded (retry the call)"
            ),
        )
    }
}

/// An `{"error": {...}}` object inside the stream.
fn stream_error_event(err: &Value) -> Error {
    let msg = err
        .get("message")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| err.to_string());
    let kind = err
        .get("type")
        .or_else(|| err.get("code"))
        .map(|t| match t {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .unwrap_or_default();
    let lk = kind.to_ascii_lowercase();
    let code = if lk.contains("overloaded") {
        ErrorCode::LlmOverloaded
    } else if lk.contains("rate_limit") || lk == "429" {
        ErrorCode::LlmRateLimited
    } else if lk.contains("server_error") || lk.starts_with('5') && lk.len() == 3 {
        ErrorCode::LlmServer
    } else {
        ErrorCode::LlmProvider
    };
    Error::new(
        code,
        format!("the OpenAI-compatible server reported an error mid-stream: {msg}"),
    )
    .with_detail("provider_error_type", kind)
}

fn as_count(v: &Value) -> Option<u64> {
    match v {
        Value::Bool(b) => Some(u64::from(*b)),
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| *f >= 0.0 && f.is_finite())
                .map(|f| f as u64)
        }),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    }
}

fn first(obj: Option<&Value>, keys: &[&str]) -> Option<u64> {
    let obj = obj?;
    keys.iter().find_map(|k| obj.get(*k).and_then(as_count))
}

/// Normalizes a provider usage object.
pub(crate) fn normalize_usage(u: &Value) -> TokenUsage {
    let top = Some(u);
    let pd = u.get("prompt_tokens_details").filter(|v| v.is_object());
    let id = u.get("input_tokens_details").filter(|v| v.is_object());
    let cd = u.get("completion_tokens_details").filter(|v| v.is_object());
    let od = u.get("output_tokens_details").filter(|v| v.is_object());
    let details =
        |a: Option<&Value>, b: Option<&Value>, keys: &[&str]| first(a, keys).or(first(b, keys));
    let mut t = TokenUsage {
        prompt_tokens: first(
            top,
            &[
                "prompt_tokens",
                "input_tokens",
                "prompt_token_count",
                "promptTokens",
                "inputTokenCount",
                "prompt_count",
            ],
        ),
        completion_tokens: first(
            top,
            &[
                "completion_tokens",
                "output_tokens",
                "completion_token_count",
                "completionTokens",
                "outputTokenCount",
                "generated_tokens",
                "candidates_token_count",
            ],
        ),
        total_tokens: first(
            top,
            &[
                "total_tokens",
                "total_token_count",
                "totalTokens",
                "token_count",
                "usage_tokens",
            ],
        ),
        ..Default::default()
    };
    if t.total_tokens.is_none()
        && let (Some(p), Some(c)) = (t.prompt_tokens, t.completion_tokens)
    {
        t.total_tokens = Some(p + c);
    }
    t.prompt_cached_tokens = first(
        top,
        &[
            "prompt_cache_hit_tokens",
            "cached_tokens",
            "cache_hit_tokens",
            "prompt_cached_tokens",
        ],
    )
    .or_else(|| first(pd, &["cached_tokens", "cache_hit_tokens", "cacheHitTokens"]))
    .or_else(|| first(id, &["cached_tokens"]));
    t.prompt_cache_miss_tokens = first(
        top,
        &[
            "prompt_cache_miss_tokens",
            "cache_miss_tokens",
            "cacheMissTokens",
        ],
    )
    .or_else(|| first(pd, &["cache_miss_tokens", "cacheMissTokens"]));
    // Audio, text and image tokens, per modality, in the same keys on both sides.
    let modalities = |a: Option<&Value>, b: Option<&Value>| {
        [
            details(a, b, &["audio_tokens", "audioTokenCount"]),
            details(a, b, &["text_tokens", "textTokenCount"]),
            details(a, b, &["image_tokens", "imageTokenCount"]),
        ]
    };
    [
        t.prompt_audio_tokens,
        t.prompt_text_tokens,
        t.prompt_image_tokens,
    ] = modalities(pd, id);
    [
        t.completion_audio_tokens,
        t.completion_text_tokens,
        t.completion_image_tokens,
    ] = modalities(cd, od);
    t.completion_reasoning_tokens = details(
        cd,
        od,
        &[
            "reasoning_tokens",
            "reasoningTokenCount",
            "reasoning_token",
            "reasoningTokens",
            "thinking_tokens",
        ],
    );
    t.accepted_prediction_tokens = details(
        cd,
        od,
        &["accepted_prediction_tokens", "acceptedPredictionTokens"],
    );
    t.rejected_prediction_tokens = details(
        cd,
        od,
        &["rejected_prediction_tokens", "rejectedPredictionTokens"],
    );
    t.cached_tokens = first(top, &["cached_tokens"]).or(t.prompt_cached_tokens);
    t.cache_hit_tokens =
        first(top, &["cache_hit_tokens", "prompt_cache_hit_tokens"]).or(t.prompt_cached_tokens);
    t.cache_miss_tokens = first(top, &["cache_miss_tokens", "prompt_cache_miss_tokens"])
        .or(t.prompt_cache_miss_tokens);
    t.reasoning_tokens = first(
        top,
        &[
            "reasoning_tokens",
            "reasoning_token",
            "reasoningTokens",
            "thinking_tokens",
        ],
    )
    .or(t.completion_reasoning_tokens);
    t.accepted_tokens =
        first(top, &["accepted_prediction_tokens"]).or(t.accepted_prediction_tokens);
    t.rejected_tokens =
        first(top, &["rejected_prediction_tokens"]).or(t.rejected_prediction_tokens);
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn usage_aliases() {
        let u = normalize_usage(&json!({"input_tokens": "12", "output_tokens": 3.0,
            "prompt_tokens_details": {"cached_tokens": 4},
            "completion_tokens_details": {"reasoning_tokens": 2}}));
        assert_eq!(u.prompt_tokens, Some(12));
        assert_eq!(u.completion_tokens, Some(3));
        assert_eq!(u.total_tokens, Some(15));
        assert_eq!(u.prompt_cached_tokens, Some(4));
        assert_eq!(u.cached_tokens, Some(4));
        assert_eq!(u.reasoning_tokens, Some(2));
    }
}
