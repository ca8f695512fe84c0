//! `glob` and `grep`, implemented natively (no ripgrep needed).

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use globset::{GlobBuilder, GlobMatcher};
use power_loop_contracts::{CancellationToken, Result, ToolDefinition, ToolOutput};
use serde_json::json;

use super::{failed, invalid};
use crate::confined::ops::{open_dir, open_file_beneath, read_capped};
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
const MAX_WALK: usize = 500_000;
const MAX_GREP_FILE: u64 = 5 * 1024 * 1024;

fn matcher(pattern: &str, cross_slash: bool) -> Result<GlobMatcher> {
    GlobBuilder::new(pattern)
        .literal_separator(!cross_slash)
        .backslash_escape(true)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|e| invalid(format!("invalid glob pattern {pattern:?}: {e}")))
}

fn rel_posix(base: &Path, p: &Path) -> String {
    p.strip_prefix(base)
        .unwrap_or(p)
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

fn walker(base: &Path, include_hidden: bool) -> impl Iterator<Item = walkdir::DirEntry> {
    walkdir::WalkDir::new(base)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(move |e| {
            if e.depth() == 0 {
                return true;
            }
            let name = e.file_name().to_string_lossy();
            if e.file_type().is_dir() && SKIP_DIRS.contains(&name.as_ref()) {
                return false;
            }
            include_hidden || !name.starts_with('.')
        })
        .filter_map(|e| e.ok())
        .filter(|e| e.depth() > 0)
        .take(MAX_WALK)
}

fn base_dir(env: &RuntimeEnv, raw: &str) -> Result<Located> {
    let raw = if raw.trim().is_empty() { "." } else { raw };
    locate(env, raw)
}

/// `glob`.
pub(crate) fn glob_tool() -> FnTool {
    let def = ToolDefinition::new(
        "glob",
        "Find files by glob pattern (e.g. '*.rs', 'src/**/*.ts'), newest first. Bare names search recursively.",
        json!({
            "type": "object",
            "properties": {
                "pattern": {"type": "string", "description": "Glob pattern."},
                "path": {"type": "string", "description": "Base directory (default '.')."},
                "max_results": {"type": "integer", "description": "Maximum results (default 100, max 500)."},
                "include_hidden": {"type": "boolean", "description": "Include dot-files and dot-directories (default false)."}
            },
            "required": ["pattern"]
        }),
    );
    tool_fn(def, |ctx, args| async move {
        let env = ctx.env.clone();
        let cancel = ctx.cancel.clone();
        tokio::task::spawn_blocking(move || glob(&env, &args, &cancel))
            .await
            .map_err(|e| failed(format!("glob worker failed: {e}")))?
    })
    .concurrent(true)
}

fn glob(
    env: &RuntimeEnv,
    args: &serde_json::Value,
    cancel: &CancellationToken,
) -> Result<ToolOutput> {
    let base = base_dir(env, str_arg(args, "path"))?.full;
    let shown_base = display_path(env, &base);
    if !base.is_dir() {
        return Err(failed(format!("{shown_base} is not a directory")));
    }
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
    let mut hits: Vec<(SystemTime, PathBuf)> = Vec::new();
    for e in walker(&base, include_hidden) {
        if cancel.is_cancelled() {
            return Err(failed("glob was cancelled"));
        }
        let rel = rel_posix(&base, e.path());
        if matchers.iter().any(|m| m.is_match(&rel)) {
            let mtime = e
                .metadata()
                .ok()
                .and_then(|m| m.modified().ok())
                .unwrap_or(SystemTime::UNIX_EPOCH);
            hits.push((mtime, e.into_path()));
        }
    }
    if hits.is_empty() {
        return Ok(ToolOutput::ok(format!(
            "No files matching '{effective}' in {shown_base}"
        )));
    }
    hits.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let mut out = format!("[searched in: {shown_base}]");
    for (_, p) in hits.iter().take(max) {
        out.push('\n');
        out.push_str(&display_path(env, p));
    }
    if hits.len() > max {
        out.push_str(&format!("\n... and {} more", hits.len() - max));
    }
    Ok(ToolOutput::ok(truncate_chars(&out)))
}

/// `grep`.
pub(crate) fn grep_tool() -> FnTool {
    let def = ToolDefinition::new(
        "grep",
        "Search file contents with a regular expression (or a literal string); prints path:line:text.",
        json!({
            "type": "object",
            "properties": {
                "pattern": {"type": "string", "description": "Regular expression (Rust regex syntax) or literal text."},
                "path": {"type": "string", "description": "File or directory to search (default '.')."},
                "include": {"type": "string", "description": "Only files matching this glob (e.g. '*.rs')."},
                "max_results": {"type": "integer", "description": "Maximum matching lines (default 50, max 500)."},
                "literal": {"type": "boolean", "description": "Treat pattern as literal text (default false)."},
                "case_sensitive": {"type": "boolean", "description": "Default true."},
                "include_hidden": {"type": "boolean", "description": "Search dot-files too (default false)."}
            },
            "required": ["pattern"]
        }),
    );
    tool_fn(def, |ctx, args| async move {
        let env = ctx.env.clone();
        let cancel = ctx.cancel.clone();
        tokio::task::spawn_blocking(move || grep(&env, &args, &cancel))
            .await
            .map_err(|e| failed(format!("grep worker failed: {e}")))?
    })
    .concurrent(true)
}

fn grep(
    env: &RuntimeEnv,
    args: &serde_json::Value,
    cancel: &CancellationToken,
) -> Result<ToolOutput> {
    let raw_path = str_arg(args, "path");
    let loc = base_dir(env, raw_path)?;
    let base = loc.full.clone();
    if !base.exists() {
        return Err(failed(format!(
            "path does not exist: {}",
            if raw_path.is_empty() { "." } else { raw_path }
        )));
    }
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
    let files: Box<dyn Iterator<Item = PathBuf>> = if base.is_file() {
        Box::new(std::iter::once(base.clone()))
    } else {
        Box::new(
            walker(&base, include_hidden)
                .filter(|e| e.file_type().is_file())
                .map(walkdir::DirEntry::into_path),
        )
    };
    let root = open_dir(&loc.root, &display_path(env, &loc.root))?;
    let mut out: Vec<String> = Vec::new();
    let mut truncated = false;
    'files: for file in files {
        if cancel.is_cancelled() {
            return Err(failed("grep was cancelled"));
        }
        if let Some(m) = &include {
            let rel = rel_posix(&base, &file);
            let name = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if !m.is_match(&rel) && !m.is_match(&name) {
                continue;
            }
        }
        // Read beneath a handle on the root: a directory on the way swapped for a symlink
        // after the walk listed it cannot redirect the read outside.
        let Ok(rel) = file.strip_prefix(&loc.root) else {
            continue;
        };
        let shown = display_path(env, &file);
        let Ok((mut handle, stamp)) = open_file_beneath(root.as_fd(), &loc.root, rel, &shown)
        else {
            continue;
        };
        if stamp.size() > MAX_GREP_FILE {
            continue;
        }
        let Ok(bytes) = read_capped(&mut handle, Some(MAX_GREP_FILE), &shown) else {
            continue;
        };
        if bytes[..bytes.len().min(8192)].contains(&0) {
            continue;
        }
        let text = String::from_utf8_lossy(&bytes);
        for (i, line) in text.split('\n').enumerate() {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if re.is_match(line) {
                if out.len() == max {
                    truncated = true;
                    break 'files;
                }
                out.push(format!("{shown}:{}:{}", i + 1, line.trim_end()));
            }
        }
    }
    if out.is_empty() {
        return Ok(ToolOutput::ok(format!(
            "No matches for '{pattern}' in {}",
            display_path(env, &base)
        )));
    }
    let mut text = out.join("\n");
    if truncated {
        text.push_str(&format!("\n... results truncated at {max}"));
    }
    Ok(ToolOutput::ok(truncate_chars(&text)))
}
