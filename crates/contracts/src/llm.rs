//! The LLM contract: [`LlmService`] and its request, response, stream-chunk and usage types.
//!
//! A provider implements [`LlmService::stream`] (and may override [`LlmService::complete`]);
//! retry, timeouts and concurrency limits wrap a service from outside (see `power-loop-llm`), they
//! do not live in providers. [`StreamAggregator`] turns a chunk stream into one [`LlmResponse`] and
//! refuses a stream that ended without its final chunk.

use std::pin::Pin;
use std::sync::Arc;

use futures_core::Stream;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::error::{Error, ErrorCode, Result};
use crate::message::{Message, ToolCall};
use crate::tool::ToolDefinition;

/// A boxed, `Send` future.
pub type BoxFuture<'a, T> = Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// A boxed, `Send` stream.
pub type BoxStream<'a, T> = Pin<Box<dyn Stream<Item = T> + Send + 'a>>;

/// The stream of chunks an [`LlmService`] returns.
pub type LlmStream = BoxStream<'static, Result<StreamChunk>>;

/// How the model may pick tools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolChoice {
    /// The model decides (`"auto"`).
    Auto,
    /// No tool calls (`"none"`).
    None,
    /// At least one tool call (`"required"`).
    Required,
    /// Exactly this function.
    Function(String),
}

impl Serialize for ToolChoice {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            ToolChoice::Auto => s.serialize_str("auto"),
            ToolChoice::None => s.serialize_str("none"),
            ToolChoice::Required => s.serialize_str("required"),
            ToolChoice::Function(name) => {
                serde_json::json!({"type": "function", "function": {"name": name}}).serialize(s)
            }
        }
    }
}

impl<'de> Deserialize<'de> for ToolChoice {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        match &v {
            serde_json::Value::String(s) => match s.as_str() {
                "auto" => Ok(ToolChoice::Auto),
                "none" => Ok(ToolChoice::None),
                "required" | "any" => Ok(ToolChoice::Required),
                other => Err(serde::de::Error::custom(format!(
                    "unknown tool_choice `{other}`"
                ))),
            },
            _ => v
                .pointer("/function/name")
                .and_then(|n| n.as_str())
                .map(|n| ToolChoice::Function(n.to_owned()))
                .ok_or_else(|| serde::de::Error::custom("tool_choice object needs function.name")),
        }
    }
}

/// A JSON-schema answer format (`response_format.json_schema`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JsonSchemaFormat {
    /// Schema name (`[A-Za-z0-9_-]`).
    pub name: String,
    /// The JSON schema the answer must match.
    pub schema: serde_json::Value,
    /// Ask the provider to enforce the schema strictly.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub strict: bool,
    /// Optional description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// The requested answer format, in the OpenAI `response_format` shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ResponseFormat {
    /// Free text.
    Text,
    /// Any JSON object.
    JsonObject,
    /// JSON matching a schema.
    JsonSchema {
        /// The schema.
        json_schema: JsonSchemaFormat,
    },
}

impl ResponseFormat {
    /// A strict JSON-schema format.
    pub fn json_schema(name: impl Into<String>, schema: serde_json::Value) -> Self {
        ResponseFormat::JsonSchema {
            json_schema: JsonSchemaFormat {
                name: name.into(),
                schema,
                strict: true,
                description: None,
            },
        }
    }
}

/// One request to a model.
///
/// The conversation and the tool list are behind an [`Arc`]: retry and middleware layers clone
/// the request once per attempt, and the agent loop hands the model the same history vector it
/// keeps for the session, so cloning a request costs O(1) whatever the history length. Build one
/// from an owned vector with [`LlmRequest::new`], or share an existing vector with
/// [`LlmRequest::shared`]; to edit the messages of a request you own, use
/// [`LlmRequest::messages_mut`] (copy-on-write: free when nobody else holds the vector). The JSON
/// shape is the same as with plain vectors.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub struct LlmRequest {
    /// The conversation (without the main system prompt), shared so clones are O(1).
    pub messages: Arc<Vec<Message>>,
    /// The system prompt, rendered by the provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_prompt: Option<String>,
    /// Model override; `None` uses the provider's configured model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Sampling temperature override.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Reply token cap override.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Tools offered to the model, shared so clones are O(1).
    #[serde(default, skip_serializing_if = "tools_empty")]
    pub tools: Arc<Vec<ToolDefinition>>,
    /// How the model may pick tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    /// Requested answer format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<ResponseFormat>,
    /// Opt-in provider reasoning flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<bool>,
    /// Provider passthrough fields merged into the request body.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub extra: serde_json::Map<String, serde_json::Value>,
    /// Cancels the call (and an in-flight stream) when fired.
    #[serde(skip)]
    pub cancel: Option<CancellationToken>,
}

fn tools_empty(tools: &Arc<Vec<ToolDefinition>>) -> bool {
    tools.is_empty()
}

impl LlmRequest {
    /// A request for these messages.
    pub fn new(messages: Vec<Message>) -> Self {
        Self::shared(Arc::new(messages))
    }

    /// A request that shares an existing conversation vector instead of copying it.
    ///
    /// The agent loop keeps a session's history in an `Arc<Vec<Message>>` and passes it here, so
    /// building a request (and every retry's clone of it) does not copy the history; the caller
    /// can append to its vector again with [`Arc::make_mut`] once the request is dropped.
    pub fn shared(messages: Arc<Vec<Message>>) -> Self {
        LlmRequest {
            messages,
            ..Default::default()
        }
    }

    /// A one-user-message request.
    pub fn from_prompt(prompt: impl Into<String>) -> Self {
        Self::new(vec![Message::user(prompt.into())])
    }

    /// Sets the system prompt.
    pub fn with_system_prompt(mut self, p: impl Into<String>) -> Self {
        self.system_prompt = Some(p.into());
        self
    }
    /// Sets the model.
    pub fn with_model(mut self, m: impl Into<String>) -> Self {
        self.model = Some(m.into());
        self
    }
    /// Sets the temperature.
    pub fn with_temperature(mut self, t: f64) -> Self {
        self.temperature = Some(t);
        self
    }
    /// Sets the reply token cap.
    pub fn with_max_tokens(mut self, n: u32) -> Self {
        self.max_tokens = Some(n);
        self
    }
    /// Sets the tools.
    pub fn with_tools(mut self, tools: Vec<ToolDefinition>) -> Self {
        self.tools = Arc::new(tools);
        self
    }
    /// Sets the tools from a shared list (no copy; the agent loop reuses one list every round).
    pub fn with_shared_tools(mut self, tools: Arc<Vec<ToolDefinition>>) -> Self {
        self.tools = tools;
        self
    }
    /// The messages, mutably: copies the vector first only if another clone still shares it.
    pub fn messages_mut(&mut self) -> &mut Vec<Message> {
        Arc::make_mut(&mut self.messages)
    }
    /// Sets the tool choice.
    pub fn with_tool_choice(mut self, c: ToolChoice) -> Self {
        self.tool_choice = Some(c);
        self
    }
    /// Sets the answer format.
    pub fn with_response_format(mut self, f: ResponseFormat) -> Self {
        self.response_format = Some(f);
        self
    }
    /// Adds a passthrough body field.
    pub fn with_extra(mut self, key: &str, value: serde_json::Value) -> Self {
        self.extra.insert(key.to_owned(), value);
        self
    }
    /// Sets the cancellation token.
    pub fn with_cancel(mut self, token: CancellationToken) -> Self {
        self.cancel = Some(token);
        self
    }

    /// The system message (if any) followed by the conversation.
    pub fn to_messages(&self) -> Vec<Message> {
        let mut out = Vec::with_capacity(self.messages.len() + 1);
        if let Some(p) = self.system_prompt.as_deref().filter(|p| !p.is_empty()) {
            out.push(Message::system(p));
        }
        out.extend(self.messages.iter().cloned());
        out
    }
}

/// Token usage reported by a provider (every field optional, as providers differ).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)] // field names are the providers' own usage keys
pub struct TokenUsage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_audio_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_cached_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_cache_miss_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_text_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_image_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_reasoning_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_audio_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_text_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_image_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_prediction_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_prediction_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_hit_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_miss_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_tokens: Option<u64>,
}

/// Usage normalized across providers (what budgets, stats and events use).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NormalizedUsage {
    /// Input tokens.
    pub prompt_tokens: u64,
    /// Output tokens.
    pub completion_tokens: u64,
    /// Input tokens served from a prompt cache.
    pub cache_read_tokens: u64,
    /// Reasoning tokens.
    pub reasoning_tokens: u64,
    /// Total tokens (prompt + completion when the provider gave none).
    pub total_tokens: u64,
}

impl NormalizedUsage {
    /// Adds another usage into this one.
    pub fn add(&mut self, o: &NormalizedUsage) {
        self.prompt_tokens += o.prompt_tokens;
        self.completion_tokens += o.completion_tokens;
        self.cache_read_tokens += o.cache_read_tokens;
        self.reasoning_tokens += o.reasoning_tokens;
        self.total_tokens += o.total_tokens;
    }
}

impl TokenUsage {
    /// Normalizes the provider fields (first present of each alias group).
    pub fn normalized(&self) -> NormalizedUsage {
        let prompt = self.prompt_tokens.unwrap_or(0);
        let completion = self.completion_tokens.unwrap_or(0);
        let cache_read = self
            .prompt_cached_tokens
            .or(self.cached_tokens)
            .or(self.cache_hit_tokens)
            .unwrap_or(0);
        let reasoning = self
            .completion_reasoning_tokens
            .or(self.reasoning_tokens)
            .unwrap_or(0);
        let total = match self.total_tokens {
            Some(t) if t > 0 => t,
            _ => prompt + completion,
        };
        NormalizedUsage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            cache_read_tokens: cache_read,
            reasoning_tokens: reasoning,
            total_tokens: total,
        }
    }

    /// Field-wise merge: values present in `other` replace this one's.
    pub fn merge_from(&mut self, other: &TokenUsage) {
        macro_rules! m { ($($f:ident),*) => { $( if other.$f.is_some() { self.$f = other.$f; } )* } }
        m!(
            prompt_tokens,
            completion_tokens,
            total_tokens,
            prompt_audio_tokens,
            prompt_cached_tokens,
            prompt_cache_miss_tokens,
            prompt_text_tokens,
            prompt_image_tokens,
            completion_reasoning_tokens,
            completion_audio_tokens,
            completion_text_tokens,
            completion_image_tokens,
            accepted_prediction_tokens,
            rejected_prediction_tokens,
            cached_tokens,
            cache_hit_tokens,
            cache_miss_tokens,
            reasoning_tokens,
            accepted_tokens,
            rejected_tokens
        );
    }

    /// Whether no field is set.
    pub fn is_empty(&self) -> bool {
        *self == TokenUsage::default()
    }
}

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

/// What a provider supports (informational flags plus the ones that change rendering).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProviderCapabilities {
    /// Provider family (`openai`, `anthropic`, `scripted`, `openai-compatible`, …).
    pub provider: String,
    /// Tools / function calling.
    pub supports_tools: bool,
    /// Parallel tool calls in one answer.
    pub supports_parallel_tool_calls: bool,
    /// Streaming.
    pub supports_stream: bool,
    /// Image content parts.
    pub supports_image_input: bool,
    /// `data:` URLs for images.
    pub supports_data_url: bool,
    /// Native `response_format` with a JSON schema.
    pub supports_json_schema: bool,
    /// Reasoning / thinking deltas.
    pub supports_reasoning: bool,
}

impl Default for ProviderCapabilities {
    fn default() -> Self {
        ProviderCapabilities {
            provider: "openai-compatible".to_owned(),
            supports_tools: true,
            supports_parallel_tool_calls: true,
            supports_stream: true,
            supports_image_input: false,
            supports_data_url: true,
            supports_json_schema: true,
            supports_reasoning: false,
        }
    }
}

impl ProviderCapabilities {
    /// Conservative defaults for a provider family.
    pub fn new(provider: impl Into<String>) -> Self {
        ProviderCapabilities {
            provider: provider.into(),
            ..Default::default()
        }
    }
    /// Sets image support.
    pub fn with_image_input(mut self, yes: bool) -> Self {
        self.supports_image_input = yes;
        self
    }
    /// Sets tool support.
    pub fn with_tools(mut self, yes: bool) -> Self {
        self.supports_tools = yes;
        self
    }
    /// Sets parallel tool-call support.
    pub fn with_parallel_tool_calls(mut self, yes: bool) -> Self {
        self.supports_parallel_tool_calls = yes;
        self
    }
    /// Sets JSON-schema support.
    pub fn with_json_schema(mut self, yes: bool) -> Self {
        self.supports_json_schema = yes;
        self
    }
    /// Sets reasoning support.
    pub fn with_reasoning(mut self, yes: bool) -> Self {
        self.supports_reasoning = yes;
        self
    }
}

/// A model provider. Object-safe: stored as `Arc<dyn LlmService>`.
///
/// Implement [`stream`](LlmService::stream); [`complete`](LlmService::complete) defaults to
/// aggregating the stream. A stream must end with a chunk whose `is_final` is set; one that stops
/// early makes `complete` fail with `llm.stream_incomplete`. Honour `request.cancel`.
pub trait LlmService: Send + Sync {
    /// Starts a streamed answer.
    fn stream(&self, request: LlmRequest) -> BoxFuture<'_, Result<LlmStream>>;

    /// One complete answer (default: aggregate [`stream`](LlmService::stream)).
    fn complete(&self, request: LlmRequest) -> BoxFuture<'_, Result<LlmResponse>> {
        Box::pin(async move {
            let cancel = request.cancel.clone();
            let mut stream = self.stream(request).await?;
            let mut agg = StreamAggregator::new();
            loop {
                let next = std::future::poll_fn(|cx| stream.as_mut().poll_next(cx));
                let item = match &cancel {
                    Some(token) => token.run_until_cancelled(next).await.ok_or_else(|| {
                        Error::cancelled("cancellation token fired during the model call")
                    })?,
                    None => next.await,
                };
                match item {
                    Some(chunk) => agg.push(&chunk?),
                    None => break,
                }
            }
            agg.finish()
        })
    }

    /// What this provider supports.
    fn capabilities(&self) -> ProviderCapabilities {
        ProviderCapabilities::default()
    }

    /// The configured model name (for events and usage rows).
    fn model_name(&self) -> String {
        String::new()
    }

    /// Releases HTTP resources.
    fn close(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async { Ok(()) })
    }
}

impl<T: LlmService + ?Sized> LlmService for Arc<T> {
    fn stream(&self, request: LlmRequest) -> BoxFuture<'_, Result<LlmStream>> {
        (**self).stream(request)
    }
    fn complete(&self, request: LlmRequest) -> BoxFuture<'_, Result<LlmResponse>> {
        (**self).complete(request)
    }
    fn capabilities(&self) -> ProviderCapabilities {
        (**self).capabilities()
    }
    fn model_name(&self) -> String {
        (**self).model_name()
    }
    fn close(&self) -> BoxFuture<'_, Result<()>> {
        (**self).close()
    }
}

impl<T: LlmService + ?Sized> LlmService for Box<T> {
    fn stream(&self, request: LlmRequest) -> BoxFuture<'_, Result<LlmStream>> {
        (**self).stream(request)
    }
    fn complete(&self, request: LlmRequest) -> BoxFuture<'_, Result<LlmResponse>> {
        (**self).complete(request)
    }
    fn capabilities(&self) -> ProviderCapabilities {
        (**self).capabilities()
    }
    fn model_name(&self) -> String {
        (**self).model_name()
    }
    fn close(&self) -> BoxFuture<'_, Result<()>> {
        (**self).close()
    }
}
