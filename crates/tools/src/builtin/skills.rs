//! Skills (`<skills_dir>/<name>/SKILL.md` with optional YAML front matter) and `load_skill`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use power_loop_contracts::{Error, ErrorCode, Result, ToolDefinition, ToolOutput};
use serde_json::json;

use super::failed;
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

/// Loads the skills of one directory (scanned at construction; [`SkillLoader::reload`] rescans).
#[derive(Debug, Clone)]
pub struct SkillLoader {
    dir: PathBuf,
    skills: BTreeMap<String, Skill>,
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
        let dir = dir.as_ref().to_path_buf();
        if !dir.is_dir() {
            return Err(Error::new(
                ErrorCode::RuntimeEnvMissing,
                format!("Skills directory does not exist: {}", dir.display()),
            ));
        }
        let mut l = SkillLoader {
            dir,
            skills: BTreeMap::new(),
        };
        l.reload();
        Ok(l)
    }

    /// Rescans the directory.
    pub fn reload(&mut self) {
        self.skills.clear();
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for e in rd.filter_map(|e| e.ok()) {
            let path = e.path().join("SKILL.md");
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let name = e.file_name().to_string_lossy().into_owned();
            let (meta, body) = split_front_matter(&text);
            let path = std::fs::canonicalize(&path).unwrap_or(path);
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

    /// Skill names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.skills.keys().cloned().collect()
    }

    /// A skill by name.
    pub fn get(&self, name: &str) -> Option<&Skill> {
        self.skills.get(name)
    }

    /// `Available skills:` with `  - name: description` lines, or `(no skills available)`.
    pub fn descriptions(&self) -> String {
        if self.skills.is_empty() {
            return "(no skills available)".to_owned();
        }
        let mut out = "Available skills:".to_owned();
        for s in self.skills.values() {
            out.push_str(&format!(
                "\n  - {}: {}",
                s.name,
                s.description.as_deref().unwrap_or("No description")
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

    /// The skill wrapped in its `<skill>` envelope.
    pub fn content(
        &self,
        name: &str,
        workspace: Option<&Path>,
        home: Option<&Path>,
    ) -> Result<String> {
        let Some(s) = self.skills.get(name) else {
            return Err(failed(format!(
                "Unknown skill '{name}'. Available: {}",
                self.names().join(", ")
            )));
        };
        let root = s.path.parent().unwrap_or(&self.dir);
        let show = |p: Option<&Path>| {
            p.map_or_else(
                || "(not configured)".to_owned(),
                |p| p.display().to_string(),
            )
        };
        Ok(format!(
            "<skill name=\"{name}\" path=\"{path}\">\nSource: {path}\n\n[Execution Context]\n- Workspace: {ws}\n- Runtime home: {home}\n- Skill root: {root}\n1. Run commands that use skill-relative paths from the skill root.\n2. Prefer absolute paths when referring to skill files.\n3. Write outputs into the workspace, not into the skill directory.\n4. Do not search outside the workspace or the skill root unless asked.\n\n{body}\n</skill>",
            path = s.path.display(),
            ws = show(workspace),
            home = show(home),
            root = root.display(),
            body = s.body
        ))
    }
}

/// `load_skill` (rescans the skills directory on every call).
pub(crate) fn load_skill_tool() -> FnTool {
    let def = ToolDefinition::new(
        "load_skill",
        "Load the full instructions of a skill by name.",
        json!({
            "type": "object",
            "properties": {"name": {"type": "string", "description": "Skill name (its directory name)."}},
            "required": ["name"]
        }),
    );
    tool_fn(def, |ctx, args| async move {
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
}
