//! A complete model answer ([`LlmResponse`]) and why the model stopped ([`FinishReason`]).

use serde::{Deserialize, Serialize};

use super::usage::TokenUsage;
use crate::message::{Message, ToolCall};

/// Why the model stopped.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FinishReason {
    /// A natural end (`stop`, Anthropic `end_turn`/`stop_sequence`).
    Stop,
    /// The reply cap was hit (`length`, `max_tokens`).
    Length,
    /// The model asked for tools (`tool_calls`, `tool_use`, `function_call`).
    ToolCalls,
    /// The provider filtered the content (`content_filter`, `refusal`).
    ContentFilter,
    /// Any other value a compatible server sent (kept verbatim, never an error).
    Other(String),
}

impl FinishReason {
    /// Maps a provider string (OpenAI or Anthropic) leniently.
    pub fn parse(s: &str) -> FinishReason {
        match s {
            "stop" | "end_turn" | "stop_sequence" | "eos" => FinishReason::Stop,
            "length" | "max_tokens" | "model_length" => FinishReason::Length,
            "tool_calls" | "tool_use" | "function_call" => FinishReason::ToolCalls,
            "content_filter" | "refusal" => FinishReason::ContentFilter,
            other => FinishReason::Other(other.to_owned()),
        }
    }

    /// The canonical string (`stop`, `length`, `tool_calls`, `content_filter`, or the raw value).
    pub fn as_str(&self) -> &str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::ToolCalls => "tool_calls",
            FinishReason::ContentFilter => "content_filter",
            FinishReason::Other(s) => s,
        }
    }
}

impl Serialize for FinishReason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for FinishReason {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(FinishReason::parse(&s))
    }
}

/// A complete model answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LlmResponse {
    /// The assistant text as produced.
    pub raw_text: String,
    /// The business text (equal to `raw_text` unless JSON extraction narrowed it).
    #[serde(default)]
    pub content_text: String,
    /// Aggregated reasoning text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub think: String,
    /// Tool calls, fully reassembled.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// Token usage (empty when the provider sent none).
    #[serde(default)]
    pub token_usage: TokenUsage,
    /// Why the model stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<FinishReason>,
    /// The model that answered, when reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The provider's response id, when reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_id: Option<String>,
    /// Parsed JSON answer (structured output), when requested and parsed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_data: Option<serde_json::Value>,
    /// Why JSON parsing failed, when it was requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parse_error: Option<String>,
}

impl LlmResponse {
    /// A text answer that stopped naturally.
    pub fn text(text: impl Into<String>) -> Self {
        let t = text.into();
        LlmResponse {
            content_text: t.clone(),
            raw_text: t,
            finish_reason: Some(FinishReason::Stop),
            ..Default::default()
        }
    }

    /// An answer that calls tools.
    pub fn with_tool_calls(text: impl Into<String>, tool_calls: Vec<ToolCall>) -> Self {
        LlmResponse {
            tool_calls,
            finish_reason: Some(FinishReason::ToolCalls),
            ..LlmResponse::text(text)
        }
    }

    /// Sets the usage.
    pub fn with_usage(mut self, usage: TokenUsage) -> Self {
        self.token_usage = usage;
        self
    }

    /// The assistant message this answer becomes in the history.
    pub fn to_message(&self) -> Message {
        if self.tool_calls.is_empty() {
            Message::assistant(self.raw_text.clone())
        } else {
            Message::assistant_tool_calls(self.raw_text.clone(), self.tool_calls.clone())
        }
    }
}
