//! Tool definitions (what the model sees) and tool results (what goes back to it).

use serde::{Deserialize, Serialize};

/// A tool as offered to the model: name, description and JSON schema of its arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolDefinition {
    /// Unique tool name (`[A-Za-z0-9_.-]`, as providers require).
    pub name: String,
    /// What the tool does, for the model.
    #[serde(default)]
    pub description: String,
    /// JSON schema of the arguments object.
    #[serde(default = "empty_object_schema")]
    pub parameters: serde_json::Value,
}

fn empty_object_schema() -> serde_json::Value {
    serde_json::json!({"type": "object", "properties": {}})
}

impl ToolDefinition {
    /// A tool definition.
    pub fn new(
        name: impl Into<String>,
        description: impl Into<String>,
        parameters: serde_json::Value,
    ) -> Self {
        ToolDefinition {
            name: name.into(),
            description: description.into(),
            parameters,
        }
    }

    /// The OpenAI tool schema: `{"type":"function","function":{"name","description","parameters"}}`.
    pub fn to_openai(&self) -> serde_json::Value {
        serde_json::json!({
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            }
        })
    }
}

/// What a tool handler returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolOutput {
    /// `false` marks a failed call (the result and the events say so).
    pub ok: bool,
    /// The text that goes back to the model.
    pub content: String,
    /// Optional structured data for hosts (not sent to the model).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub data: serde_json::Map<String, serde_json::Value>,
}

impl ToolOutput {
    /// A successful result.
    pub fn ok(content: impl Into<String>) -> Self {
        ToolOutput {
            ok: true,
            content: content.into(),
            data: serde_json::Map::new(),
        }
    }

    /// A failed result; `content` tells the model what went wrong.
    pub fn failed(content: impl Into<String>) -> Self {
        ToolOutput {
            ok: false,
            content: content.into(),
            data: serde_json::Map::new(),
        }
    }

    /// Attaches structured data.
    pub fn with_data(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.data.insert(key.to_owned(), value.into());
        self
    }
}

/// The outcome of one executed tool call, as persisted and reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolResult {
    /// The call this answers.
    pub tool_call_id: String,
    /// The tool name.
    pub name: String,
    /// The text sent back to the model.
    pub content: String,
    /// Whether the call failed.
    #[serde(default)]
    pub failed: bool,
}
