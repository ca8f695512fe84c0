//! `glob` and `grep`, implemented natively (no ripgrep needed).

use std::ops::ControlFlow;
use std::path::Path;

use globset::{GlobBuilder, GlobMatcher};
use power_loop_contracts::{CancellationToken, Result, ToolDefinition, ToolOutput};

use super::schema::{boolean_prop, integer_prop, params, string_prop};
use super::{failed, invalid};
use crate::confined::FsFault;
use crate::confined::ops::{Node, Stamp, open_file_at, open_node, read_capped};
use crate::confined::tree::{Kind, WalkEnd, WalkOptions, walk};
use crate::env::RuntimeEnv;
use crate::paths::{Located, display_path, locate};
use crate::text::{bool_arg, int_arg, str_arg, truncate_chars};
use crate::tool::{FnTool, tool_fn};

/// Directories never descended into.
pub(crate) const SKIP_DIRS: &[&str] = &[
    ".git",
    ".hg",
    ".svn",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    ".tox",
    ".venv",
    "__pycache__",
    "build",
    "dist",
    "node_modules",
    "target",
    "vendor",
];
/// The most entries one `glob`/`grep` walk visits.
const MAX_WALK: usize = 500_000;
/// The deepest directory level one walk descends to (each level holds one open handle).
const MAX_DEPTH: usize = 128;
const MAX_GREP_FILE: u64 = 5 * 1024 * 1024;

fn matcher(pattern: &str, cross_slash: bool) -> Result<GlobMatcher> {
    GlobBuilder::new(pattern)
        .literal_separator(!cross_slash)
        .backslash_escape(true)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|e| invalid(format!("invalid glob pattern {pattern:?}: {e}")))
}

/// How a walk for `glob`/`grep` goes: hidden entries as asked, [`SKIP_DIRS`] pruned, at most
/// [`MAX_WALK`] entries and [`MAX_DEPTH`] levels.
fn walk_options(include_hidden: bool) -> WalkOptions {
    WalkOptions {
        include_hidden,
        skip_dirs: SKIP_DIRS,
        max_entries: MAX_WALK,
        max_depth: MAX_DEPTH,
    }
}

/// Notices for a walk that did not cover the whole tree.
fn walk_notices(end: &WalkEnd) -> String {
    let mut out = String::new();
    if end.entries_capped {
        out.push_str(&format!(
            "\n(the search stopped after {MAX_WALK} entries; narrow the path or pattern)"
        ));
    }
    if end.depth_capped {
        out.push_str(&format!(
            "\n(directories nested deeper than {MAX_DEPTH} levels were not searched)"
        ));
    }
    out
}

/// Opens the base of a search beneath its allowed root: a directory handle, or a regular file.
fn open_base(loc: &Located) -> Result<Option<Node>> {
    match open_node(loc) {
        Ok(node) => Ok(Some(node)),
        Err(e) => {
            let reason = e.detail("reason").and_then(|r| r.as_str());
            let absent = [FsFault::NotFound.reason(), FsFault::NotDirectory.reason()];
            if reason.is_some_and(|r| absent.contains(&r)) {
                Ok(None)
            } else {
                Err(e)
            }
        }
    }
}

fn base_dir(env: &RuntimeEnv, raw: &str) -> Result<Located> {
    let raw = if raw.trim().is_empty() { "." } else { raw };
    locate(env, raw)
}

/// A concurrent tool running the tree walk `run` on a blocking worker thread.
fn search_tool(
    def: ToolDefinition,
    run: fn(&RuntimeEnv, &serde_json::Value, &CancellationToken) -> Result<ToolOutput>,
) -> FnTool {
    let name = def.name.clone();
    tool_fn(def, move |ctx, args| {
        let name = name.clone();
        async move {
            let env = ctx.env.clone();
            let cancel = ctx.cancel.clone();
            tokio::task::spawn_blocking(move || run(&env, &args, &cancel))
                .await
                .map_err(|e| failed(format!("{name} worker failed: {e}")))?
        }
    })
    .concurrent(true)
}

/// `glob`.
pub(crate) fn glob_tool() -> FnTool {
    let def = ToolDefinition::new(
        "glob",
        "Find files by glob pattern (e.g. '*.rs', 'src/**/*.ts'), newest first. Bare names search recursively.",
        params(
            &[
                ("pattern", string_prop("Glob pattern.")),
                ("path", string_prop("Base directory (default '.').")),
                (
                    "max_results",
                    integer_prop("Maximum results (default 100, max 500)."),
                ),
                (
                    "include_hidden",
                    boolean_prop("Include dot-files and dot-directories (default false)."),
                ),
            ],
            &["pattern"],
        ),
    );
    search_tool(def, glob)
}

fn glob(
    env: &RuntimeEnv,
    args: &serde_json::Value,
    cancel: &CancellationToken,
) -> Result<ToolOutput> {
    let loc = base_dir(env, str_arg(args, "path"))?;
    let shown_base = loc.display.clone();
    let Some(Node::Dir(base_fd)) = open_base(&loc)? else {
        return Err(failed(format!("{shown_base} is not a directory")));
    };
    let pattern = str_arg(args, "pattern").trim();
    if pattern.is_empty() {
        return Err(invalid("pattern is required"));
    }
    let max = usize::try_from(int_arg(args, "max_results", 100, 1, 500)).unwrap_or(100);
    let effective = if pattern.starts_with("**/") || pattern.contains('/') {
        pattern.to_owned()
    } else {
        format!("**/{pattern}")
    };
    let pattern_hidden = effective
        .split('/')
        .any(|s| s.starts_with('.') && s != "." && s != "..");
    let include_hidden = bool_arg(args, "include_hidden", false) || pattern_hidden;
    let recursive = effective.contains("**");
    let mut matchers = vec![matcher(&effective, recursive)?];
    if let Some(stripped) = effective.strip_prefix("**/") {
        matchers.push(matcher(stripped, true)?);
    }
    let mut hits: Vec<(i128, String)> = Vec::new();
    let mut cancelled = false;
    let end = walk(base_fd, &walk_options(include_hidden), |v| {
        if cancel.is_cancelled() {
            cancelled = true;
            return ControlFlow::Break(());
        }
        if matchers.iter().any(|m| m.is_match(v.rel)) {
            let mtime = v.stat().map_or(0, |st| Stamp::of(&st).mtime_ns());
            hits.push((mtime, v.rel.to_owned()));
        }
        ControlFlow::Continue(())
    });
    if cancelled {
        return Err(failed("glob was cancelled"));
    }
    let notices = walk_notices(&end);
    if hits.is_empty() {
        return Ok(ToolOutput::ok(format!(
            "No files matching '{effective}' in {shown_base}{notices}"
        )));
    }
    hits.sort_by(|a, b| {
        b.0.cmp(&a.0)
            .then_with(|| Path::new(&a.1).cmp(Path::new(&b.1)))
    });
    let mut out = format!("[searched in: {shown_base}]");
    for (_, rel) in hits.iter().take(max) {
        out.push('\n');
        out.push_str(&display_path(env, &loc.full.join(rel)));
    }
    if hits.len() > max {
        out.push_str(&format!("\n... and {} more", hits.len() - max));
    }
    out.push_str(&notices);
    Ok(ToolOutput::ok(truncate_chars(&out)))
}

/// `grep`.
pub(crate) fn grep_tool() -> FnTool {
    let def = ToolDefinition::new(
        "grep",
        "Search file contents with a regular expression (or a literal string); prints path:line:text.",
        params(
            &[
                (
                    "pattern",
                    string_prop("Regular expression (Rust regex syntax) or literal text."),
                ),
                (
                    "path",
                    string_prop("File or directory to search (default '.')."),
                ),
                (
                    "include",
                    string_prop("Only files matching this glob (e.g. '*.rs')."),
                ),
                (
                    "max_results",
                    integer_prop("Maximum matching lines (default 50, max 500)."),
                ),
                (
                    "literal",
                    boolean_prop("Treat pattern as literal text (default false)."),
                ),
                ("case_sensitive", boolean_prop("Default true.")),
                (
                    "include_hidden",
                    boolean_prop("Search dot-files too (default false)."),
                ),
            ],
            &["pattern"],
        ),
    );
    search_tool(def, grep)
}

/// What a grep has found so far.
struct Found {
    lines: Vec<String>,
    max: usize,
    truncated: bool,
}

impl Found {
    /// Searches one open file shown as `shown`; `false` once `max` lines were exceeded.
    fn search(
        &mut self,
        mut file: std::fs::File,
        stamp: Stamp,
        shown: &str,
        re: &regex::Regex,
    ) -> bool {
        if stamp.size() > MAX_GREP_FILE {
            return true;
        }
        let Ok(bytes) = read_capped(&mut file, Some(MAX_GREP_FILE), shown) else {
            return true;
        };
        if bytes[..bytes.len().min(8192)].contains(&0) {
            return true;
        }
        let text = String::from_utf8_lossy(&bytes);
        for (i, line) in text.split('\n').enumerate() {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if re.is_match(line) {
                if self.lines.len() == self.max {
                    self.truncated = true;
                    return false;
                }
                self.lines
                    .push(format!("{shown}:{}:{}", i + 1, line.trim_end()));
            }
        }
        true
    }
}

fn grep(
    env: &RuntimeEnv,
    args: &serde_json::Value,
    cancel: &CancellationToken,
) -> Result<ToolOutput> {
    let raw_path = str_arg(args, "path");
    let loc = base_dir(env, raw_path)?;
    let Some(base) = open_base(&loc)? else {
        return Err(failed(format!(
            "path does not exist: {}",
            if raw_path.is_empty() { "." } else { raw_path }
        )));
    };
    let pattern = str_arg(args, "pattern");
    if pattern.is_empty() {
        return Err(invalid("pattern is required"));
    }
    let max = usize::try_from(int_arg(args, "max_results", 50, 1, 500)).unwrap_or(50);
    let literal = bool_arg(args, "literal", false);
    let case_sensitive = bool_arg(args, "case_sensitive", true);
    let include_hidden = bool_arg(args, "include_hidden", false);
    let source = if literal {
        regex::escape(pattern)
    } else {
        pattern.to_owned()
    };
    let re = regex::RegexBuilder::new(&source)
        .case_insensitive(!case_sensitive)
        .size_limit(10 * 1024 * 1024)
        .build()
        .map_err(|e| invalid(format!("Invalid regex: {e}")))?;
    let include = match str_arg(args, "include").trim() {
        "" => None,
        g => Some(matcher(g, true)?),
    };
    let included = |rel: &str, name: &str| {
        include
            .as_ref()
            .is_none_or(|m| m.is_match(rel) || m.is_match(name))
    };
    let mut found = Found {
        lines: Vec::new(),
        max,
        truncated: false,
    };
    let mut notices = String::new();
    match base {
        Node::File(file, stamp) => {
            let name = loc
                .full
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if included("", &name) {
                found.search(file, stamp, &loc.display, &re);
            }
        }
        Node::Dir(fd) => {
            let mut cancelled = false;
            // Files are opened through their directory's handle (no symlink followed), so a
            // directory swapped after being listed cannot redirect a read outside.
            let end = walk(fd, &walk_options(include_hidden), |v| {
                if cancel.is_cancelled() {
                    cancelled = true;
                    return ControlFlow::Break(());
                }
                if v.kind != Kind::File || !included(v.rel, &v.name_lossy()) {
                    return ControlFlow::Continue(());
                }
                let shown = display_path(env, &loc.full.join(v.rel));
                let Ok((file, stamp)) = open_file_at(v.dir, v.name, &shown) else {
                    return ControlFlow::Continue(());
                };
                if found.search(file, stamp, &shown, &re) {
                    ControlFlow::Continue(())
                } else {
                    ControlFlow::Break(())
                }
            });
            if cancelled {
                return Err(failed("grep was cancelled"));
            }
            if !found.truncated {
                notices = walk_notices(&end);
            }
        }
    }
    if found.lines.is_empty() {
        return Ok(ToolOutput::ok(format!(
            "No matches for '{pattern}' in {}{notices}",
            loc.display
        )));
    }
    let mut text = found.lines.join("\n");
    if found.truncated {
        text.push_str(&format!("\n... results truncated at {max}"));
    }
    text.push_str(&notices);
    Ok(ToolOutput::ok(truncate_chars(&text)))
}
