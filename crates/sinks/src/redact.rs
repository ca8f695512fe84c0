//! Payload sanitization shared by the JSONL, log and trace sinks: secrets redacted, strings and
//! lists cut, and prompt/tool content left out unless the host opts in.

use power_loop_contracts::EventType;
use serde_json::Value;

/// Keys whose values are replaced by [`REDACTED`] (matched as lower-case substrings of a key).
/// The bare word `token` is deliberately absent so usage counters like `prompt_tokens` survive.
pub const DEFAULT_REDACT_KEYS: &[&str] = &[
    "api_key",
    "api-key",
    "apikey",
    "authorization",
    "bearer",
    "password",
    "passwd",
    "secret",
    "secret_key",
    "access_key",
    "private_key",
    "access_token",
    "refresh_token",
    "auth_token",
    "id_token",
];

/// The replacement for a redacted value.
pub const REDACTED: &str = "***";

/// Longest list kept by [`Redactor::sanitize`]; later items are dropped.
pub const MAX_LIST: usize = 50;

/// The payload fields that carry prompt, model or tool content, per event type. Unless
/// [`Redactor::include_content`] is on, their values are replaced by an [`omitted`] marker.
pub const CONTENT_FIELDS: &[(EventType, &[&str])] = &[
    (EventType::ToolCallStarted, &["tool_input"]),
    (EventType::ToolCallCompleted, &["tool_input", "output"]),
    (EventType::ToolCallFailed, &["tool_input", "output"]),
    (EventType::StreamDelta, &["text"]),
    (EventType::StreamThinkDelta, &["text"]),
    (EventType::SubagentTaskStart, &["task"]),
    (EventType::SubagentText, &["final_text"]),
    (EventType::SubagentCompleted, &["final_text"]),
    (EventType::TodoUpdated, &["items", "rendered", "text"]),
    (EventType::TimerFired, &["note"]),
];

/// The content fields of an event type (empty when it carries none).
pub fn content_fields(t: EventType) -> &'static [&'static str] {
    CONTENT_FIELDS
        .iter()
        .find(|(k, _)| *k == t)
        .map_or(&[], |(_, f)| f)
}

/// The marker that replaces an omitted content value: `[content omitted: N chars]`, where N is
/// the character count of the value (its JSON text when it is not a string).
pub fn omitted(value: &Value) -> Value {
    let n = match value {
        Value::String(s) => s.chars().count(),
        Value::Null => 0,
        other => other.to_string().chars().count(),
    };
    Value::String(format!("[content omitted: {n} chars]"))
}

/// Redaction rules: which keys are secrets, how long a string may be, and whether prompt and
/// tool content is kept (off by default).
#[derive(Debug, Clone)]
pub struct Redactor {
    keys: Vec<String>,
    max_field_len: usize,
    include_content: bool,
}

impl Redactor {
    /// The default key list with a string limit (in characters).
    pub fn new(max_field_len: usize) -> Self {
        Redactor {
            keys: DEFAULT_REDACT_KEYS
                .iter()
                .map(|k| (*k).to_owned())
                .collect(),
            max_field_len,
            include_content: false,
        }
    }

    /// Sets the longest string kept, in characters.
    pub fn with_max_field_len(mut self, n: usize) -> Self {
        self.max_field_len = n;
        self
    }

    /// Opts in (`true`) to keeping prompt, model and tool content (still secret-redacted and
    /// cut); the default leaves it out (see [`CONTENT_FIELDS`]).
    pub fn include_content(mut self, yes: bool) -> Self {
        self.include_content = yes;
        self
    }

    /// The longest string kept, in characters.
    pub fn max_field_len(&self) -> usize {
        self.max_field_len
    }

    /// Whether content is kept.
    pub fn includes_content(&self) -> bool {
        self.include_content
    }

    /// The sanitized payload of an event of type `t`: content fields omitted unless opted in,
    /// then [`sanitize`](Self::sanitize).
    pub fn sanitize_payload(&self, t: EventType, payload: &Value) -> Value {
        let fields = content_fields(t);
        if self.include_content || fields.is_empty() {
            return self.sanitize(payload);
        }
        match payload {
            Value::Object(map) => {
                let mut out = map.clone();
                for f in fields {
                    if let Some(v) = out.get_mut(*f) {
                        *v = omitted(v);
                    }
                }
                self.sanitize(&Value::Object(out))
            }
            other => self.sanitize(other),
        }
    }

    /// Replaces the key list (an empty list disables redaction).
    pub fn with_keys<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, keys: I) -> Self {
        self.keys = keys
            .into_iter()
            .map(|k| k.as_ref().to_lowercase())
            .collect();
        self
    }

    /// A sanitized copy of `value`.
    pub fn sanitize(&self, value: &Value) -> Value {
        match value {
            Value::String(s) => Value::String(truncate(s, self.max_field_len)),
            Value::Array(items) => Value::Array(
                items
                    .iter()
                    .take(MAX_LIST)
                    .map(|v| self.sanitize(v))
                    .collect(),
            ),
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(k, v)| {
                        let lower = k.to_lowercase();
                        if self
                            .keys
                            .iter()
                            .any(|secret| lower.contains(secret.as_str()))
                        {
                            (k.clone(), Value::String(REDACTED.to_owned()))
                        } else {
                            (k.clone(), self.sanitize(v))
                        }
                    })
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

/// Cuts `s` to `limit` characters, appending `…(+N)` with the number of characters removed.
pub fn truncate(s: &str, limit: usize) -> String {
    let total = s.chars().count();
    if total <= limit {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(limit).collect();
    out.push_str(&format!("…(+{})", total - limit));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_redacted_and_counters_kept() {
        let r = Redactor::new(5);
        let v = json!({"x-api-key": "k", "Authorization": {"nested": 1}, "mysecret": [1],
            "access_token": "t", "tokens": {"prompt_tokens": 3}, "text": "abcdefgh"});
        let s = r.sanitize(&v);
        assert_eq!(s["x-api-key"], "***");
        assert_eq!(s["Authorization"], "***");
        assert_eq!(s["mysecret"], "***");
        assert_eq!(s["access_token"], "***");
        assert_eq!(s["tokens"]["prompt_tokens"], 3);
        assert_eq!(s["text"], "abcde…(+3)");
    }

    #[test]
    fn content_is_omitted_unless_opted_in() {
        let p = json!({"name": "bash", "tool_input": {"cmd": "ls"}, "tool_call_id": "c1"});
        let off = Redactor::new(100).sanitize_payload(EventType::ToolCallStarted, &p);
        assert_eq!(off["tool_input"], "[content omitted: 12 chars]");
        assert_eq!(off["name"], "bash");
        let on = Redactor::new(100)
            .include_content(true)
            .sanitize_payload(EventType::ToolCallStarted, &p);
        assert_eq!(on["tool_input"]["cmd"], "ls");
    }

    #[test]
    fn lists_are_capped_and_redaction_can_be_disabled() {
        let r = Redactor::new(100).with_keys(Vec::<String>::new());
        let v = json!({"password": "p", "items": (0..80).collect::<Vec<_>>()});
        let s = r.sanitize(&v);
        assert_eq!(s["password"], "p");
        assert_eq!(s["items"].as_array().map(Vec::len), Some(MAX_LIST));
    }
}
