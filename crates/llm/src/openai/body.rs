//! The chat-completions request body, built conservatively (see the body rules in `openai/mod.rs`).

use power_loop_contracts::{
    Content, ContentPart, FileInput, LlmRequest, Message, ProviderCapabilities, Result, Role,
    ToolChoice,
};
use serde_json::{Map, Value, json};

use super::OpenAiConfig;
use crate::http::unsupported_content;

const PROVIDER: &str = "the OpenAI-compatible chat-completions endpoint";

/// Whether `model` is an OpenAI reasoning model (`o1`, `o3`, `o4`…) that takes
/// `max_completion_tokens` instead of `max_tokens` and rejects a non-default temperature.
pub(crate) fn is_o_series(model: &str) -> bool {
    let m = model.trim().to_ascii_lowercase();
    let m = m.rsplit('/').next().unwrap_or(&m).to_owned();
    ["o1", "o3", "o4"]
        .iter()
        .any(|p| m == *p || m.starts_with(&format!("{p}-")))
}

/// Builds the JSON body for a streaming chat-completions call.
///
/// Keys: `request.extra` first (minus `extra_body` and `reason`), then `model`, `messages`,
/// `temperature`, `max_tokens` (`max_completion_tokens` for o-series models), `stream: true`,
/// `stream_options` (unless `extra` set one), `tools` / `tool_choice` (only when tools exist;
/// `parallel_tool_calls` from `extra` is dropped when there are none), `response_format`,
/// `reason`, and finally the keys of `extra["extra_body"]`.
///
/// A content part the model cannot take (see [`render_message`]) is an
/// `llm.unsupported_content` error.
pub(crate) fn build_body(
    cfg: &OpenAiConfig,
    caps: &ProviderCapabilities,
    req: &LlmRequest,
) -> Result<Value> {
    let mut body = Map::new();
    let mut extra_body = None;
    let mut extra_reason = None;
    for (k, v) in &req.extra {
        match k.as_str() {
            "extra_body" => extra_body = Some(v.clone()),
            "reason" => extra_reason = Some(v.clone()),
            _ => {
                body.insert(k.clone(), v.clone());
            }
        }
    }
    let model = req
        .model
        .clone()
        .unwrap_or_else(|| cfg.endpoint.model.clone());
    let o_series = is_o_series(&model);
    body.insert("model".into(), Value::String(model));
    let mut messages = Vec::with_capacity(req.messages.len() + 1);
    if let Some(p) = req.system_prompt.as_deref().filter(|p| !p.is_empty()) {
        messages.push(json!({"role": "system", "content": p}));
    }
    for m in req.messages.iter() {
        messages.push(render_message(m, caps)?);
    }
    body.insert("messages".into(), Value::Array(messages));
    match req.temperature {
        Some(t) => {
            body.insert("temperature".into(), json!(t));
        }
        None if !o_series => {
            body.insert("temperature".into(), json!(cfg.endpoint.temperature));
        }
        None => {}
    }
    let max_tokens = req.max_tokens.unwrap_or(cfg.endpoint.max_tokens);
    if max_tokens > 0 {
        let key = if o_series {
            "max_completion_tokens"
        } else {
            "max_tokens"
        };
        body.insert(key.into(), json!(max_tokens));
    }
    body.insert("stream".into(), Value::Bool(true));
    if !body.contains_key("stream_options") {
        body.insert("stream_options".into(), json!({"include_usage": true}));
    }
    if req.tools.is_empty() {
        body.remove("parallel_tool_calls");
        body.remove("tools");
        body.remove("tool_choice");
    } else {
        let tools: Vec<Value> = req.tools.iter().map(|t| t.to_openai()).collect();
        body.insert("tools".into(), Value::Array(tools));
        if let Some(choice) = &req.tool_choice {
            body.insert("tool_choice".into(), tool_choice_json(choice));
        }
    }
    if let Some(rf) = &req.response_format
        && let Ok(v) = serde_json::to_value(rf)
    {
        body.insert("response_format".into(), v);
    }
    let reason = extra_reason.and_then(|v| v.as_bool()).or(req.reason);
    if let Some(r) = reason {
        body.insert("reason".into(), Value::Bool(r));
    }
    if let Some(Value::Object(eb)) = extra_body {
        for (k, v) in eb {
            body.insert(k, v);
        }
    }
    Ok(Value::Object(body))
}

fn tool_choice_json(c: &ToolChoice) -> Value {
    match c {
        ToolChoice::Auto => json!("auto"),
        ToolChoice::None => json!("none"),
        ToolChoice::Required => json!("required"),
        ToolChoice::Function(name) => json!({"type": "function", "function": {"name": name}}),
    }
}

/// One message in the wire shape: `role`, `content` (omitted on an assistant message that only
/// calls tools), `name`, `tool_calls` (assistant), `tool_call_id` (tool).
///
/// File parts are taken in user messages only (the API has no file parts elsewhere); one in
/// another role is `llm.unsupported_content`.
pub(crate) fn render_message(m: &Message, caps: &ProviderCapabilities) -> Result<Value> {
    let mut o = Map::new();
    o.insert("role".into(), Value::String(m.role.as_str().into()));
    let has_calls = m.role == Role::Assistant && !m.tool_calls.is_empty();
    match &m.content {
        Some(Content::Text(t)) => {
            if !(has_calls && t.is_empty()) {
                o.insert("content".into(), Value::String(t.clone()));
            }
        }
        Some(Content::Parts(parts)) if m.role == Role::User => {
            o.insert("content".into(), render_user_parts(parts, caps)?);
        }
        Some(c @ Content::Parts(parts)) => {
            if parts.iter().any(|p| matches!(p, ContentPart::File { .. })) {
                return Err(unsupported_content(
                    PROVIDER,
                    "file",
                    format!(
                        "files are accepted in user messages only, not in a `{}` message",
                        m.role.as_str()
                    ),
                ));
            }
            let t = c.to_text();
            if !(has_calls && t.is_empty()) {
                o.insert("content".into(), Value::String(t));
            }
        }
        None => {
            if !has_calls {
                o.insert("content".into(), Value::String(String::new()));
            }
        }
    }
    if let Some(n) = &m.name {
        o.insert("name".into(), Value::String(n.clone()));
    }
    if has_calls {
        let calls: Vec<Value> = m
            .tool_calls
            .iter()
            .map(|c| {
                let args = if c.function.arguments.trim().is_empty() {
                    "{}".to_owned()
                } else {
                    c.function.arguments.clone()
                };
                json!({"id": c.id, "type": "function",
                       "function": {"name": c.function.name, "arguments": args}})
            })
            .collect();
        o.insert("tool_calls".into(), Value::Array(calls));
    }
    if m.role == Role::Tool {
        o.insert(
            "tool_call_id".into(),
            Value::String(m.tool_call_id.clone().unwrap_or_default()),
        );
    }
    Ok(Value::Object(o))
}

/// A user message's parts: text parts merged into one (joined by blank lines); only text → a string; otherwise a
/// list with the merged text part first, then the images and files in order. A `data:` image for
/// a model flagged without data-URL support becomes a text note. Files: see [`file_part`].
fn render_user_parts(parts: &[ContentPart], caps: &ProviderCapabilities) -> Result<Value> {
    let mut texts: Vec<&str> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    let mut others: Vec<Value> = Vec::new();
    for p in parts {
        match p {
            ContentPart::Text { text } => {
                if !text.is_empty() {
                    texts.push(text);
                }
            }
            ContentPart::ImageUrl { image_url } => {
                if image_url.url.starts_with("data:") && !caps.supports_data_url {
                    notes.push("[image not sent: this model does not accept data URLs]".into());
                } else {
                    let mut iu = Map::new();
                    iu.insert("url".into(), Value::String(image_url.url.clone()));
                    if let Some(d) = &image_url.detail {
                        iu.insert("detail".into(), Value::String(d.clone()));
                    }
                    others.push(json!({"type": "image_url", "image_url": Value::Object(iu)}));
                }
            }
            ContentPart::File { file } => others.push(file_part(file, caps)?),
            other => {
                return Err(unsupported_content(
                    PROVIDER,
                    "unknown",
                    format!("no wire form for {other:?}"),
                ));
            }
        }
    }
    let mut all: Vec<&str> = texts;
    all.extend(notes.iter().map(String::as_str));
    let merged = all.join("\n\n").trim().to_owned();
    if others.is_empty() {
        return Ok(Value::String(merged));
    }
    let mut out = Vec::with_capacity(others.len() + 1);
    if !merged.is_empty() {
        out.push(json!({"type": "text", "text": merged}));
    }
    out.extend(others);
    Ok(Value::Array(out))
}

/// A `{"type":"file","file":{…}}` part: a PDF as `file_data` (a base64 `data:application/pdf`
/// URL, with `filename`, default `document.pdf`) or an uploaded `file_id`. Errors
/// (`llm.unsupported_content`): the model is not flagged for PDF input
/// ([`ProviderCapabilities::supports_pdf_input`]; set it with a capability override when the server
/// takes PDFs), a media type other than PDF, a non-base64 data URL, or a `file_url` (chat
/// completions fetch no files).
fn file_part(file: &FileInput, caps: &ProviderCapabilities) -> Result<Value> {
    if !caps.supports_pdf_input {
        return Err(unsupported_content(
            PROVIDER,
            "file",
            format!(
                "the model (provider family `{}`) is not flagged for PDF input; set the capability override supports_pdf_input (POWER_LOOP_SUPPORTS_PDF_INPUT_CHAT=1) if the server takes `file` parts, or send the document's text",
                caps.provider
            ),
        ));
    }
    let mut f = Map::new();
    if let Some(data) = &file.file_data {
        match file.media_type() {
            Some(m) if m.eq_ignore_ascii_case("application/pdf") => {}
            Some(m) => {
                return Err(unsupported_content(
                    PROVIDER,
                    "file",
                    format!("only PDF documents are accepted as files, got `{m}`"),
                )
                .with_detail("media_type", m));
            }
            None => {
                return Err(unsupported_content(
                    PROVIDER,
                    "file",
                    "file_data must be a `data:application/pdf;base64,…` URL",
                ));
            }
        }
        f.insert("file_data".into(), Value::String(data.clone()));
        let name = file
            .filename
            .clone()
            .unwrap_or_else(|| "document.pdf".into());
        f.insert("filename".into(), Value::String(name));
    } else if let Some(id) = &file.file_id {
        f.insert("file_id".into(), Value::String(id.clone()));
        if let Some(n) = &file.filename {
            f.insert("filename".into(), Value::String(n.clone()));
        }
    } else if file.file_url.is_some() {
        return Err(unsupported_content(
            PROVIDER,
            "file",
            "chat completions take no file URLs; send the bytes as file_data or upload the file and send its file_id",
        ));
    } else {
        return Err(unsupported_content(
            PROVIDER,
            "file",
            "the file part names no source (file_data, file_id or file_url)",
        ));
    }
    Ok(json!({"type": "file", "file": Value::Object(f)}))
}
