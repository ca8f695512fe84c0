//! `request_user_input`: the human-input seam.

use power_loop_contracts::{Error, ErrorCode, Result, ToolDefinition, ToolOutput};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::invalid;
use super::schema::{params, string_prop};
use crate::text::str_arg;
use crate::tool::{FnTool, tool_fn};

/// A request for a human answer, raised by `request_user_input` (error code
/// `human_input.required`, fields in the error details). The loop records it as a pending
/// interaction and ends the run with `waiting_for_input`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HumanInputRequest {
    /// `input_` + 16 hex chars.
    pub interaction_id: String,
    /// The tool call that asked.
    pub tool_call_id: String,
    /// The tool that asked.
    pub tool_name: String,
    /// `text`, `confirm`, `choice`, … (default `text`).
    pub kind: String,
    /// The question.
    pub prompt: String,
    /// Choices (`{id, label, description}` objects).
    #[serde(default)]
    pub options: Vec<serde_json::Value>,
    /// Free-form extra data.
    #[serde(default)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

impl HumanInputRequest {
    /// The `human_input.required` error that carries this request (tools return it).
    pub fn into_error(self) -> Error {
        Error::new(
            ErrorCode::HumanInputRequired,
            format!("user input is required: {}", self.prompt),
        )
        .with_detail("interaction_id", self.interaction_id)
        .with_detail("kind", self.kind)
        .with_detail("prompt", self.prompt)
        .with_detail("options", serde_json::Value::Array(self.options))
        .with_detail("metadata", serde_json::Value::Object(self.metadata))
    }

    /// Reads the request back from a `human_input.required` error.
    pub fn from_error(e: &Error, tool_call_id: &str, tool_name: &str) -> Option<Self> {
        if e.code() != ErrorCode::HumanInputRequired {
            return None;
        }
        let s = |k: &str| e.detail(k).and_then(|v| v.as_str()).map(str::to_owned);
        Some(HumanInputRequest {
            interaction_id: s("interaction_id")?,
            tool_call_id: tool_call_id.to_owned(),
            tool_name: tool_name.to_owned(),
            kind: s("kind").unwrap_or_else(|| "text".to_owned()),
            prompt: s("prompt").unwrap_or_default(),
            options: e
                .detail("options")
                .and_then(|v| v.as_array())
                .cloned()
                .unwrap_or_default(),
            metadata: e
                .detail("metadata")
                .and_then(|v| v.as_object())
                .cloned()
                .unwrap_or_default(),
        })
    }
}

pub(crate) fn new_interaction_id() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    let hex: String = (0..16)
        .map(|_| char::from_digit(rng.random_range(0..16), 16).unwrap_or('0'))
        .collect();
    format!("input_{hex}")
}

/// `request_user_input`.
pub(crate) fn request_user_input_tool() -> FnTool {
    let def = ToolDefinition::new(
        "request_user_input",
        "Ask the user a question and pause until they answer. Use only when you cannot proceed without a human decision.",
        params(
            &[
                (
                    "kind",
                    string_prop("text | confirm | choice (default text)."),
                ),
                ("prompt", string_prop("The question for the user.")),
                (
                    "options",
                    json!({
                        "type": "array",
                        "description": "Choices for kind=choice.",
                        "items": params(
                            &[
                                ("id", json!({"type": "string"})),
                                ("label", json!({"type": "string"})),
                                ("description", json!({"type": "string"})),
                            ],
                            &[],
                        ),
                    }),
                ),
                (
                    "metadata",
                    json!({"type": "object", "description": "Extra data for the host."}),
                ),
            ],
            &["prompt"],
        ),
    );
    tool_fn(def, |ctx, args| async move {
        let prompt = str_arg(&args, "prompt").trim().to_owned();
        if prompt.is_empty() {
            return Err(invalid("prompt is required"));
        }
        let kind = match str_arg(&args, "kind").trim() {
            "" => "text".to_owned(),
            k => k.to_owned(),
        };
        let req = HumanInputRequest {
            interaction_id: new_interaction_id(),
            tool_call_id: ctx.tool_call_id.clone(),
            tool_name: "request_user_input".to_owned(),
            kind,
            prompt,
            options: args
                .get("options")
                .and_then(|v| v.as_array())
                .cloned()
                .unwrap_or_default(),
            metadata: args
                .get("metadata")
                .and_then(|v| v.as_object())
                .cloned()
                .unwrap_or_default(),
        };
        Result::<ToolOutput>::Err(req.into_error())
    })
}
