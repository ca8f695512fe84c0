//! What the caller asks a model for: [`LlmRequest`], the tool choice and the answer format.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::observer::LlmCallObserver;
use crate::message::{Message, Role};
use crate::tool::ToolDefinition;

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
    /// Told about each attempt and retry of this call by the outermost retry layer, which takes
    /// it off the request (see [`LlmCallObserver`]). Not serialized.
    #[serde(skip)]
    pub observer: Option<Arc<dyn LlmCallObserver>>,
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
    /// Sets the observer of this call's attempts and retries.
    pub fn with_observer(mut self, observer: Arc<dyn LlmCallObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The text of the last user message (empty when there is none).
    pub fn last_user_text(&self) -> String {
        self.messages
            .iter()
            .rev()
            .find(|m| m.role == Role::User)
            .map(Message::text)
            .unwrap_or_default()
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
