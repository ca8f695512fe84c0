//! Following the façade's re-exports into the crates that define the items.
//!
//! rustdoc JSON does not inline items re-exported from another crate: `pub use
//! power_loop_contracts::Error;` appears in the façade's JSON as a `use` item only, so `public-api`
//! renders just `pub use power_loop::Error`, without fields, methods or signatures. Because the
//! façade is made of such re-exports, the xtask also documents the workspace crates it depends on,
//! finds what each foreign `pub use` points at (its canonical path, e.g.
//! `power_loop_contracts::error::Error`) and adds the defining crate's lines for that item (its
//! declaration, members and impls) to the façade's baseline.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_json::Value;

use crate::XtaskError;
use crate::diff::api_item_key;

/// One `pub use` of the documented crate whose target lives in another crate.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ForeignReexport {
    /// Crate that defines the target (`power_loop_contracts`, with underscores).
    pub krate: String,
    /// Canonical path of the target (`power_loop_contracts::error::Error`); for a re-exported
    /// crate or module, the module's path. Everything under it is included.
    pub path: String,
}

/// Reads a rustdoc JSON file and lists the public `pub use` items (reachable from the crate root
/// through public modules) whose target is defined in another crate.
pub fn foreign_reexports(json: &Path) -> Result<Vec<ForeignReexport>, XtaskError> {
    let text = std::fs::read_to_string(json)
        .map_err(|e| XtaskError::new(format!("could not read {}: {e}", json.display())))?;
    let doc: Value = serde_json::from_str(&text)
        .map_err(|e| XtaskError::new(format!("{} is not JSON: {e}", json.display())))?;
    let index = doc.get("index").and_then(Value::as_object);
    let paths = doc.get("paths").and_then(Value::as_object);
    let (Some(index), Some(paths)) = (index, paths) else {
        return Err(XtaskError::new(format!(
            "{} has no `index`/`paths`: not rustdoc JSON of a supported format",
            json.display()
        )));
    };
    let id_key = |v: &Value| match v {
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        _ => None,
    };
    let mut found = BTreeSet::new();
    let mut stack: Vec<String> = doc.get("root").and_then(id_key).into_iter().collect();
    let mut seen = BTreeSet::new();
    while let Some(id) = stack.pop() {
        if !seen.insert(id.clone()) {
            continue;
        }
        let Some(item) = index.get(&id) else { continue };
        if item.get("visibility").and_then(Value::as_str) != Some("public") {
            continue;
        }
        let inner = item.get("inner");
        if let Some(module) = inner.and_then(|i| i.get("module")) {
            if let Some(items) = module.get("items").and_then(Value::as_array) {
                stack.extend(items.iter().filter_map(id_key));
            }
        } else if let Some(usage) = inner.and_then(|i| i.get("use")) {
            let Some(target) = usage.get("id").and_then(id_key) else {
                continue;
            };
            if index
                .get(&target)
                .is_some_and(|t| t.get("crate_id") == Some(&Value::from(0)))
            {
                continue; // a local item: public-api already renders it
            }
            let Some(summary) = paths.get(&target) else {
                continue;
            };
            let segments: Vec<&str> = summary
                .get("path")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if let Some(first) = segments.first() {
                found.insert(ForeignReexport {
                    krate: (*first).to_owned(),
                    path: segments.join("::"),
                });
            }
        }
    }
    Ok(found.into_iter().collect())
}

/// The self type of an `impl` line (`impl A for B<T>` gives `B`, `impl<T> B<T>` gives `B`).
fn impl_self_type(line: &str) -> &str {
    let rest = match line.rfind(" for ") {
        Some(i) => &line[i + 5..],
        None => {
            let after = line
                .trim_start_matches("unsafe ")
                .trim_start_matches("impl");
            // Skip the impl's own generics `<...>`.
            let after = after.trim_start();
            if after.starts_with('<') {
                let mut depth = 0usize;
                let mut end = after.len();
                for (i, c) in after.char_indices() {
                    match c {
                        '<' => depth += 1,
                        '>' => {
                            depth = depth.saturating_sub(1);
                            if depth == 0 {
                                end = i + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                &after[end..]
            } else {
                after
            }
        }
    };
    let rest = rest.trim();
    let end = rest.find(['<', ' ']).unwrap_or(rest.len());
    &rest[..end]
}

fn under(path: &str, prefix: &str) -> bool {
    path == prefix
        || path
            .strip_prefix(prefix)
            .is_some_and(|r| r.starts_with("::"))
}

/// The lines of a crate's public API that describe `prefix` (the item itself, its members, and
/// the impls whose self type is the item or lies under it).
pub fn select_lines(crate_lines: &[String], prefix: &str) -> Vec<String> {
    crate_lines
        .iter()
        .filter(|line| {
            let t = line.trim();
            if t.starts_with("impl") || t.starts_with("unsafe impl") {
                under(impl_self_type(t), prefix)
            } else {
                under(api_item_key(t), prefix)
            }
        })
        .cloned()
        .collect()
}

/// Adds to `lines` the definitions of every foreign re-export whose crate has an API listing in
/// `crate_lines` (keyed by crate name with underscores). Returns the re-exports that could not be
/// followed (third-party crates), for information.
pub fn expand(
    lines: &mut Vec<String>,
    reexports: &[ForeignReexport],
    crate_lines: &BTreeMap<String, Vec<String>>,
) -> Vec<ForeignReexport> {
    let mut unfollowed = Vec::new();
    for r in reexports {
        match crate_lines.get(&r.krate) {
            Some(all) => lines.extend(select_lines(all, &r.path)),
            None => unfollowed.push(r.clone()),
        }
    }
    lines.sort();
    lines.dedup();
    unfollowed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(lines: &[&str]) -> Vec<String> {
        lines.iter().map(|s| (*s).to_owned()).collect()
    }

    const DEP: &[&str] = &[
        "pub mod dep",
        "pub struct dep::S",
        "pub struct dep::m::S",
        "pub dep::m::S::x: u32",
        "pub fn dep::m::S::new(u32) -> Self",
        "impl dep::m::S",
        "impl core::fmt::Display for dep::m::S",
        "impl<T> core::convert::From<T> for dep::m::Sx",
        "pub struct dep::m::Sx",
        "pub fn dep::other() -> dep::m::S",
        "impl<T: core::clone::Clone> dep::m::G<T>",
    ];

    #[test]
    fn selects_an_item_with_members_and_impls() {
        let got = select_lines(&v(DEP), "dep::m::S");
        assert_eq!(
            got,
            v(&[
                "pub struct dep::m::S",
                "pub dep::m::S::x: u32",
                "pub fn dep::m::S::new(u32) -> Self",
                "impl dep::m::S",
                "impl core::fmt::Display for dep::m::S",
            ])
        );
    }

    #[test]
    fn selects_a_whole_module_or_crate() {
        assert_eq!(select_lines(&v(DEP), "dep").len(), DEP.len());
        let m = select_lines(&v(DEP), "dep::m");
        assert!(m.iter().all(|l| l.contains("dep::m::")));
        assert!(m.contains(&"impl<T: core::clone::Clone> dep::m::G<T>".to_owned()));
    }

    #[test]
    fn impl_self_types() {
        assert_eq!(impl_self_type("impl a::T for a::S"), "a::S");
        assert_eq!(impl_self_type("impl<T> a::G<T>"), "a::G");
        assert_eq!(impl_self_type("impl a::S"), "a::S");
        assert_eq!(
            impl_self_type("unsafe impl core::marker::Send for a::S<'_>"),
            "a::S"
        );
    }

    #[test]
    fn expand_reports_unfollowed_reexports() {
        let mut lines = v(&["pub use fac::S", "pub use fac::Value"]);
        let reexports = vec![
            ForeignReexport {
                krate: "dep".into(),
                path: "dep::m::S".into(),
            },
            ForeignReexport {
                krate: "serde_json".into(),
                path: "serde_json::value::Value".into(),
            },
        ];
        let crates = BTreeMap::from([("dep".to_owned(), v(DEP))]);
        let unfollowed = expand(&mut lines, &reexports, &crates);
        assert_eq!(unfollowed.len(), 1);
        assert!(lines.contains(&"pub dep::m::S::x: u32".to_owned()));
        assert!(lines.contains(&"pub use fac::S".to_owned()));
    }
}
