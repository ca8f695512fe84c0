//! Mapping of an MCP `tools/call` result onto a [`ToolOutput`]: text, image, audio, resource and
//! resource-link blocks, structured content, and `isError`.
//!
//! The model gets text. Binary blocks (images, audio, blob resources) become a one-line note in
//! the text and are kept whole in [`ToolOutput::data`] (`images`, `audio`, `resources`) for the
//! host; `structuredContent` is kept under `structured_content` and, when the server sent no
//! text block, also becomes the text (as JSON). `isError: true` gives a failed output.

use power_loop_contracts::ToolOutput;
use serde_json::{Value, json};

/// Maps the JSON form of a `CallToolResult` (`{content, structuredContent?, isError?}`).
pub fn map_call_result(result: &Value) -> ToolOutput {
    let mut texts: Vec<String> = Vec::new();
    let mut images = Vec::new();
    let mut audio = Vec::new();
    let mut resources = Vec::new();
    let mut saw_text = false;
    let blocks = result
        .get("content")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for block in blocks {
        let kind = block.get("type").and_then(Value::as_str).unwrap_or("");
        match kind {
            "text" => {
                saw_text = true;
                texts.push(str_field(block, "text").to_owned());
            }
            "image" | "audio" => {
                let mime = str_field(block, "mimeType");
                let data = str_field(block, "data");
                texts.push(format!(
                    "[{kind}: {mime}, {} bytes; kept in the result data as `{}`]",
                    base64_len(data),
                    if kind == "image" { "images" } else { "audio" }
                ));
                let item = json!({"mime_type": mime, "data": data});
                if kind == "image" {
                    images.push(item);
                } else {
                    audio.push(item);
                }
            }
            "resource" => {
                let r = block.get("resource").cloned().unwrap_or(Value::Null);
                let uri = str_field(&r, "uri");
                let mime = r.get("mimeType").and_then(Value::as_str);
                let mime_note = mime.map(|m| format!(" ({m})")).unwrap_or_default();
                if let Some(text) = r.get("text").and_then(Value::as_str) {
                    saw_text = true;
                    texts.push(format!("[resource {uri}{mime_note}]\n{text}"));
                } else {
                    let blob = str_field(&r, "blob");
                    texts.push(format!(
                        "[resource {uri}{mime_note}: {} bytes of binary data; kept in the result data as `resources`]",
                        base64_len(blob)
                    ));
                }
                resources.push(r);
            }
            "resource_link" => {
                let uri = str_field(block, "uri");
                let name = str_field(block, "name");
                let mut line = format!("[resource link: {name} <{uri}>");
                if let Some(m) = block.get("mimeType").and_then(Value::as_str) {
                    line.push_str(&format!(" ({m})"));
                }
                line.push(']');
                if let Some(d) = block.get("description").and_then(Value::as_str) {
                    line.push(' ');
                    line.push_str(d);
                }
                texts.push(line);
                resources.push(block.clone());
            }
            other => {
                // A block type newer than this client: keep it readable rather than dropping it.
                texts.push(format!("[{other} content] {block}"));
            }
        }
    }
    let structured = result
        .get("structuredContent")
        .filter(|v| !v.is_null())
        .cloned();
    if !saw_text && let Some(s) = &structured {
        texts.insert(0, s.to_string());
    }
    let text = texts.join("\n");
    let is_error = result
        .get("isError")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let mut out = if is_error {
        let msg = if text.trim().is_empty() {
            "Error: the MCP tool reported an error without a message".to_owned()
        } else {
            format!("Error: {text}")
        };
        ToolOutput::failed(msg).with_data("mcp_is_error", true)
    } else {
        ToolOutput::ok(text)
    };
    let mut put = |key: &str, items: Vec<Value>| {
        if !items.is_empty() {
            out.data.insert(key.to_owned(), Value::Array(items));
        }
    };
    put("images", images);
    put("audio", audio);
    put("resources", resources);
    if let Some(s) = structured {
        out.data.insert("structured_content".to_owned(), s);
    }
    out
}

fn str_field<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// Decoded size of a base64 string (without decoding it).
fn base64_len(data: &str) -> usize {
    let trimmed = data.trim_end_matches('=');
    trimmed.len() * 3 / 4
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_image_resource_and_structured_blocks_map() {
        let out = map_call_result(&json!({
            "content": [
                {"type": "text", "text": "hello"},
                {"type": "image", "data": "iVBORw0KGgo=", "mimeType": "image/png"},
                {"type": "resource", "resource": {"uri": "file:///a.txt", "mimeType": "text/plain", "text": "A"}},
                {"type": "resource", "resource": {"uri": "file:///b.bin", "blob": "AAAA"}},
                {"type": "resource_link", "uri": "test://r/1", "name": "R1", "description": "first"}
            ],
            "structuredContent": {"n": 1}
        }));
        assert!(out.ok);
        let lines: Vec<&str> = out.content.lines().collect();
        assert_eq!(lines[0], "hello");
        assert!(
            lines[1].starts_with("[image: image/png, 8 bytes"),
            "{}",
            lines[1]
        );
        assert_eq!(lines[2], "[resource file:///a.txt (text/plain)]");
        assert_eq!(lines[3], "A");
        assert!(lines[4].contains("3 bytes of binary data"));
        assert_eq!(lines[5], "[resource link: R1 <test://r/1>] first");
        assert_eq!(out.data["images"][0]["mime_type"], "image/png");
        assert_eq!(out.data["resources"].as_array().unwrap().len(), 3);
        assert_eq!(out.data["structured_content"], json!({"n": 1}));
    }

    #[test]
    fn structured_only_results_become_json_text_and_is_error_fails() {
        let out = map_call_result(&json!({"content": [], "structuredContent": {"t": 22.5}}));
        assert!(out.ok);
        assert_eq!(out.content, r#"{"t":22.5}"#);
        let err = map_call_result(
            &json!({"content": [{"type": "text", "text": "denied"}], "isError": true}),
        );
        assert!(!err.ok);
        assert_eq!(err.content, "Error: denied");
        let empty = map_call_result(&json!({"isError": true}));
        assert!(!empty.ok && empty.content.contains("without a message"));
    }
}
