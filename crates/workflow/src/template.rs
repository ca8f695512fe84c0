//! `{{ name }}` templating (with two documented departures: non-string values render
//! as JSON, and the engine renders an agent leaf's `system_prompt` too).

use serde_json::{Map, Value};

/// Renders `template`, replacing each `{{ name }}` (optional whitespace inside the braces; `name`
/// is a letter or `_` followed by letters, digits or `_`) whose name is in `env`. Strings are
/// inserted as they are; any other value as compact JSON (`true`, `3`, `{"k":"v"}`). Unknown
/// names, dotted forms such as `{{a.b}}` and unbalanced braces stay verbatim.
///
/// One left-to-right pass: time is linear in the template plus the inserted text, and no input
/// panics.
pub fn render_template(template: &str, env: &Map<String, Value>) -> String {
    render_counting(template, env).0
}

/// [`render_template`] plus the number of elementary steps taken (bytes visited by the main
/// loop plus characters read by placeholder attempts), for the linearity test.
fn render_counting(template: &str, env: &Map<String, Value>) -> (String, usize) {
    let mut steps = 0usize;
    let bytes = template.as_bytes();
    let mut out = String::with_capacity(template.len());
    let mut copied = 0; // template[..copied] is already in `out`
    let mut i = 0;
    while i + 1 < bytes.len() {
        steps += 1;
        if bytes[i] == b'{' && bytes[i + 1] == b'{' {
            if let Some((name, end)) = placeholder_at(template, i + 2, &mut steps)
                && let Some(value) = env.get(name)
            {
                out.push_str(&template[copied..i]);
                match value {
                    Value::String(s) => out.push_str(s),
                    other => out.push_str(&other.to_string()),
                }
                copied = end;
                i = end;
                continue;
            }
            i += 1;
        } else {
            i += 1;
        }
    }
    out.push_str(&template[copied..]);
    (out, steps)
}

/// Python `\s` (Unicode whitespace, including the information separators).
fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\x1c'..='\x1f').contains(&c)
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Parses `\s*([A-Za-z_]\w*)\s*}}` starting at byte `start`; returns the name and the byte index
/// just past the closing braces. Scans only whitespace and word characters, so repeated failed
/// attempts never rescan the same text (no `{` can be inside what one attempt reads).
fn placeholder_at<'s>(s: &'s str, start: usize, steps: &mut usize) -> Option<(&'s str, usize)> {
    let rest = s.get(start..)?;
    let mut chars = rest.char_indices().inspect(|_| *steps += 1).peekable();
    while let Some(&(_, c)) = chars.peek() {
        if is_space(c) {
            chars.next();
        } else {
            break;
        }
    }
    let (name_start, first) = chars.next()?;
    if !(first.is_ascii_alphabetic() || first == '_') {
        return None;
    }
    let mut name_end = name_start + first.len_utf8();
    while let Some(&(idx, c)) = chars.peek() {
        if is_word(c) {
            name_end = idx + c.len_utf8();
            chars.next();
        } else {
            break;
        }
    }
    while let Some(&(_, c)) = chars.peek() {
        if is_space(c) {
            chars.next();
        } else {
            break;
        }
    }
    let (close, _) = chars.next().filter(|&(_, c)| c == '}')?;
    if rest.as_bytes().get(close + 1) != Some(&b'}') {
        return None;
    }
    Some((&rest[name_start..name_end], start + close + 2))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn substitutes_known_names_and_keeps_the_rest() {
        let e = env(json!({"input": "tea", "t": 3, "flag": true, "obj": {"k": "v"}, "n": null}));
        assert_eq!(render_template("about {{input}}", &e), "about tea");
        assert_eq!(render_template("{{ input }}|{{\tt\n}}", &e), "tea|3");
        assert_eq!(
            render_template("{{flag}} {{obj}} {{n}}", &e),
            r#"true {"k":"v"} null"#
        );
        assert_eq!(
            render_template("{{missing}} {{a.b}} {{1x}}", &e),
            "{{missing}} {{a.b}} {{1x}}"
        );
        assert_eq!(render_template("{{{input}}}", &e), "{tea}");
        assert_eq!(render_template("{{input", &e), "{{input");
        assert_eq!(render_template("{{input}", &e), "{{input}");
        assert_eq!(render_template("{", &e), "{");
        assert_eq!(render_template("", &e), "");
        assert_eq!(render_template("é{{input}}ü", &e), "éteaü");
    }

    #[test]
    fn inserted_text_is_not_rendered_again() {
        let e = env(json!({"a": "{{b}}", "b": "x"}));
        assert_eq!(render_template("{{a}}{{b}}", &e), "{{b}}x");
    }

    #[test]
    fn steps_are_linear() {
        let e = env(json!({"a": "x"}));
        for unit in [
            "{{",
            "{{ a",
            "{{a}",
            "{{{",
            "{{ aaaaaaaa ",
            "{{a}}",
            "{{ zz }}",
            "x",
        ] {
            for n in [1_000usize, 10_000, 100_000] {
                let t = unit.repeat(n);
                let (_, steps) = render_counting(&t, &e);
                assert!(
                    steps <= 3 * t.len() + 3,
                    "{unit:?} x {n}: {steps} steps for {} bytes",
                    t.len()
                );
            }
        }
    }

    #[test]
    fn unicode_word_characters_continue_a_name() {
        let e = env(json!({"té": "ok"}));
        assert_eq!(render_template("{{té}}", &e), "ok");
        assert_eq!(render_template("{{ét}}", &e), "{{ét}}");
    }
}
