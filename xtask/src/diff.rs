//! Set difference between a committed baseline and the current API, classified as removed,
//! changed or added.
//!
//! Both sides are multisets of lines (one public item or one error code per line). A line present
//! in the baseline but absent from the current list is *removed*, unless a current line that is
//! absent from the baseline has the same *key* (the item path, or the error-code variant): then
//! the pair is reported as *changed*. Lines only in the current list are *added*. Removed and
//! changed lines break the baseline; added lines do not.

use std::collections::BTreeMap;

/// How a line is identified across versions, so a changed signature is reported as one change
/// rather than as a removal plus an addition.
pub type KeyFn = fn(&str) -> &str;

/// The outcome of comparing a baseline with the current list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApiDiff {
    /// Baseline lines with no counterpart in the current list (breaking).
    pub removed: Vec<String>,
    /// `(baseline line, current line)` pairs sharing a key but differing in text (breaking).
    pub changed: Vec<(String, String)>,
    /// Current lines not in the baseline and not pairing with a removed line (not breaking).
    pub added: Vec<String>,
}

impl ApiDiff {
    /// True when something in the baseline was removed or changed.
    pub fn is_breaking(&self) -> bool {
        !self.removed.is_empty() || !self.changed.is_empty()
    }

    /// True when both sides hold exactly the same lines.
    pub fn is_empty(&self) -> bool {
        self.removed.is_empty() && self.changed.is_empty() && self.added.is_empty()
    }

    /// Renders the difference as indented `removed: …`, `changed: …` / `to: …` and `added: …`
    /// lines (empty string when there is no difference).
    pub fn render(&self) -> String {
        let mut out = String::new();
        for line in &self.removed {
            out.push_str(&format!("  removed: {line}\n"));
        }
        for (old, new) in &self.changed {
            out.push_str(&format!("  changed: {old}\n       to: {new}\n"));
        }
        for line in &self.added {
            out.push_str(&format!("  added:   {line}\n"));
        }
        out
    }
}

/// Key of a public-API line as printed by the `public-api` crate: the item path (from the first
/// token containing `::`, cut before any `(`, `{`, `=`, `,`, space or single `:`, and before a `<`
/// that does not open generics of a path segment such as `Arc<T>::method`), so `pub fn a::f(u32)`
/// and `pub const fn a::f(u64)` share the key `a::f`. `impl` blocks are keyed by their whole text:
/// an impl is either there or not. A line without a path (the crate root module) is keyed by its
/// last word.
pub fn api_item_key(line: &str) -> &str {
    let line = line.trim();
    if line.starts_with("impl") || line.starts_with("unsafe impl") {
        return line;
    }
    let Some(token) = line.split_whitespace().find(|t| t.contains("::")) else {
        // A crate root (`pub mod power_loop`): the name is the last word.
        return line.split_whitespace().last().unwrap_or(line);
    };
    let Some(offset) = line.find(token) else {
        return line;
    };
    let path = &line[offset..];
    let bytes = path.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'<' => match matching_angle(bytes, i) {
                Some(close) if path[close + 1..].starts_with("::") => {
                    i = close + 3;
                    continue;
                }
                _ => return &path[..i],
            },
            b':' if bytes.get(i + 1) == Some(&b':') => {
                i += 2;
                continue;
            }
            b':' | b'(' | b'{' | b'=' | b',' | b')' | b' ' => return &path[..i],
            _ => {}
        }
        i += 1;
    }
    path
}

/// Index of the `>` closing the `<` at `open` (ignoring the `>` of `->`).
fn matching_angle(bytes: &[u8], open: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (i, &b) in bytes.iter().enumerate().skip(open) {
        match b {
            b'<' => depth += 1,
            b'>' if i > 0 && bytes[i - 1] == b'-' => {}
            b'>' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// Key of an error-code line `Variant = "code"`: the variant name.
pub fn error_code_key(line: &str) -> &str {
    line.split(" = ").next().unwrap_or(line).trim()
}

/// Compares `baseline` with `current` (order does not matter; duplicates count).
pub fn diff_lines(baseline: &[String], current: &[String], key: KeyFn) -> ApiDiff {
    let mut counts: BTreeMap<&str, i64> = BTreeMap::new();
    for line in baseline {
        *counts.entry(line.as_str()).or_default() += 1;
    }
    for line in current {
        *counts.entry(line.as_str()).or_default() -= 1;
    }
    // Positive count: only in the baseline; negative: only in the current list.
    let mut only_old: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut only_new: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (line, n) in counts {
        let side = if n > 0 { &mut only_old } else { &mut only_new };
        for _ in 0..n.unsigned_abs() {
            side.entry(key(line)).or_default().push(line);
        }
    }
    let mut diff = ApiDiff::default();
    for (k, olds) in only_old {
        let mut news = only_new.remove(k).unwrap_or_default().into_iter();
        for old in olds {
            match news.next() {
                Some(new) => diff.changed.push((old.to_owned(), new.to_owned())),
                None => diff.removed.push(old.to_owned()),
            }
        }
        let rest: Vec<&str> = news.collect();
        if !rest.is_empty() {
            only_new.insert(k, rest);
        }
    }
    diff.added = only_new
        .into_values()
        .flatten()
        .map(str::to_owned)
        .collect();
    diff.added.sort();
    diff
}

/// Parses a baseline file: one entry per line, blank lines ignored, sorted.
pub fn parse_lines(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines
}

/// Formats entries as a baseline file: sorted, one per line, trailing newline.
pub fn format_lines(lines: &[String]) -> String {
    let mut sorted = lines.to_vec();
    sorted.sort();
    let mut out = sorted.join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(lines: &[&str]) -> Vec<String> {
        lines.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn identical_lists_have_no_diff() {
        let a = v(&["pub fn a::f()", "pub struct a::S"]);
        let d = diff_lines(&a, &a, api_item_key);
        assert!(d.is_empty());
        assert!(!d.is_breaking());
        assert_eq!(d.render(), "");
    }

    #[test]
    fn order_does_not_matter() {
        let a = v(&["pub fn a::f()", "pub struct a::S"]);
        let b = v(&["pub struct a::S", "pub fn a::f()"]);
        assert!(diff_lines(&a, &b, api_item_key).is_empty());
    }

    #[test]
    fn removed_item_is_breaking() {
        let a = v(&["pub fn a::f()", "pub struct a::S"]);
        let b = v(&["pub struct a::S"]);
        let d = diff_lines(&a, &b, api_item_key);
        assert_eq!(d.removed, v(&["pub fn a::f()"]));
        assert!(d.is_breaking());
        assert!(d.render().contains("removed: pub fn a::f()"));
    }

    #[test]
    fn changed_signature_is_one_breaking_change() {
        let a = v(&["pub fn a::f(u32) -> u32"]);
        let b = v(&["pub fn a::f(u64) -> u32"]);
        let d = diff_lines(&a, &b, api_item_key);
        assert!(d.removed.is_empty() && d.added.is_empty());
        assert_eq!(
            d.changed,
            vec![(
                "pub fn a::f(u32) -> u32".into(),
                "pub fn a::f(u64) -> u32".into()
            )]
        );
        assert!(d.is_breaking());
        let r = d.render();
        assert!(r.contains("changed: pub fn a::f(u32) -> u32"), "{r}");
        assert!(r.contains("to: pub fn a::f(u64) -> u32"), "{r}");
    }

    #[test]
    fn added_item_is_not_breaking() {
        let a = v(&["pub fn a::f()"]);
        let b = v(&["pub fn a::f()", "pub fn a::g()"]);
        let d = diff_lines(&a, &b, api_item_key);
        assert_eq!(d.added, v(&["pub fn a::g()"]));
        assert!(!d.is_breaking());
        assert!(d.render().contains("added:   pub fn a::g()"));
    }

    #[test]
    fn field_type_change_is_a_change() {
        let a = v(&["pub a::S::x: u32"]);
        let b = v(&["pub a::S::x: alloc::string::String"]);
        let d = diff_lines(&a, &b, api_item_key);
        assert_eq!(d.changed.len(), 1);
    }

    #[test]
    fn duplicate_lines_are_counted() {
        let line = "pub fn a::S::fmt(&self, &mut core::fmt::Formatter<'_>) -> core::fmt::Result";
        let a = v(&[line, line]);
        let b = v(&[line]);
        let d = diff_lines(&a, &b, api_item_key);
        assert_eq!(d.removed, v(&[line]));
    }

    #[test]
    fn impl_lines_are_removed_not_changed() {
        let a = v(&["impl core::clone::Clone for a::S"]);
        let b = v(&["impl core::default::Default for a::S"]);
        let d = diff_lines(&a, &b, api_item_key);
        assert_eq!(d.removed.len(), 1);
        assert_eq!(d.added.len(), 1);
        assert!(d.changed.is_empty());
    }

    #[test]
    fn api_keys() {
        assert_eq!(api_item_key("pub fn a::f<T: x::Y>(T) -> u32"), "a::f");
        assert_eq!(api_item_key("pub const fn a::f(u8)"), "a::f");
        assert_eq!(api_item_key("pub a::S::field: u32"), "a::S::field");
        assert_eq!(api_item_key("pub a::E::V(u32)"), "a::E::V");
        assert_eq!(api_item_key("pub const a::X: u32"), "a::X");
        assert_eq!(
            api_item_key("pub type a::R<T> = core::result::Result<T, a::E>"),
            "a::R"
        );
        assert_eq!(api_item_key("pub mod a::m"), "a::m");
        assert_eq!(api_item_key("impl a::T for a::S"), "impl a::T for a::S");
        assert_eq!(api_item_key("pub mod power_loop"), "power_loop");
        assert_eq!(
            api_item_key("pub fn alloc::sync::Arc<T>::complete(&self, a::R) -> a::F<'_, u8>"),
            "alloc::sync::Arc<T>::complete"
        );
        assert_eq!(
            api_item_key("pub fn a::S<K, V>::get(&self) -> Box<dyn Fn() -> u32>"),
            "a::S<K, V>::get"
        );
        assert_eq!(api_item_key("#[non_exhaustive] pub enum a::E"), "a::E");
        assert_eq!(
            api_item_key("pub fn a::Hook::f<'a>(&'a self)"),
            "a::Hook::f"
        );
    }

    #[test]
    fn error_code_change_and_removal_are_breaking() {
        let a = v(&[
            "Cancelled = \"cancelled\"",
            "SessionNotFound = \"session.not_found\"",
        ]);
        let changed = v(&[
            "Cancelled = \"cancel\"",
            "SessionNotFound = \"session.not_found\"",
        ]);
        let d = diff_lines(&a, &changed, error_code_key);
        assert_eq!(d.changed.len(), 1);
        assert!(d.is_breaking());

        let removed = v(&["SessionNotFound = \"session.not_found\""]);
        let d = diff_lines(&a, &removed, error_code_key);
        assert_eq!(d.removed, v(&["Cancelled = \"cancelled\""]));

        let added = v(&[
            "Cancelled = \"cancelled\"",
            "New = \"new\"",
            "SessionNotFound = \"session.not_found\"",
        ]);
        let d = diff_lines(&a, &added, error_code_key);
        assert!(!d.is_breaking());
        assert_eq!(d.added, v(&["New = \"new\""]));
    }

    #[test]
    fn parse_and_format_round_trip() {
        let text = "b\n\na\n";
        let lines = parse_lines(text);
        assert_eq!(lines, v(&["a", "b"]));
        assert_eq!(format_lines(&lines), "a\nb\n");
        assert_eq!(format_lines(&[]), "");
    }
}
