//! `read_file` and `write_file`.

use std::fmt::Write as _;

use power_loop_contracts::{Result, ToolDefinition, ToolOutput};

use super::schema::{boolean_prop, integer_prop, params, string_prop};
use super::{FileCall, SharedRef, blocking_file_tool, failed, looks_binary};
use crate::confined::FsFault;
use crate::confined::ops::{Node, list_dir, open_node, read_capped, write_atomic};
use crate::paths::io_why;
use crate::text::{bool_arg, int_arg, splitlines, str_arg, truncate_chars};
use crate::tool::FnTool;

const MAX_TEXT_BYTES: u64 = 5 * 1024 * 1024;
const MAX_DIR_ENTRIES: usize = 200;

/// `read_file`.
pub(crate) fn read_file_tool(shared: SharedRef) -> FnTool {
    let def = ToolDefinition::new(
        "read_file",
        "Read a text file of the workspace with line numbers (or list a directory). Use offset/limit to page through large files.",
        params(
            &[
                (
                    "path",
                    string_prop("File or directory path, relative to the workspace."),
                ),
                ("offset", integer_prop("1-based first line (default 1).")),
                (
                    "limit",
                    integer_prop("Maximum lines to return (default 2000, max 20000)."),
                ),
            ],
            &["path"],
        ),
    );
    blocking_file_tool(def, shared, read_file).concurrent(true)
}

fn list_dir_output(dir: &std::os::fd::OwnedFd, display: &str) -> Result<ToolOutput> {
    let mut entries = list_dir(dir, display)?;
    entries.sort_by(|a, b| {
        b.0.cmp(&a.0)
            .then_with(|| a.1.to_lowercase().cmp(&b.1.to_lowercase()))
    });
    let mut out = format!("Directory: {display}/");
    for (is_dir, name, size) in entries.iter().take(MAX_DIR_ENTRIES) {
        if *is_dir {
            let _ = write!(out, "\n  d {name}");
        } else {
            match size {
                Some(s) => {
                    let _ = write!(out, "\n  f {name} ({s} bytes)");
                }
                None => {
                    let _ = write!(out, "\n  f {name} (size unavailable)");
                }
            }
        }
    }
    if entries.len() > MAX_DIR_ENTRIES {
        let _ = write!(
            out,
            "\n  ... and {} more entries",
            entries.len() - MAX_DIR_ENTRIES
        );
    }
    Ok(ToolOutput::ok(out))
}

fn read_file(call: FileCall<'_>) -> Result<ToolOutput> {
    let (shared, ctx, args, loc) = (call.shared, call.ctx, call.args, call.loc);
    let display = loc.display.as_str();
    let (mut file, stamp) = match open_node(&loc)? {
        Node::Dir(fd) => return list_dir_output(&fd, display),
        Node::File(f, s) => (f, s),
    };
    let has_limit = args.get("limit").is_some_and(|v| !v.is_null());
    let too_large = |size: u64| {
        FsFault::TooLarge.error(format!(
            "File is too large to read as text ({size} bytes > {MAX_TEXT_BYTES} bytes): {display}. Use read_file with offset/limit for previews or grep/glob for targeted search."
        ))
    };
    if !has_limit && stamp.size() > MAX_TEXT_BYTES {
        return Err(too_large(stamp.size()));
    }
    let offset = int_arg(args, "offset", 1, 1, i64::MAX);
    let limit = int_arg(args, "limit", 2000, 1, 20_000);
    let start = usize::try_from(offset - 1).unwrap_or(usize::MAX);
    let limit = usize::try_from(limit).unwrap_or(2000);
    // Stream lines so a paged read of a huge file does not load it all.
    let bytes = if has_limit && stamp.size() > MAX_TEXT_BYTES {
        read_prefix_lines(file, start.saturating_add(limit), display)?
    } else {
        // Capped: the file may have grown since it was opened.
        read_capped(&mut file, Some(MAX_TEXT_BYTES), display).map_err(|e| {
            if e.detail("reason").and_then(|r| r.as_str()) == Some(FsFault::TooLarge.reason()) {
                too_large(MAX_TEXT_BYTES + 1)
            } else {
                e
            }
        })?
    };
    if looks_binary(&bytes) {
        return Err(failed(format!(
            "Refusing to read binary-looking file as text: {display}"
        )));
    }
    let text = String::from_utf8_lossy(&bytes);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let lines = splitlines(text);
    let total = lines.len();
    let end = (start.saturating_add(limit)).min(total);
    let mut out = if start >= total {
        format!(
            "({display}: {total} lines; offset {} is past the end)",
            start + 1
        )
    } else {
        format!("({display}: showing lines {}-{end} of {total})", start + 1)
    };
    if end < total && start < total {
        let _ = write!(out, " Use offset={} to continue.", end + 1);
    }
    if start >= end {
        out.push_str("\n(empty file)");
    } else {
        for (i, line) in lines[start..end].iter().enumerate() {
            let _ = write!(out, "\n{:>6}|{line}", start + i + 1);
        }
    }
    shared.stamps.record(&ctx.session_id, &loc.full, stamp);
    Ok(ToolOutput::ok(truncate_chars(&out)))
}

fn read_prefix_lines(f: std::fs::File, lines: usize, display: &str) -> Result<Vec<u8>> {
    use std::io::BufRead;
    let mut r = std::io::BufReader::new(f);
    let mut out = Vec::new();
    let mut n = 0;
    while n < lines {
        let before = out.len();
        let read = r
            .read_until(b'\n', &mut out)
            .map_err(|e| failed(format!("cannot read {display}: {}", io_why(&e))))?;
        if read == 0 || out.len() - before == 0 {
            break;
        }
        n += 1;
        if out.len() > 64 * 1024 * 1024 {
            break;
        }
    }
    Ok(out)
}

/// `write_file`.
pub(crate) fn write_file_tool(shared: SharedRef) -> FnTool {
    let def = ToolDefinition::new(
        "write_file",
        "Create or overwrite a text file in the workspace. An existing file must be read with read_file first.",
        params(
            &[
                ("path", string_prop("File path, relative to the workspace.")),
                ("content", string_prop("The full new content.")),
                (
                    "overwrite",
                    boolean_prop("Allow replacing an existing file (default true)."),
                ),
            ],
            &["path", "content"],
        ),
    );
    blocking_file_tool(def, shared, write_file)
}

fn write_file(call: FileCall<'_>) -> Result<ToolOutput> {
    let (shared, ctx, args, loc) = (call.shared, call.ctx, call.args, call.loc);
    let display = loc.display.as_str();
    let content = str_arg(args, "content");
    let overwrite = bool_arg(args, "overwrite", true);
    let written = write_atomic(&loc, content.as_bytes(), |existing| {
        if let Some(current) = existing {
            if !overwrite {
                return Err(failed(format!(
                    "File already exists and overwrite=false: {display}"
                )));
            }
            shared
                .stamps
                .check(&ctx.session_id, &loc.full, current, display, "overwriting")?;
        }
        Ok(())
    })?;
    shared
        .stamps
        .record(&ctx.session_id, &loc.full, written.after);
    let old_size = written.before.map(|s| s.size());
    let lines = splitlines(content).len();
    let how = match old_size {
        None => "(new file)".to_owned(),
        Some(s) => format!("(overwritten, was {s} bytes)"),
    };
    Ok(ToolOutput::ok(format!(
        "Wrote {} bytes ({lines} lines) to {display} {how}",
        content.len()
    )))
}
