//! `edit_file` and `apply_patch`.

use power_loop_contracts::{Result, ToolDefinition, ToolOutput};

use super::diff::unified_diff;
use super::schema::{boolean_prop, params, string_prop};
use super::{FileCall, SharedRef, Stamp, blocking_file_tool, failed, invalid, looks_binary};
use crate::confined::FsFault;
use crate::confined::ops::{Node, open_node, read_capped, write_atomic};
use crate::paths::Located;
use crate::pyrepr::repr_str;
use crate::text::{bool_arg, plural, str_arg};
use crate::tool::{FnTool, ToolContext};

/// A text file loaded for modification, normalized to LF without BOM.
struct Loaded {
    loc: Located,
    /// The file's stamp when it was loaded; the save refuses if it changed meanwhile.
    stamp: Stamp,
    display: String,
    bom: bool,
    ending: &'static str,
    text: String,
}

fn load_for_edit(shared: &SharedRef, ctx: &ToolContext, loc: Located) -> Result<Loaded> {
    let display = loc.display.clone();
    let (mut file, stamp) = match open_node(&loc) {
        Ok(Node::File(f, s)) => (f, s),
        Ok(Node::Dir(_)) => {
            return Err(FsFault::IsDirectory.error(format!("{display} is a directory, not a file")));
        }
        Err(e)
            if e.detail("reason").and_then(|r| r.as_str()) == Some(FsFault::NotFound.reason()) =>
        {
            return Err(FsFault::NotFound.error(format!(
                "{display} does not exist; use write_file to create it"
            )));
        }
        Err(e) => return Err(e),
    };
    shared
        .stamps
        .check(&ctx.session_id, &loc.full, stamp, &display, "modifying")?;
    let bytes = read_capped(&mut file, None, &display)?;
    if looks_binary(&bytes) {
        return Err(failed(format!(
            "Refusing to edit binary-looking file: {display}"
        )));
    }
    let text = String::from_utf8(bytes).map_err(|_| {
        failed(format!(
            "{display} is not valid UTF-8; refusing to modify it (it would be corrupted)"
        ))
    })?;
    let (bom, body) = match text.strip_prefix('\u{feff}') {
        Some(rest) => (true, rest),
        None => (false, text.as_str()),
    };
    let crlf = body.matches("\r\n").count();
    let cr = body.matches('\r').count() - crlf;
    let lf = body.matches('\n').count() - crlf;
    let ending = if crlf > 0 && crlf >= lf && crlf >= cr {
        "\r\n"
    } else if cr > lf {
        "\r"
    } else {
        "\n"
    };
    let text = normalize(body);
    Ok(Loaded {
        loc,
        stamp,
        display,
        bom,
        ending,
        text,
    })
}

fn normalize(s: &str) -> String {
    s.replace("\r\n", "\n").replace('\r', "\n")
}

fn save(shared: &SharedRef, ctx: &ToolContext, f: &Loaded, new_text: &str) -> Result<()> {
    let mut out = String::new();
    if f.bom {
        out.push('\u{feff}');
    }
    if f.ending == "\n" {
        out.push_str(new_text);
    } else {
        out.push_str(&new_text.replace('\n', f.ending));
    }
    let written = write_atomic(&f.loc, out.as_bytes(), |current| {
        if current == Some(f.stamp) {
            Ok(())
        } else {
            Err(failed(format!(
                "File changed while it was being modified. Re-read it and try again: {}",
                f.display
            )))
        }
    })?;
    shared
        .stamps
        .record(&ctx.session_id, &f.loc.full, written.after);
    Ok(())
}

fn diff_of(before: &str, after: &str) -> String {
    let a: Vec<&str> = before.split('\n').collect();
    let b: Vec<&str> = after.split('\n').collect();
    unified_diff(&a, &b)
}

fn fuzzy(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\u{2018}' | '\u{2019}' | '\u{201a}' | '\u{201b}' | '\u{2032}' => '\'',
            '\u{201c}' | '\u{201d}' | '\u{201e}' | '\u{201f}' | '\u{2033}' => '"',
            '\u{2010}'..='\u{2015}' | '\u{2212}' => '-',
            '\u{a0}' | '\u{2000}'..='\u{200a}' | '\u{202f}' | '\u{205f}' | '\u{3000}' => ' ',
            c => c,
        })
        .collect()
}

/// `edit_file`.
pub(crate) fn edit_file_tool(shared: SharedRef) -> FnTool {
    let def = ToolDefinition::new(
        "edit_file",
        "Replace an exact snippet of a workspace file (read it first). old_text must match exactly once unless replace_all is true.",
        params(
            &[
                ("path", string_prop("File path, relative to the workspace.")),
                ("old_text", string_prop("Exact text to replace.")),
                ("new_text", string_prop("Replacement text.")),
                (
                    "replace_all",
                    boolean_prop("Replace every occurrence (default false)."),
                ),
            ],
            &["path", "old_text", "new_text"],
        ),
    );
    blocking_file_tool(def, shared, edit_file)
}

fn edit_file(call: FileCall<'_>) -> Result<ToolOutput> {
    let (shared, ctx, args, loc) = (call.shared, call.ctx, call.args, call.loc);
    let raw_path = str_arg(args, "path");
    let f = load_for_edit(shared, ctx, loc)?;
    let old = normalize(str_arg(args, "old_text"));
    let new = normalize(str_arg(args, "new_text"));
    if old.is_empty() {
        return Err(invalid("old_text must not be empty."));
    }
    if old == new {
        return Err(invalid("old_text and new_text are identical."));
    }
    let replace_all = bool_arg(args, "replace_all", false);
    let positions: Vec<usize> = f.text.match_indices(&old).map(|(i, _)| i).collect();
    if positions.is_empty() {
        if fuzzy(&f.text).contains(&fuzzy(&old)) {
            return Err(failed(format!(
                "Text was only found after fuzzy normalization (quotes/dashes/spaces differ) in {raw_path}. Use read_file and provide the exact current text to avoid unintended edits."
            )));
        }
        return Err(failed(format!(
            "Text not found in {raw_path}. Use read_file and provide a larger exact snippet."
        )));
    }
    if positions.len() > 1 && !replace_all {
        let lines: Vec<String> = positions
            .iter()
            .take(5)
            .map(|&p| (f.text[..p].matches('\n').count() + 1).to_string())
            .collect();
        return Err(failed(format!(
            "old_text matches {} locations in {raw_path} (first lines: {}). Provide more surrounding context to make it unique, or set replace_all=true.",
            positions.len(),
            lines.join(", ")
        )));
    }
    let (after, n, mode) = if replace_all {
        (f.text.replace(&old, &new), positions.len(), "replace_all")
    } else {
        (f.text.replacen(&old, &new, 1), 1, "exact")
    };
    save(shared, ctx, &f, &after)?;
    Ok(ToolOutput::ok(format!(
        "Edited {} ({mode}, {n} replacement{})\n{}",
        f.display,
        plural(n),
        diff_of(&f.text, &after)
    )))
}

#[derive(Debug, Default)]
struct Hunk {
    old_start: Option<usize>,
    anchor: Option<String>,
    /// (' ' | '-' | '+', text)
    lines: Vec<(char, String)>,
}

fn parse_patch(patch: &str) -> Vec<Hunk> {
    let header = regex::Regex::new(r"^@@ -(\d+)(?:,\d+)? \+\d+(?:,\d+)? @@").ok();
    let mut hunks: Vec<Hunk> = Vec::new();
    let mut cur: Option<Hunk> = None;
    for line in normalize(patch).split('\n') {
        if [
            "--- ",
            "+++ ",
            "diff --git ",
            "index ",
            "new file mode ",
            "deleted file mode ",
        ]
        .iter()
        .any(|p| line.starts_with(p))
        {
            continue;
        }
        if let Some(rest) = line.strip_prefix("@@") {
            if let Some(h) = cur.take() {
                hunks.push(h);
            }
            let mut h = Hunk::default();
            match header.as_ref().and_then(|re| re.captures(line)) {
                Some(c) => h.old_start = c.get(1).and_then(|m| m.as_str().parse().ok()),
                None => {
                    let a = rest.trim().trim_end_matches("@@").trim();
                    if !a.is_empty() {
                        h.anchor = Some(a.to_owned());
                    }
                }
            }
            cur = Some(h);
            continue;
        }
        let Some(h) = cur.as_mut() else { continue };
        let mut chars = line.chars();
        if let Some(c @ (' ' | '-' | '+')) = chars.next() {
            h.lines.push((c, chars.as_str().to_owned()))
        }
    }
    if let Some(h) = cur {
        hunks.push(h);
    }
    hunks.retain(|h| h.lines.iter().any(|(c, _)| *c != ' '));
    hunks
}

fn line_eq(a: &str, b: &str) -> bool {
    a == b || a.trim_end() == b.trim_end()
}

fn find_seq(lines: &[&str], seq: &[&str], from: usize) -> Vec<usize> {
    if seq.is_empty() || seq.len() > lines.len() {
        return Vec::new();
    }
    (from..=lines.len() - seq.len())
        .filter(|&i| {
            seq.iter()
                .enumerate()
                .all(|(k, s)| line_eq(lines[i + k], s))
        })
        .take(2)
        .collect()
}

/// `apply_patch`.
pub(crate) fn apply_patch_tool(shared: SharedRef) -> FnTool {
    let def = ToolDefinition::new(
        "apply_patch",
        "Apply unified-diff hunks (@@ -a,b +c,d @@ with ' ' context, '-' removed and '+' added lines) to one workspace file (read it first).",
        params(
            &[
                ("path", string_prop("File path, relative to the workspace.")),
                ("patch", string_prop("Unified diff hunks for this file.")),
            ],
            &["path", "patch"],
        ),
    );
    blocking_file_tool(def, shared, apply_patch)
}

fn apply_patch(call: FileCall<'_>) -> Result<ToolOutput> {
    let (shared, ctx, args, loc) = (call.shared, call.ctx, call.args, call.loc);
    let raw_path = str_arg(args, "path");
    let f = load_for_edit(shared, ctx, loc)?;
    let hunks = parse_patch(str_arg(args, "patch"));
    if hunks.is_empty() {
        return Err(invalid(
            "No valid hunks found. Use unified diff hunks like '@@ -1,2 +1,2 @@' with space/context, -delete, and +add lines.",
        ));
    }
    let mut lines: Vec<String> = f.text.split('\n').map(str::to_owned).collect();
    let mut cursor = 0usize;
    for (idx, h) in hunks.iter().enumerate() {
        let i = idx + 1;
        let old_seq: Vec<&str> = h
            .lines
            .iter()
            .filter(|(c, _)| *c != '+')
            .map(|(_, t)| t.as_str())
            .collect();
        let view: Vec<&str> = lines.iter().map(String::as_str).collect();
        let mut search_from = match h.old_start {
            Some(a) => a.saturating_sub(1).min(view.len()),
            None => cursor,
        };
        if let (Some(anchor), true) = (&h.anchor, old_seq.is_empty()) {
            let hits: Vec<usize> = (cursor..view.len())
                .filter(|&k| view[k].trim() == anchor.trim() || view[k].contains(anchor.as_str()))
                .take(2)
                .collect();
            match hits.as_slice() {
                [] => {
                    return Err(failed(format!(
                        "Could not locate anchor for hunk {i} in {raw_path}: {}",
                        repr_str(anchor)
                    )));
                }
                [one] => search_from = one + 1,
                _ => {
                    return Err(failed(format!(
                        "Anchor for hunk {i} is ambiguous in {raw_path}: {}",
                        repr_str(anchor)
                    )));
                }
            }
        }
        let pos = if old_seq.is_empty() {
            search_from
        } else {
            let mut hits = find_seq(&view, &old_seq, search_from);
            if hits.is_empty() && h.old_start.is_some() {
                hits = find_seq(&view, &old_seq, cursor);
            }
            match hits.as_slice() {
                [] => {
                    let first: Vec<&str> = old_seq.iter().take(5).copied().collect();
                    return Err(failed(format!(
                        "Could not locate original lines for hunk {i} in {raw_path}. First expected lines:\n{}",
                        first.join("\\n")
                    )));
                }
                [one] => *one,
                _ => {
                    return Err(failed(format!(
                        "Hunk {i} matches multiple locations in {raw_path}. Add more context lines."
                    )));
                }
            }
        };
        let mut replacement: Vec<String> = Vec::new();
        let mut k = pos;
        for (c, t) in &h.lines {
            match c {
                ' ' => {
                    replacement.push(view.get(k).map_or_else(|| t.clone(), |s| (*s).to_owned()));
                    k += 1;
                }
                '-' => k += 1,
                _ => replacement.push(t.clone()),
            }
        }
        let consumed = old_seq.len();
        let end = (pos + consumed).min(lines.len());
        let rlen = replacement.len();
        lines.splice(pos..end, replacement);
        cursor = pos + rlen;
    }
    let after = lines.join("\n");
    if after == f.text {
        return Ok(ToolOutput::ok(format!(
            "No changes applied to {}.",
            f.display
        )));
    }
    save(shared, ctx, &f, &after)?;
    Ok(ToolOutput::ok(format!(
        "Patched {} ({} hunk{})\n{}",
        f.display,
        hunks.len(),
        plural(hunks.len()),
        diff_of(&f.text, &after)
    )))
}
