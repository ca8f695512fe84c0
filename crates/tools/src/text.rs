//! Text helpers shared by the tools: truncation, line splitting, lenient argument reading
//! (Python-style rendering is in [`crate::pyrepr`]).

/// Maximum characters of a tool result.
pub const RESULT_MAX_CHARS: usize = 50_000;
const HEAD_CHARS: usize = 25_000;
const TAIL_CHARS: usize = 24_920;

/// Keeps the first 25 000 and last 24 920 characters of a text longer than
/// [`RESULT_MAX_CHARS`], joined by a `... (N chars omitted) ...` marker.
pub fn truncate_chars(text: &str) -> String {
    let total = text.chars().count();
    if total <= RESULT_MAX_CHARS {
        return text.to_owned();
    }
    let head: String = text.chars().take(HEAD_CHARS).collect();
    let tail: String = text.chars().skip(total - TAIL_CHARS).collect();
    let omitted = total - HEAD_CHARS - TAIL_CHARS;
    format!("{head}\n\n... ({omitted} chars omitted) ...\n\n{tail}")
}

/// Python `str.splitlines()`.
pub(crate) fn splitlines(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut iter = text.char_indices().peekable();
    while let Some((i, c)) = iter.next() {
        let is_break = matches!(
            c,
            '\n' | '\r'
                | '\u{0b}'
                | '\u{0c}'
                | '\u{1c}'
                | '\u{1d}'
                | '\u{1e}'
                | '\u{85}'
                | '\u{2028}'
                | '\u{2029}'
        );
        if is_break {
            out.push(&text[start..i]);
            let mut end = i + c.len_utf8();
            if c == '\r'
                && let Some(&(_, '\n')) = iter.peek()
            {
                iter.next();
                end += 1;
            }
            start = end;
        }
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

/// `"s"` when `n != 1`.
pub(crate) fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Reads an integer option leniently (numbers, numeric strings), clamped; default when absent
/// or unparsable.
pub(crate) fn int_arg(
    args: &serde_json::Value,
    key: &str,
    default: i64,
    min: i64,
    max: i64,
) -> i64 {
    let v = match args.get(key) {
        Some(serde_json::Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .unwrap_or(default),
        Some(serde_json::Value::String(s)) => s.trim().parse::<i64>().unwrap_or(default),
        _ => default,
    };
    v.clamp(min, max)
}

/// A string argument ("" when absent).
pub(crate) fn str_arg<'a>(args: &'a serde_json::Value, key: &str) -> &'a str {
    args.get(key).and_then(|v| v.as_str()).unwrap_or("")
}

/// A boolean argument.
pub(crate) fn bool_arg(args: &serde_json::Value, key: &str, default: bool) -> bool {
    args.get(key).and_then(|v| v.as_bool()).unwrap_or(default)
}

/// Removes ANSI CSI escape sequences.
pub(crate) fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for d in chars.by_ref() {
                if ('@'..='~').contains(&d) {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitlines_like_python() {
        assert_eq!(splitlines("a\nb\r\nc\rd"), vec!["a", "b", "c", "d"]);
        assert_eq!(splitlines("a\n"), vec!["a"]);
        assert!(splitlines("").is_empty());
        assert_eq!(splitlines("\n\n"), vec!["", ""]);
    }

    #[test]
    fn truncation_marker() {
        let s = "x".repeat(60_000);
        let t = truncate_chars(&s);
        assert!(t.contains("... (10080 chars omitted) ..."));
        assert_eq!(truncate_chars("short"), "short");
    }

    #[test]
    fn ansi() {
        assert_eq!(strip_ansi("\u{1b}[31mred\u{1b}[0m"), "red");
    }
}
