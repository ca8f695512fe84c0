//! Python-style renderings used inside tool and validation messages, so messages read like the
//! reference kernel's (which is Python): `(got True)`, `(got None)`, lists `['a', 'b']`, case
//! paths `['k']`. Shared by the tools and the workflow validator.

use std::fmt::Write as _;

use serde_json::Value;

/// Python `repr` of a string: single quotes unless the text has `'` and no `"`.
pub fn repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if !is_printable(c) => {
                let n = u32::from(c);
                let _ = if n < 0x100 {
                    write!(out, "\\x{n:02x}")
                } else if n < 0x10000 {
                    write!(out, "\\u{n:04x}")
                } else {
                    write!(out, "\\U{n:08x}")
                };
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// An approximation of Python's `str.isprintable` (control, format, separator-other-than-space
/// and private-use characters are not printable).
fn is_printable(c: char) -> bool {
    let n = u32::from(c);
    !(n < 0x20
        || (0x7f..=0xa0).contains(&n)
        || n == 0xad
        || n == 0x1680
        || (0x2000..=0x200f).contains(&n)
        || (0x2028..=0x202f).contains(&n)
        || (0x205f..=0x206f).contains(&n)
        || n == 0x3000
        || n == 0xfeff
        || (0xe000..=0xf8ff).contains(&n)
        || (0xfff0..=0xfffb).contains(&n)
        || n >= 0xf0000)
}

/// Python `repr` of a float (shortest round-trip digits, `.0` on integral values, exponent form
/// below 1e-4 and from 1e16 up).
fn repr_float(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    let sci = format!("{f:e}"); // e.g. "1.5e-7", "1e20"
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..16).contains(&exp) {
        let s = format!("{f}");
        if s.contains('.') { s } else { format!("{s}.0") }
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    }
}

/// Python `repr` of a JSON value (`True`, `None`, `{'k': [1, 'x']}`).
pub fn repr_value(v: &Value) -> String {
    let mut out = String::new();
    write_repr(v, &mut out, 0);
    out
}

fn write_repr(v: &Value, out: &mut String, depth: usize) {
    // Bounded: a value nested past any sensible depth is elided rather than recursed into.
    if depth > 64 {
        out.push_str("...");
        return;
    }
    match v {
        Value::Null => out.push_str("None"),
        Value::Bool(true) => out.push_str("True"),
        Value::Bool(false) => out.push_str("False"),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => out.push_str(&i.to_string()),
            (None, Some(u), _) => out.push_str(&u.to_string()),
            (None, None, Some(f)) => out.push_str(&repr_float(f)),
            _ => out.push_str(&n.to_string()),
        },
        Value::String(s) => out.push_str(&repr_str(s)),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_repr(item, out, depth + 1);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&repr_str(k));
                out.push_str(": ");
                write_repr(item, out, depth + 1);
            }
            out.push('}');
        }
    }
}

/// Python `repr()` of a list of strings, in the given order.
pub fn repr_list(items: &[&str]) -> String {
    let inner: Vec<String> = items.iter().map(|s| repr_str(s)).collect();
    format!("[{}]", inner.join(", "))
}

/// Python `repr(sorted(items))` for strings: sorted by code point, deduplicated by the caller.
pub fn sorted_list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let mut v: Vec<&str> = items.into_iter().collect();
    v.sort_unstable();
    let inner: Vec<String> = v.into_iter().map(repr_str).collect();
    format!("[{}]", inner.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_pick_quotes_like_python() {
        assert_eq!(repr_str("k"), "'k'");
        assert_eq!(repr_str("it's"), "\"it's\"");
        assert_eq!(repr_str("a'b\"c"), "'a\\'b\"c'");
        assert_eq!(repr_str("a\nb\\"), "'a\\nb\\\\'");
        assert_eq!(repr_str("\u{7}é"), "'\\x07é'");
        assert_eq!(repr_str("a\nb"), "'a\\nb'");
    }

    #[test]
    fn values_render_like_python() {
        assert_eq!(repr_value(&json!(true)), "True");
        assert_eq!(repr_value(&json!(null)), "None");
        assert_eq!(repr_value(&json!(0)), "0");
        assert_eq!(repr_value(&json!(-3)), "-3");
        assert_eq!(repr_value(&json!(2.0)), "2.0");
        assert_eq!(repr_value(&json!(1.5)), "1.5");
        assert_eq!(repr_value(&json!(1e20)), "1e+20");
        assert_eq!(repr_value(&json!(1e-5)), "1e-05");
        assert_eq!(repr_value(&json!(0.0001)), "0.0001");
        assert_eq!(
            repr_value(&json!({"k": "v", "n": [1, "x"]})),
            "{'k': 'v', 'n': [1, 'x']}"
        );
        assert_eq!(sorted_list(["b", "a", "B"]), "['B', 'a', 'b']");
        assert_eq!(sorted_list([]), "[]");
        assert_eq!(repr_list(&["b", "a"]), "['b', 'a']");
    }
}
