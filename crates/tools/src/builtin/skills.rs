//! Skills (`<skills_dir>/<name>/SKILL.md` with optional YAML front matter) and `load_skill`.
//!
//! `SKILL.md` files are opened beneath a handle on the skills directory (a skill, or its
//! `SKILL.md`, that is a symlink leading outside is refused), must be regular files of at most
//! [`MAX_SKILL_BYTES`], and their names and descriptions are escaped before they enter a prompt.

use std::collections::BTreeMap;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use power_loop_contracts::{Error, ErrorCode, Result, ToolDefinition, ToolOutput};

use super::failed;
use super::schema::{params, string_prop};
use crate::confined::FsFault;
use crate::confined::blocking::run_blocking;
use crate::confined::ops::{list_dir, open_dir, open_file_beneath, read_capped};
use crate::text::str_arg;
use crate::tool::{FnTool, tool_fn};

/// One skill.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skill {
    /// The skill's directory name (front-matter `name` is ignored).
    pub name: String,
    /// Front-matter `description`, if any.
    pub description: Option<String>,
    /// Absolute path of `SKILL.md`.
    pub path: PathBuf,
    /// The body after the front matter, trimmed.
    pub body: String,
    /// All top-level scalar front-matter keys.
    pub meta: BTreeMap<String, String>,
}

/// The largest `SKILL.md` a loader accepts, in bytes (256 KiB); a bigger one is refused.
pub(crate) const MAX_SKILL_BYTES: u64 = 256 * 1024;
/// Longest description shown in the prompt, in characters (longer ones are cut with `…`).
const MAX_PROMPT_DESCRIPTION: usize = 500;
/// Longest skill name shown in the prompt, in characters.
const MAX_PROMPT_NAME: usize = 128;

/// Loads the skills of one directory (scanned at construction; [`SkillLoader::reload`] rescans).
#[derive(Debug, Clone)]
pub struct SkillLoader {
    dir: PathBuf,
    skills: BTreeMap<String, Skill>,
    refused: BTreeMap<String, String>,
}

/// Zero-width, direction-override and other invisible formatting characters.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{2069}'
            | '\u{feff}'
            | '\u{85}'
    )
}

/// Makes untrusted text safe to put on one line of a prompt or inside an attribute: control,
/// line-separator and invisible formatting characters become spaces, whitespace runs collapse,
/// `&`, `<`, `>` and `"` become character entities (so no tag or attribute can be closed), and the
/// result is cut at `max` characters.
pub(crate) fn prompt_escape(s: &str, max: usize) -> String {
    let mut out = String::new();
    let mut count = 0usize;
    let mut last_space = true;
    for c in s.chars() {
        let c = if c.is_control() || c.is_whitespace() || is_invisible(c) {
            ' '
        } else {
            c
        };
        if c == ' ' && last_space {
            continue;
        }
        last_space = c == ' ';
        if count == max {
            out.push('…');
            break;
        }
        count += 1;
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    out.trim_end().to_owned()
}

/// Makes a skill body safe to put inside its `<skill>` envelope: every `<` (or a full-width or
/// small form of it) that would start a `skill` tag (`<skill`, `</skill`, any case, with
/// whitespace, invisible characters or slashes between) becomes `&lt;`, so no body can close
/// the envelope or open a fake one. All other text, markup and code included, stays exactly as
/// written.
pub(crate) fn envelope_body(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    let mut copied = 0;
    for (i, c) in body.char_indices() {
        if !matches!(c, '<' | '\u{fe64}' | '\u{ff1c}') {
            continue;
        }
        let next = i + c.len_utf8();
        let name = body[next..]
            .trim_start_matches(|c: char| c == '/' || c.is_whitespace() || is_invisible(c));
        if name
            .get(..5)
            .is_some_and(|t| t.eq_ignore_ascii_case("skill"))
        {
            out.push_str(&body[copied..i]);
            out.push_str("&lt;");
            copied = next;
        }
    }
    out.push_str(&body[copied..]);
    out
}

/// Parses the small YAML subset skill front matter uses: top-level `key: value` pairs with
/// plain, single- or double-quoted scalars, and `|` / `>` block scalars. Anything else
/// (nested maps, lists) is skipped.
pub(crate) fn parse_front_matter(yaml: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let lines: Vec<&str> = yaml.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        i += 1;
        if line.trim().is_empty()
            || line.trim_start().starts_with('#')
            || line.starts_with([' ', '\t', '-'])
        {
            continue;
        }
        let Some((key, rest)) = line.split_once(':') else {
            continue;
        };
        let key = key.trim().to_owned();
        let rest = rest.trim();
        if rest.starts_with('|') || rest.starts_with('>') {
            let folded = rest.starts_with('>');
            let mut block = Vec::new();
            while i < lines.len()
                && (lines[i].starts_with([' ', '\t']) || lines[i].trim().is_empty())
            {
                block.push(lines[i].trim());
                i += 1;
            }
            while block.last().is_some_and(|l| l.is_empty()) {
                block.pop();
            }
            out.insert(key, block.join(if folded { " " } else { "\n" }));
            continue;
        }
        let value = if let Some(v) = rest.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            v.replace("\\\"", "\"")
                .replace("\\n", "\n")
                .replace("\\\\", "\\")
        } else if let Some(v) = rest.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
            v.replace("''", "'")
        } else {
            // strip a trailing comment
            match rest.find(" #") {
                Some(p) => rest[..p].trim().to_owned(),
                None => rest.to_owned(),
            }
        };
        out.insert(key, value);
    }
    out
}

/// Splits `SKILL.md` text into (front matter, body).
pub(crate) fn split_front_matter(text: &str) -> (BTreeMap<String, String>, String) {
    let t = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = t.split_inclusive('\n');
    if lines.next().map(str::trim_end) == Some("---") {
        let mut yaml = String::new();
        let mut consumed = t.find('\n').map_or(t.len(), |p| p + 1);
        for l in lines {
            consumed += l.len();
            if l.trim_end() == "---" {
                return (parse_front_matter(&yaml), t[consumed..].trim().to_owned());
            }
            yaml.push_str(l);
        }
    }
    (BTreeMap::new(), t.trim().to_owned())
}

impl SkillLoader {
    /// Scans `dir` (must exist).
    pub fn new(dir: impl AsRef<Path>) -> Result<Self> {
        let given = dir.as_ref();
        let dir = std::fs::canonicalize(given)
            .ok()
            .filter(|d| d.is_dir())
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::RuntimeEnvMissing,
                    format!("Skills directory does not exist: {}", given.display()),
                )
            })?;
        let mut l = SkillLoader {
            dir,
            skills: BTreeMap::new(),
            refused: BTreeMap::new(),
        };
        l.reload();
        Ok(l)
    }

    /// Rescans the directory. A skill whose `SKILL.md` resolves outside the directory, is not a
    /// regular file, or is larger than 256 KiB is left out and listed by [`SkillLoader::refused`].
    pub fn reload(&mut self) {
        self.skills.clear();
        self.refused.clear();
        let Ok(root) = open_dir(&self.dir, "the skills directory") else {
            return;
        };
        let Ok(entries) = list_dir(&root, "the skills directory") else {
            return;
        };
        for (_, name, _) in entries {
            if name.contains('\u{fffd}') {
                continue; // not valid UTF-8: cannot be named by the model
            }
            let rel = Path::new(&name).join("SKILL.md");
            let shown = format!("skill {}", prompt_escape(&name, MAX_PROMPT_NAME));
            let text = open_file_beneath(root.as_fd(), &self.dir, &rel, &shown).and_then(
                |(mut f, stamp)| {
                    if stamp.size() > MAX_SKILL_BYTES {
                        return Err(FsFault::TooLarge.error(format!(
                            "{shown} is refused: its SKILL.md has {} bytes, more than the {MAX_SKILL_BYTES} allowed",
                            stamp.size()
                        )));
                    }
                    read_capped(&mut f, Some(MAX_SKILL_BYTES), &shown)
                },
            );
            let text = match text {
                Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                Err(e) => {
                    let reason = e.detail("reason").and_then(|r| r.as_str());
                    let absent = [FsFault::NotFound.reason(), FsFault::NotDirectory.reason()];
                    if !reason.is_some_and(|r| absent.contains(&r)) {
                        self.refused.insert(name, e.message().to_owned());
                    }
                    continue;
                }
            };
            let (meta, body) = split_front_matter(&text);
            let path = self.dir.join(&rel);
            self.skills.insert(
                name.clone(),
                Skill {
                    name,
                    description: meta.get("description").cloned().filter(|d| !d.is_empty()),
                    path,
                    body,
                    meta,
                },
            );
        }
    }

    /// Skills left out by the last scan, by directory name, with the reason (a `SKILL.md`
    /// resolving outside the skills directory, not a regular file, or over 256 KiB).
    pub fn refused(&self) -> &BTreeMap<String, String> {
        &self.refused
    }

    /// Skill names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.skills.keys().cloned().collect()
    }

    /// A skill by name.
    pub fn get(&self, name: &str) -> Option<&Skill> {
        self.skills.get(name)
    }

    /// `Available skills:` with `  - name: description` lines, or `(no skills available)`.
    /// Names and descriptions are escaped: one line each, no markup.
    pub fn descriptions(&self) -> String {
        if self.skills.is_empty() {
            return "(no skills available)".to_owned();
        }
        let mut out = "Available skills:".to_owned();
        for s in self.skills.values() {
            out.push_str(&format!(
                "\n  - {}: {}",
                prompt_escape(&s.name, MAX_PROMPT_NAME),
                prompt_escape(
                    s.description.as_deref().unwrap_or("No description"),
                    MAX_PROMPT_DESCRIPTION
                )
            ));
        }
        out
    }

    /// The system-prompt section listing the skills (empty when there are none).
    pub fn system_prompt_section(&self) -> String {
        if self.skills.is_empty() {
            return String::new();
        }
        format!(
            "## Available Skills\nCall the `load_skill` tool with a skill name to load its full instructions.\n\n{}",
            self.descriptions()
        )
    }

    /// The skill wrapped in its `<skill>` envelope. The body cannot end the envelope early (see
    /// the escaping of `skill` tags), and the name and paths in the header are escaped.
    pub fn content(
        &self,
        name: &str,
        workspace: Option<&Path>,
        home: Option<&Path>,
    ) -> Result<String> {
        let Some(s) = self.skills.get(name) else {
            if let Some(why) = self.refused.get(name) {
                return Err(Error::new(ErrorCode::ToolDenied, why.clone())
                    .with_detail("reason", "skill.refused"));
            }
            let names: Vec<String> = self
                .skills
                .keys()
                .map(|n| prompt_escape(n, MAX_PROMPT_NAME))
                .collect();
            return Err(failed(format!(
                "Unknown skill '{}'. Available: {}",
                prompt_escape(name, MAX_PROMPT_NAME),
                names.join(", ")
            )));
        };
        let root = s.path.parent().unwrap_or(&self.dir);
        let show = |p: Option<&Path>| {
            p.map_or_else(
                || "(not configured)".to_owned(),
                |p| prompt_escape(&p.display().to_string(), 4096),
            )
        };
        Ok(format!(
            "<skill name=\"{name}\" path=\"{path}\">\nSource: {path}\n\n[Execution Context]\n- Workspace: {ws}\n- Runtime home: {home}\n- Skill root: {root}\n1. Run commands that use skill-relative paths from the skill root.\n2. Prefer absolute paths when referring to skill files.\n3. Write outputs into the workspace, not into the skill directory.\n4. Do not search outside the workspace or the skill root unless asked.\n\n{body}\n</skill>",
            name = prompt_escape(name, MAX_PROMPT_NAME),
            path = prompt_escape(&s.path.display().to_string(), 4096),
            ws = show(workspace),
            home = show(home),
            root = show(Some(root)),
            body = envelope_body(&s.body)
        ))
    }
}

/// `load_skill` (rescans the skills directory on every call).
pub(crate) fn load_skill_tool() -> FnTool {
    let def = ToolDefinition::new(
        "load_skill",
        "Load the full instructions of a skill by name.",
        params(
            &[("name", string_prop("Skill name (its directory name)."))],
            &["name"],
        ),
    );
    tool_fn(def, |ctx, args| async move {
        let (timeout, cancel) = (ctx.env.file_timeout(), ctx.cancel.clone());
        run_blocking("load_skill", timeout, &cancel, move || {
            let dir = ctx.env.require_skills_dir()?;
            let loader = SkillLoader::new(dir)?;
            let name = str_arg(&args, "name").trim();
            let text = loader.content(
                name,
                ctx.env.workspace_dir.as_deref(),
                ctx.env.home_dir.as_deref(),
            )?;
            Ok(ToolOutput::ok(text))
        })
        .await
    })
    .concurrent(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn front_matter() {
        let (m, body) = split_front_matter(
            "---\nname: x\ndescription: \"Does: things\"\nother: |\n  a\n  b\n---\n\n# Body\ntext\n",
        );
        assert_eq!(m.get("description").unwrap(), "Does: things");
        assert_eq!(m.get("other").unwrap(), "a\nb");
        assert_eq!(body, "# Body\ntext");
        let (m, body) = split_front_matter("no front matter\n");
        assert!(m.is_empty());
        assert_eq!(body, "no front matter");
        let (m, _) = split_front_matter("---\ndescription: plain words # c\n---\nb");
        assert_eq!(m.get("description").unwrap(), "plain words");
    }

    #[test]
    fn envelope_body_escapes_only_skill_tags() {
        assert_eq!(
            envelope_body("a</skill>b< / SKILL >c<skill x>d<Skills>"),
            "a&lt;/skill>b&lt; / SKILL >c&lt;skill x>d&lt;Skills>"
        );
        let code = "Vec<String> <div>x</div> a < b && c</ski <";
        assert_eq!(envelope_body(code), code);
        assert_eq!(
            envelope_body("é<\u{a0}/\u{200b}skill>＜/skill>//</</skill"),
            "é&lt;\u{a0}/\u{200b}skill>&lt;/skill>//</&lt;/skill"
        );
    }
}
