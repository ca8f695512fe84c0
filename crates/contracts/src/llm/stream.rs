//! Streamed answers: [`StreamChunk`], [`ToolCallDelta`] and the [`StreamAggregator`] that turns a
//! chunk stream into one [`LlmResponse`] (refusing a stream that ended without its final chunk).

use serde::{Deserialize, Serialize};

use super::response::{FinishReason, LlmResponse};
use super::usage::TokenUsage;
use crate::error::{Error, ErrorCode, Result};
use crate::message::ToolCall;

/// A fragment of one tool call inside a stream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCallDelta {
    /// Position of the call in the answer (calls are reassembled by index).
    pub index: u32,
    /// The call id (usually only in the first fragment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The tool name (usually only in the first fragment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A piece of the arguments JSON text.
    #[serde(default)]
    pub arguments: String,
}

/// One piece of a streamed answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct StreamChunk {
    /// New answer text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub delta_text: String,
    /// Answer text delivered in one piece instead of streamed, by a provider that does not
    /// stream (the echo provider of ). [`StreamAggregator`] appends it to the answer
    /// text after `delta_text`, like any answer text; it is not live output, so the agent loop
    /// emits no `stream_delta` event for it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub whole_text: String,
    /// New reasoning text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub think: String,
    /// Tool-call fragments in this chunk.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub delta_tool_calls: Vec<ToolCallDelta>,
    /// Usage, when this chunk reports it (often only the last one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_usage: Option<TokenUsage>,
    /// Why the model stopped, when this chunk says so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<FinishReason>,
    /// The model name, when this chunk reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The response id, when this chunk reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_id: Option<String>,
    /// Set on the last chunk only: the stream reached its documented end.
    #[serde(default)]
    pub is_final: bool,
}

impl StreamChunk {
    /// A text delta.
    pub fn text(delta: impl Into<String>) -> Self {
        StreamChunk {
            delta_text: delta.into(),
            ..Default::default()
        }
    }
    /// A reasoning delta.
    pub fn think(delta: impl Into<String>) -> Self {
        StreamChunk {
            think: delta.into(),
            ..Default::default()
        }
    }
    /// A tool-call fragment.
    pub fn tool_call(delta: ToolCallDelta) -> Self {
        StreamChunk {
            delta_tool_calls: vec![delta],
            ..Default::default()
        }
    }
    /// The final chunk.
    pub fn finished(finish_reason: Option<FinishReason>, usage: Option<TokenUsage>) -> Self {
        StreamChunk {
            finish_reason,
            token_usage: usage,
            is_final: true,
            ..Default::default()
        }
    }
}

/// Reassembles a chunk stream into an [`LlmResponse`].
#[derive(Debug, Default)]
pub struct StreamAggregator {
    text: String,
    think: String,
    calls: Vec<(u32, String, String, String)>,
    usage: TokenUsage,
    finish: Option<FinishReason>,
    model: Option<String>,
    response_id: Option<String>,
    finished: bool,
}

impl StreamAggregator {
    /// A fresh aggregator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one chunk.
    pub fn push(&mut self, chunk: &StreamChunk) {
        self.text.push_str(&chunk.delta_text);
        self.text.push_str(&chunk.whole_text);
        self.think.push_str(&chunk.think);
        for d in &chunk.delta_tool_calls {
            let pos = match self.calls.iter().position(|c| c.0 == d.index) {
                Some(p) => p,
                None => {
                    self.calls
                        .push((d.index, String::new(), String::new(), String::new()));
                    self.calls.len() - 1
                }
            };
            if let Some(slot) = self.calls.get_mut(pos) {
                if let Some(id) = d.id.as_deref().filter(|s| !s.is_empty()) {
                    slot.1 = id.to_owned();
                }
                if let Some(name) = d.name.as_deref().filter(|s| !s.is_empty()) {
                    slot.2.push_str(name);
                }
                slot.3.push_str(&d.arguments);
            }
        }
        if let Some(u) = &chunk.token_usage {
            self.usage.merge_from(u);
        }
        if chunk.finish_reason.is_some() {
            self.finish = chunk.finish_reason.clone();
        }
        if chunk.model.is_some() {
            self.model = chunk.model.clone();
        }
        if chunk.response_id.is_some() {
            self.response_id = chunk.response_id.clone();
        }
        if chunk.is_final {
            self.finished = true;
        }
    }

    /// Whether the final chunk was seen.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The text received so far.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The tool calls reassembled so far, ordered by index (ids synthesized when missing).
    pub fn tool_calls(&self) -> Vec<ToolCall> {
        let mut calls = self.calls.clone();
        calls.sort_by_key(|c| c.0);
        calls
            .into_iter()
            .map(|(index, id, name, args)| {
                let id = if id.is_empty() {
                    format!("call_{index}")
                } else {
                    id
                };
                ToolCall::new(id, name, args)
            })
            .collect()
    }

    /// The response; an `llm.stream_incomplete` error when the final chunk never came.
    pub fn finish(self) -> Result<LlmResponse> {
        if !self.finished {
            return Err(Error::new(
                ErrorCode::LlmStreamIncomplete,
                "the model's stream ended before its final event; the partial answer was discarded (retry the call)",
            )
            .with_detail("partial_text_chars", self.text.chars().count() as u64));
        }
        Ok(self.into_response())
    }

    /// The response built from whatever arrived, complete or not.
    pub fn into_response(self) -> LlmResponse {
        let tool_calls = self.tool_calls();
        LlmResponse {
            content_text: self.text.clone(),
            raw_text: self.text,
            think: self.think,
            tool_calls,
            token_usage: self.usage,
            finish_reason: self.finish,
            model: self.model,
            response_id: self.response_id,
            json_data: None,
            parse_error: None,
        }
    }
}
