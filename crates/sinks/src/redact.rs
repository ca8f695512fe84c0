//! Payload sanitization shared by the JSONL and log sinks: secrets redacted, strings and lists cut.

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

/// Redaction rules: which keys are secrets, and how long a string may be.
#[derive(Debug, Clone)]
pub struct Redactor {
    keys: Vec<String>,
    max_field_len: usize,
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
    fn lists_are_capped_and_redaction_can_be_disabled() {
        let r = Redactor::new(100).with_keys(Vec::<String>::new());
        let v = json!({"password": "p", "items": (0..80).collect::<Vec<_>>()});
        let s = r.sanitize(&v);
        assert_eq!(s["password"], "p");
        assert_eq!(s["items"].as_array().map(Vec::len), Some(MAX_LIST));
    }
}
