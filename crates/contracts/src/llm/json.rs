//! Extracting a JSON object from model text (used by structured output and by providers).
//!
//! Strategies, in order: direct parse (object only) → strip a leading/trailing Markdown code fence
//! → the first balanced `{…}` substring (string-aware brace matching) → remove trailing commas
//! before `}` / `]`. A non-object JSON value counts as a failure.

use serde_json::Value;

/// The outcome of [`parse_json_from_model_output_detailed`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct JsonExtraction {
    /// The parsed object, when one was found.
    pub value: Option<Value>,
    /// Which strategy succeeded: `direct`, `strip_code_fences`, `extract_substring`,
    /// `repair_trailing_commas`, or `failed`.
    pub strategy: &'static str,
    /// The text the object was parsed from (the business text).
    pub content_text: String,
    /// Why parsing failed: `empty_response`, `parsed_json_is_not_object`, the direct-parse error,
    /// or `unable_to_parse_json`.
    pub error: Option<String>,
}

/// Strips one leading ```` ```lang ```` line and one trailing ```` ``` ```` fence.
pub fn strip_code_fences(text: &str) -> String {
    let t = text.trim();
    let Some(rest) = t.strip_prefix("```") else {
        return t.to_owned();
    };
    let rest = match rest.find('\n') {
        Some(i) => &rest[i + 1..],
        None => rest,
    };
    let rest = rest.trim_end();
    rest.strip_suffix("```").unwrap_or(rest).trim().to_owned()
}

/// The first balanced `{…}` substring (quotes and escapes respected).
pub fn extract_json_substring(text: &str) -> Option<&str> {
    let start = text.find('{')?;
    let mut depth = 0usize;
    let mut strings = StringScan::default();
    for (i, c) in text[start..].char_indices() {
        if strings.feed(c) {
            continue;
        }
        match c {
            '{' => depth += 1,
            '}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Some(&text[start..start + i + 1]);
                }
            }
            _ => {}
        }
    }
    None
}

/// Removes every `,` whose next non-whitespace character is `}` or `]` (outside string literals).
pub fn remove_trailing_commas(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut strings = StringScan::default();
    for (i, &c) in chars.iter().enumerate() {
        if strings.feed(c) {
            out.push(c);
            continue;
        }
        if c == ',' {
            let next = chars[i + 1..].iter().find(|c| !c.is_whitespace());
            if matches!(next, Some('}') | Some(']')) {
                continue;
            }
        }
        out.push(c);
    }
    out
}

/// Tracks whether a left-to-right scan of JSON text is inside a string literal (backslash
/// escapes included), so the scanners above ignore braces and commas in strings.
#[derive(Default)]
struct StringScan {
    in_str: bool,
    escaped: bool,
}

impl StringScan {
    /// Feeds the next character; `true` when it belongs to a string literal (quotes included).
    fn feed(&mut self, c: char) -> bool {
        if self.in_str {
            match (self.escaped, c) {
                (true, _) => self.escaped = false,
                (false, '\\') => self.escaped = true,
                (false, '"') => self.in_str = false,
                _ => {}
            }
            return true;
        }
        if c == '"' {
            self.in_str = true;
            return true;
        }
        false
    }
}

fn parse_object(text: &str) -> Result<Value, String> {
    match serde_json::from_str::<Value>(text) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err("parsed_json_is_not_object".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// Parses a JSON object out of model text with the strategies above.
pub fn parse_json_from_model_output_detailed(text: &str) -> JsonExtraction {
    let t = text.trim();
    if t.is_empty() {
        return JsonExtraction {
            value: None,
            strategy: "failed",
            content_text: String::new(),
            error: Some("empty_response".into()),
        };
    }
    let ok = |v: Value, strategy: &'static str, content: &str| JsonExtraction {
        value: Some(v),
        strategy,
        content_text: content.to_owned(),
        error: None,
    };
    let direct_err = match parse_object(t) {
        Ok(v) => return ok(v, "direct", t),
        Err(e) => e,
    };
    let stripped = strip_code_fences(t);
    if stripped != t
        && let Ok(v) = parse_object(&stripped)
    {
        return ok(v, "strip_code_fences", &stripped);
    }
    if let Some(sub) = extract_json_substring(&stripped) {
        if let Ok(v) = parse_object(sub) {
            return ok(v, "extract_substring", sub);
        }
        let repaired = remove_trailing_commas(sub);
        if let Ok(v) = parse_object(&repaired) {
            return ok(v, "repair_trailing_commas", &repaired);
        }
    }
    JsonExtraction {
        value: None,
        strategy: "failed",
        content_text: t.to_owned(),
        error: Some(if direct_err == "parsed_json_is_not_object" {
            direct_err
        } else {
            "unable_to_parse_json".into()
        }),
    }
}

/// `(object, error)` form of [`parse_json_from_model_output_detailed`].
pub fn parse_json_from_model_output(text: &str) -> (Option<Value>, Option<String>) {
    let r = parse_json_from_model_output_detailed(text);
    (r.value, r.error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategies() {
        assert_eq!(
            parse_json_from_model_output_detailed(r#"{"a":1}"#).strategy,
            "direct"
        );
        assert_eq!(
            parse_json_from_model_output_detailed("```json\n{\"a\":1}\n```").strategy,
            "strip_code_fences"
        );
        assert_eq!(
            parse_json_from_model_output_detailed("Here: {\"a\":\"}\"} ok").strategy,
            "extract_substring"
        );
        let r = parse_json_from_model_output_detailed("x {\"a\":[1,2,],} y");
        assert_eq!(r.strategy, "repair_trailing_commas");
        assert_eq!(r.value.unwrap()["a"][1], 2);
        assert_eq!(
            parse_json_from_model_output_detailed("[1]")
                .error
                .as_deref(),
            Some("parsed_json_is_not_object")
        );
        assert_eq!(
            parse_json_from_model_output_detailed("").error.as_deref(),
            Some("empty_response")
        );
        assert_eq!(
            parse_json_from_model_output_detailed("nope").strategy,
            "failed"
        );
    }
}
