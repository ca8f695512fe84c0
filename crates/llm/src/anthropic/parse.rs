//! Parsing of the Messages API streaming events.

use std::collections::{HashMap, VecDeque};

use eventsource_stream::Event;
use power_loop_contracts::{
    Error, ErrorCode, FinishReason, Result, StreamChunk, TokenUsage, ToolCallDelta,
};
use serde_json::Value;

use crate::http::{SseParser, protocol_error};

const PROVIDER: &str = "Anthropic";

#[derive(Debug)]
enum Block {
    Text,
    Thinking,
    Tool { slot: u32, got_args: bool },
    Other,
}

/// Interprets `message_start` … `message_stop`.
#[derive(Debug, Default)]
pub(crate) struct AnthropicSseParser {
    blocks: HashMap<u64, Block>,
    next_tool: u32,
    input: Option<u64>,
    cache_read: Option<u64>,
    cache_creation: Option<u64>,
    output: Option<u64>,
    finish: Option<FinishReason>,
    model: Option<String>,
    id: Option<String>,
    done: bool,
    saw_start: bool,
}

fn count(v: Option<&Value>) -> Option<u64> {
    v.and_then(Value::as_u64)
}

impl AnthropicSseParser {
    fn read_usage(&mut self, u: Option<&Value>) {
        let Some(u) = u else { return };
        if let Some(n) = count(u.get("input_tokens")) {
            self.input = Some(n);
        }
        if let Some(n) = count(u.get("cache_read_input_tokens")) {
            self.cache_read = Some(n);
        }
        if let Some(n) = count(u.get("cache_creation_input_tokens")) {
            self.cache_creation = Some(n);
        }
        if let Some(n) = count(u.get("output_tokens")) {
            self.output = Some(n);
        }
    }

    /// prompt = input + cache read + cache creation (the OpenAI meaning of prompt tokens),
    /// cached = cache read.
    fn usage(&self) -> Option<TokenUsage> {
        if self.input.is_none() && self.output.is_none() {
            return None;
        }
        let prompt = self.input.unwrap_or(0)
            + self.cache_read.unwrap_or(0)
            + self.cache_creation.unwrap_or(0);
        let completion = self.output.unwrap_or(0);
        Some(TokenUsage {
            prompt_tokens: Some(prompt),
            completion_tokens: Some(completion),
            total_tokens: Some(prompt + completion),
            prompt_cached_tokens: self.cache_read,
            cached_tokens: self.cache_read,
            cache_hit_tokens: self.cache_read,
            prompt_cache_miss_tokens: self.input.map(|i| i + self.cache_creation.unwrap_or(0)),
            ..Default::default()
        })
    }
}

fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// An `error` event → `llm.overloaded` / `llm.rate_limited` / `llm.provider_error`.
fn error_event(v: &Value) -> Error {
    let err = v.get("error").unwrap_or(v);
    let kind = str_of(err, "type").unwrap_or("").to_owned();
    let msg = str_of(err, "message").unwrap_or("no message").to_owned();
    let code = match kind.as_str() {
        "overloaded_error" => ErrorCode::LlmOverloaded,
        "rate_limit_error" => ErrorCode::LlmRateLimited,
        _ => ErrorCode::LlmProvider,
    };
    Error::new(
        code,
        format!("Anthropic reported `{kind}` mid-stream: {msg}"),
    )
    .with_detail("provider_error_type", kind)
}

impl SseParser for AnthropicSseParser {
    fn on_event(&mut self, event: &Event, out: &mut VecDeque<StreamChunk>) -> Result<()> {
        let data = event.data.trim();
        if data.is_empty() {
            return Ok(());
        }
        let v: Value = serde_json::from_str(data).map_err(|e| protocol_error(PROVIDER, data, e))?;
        let kind = if event.event.is_empty() || event.event == "message" {
            str_of(&v, "type").unwrap_or("").to_owned()
        } else {
            event.event.clone()
        };
        self.on_typed(&kind, &v, out)
    }

    fn is_done(&self) -> bool {
        self.done
    }

    /// A Messages API `message` object: replayed as the events the stream would have sent
    /// (`message_start`, a start/stop pair per content block, `message_delta` with the stop
    /// reason, `message_stop`). An `{"type":"error"}` body is the `error` event; a body without
    /// a `content` list is `llm.protocol`.
    fn on_json_body(&mut self, body: &Value, out: &mut VecDeque<StreamChunk>) -> Result<()> {
        if str_of(body, "type") == Some("error") || body.get("error").is_some_and(|e| !e.is_null())
        {
            return Err(error_event(body));
        }
        let Some(blocks) = body.get("content").and_then(Value::as_array) else {
            let shown: String = body.to_string().chars().take(200).collect();
            return Err(Error::new(
                ErrorCode::LlmProtocol,
                format!("Anthropic answered with a JSON body without a `content` list: {shown}"),
            ));
        };
        self.on_typed(
            "message_start",
            &serde_json::json!({ "message": body }),
            out,
        )?;
        for (i, block) in blocks.iter().enumerate() {
            let start = serde_json::json!({"index": i, "content_block": block});
            self.on_typed("content_block_start", &start, out)?;
            self.on_typed(
                "content_block_stop",
                &serde_json::json!({ "index": i }),
                out,
            )?;
        }
        let delta = serde_json::json!({"delta": {"stop_reason": body.get("stop_reason")}});
        self.on_typed("message_delta", &delta, out)?;
        self.on_typed("message_stop", &Value::Null, out)
    }

    fn incomplete_error(&self) -> Error {
        let what = if self.saw_start {
            "without message_stop"
        } else {
            "before message_start"
        };
        Error::new(
            ErrorCode::LlmStreamIncomplete,
            format!(
                "the Anthropic stream ended {what}; the partial answer was discarded (retry the call)"
            ),
        )
    }
}

impl AnthropicSseParser {
    /// Interprets one event of type `kind` with payload `v`.
    fn on_typed(&mut self, kind: &str, v: &Value, out: &mut VecDeque<StreamChunk>) -> Result<()> {
        match kind {
            "message_start" => {
                self.saw_start = true;
                if let Some(m) = v.get("message") {
                    self.id = str_of(m, "id").map(str::to_owned).or(self.id.take());
                    self.model = str_of(m, "model").map(str::to_owned).or(self.model.take());
                    self.read_usage(m.get("usage"));
                }
            }
            "content_block_start" => {
                let index = v.get("index").and_then(Value::as_u64).unwrap_or(0);
                let cb = v.get("content_block").cloned().unwrap_or(Value::Null);
                let block = match str_of(&cb, "type").unwrap_or("") {
                    "text" => {
                        if let Some(t) = str_of(&cb, "text").filter(|t| !t.is_empty()) {
                            out.push_back(StreamChunk::text(t));
                        }
                        Block::Text
                    }
                    "thinking" => {
                        if let Some(t) = str_of(&cb, "thinking").filter(|t| !t.is_empty()) {
                            out.push_back(StreamChunk::think(t));
                        }
                        Block::Thinking
                    }
                    "tool_use" => {
                        let slot = self.next_tool;
                        self.next_tool += 1;
                        let input = cb
                            .get("input")
                            .filter(|i| i.as_object().is_some_and(|o| !o.is_empty()))
                            .map(Value::to_string)
                            .unwrap_or_default();
                        let got_args = !input.is_empty();
                        out.push_back(StreamChunk::tool_call(ToolCallDelta {
                            index: slot,
                            id: str_of(&cb, "id").map(str::to_owned),
                            name: str_of(&cb, "name").map(str::to_owned),
                            arguments: input,
                        }));
                        Block::Tool { slot, got_args }
                    }
                    _ => Block::Other,
                };
                self.blocks.insert(index, block);
            }
            "content_block_delta" => {
                let index = v.get("index").and_then(Value::as_u64).unwrap_or(0);
                let delta = v.get("delta").cloned().unwrap_or(Value::Null);
                match str_of(&delta, "type").unwrap_or("") {
                    "text_delta" => {
                        if let Some(t) = str_of(&delta, "text").filter(|t| !t.is_empty()) {
                            out.push_back(StreamChunk::text(t));
                        }
                    }
                    "thinking_delta" => {
                        if let Some(t) = str_of(&delta, "thinking").filter(|t| !t.is_empty()) {
                            out.push_back(StreamChunk::think(t));
                        }
                    }
                    "input_json_delta" => {
                        let part = str_of(&delta, "partial_json").unwrap_or("");
                        if let Some(Block::Tool { slot, got_args }) = self.blocks.get_mut(&index)
                            && !part.is_empty()
                        {
                            *got_args = true;
                            out.push_back(StreamChunk::tool_call(ToolCallDelta {
                                index: *slot,
                                arguments: part.to_owned(),
                                ..Default::default()
                            }));
                        }
                    }
                    _ => {}
                }
            }
            "content_block_stop" => {
                let index = v.get("index").and_then(Value::as_u64).unwrap_or(0);
                if let Some(Block::Tool { slot, got_args }) = self.blocks.get_mut(&index)
                    && !*got_args
                {
                    *got_args = true;
                    out.push_back(StreamChunk::tool_call(ToolCallDelta {
                        index: *slot,
                        arguments: "{}".to_owned(),
                        ..Default::default()
                    }));
                }
            }
            "message_delta" => {
                if let Some(sr) = v
                    .get("delta")
                    .and_then(|d| str_of(d, "stop_reason"))
                    .filter(|s| !s.is_empty())
                {
                    self.finish = Some(FinishReason::parse(sr));
                }
                self.read_usage(v.get("usage"));
            }
            "message_stop" => {
                self.done = true;
                let mut last = StreamChunk::finished(
                    Some(self.finish.clone().unwrap_or(FinishReason::Stop)),
                    self.usage(),
                );
                last.model = self.model.take();
                last.response_id = self.id.take();
                out.push_back(last);
            }
            "error" => return Err(error_event(v)),
            // `ping` and event types added later are ignored.
            _ => {}
        }
        Ok(())
    }
}
