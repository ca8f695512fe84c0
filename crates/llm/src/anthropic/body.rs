//! The Messages API request body (streaming).

use std::collections::BTreeMap;

use power_loop_contracts::{
    Content, ContentPart, FileInput, LlmRequest, ResponseFormat, Result, Role, ToolChoice,
};
use serde_json::{Map, Value, json};

use super::AnthropicConfig;
use crate::http::unsupported_content;

/// Builds the JSON body.
///
/// Keys: `request.extra` first (an `extra_body` object is merged at the end), then `model`,
/// `max_tokens` (request, else config, else 8000: the API requires it), `temperature`, `system`
/// (system prompt + in-history system messages + the structured-output instruction, joined by
/// blank lines; omitted when empty), `messages`, `tools` / `tool_choice` (only when tools exist),
/// `stream: true`.
///
/// Messages: assistant tool calls → `tool_use` blocks with the arguments parsed into `input`;
/// consecutive tool results → one `user` message of `tool_result` blocks; consecutive messages of
/// the same role are merged; images → `image` blocks (`base64` source for `data:` URLs, `url`
/// source for http(s)); file parts → `document` blocks (see [`document_block`]); empty turns are
/// dropped instead of sending an empty text block. A part the API cannot take is an
/// `llm.unsupported_content` error.
pub(crate) fn build_body(cfg: &AnthropicConfig, req: &LlmRequest) -> Result<Value> {
    let mut body = Map::new();
    let mut extra_body = None;
    for (k, v) in &req.extra {
        if k == "extra_body" {
            extra_body = Some(v.clone());
        } else {
            body.insert(k.clone(), v.clone());
        }
    }
    body.insert(
        "model".into(),
        Value::String(
            req.model
                .clone()
                .unwrap_or_else(|| cfg.endpoint.model.clone()),
        ),
    );
    let max_tokens = req
        .max_tokens
        .filter(|n| *n > 0)
        .unwrap_or(if cfg.endpoint.max_tokens > 0 {
            cfg.endpoint.max_tokens
        } else {
            8000
        });
    body.insert("max_tokens".into(), json!(max_tokens));
    body.insert(
        "temperature".into(),
        json!(req.temperature.unwrap_or(cfg.endpoint.temperature)),
    );

    let mut system_parts: Vec<String> = Vec::new();
    if let Some(p) = req
        .system_prompt
        .as_deref()
        .filter(|p| !p.trim().is_empty())
    {
        system_parts.push(p.to_owned());
    }
    let mut messages: Vec<(&'static str, Vec<Value>)> = Vec::new();
    let mut pending_results: Vec<Value> = Vec::new();
    let mut tool_no = 0usize;

    fn push_merged(
        messages: &mut Vec<(&'static str, Vec<Value>)>,
        role: &'static str,
        blocks: Vec<Value>,
    ) {
        if blocks.is_empty() {
            return;
        }
        match messages.last_mut() {
            Some((r, b)) if *r == role => b.extend(blocks),
            _ => messages.push((role, blocks)),
        }
    }

    for m in req.messages.iter() {
        match m.role {
            Role::System => {
                let t = m.text();
                if !t.trim().is_empty() {
                    system_parts.push(t);
                }
            }
            Role::Tool => pending_results.push(json!({
                "type": "tool_result",
                "tool_use_id": m.tool_call_id.clone().unwrap_or_default(),
                "content": m.text(),
            })),
            Role::User | Role::Assistant => {
                if !pending_results.is_empty() {
                    push_merged(&mut messages, "user", std::mem::take(&mut pending_results));
                }
                let role = if m.role == Role::Assistant {
                    "assistant"
                } else {
                    "user"
                };
                let mut blocks = content_blocks(m.content.as_ref(), m.role)?;
                if m.role == Role::Assistant {
                    for c in &m.tool_calls {
                        if c.function.name.is_empty() {
                            continue;
                        }
                        tool_no += 1;
                        let id = if c.id.is_empty() {
                            format!("toolu_{tool_no}")
                        } else {
                            c.id.clone()
                        };
                        blocks.push(json!({
                            "type": "tool_use",
                            "id": id,
                            "name": c.function.name,
                            "input": parse_input(&c.function.arguments),
                        }));
                    }
                }
                push_merged(&mut messages, role, blocks);
            }
        }
    }
    if !pending_results.is_empty() {
        push_merged(&mut messages, "user", pending_results);
    }

    if let Some(instr) = req.response_format.as_ref().and_then(format_instruction) {
        system_parts.push(instr);
    }
    let system = system_parts
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("\n\n");
    if !system.is_empty() {
        body.insert("system".into(), Value::String(system));
    }
    let msgs: Vec<Value> = messages
        .into_iter()
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect();
    body.insert("messages".into(), Value::Array(msgs));

    let tools: Vec<Value> = req
        .tools
        .iter()
        .filter(|t| !t.name.is_empty())
        .map(|t| {
            let mut o = Map::new();
            o.insert("name".into(), Value::String(t.name.clone()));
            if !t.description.is_empty() {
                o.insert("description".into(), Value::String(t.description.clone()));
            }
            let schema = if t.parameters.is_object() {
                t.parameters.clone()
            } else {
                json!({"type": "object"})
            };
            o.insert("input_schema".into(), schema);
            Value::Object(o)
        })
        .collect();
    if tools.is_empty() {
        body.remove("tools");
        body.remove("tool_choice");
    } else {
        body.insert("tools".into(), Value::Array(tools));
        let choice = match &req.tool_choice {
            None | Some(ToolChoice::Auto) => None,
            Some(ToolChoice::None) => Some(json!({"type": "none"})),
            Some(ToolChoice::Required) => Some(json!({"type": "any"})),
            Some(ToolChoice::Function(name)) => {
                if cfg.endpoint.base_url.contains("dashscope.aliyuncs.com") {
                    tracing::warn!(target: "power_loop::llm", "tool_choice by name is not supported by DashScope's Anthropic endpoint; omitted");
                    None
                } else {
                    Some(json!({"type": "tool", "name": name}))
                }
            }
        };
        if let Some(c) = choice {
            body.insert("tool_choice".into(), c);
        }
    }
    body.insert("stream".into(), Value::Bool(true));
    if let Some(Value::Object(eb)) = extra_body {
        for (k, v) in eb {
            body.insert(k, v);
        }
    }
    Ok(Value::Object(body))
}

fn content_blocks(content: Option<&Content>, role: Role) -> Result<Vec<Value>> {
    let parts = match content {
        None => return Ok(Vec::new()),
        Some(Content::Text(t)) if t.is_empty() => return Ok(Vec::new()),
        Some(Content::Text(t)) => return Ok(vec![json!({"type": "text", "text": t})]),
        Some(Content::Parts(parts)) => parts,
    };
    let mut out = Vec::with_capacity(parts.len());
    for p in parts {
        match p {
            ContentPart::Text { text } if text.is_empty() => {}
            ContentPart::Text { text } => out.push(json!({"type": "text", "text": text})),
            ContentPart::ImageUrl { image_url } => out.push(image_block(&image_url.url)),
            ContentPart::File { file } if role == Role::User => out.push(document_block(file)?),
            ContentPart::File { .. } => {
                return Err(unsupported_content(
                    "Anthropic",
                    "file",
                    format!(
                        "documents are accepted in user messages only, not in a `{}` message",
                        role.as_str()
                    ),
                ));
            }
            other => {
                return Err(unsupported_content(
                    "Anthropic",
                    "unknown",
                    format!("no wire form for {other:?}"),
                ));
            }
        }
    }
    Ok(out)
}

/// A `document` block: a PDF as a `base64` source (from a `data:application/pdf;base64,…`
/// `file_data`) or a `url` source (`file_url`), titled with the file name when one is set.
/// Errors (`llm.unsupported_content`): a media type other than PDF, a non-base64 data URL, a
/// `file_id` (the Files API is a beta this transport does not enable), no source.
fn document_block(file: &FileInput) -> Result<Value> {
    let source = if file.file_data.is_some() {
        match (file.media_type(), file.base64_data()) {
            (Some(m), Some(data)) if m.eq_ignore_ascii_case("application/pdf") => {
                json!({"type": "base64", "media_type": "application/pdf", "data": data})
            }
            (Some(m), _) => {
                return Err(unsupported_content(
                    "Anthropic",
                    "file",
                    format!("only PDF documents are accepted as files, got `{m}`"),
                )
                .with_detail("media_type", m));
            }
            _ => {
                return Err(unsupported_content(
                    "Anthropic",
                    "file",
                    "file_data must be a `data:application/pdf;base64,…` URL",
                ));
            }
        }
    } else if let Some(url) = &file.file_url {
        if !(url.starts_with("https://") || url.starts_with("http://")) {
            return Err(unsupported_content(
                "Anthropic",
                "file",
                "file_url must be an http(s) URL",
            ));
        }
        json!({"type": "url", "url": url})
    } else if file.file_id.is_some() {
        return Err(unsupported_content(
            "Anthropic",
            "file",
            "file_id sources need the Anthropic Files API (a beta this transport does not enable); send the bytes as file_data or a file_url",
        ));
    } else {
        return Err(unsupported_content(
            "Anthropic",
            "file",
            "the file part names no source (file_data, file_id or file_url)",
        ));
    };
    let mut block = Map::new();
    block.insert("type".into(), Value::String("document".into()));
    block.insert("source".into(), source);
    if let Some(name) = file.filename.as_deref().filter(|n| !n.is_empty()) {
        block.insert("title".into(), Value::String(name.to_owned()));
    }
    Ok(Value::Object(block))
}

fn image_block(url: &str) -> Value {
    if let Some(rest) = url.strip_prefix("data:") {
        if let Some((meta, data)) = rest.split_once(',')
            && let Some(media) = meta.strip_suffix(";base64")
        {
            let media = if media.is_empty() { "image/png" } else { media };
            return json!({"type": "image", "source": {"type": "base64", "media_type": media, "data": data}});
        }
        return json!({"type": "text", "text": "[image dropped: unsupported url]"});
    }
    if url.starts_with("http://") || url.starts_with("https://") {
        return json!({"type": "image", "source": {"type": "url", "url": url}});
    }
    json!({"type": "text", "text": "[image dropped: unsupported url]"})
}

/// Tool-call arguments as an `input` object: an object passes through, other JSON is wrapped as
/// `{"arguments": value}`, unparsable text as `{"arguments": text}`, empty → `{}`.
fn parse_input(args: &str) -> Value {
    if args.trim().is_empty() {
        return json!({});
    }
    match serde_json::from_str::<Value>(args) {
        Ok(v @ Value::Object(_)) => v,
        Ok(v) => json!({"arguments": v}),
        Err(_) => json!({"arguments": args}),
    }
}

fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let b: BTreeMap<&String, Value> = m.iter().map(|(k, v)| (k, sorted(v))).collect();
            let mut out = Map::new();
            for (k, v) in b {
                out.insert(k.clone(), v);
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// The system instruction emulating `response_format` (Anthropic has no native field).
pub(crate) fn format_instruction(rf: &ResponseFormat) -> Option<String> {
    match rf {
        ResponseFormat::Text => None,
        ResponseFormat::JsonObject => Some(
            "Respond with one bare JSON object only: no Markdown, no code fences, no text before or after it."
                .to_owned(),
        ),
        ResponseFormat::JsonSchema { json_schema } => Some(format!(
            "Respond with JSON only: no Markdown, no code fences, no text before or after it. The JSON must match this JSON schema. Schema: {}",
            sorted(&json_schema.schema)
        )),
    }
}
