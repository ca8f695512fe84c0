//! Messages, content parts, roles and tool calls, in the OpenAI-compatible JSON shape.
//!
//! A message serializes as `{"role", "content"?, "name"?, "tool_calls"?, "tool_call_id"?}`;
//! `content` is a string or a list of parts (`{"type":"text","text":…}`,
//! `{"type":"image_url","image_url":{"url":…,"detail"?:…}}`,
//! `{"type":"file","file":{"file_data"?|"file_id"?|"file_url"?, "filename"?}}`). A tool call is
//! `{"id", "type":"function", "function":{"name", "arguments": "<JSON text>"}}`.

use serde::{Deserialize, Serialize};

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Instructions for the model.
    System,
    /// The human (or the host application speaking for them).
    User,
    /// The model.
    Assistant,
    /// The result of a tool call.
    Tool,
}

impl Role {
    /// The wire string: `system`, `user`, `assistant` or `tool`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }

    /// Parses the wire string.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "system" => Some(Role::System),
            "user" => Some(Role::User),
            "assistant" => Some(Role::Assistant),
            "tool" => Some(Role::Tool),
            _ => None,
        }
    }
}

/// An image reference inside a content part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageUrl {
    /// `https://…` or a `data:<mime>;base64,<bytes>` URL.
    pub url: String,
    /// Optional detail hint (`low`, `high`, `auto`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A file (a PDF document, typically) inside a content part, in the OpenAI `file` part shape.
///
/// Exactly one source is normally set: inline bytes as a data URL (`file_data`), a file the
/// provider already stores (`file_id`), or a URL the provider fetches itself (`file_url`). Which
/// sources and media types a provider takes is the provider's business: one that cannot take a
/// part fails the call with `llm.unsupported_content` before sending anything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FileInput {
    /// The bytes as a `data:<media type>;base64,<data>` URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_data: Option<String>,
    /// The id of a file uploaded to the provider beforehand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_id: Option<String>,
    /// An `https://` URL of the document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_url: Option<String>,
    /// The file name shown to the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
}

impl FileInput {
    /// The media type of `file_data` (`application/pdf` for a PDF data URL), when it is a
    /// base64 data URL.
    pub fn media_type(&self) -> Option<&str> {
        let (media, _) = split_data_url(self.file_data.as_deref()?)?;
        Some(media)
    }

    /// The base64 payload of `file_data`, when it is a base64 data URL.
    pub fn base64_data(&self) -> Option<&str> {
        let (_, data) = split_data_url(self.file_data.as_deref()?)?;
        Some(data)
    }
}

/// `data:<media>;base64,<data>` → (`media`, `data`).
fn split_data_url(url: &str) -> Option<(&str, &str)> {
    let (meta, data) = url.strip_prefix("data:")?.split_once(',')?;
    let media = meta.strip_suffix(";base64")?;
    Some((media.trim(), data))
}

/// One part of a multimodal message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ContentPart {
    /// A text part.
    Text {
        /// The text.
        text: String,
    },
    /// An image part.
    ImageUrl {
        /// Where the image is.
        image_url: ImageUrl,
    },
    /// A file part (a PDF document): OpenAI `file` part, Anthropic `document` block.
    File {
        /// Where the file is.
        file: FileInput,
    },
}

impl ContentPart {
    /// A text part.
    pub fn text(text: impl Into<String>) -> Self {
        ContentPart::Text { text: text.into() }
    }

    /// A PDF document from its base64-encoded bytes (a `data:application/pdf;base64,…` file part).
    pub fn pdf_base64(base64: impl AsRef<str>, filename: impl Into<String>) -> Self {
        Self::file_data(
            format!("data:application/pdf;base64,{}", base64.as_ref()),
            Some(filename.into()),
        )
    }

    /// A file part from a `data:<media type>;base64,<data>` URL.
    pub fn file_data(data_url: impl Into<String>, filename: Option<String>) -> Self {
        ContentPart::File {
            file: FileInput {
                file_data: Some(data_url.into()),
                filename,
                ..Default::default()
            },
        }
    }

    /// A file part naming a file uploaded to the provider beforehand.
    pub fn file_id(id: impl Into<String>) -> Self {
        ContentPart::File {
            file: FileInput {
                file_id: Some(id.into()),
                ..Default::default()
            },
        }
    }

    /// A file part the provider fetches from an `https://` URL.
    pub fn file_url(url: impl Into<String>, filename: Option<String>) -> Self {
        ContentPart::File {
            file: FileInput {
                file_url: Some(url.into()),
                filename,
                ..Default::default()
            },
        }
    }

    /// An image part from a URL (or data URL).
    pub fn image_url(url: impl Into<String>) -> Self {
        ContentPart::ImageUrl {
            image_url: ImageUrl {
                url: url.into(),
                detail: None,
            },
        }
    }
}

/// The content of a message: plain text or a list of parts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Content {
    /// Plain text.
    Text(String),
    /// Multimodal parts, in order.
    Parts(Vec<ContentPart>),
}

impl Content {
    /// The text of the content: the string, or the text parts joined by blank lines.
    pub fn to_text(&self) -> String {
        match self {
            Content::Text(t) => t.clone(),
            Content::Parts(parts) => parts
                .iter()
                .filter_map(|p| match p {
                    ContentPart::Text { text } => Some(text.as_str()),
                    ContentPart::ImageUrl { .. } | ContentPart::File { .. } => None,
                })
                .collect::<Vec<_>>()
                .join("\n\n"),
        }
    }

    /// Whether the content holds a non-text part.
    pub fn has_non_text(&self) -> bool {
        matches!(self, Content::Parts(parts) if parts.iter().any(|p| !matches!(p, ContentPart::Text { .. })))
    }
}

impl From<&str> for Content {
    fn from(s: &str) -> Self {
        Content::Text(s.to_owned())
    }
}
impl From<String> for Content {
    fn from(s: String) -> Self {
        Content::Text(s)
    }
}
impl From<Vec<ContentPart>> for Content {
    fn from(p: Vec<ContentPart>) -> Self {
        Content::Parts(p)
    }
}

/// The function part of a tool call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionCall {
    /// The tool name.
    pub name: String,
    /// The arguments as JSON text (as the model produced them; may be malformed).
    #[serde(default)]
    pub arguments: String,
}

/// The kind of a tool call; only `function` exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum ToolCallKind {
    /// A function call.
    #[default]
    #[serde(rename = "function")]
    Function,
}

/// A tool call requested by the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The provider's call id; tool results refer to it.
    pub id: String,
    /// Always `function`.
    #[serde(rename = "type", default)]
    pub kind: ToolCallKind,
    /// Name and arguments.
    pub function: FunctionCall,
}

impl ToolCall {
    /// A function tool call with JSON-text arguments.
    pub fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        arguments: impl Into<String>,
    ) -> Self {
        ToolCall {
            id: id.into(),
            kind: ToolCallKind::Function,
            function: FunctionCall {
                name: name.into(),
                arguments: arguments.into(),
            },
        }
    }

    /// The tool name.
    pub fn name(&self) -> &str {
        &self.function.name
    }

    /// The arguments decoded as JSON (an error when the model produced malformed JSON).
    pub fn arguments_json(&self) -> serde_json::Result<serde_json::Value> {
        if self.function.arguments.trim().is_empty() {
            return Ok(serde_json::Value::Object(serde_json::Map::new()));
        }
        serde_json::from_str(&self.function.arguments)
    }
}

/// One conversation message (OpenAI-compatible shape).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Who wrote it.
    pub role: Role,
    /// Text or parts; absent for an assistant message that only calls tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
    /// Optional author name (e.g. `memory_…` for recalled memories).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Tool calls of an assistant message (omitted when empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// The call a tool message answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
}

impl Message {
    fn with_role(role: Role, content: Option<Content>) -> Self {
        Message {
            role,
            content,
            name: None,
            tool_calls: Vec::new(),
            tool_call_id: None,
        }
    }

    /// A system message.
    pub fn system(text: impl Into<String>) -> Self {
        Self::with_role(Role::System, Some(Content::Text(text.into())))
    }

    /// A user message with text or parts.
    pub fn user(content: impl Into<Content>) -> Self {
        Self::with_role(Role::User, Some(content.into()))
    }

    /// An assistant message with text.
    pub fn assistant(text: impl Into<String>) -> Self {
        Self::with_role(Role::Assistant, Some(Content::Text(text.into())))
    }

    /// An assistant message that calls tools (text may be empty → `content` absent).
    pub fn assistant_tool_calls(text: impl Into<String>, tool_calls: Vec<ToolCall>) -> Self {
        let text = text.into();
        let content = if text.is_empty() {
            None
        } else {
            Some(Content::Text(text))
        };
        Message {
            tool_calls,
            ..Self::with_role(Role::Assistant, content)
        }
    }

    /// A tool result answering `tool_call_id`.
    pub fn tool(tool_call_id: impl Into<String>, content: impl Into<String>) -> Self {
        Message {
            tool_call_id: Some(tool_call_id.into()),
            ..Self::with_role(Role::Tool, Some(Content::Text(content.into())))
        }
    }

    /// Sets the author name.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The text of the message (empty when there is no content).
    pub fn text(&self) -> String {
        self.content
            .as_ref()
            .map(Content::to_text)
            .unwrap_or_default()
    }

    /// Whether this is an assistant message with tool calls.
    pub fn has_tool_calls(&self) -> bool {
        !self.tool_calls.is_empty()
    }
}
