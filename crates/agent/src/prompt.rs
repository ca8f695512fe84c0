//! The system-prompt builder and the tool catalog.

use std::sync::Arc;

use power_loop_contracts::{Error, Result, ToolDefinition};

/// Everything a section renderer may use.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct SystemPromptContext {
    /// Model name.
    pub model: String,
    /// Workspace directory.
    pub workspace_dir: String,
    /// Runtime home directory.
    pub agent_dir: String,
    /// Skills directory.
    pub skills_dir: String,
    /// Rendered skill descriptions.
    pub skill_descriptions: String,
    /// Tool names (for the tool guide).
    pub tool_names: Vec<String>,
    /// Extra text.
    pub extra: String,
    /// Tool definitions (for the catalog section).
    pub tool_definitions: Option<Vec<ToolDefinition>>,
    /// Catalog header.
    pub tool_catalog_header: String,
}

/// A section renderer: context → text (`None` or blank drops the section).
pub type SectionRenderer = Arc<dyn Fn(&SystemPromptContext) -> Option<String> + Send + Sync>;

/// Names of the built-in sections, in their default order.
pub const BUILTIN_SECTIONS: &[&str] = &[
    "identity",
    "style",
    "workflow",
    "security",
    "tool_guide",
    "tool_catalog",
    "paths",
    "todo_discipline",
    "skills",
];

const TOOL_HINTS: &[(&str, &str)] = &[
    (
        "bash",
        "run shell commands; prefer the dedicated file tools for reading and editing",
    ),
    ("read_file", "read a file before changing it"),
    ("write_file", "create or overwrite a whole file"),
    ("edit_file", "replace an exact text span in a file"),
    ("apply_patch", "apply a unified diff to a file"),
    ("glob", "find files by name pattern"),
    ("grep", "search file contents by regular expression"),
    ("load_skill", "load a skill's instructions by name"),
    ("todo", "keep the task list current for multi-step work"),
    ("background_run", "start a long command in the background"),
    ("check_background", "check on background commands"),
];

fn builtin(name: &str) -> Option<SectionRenderer> {
    let r: SectionRenderer = match name {
        "identity" => Arc::new(|c: &SystemPromptContext| {
            let mut s = "You are an interactive coding agent that helps the user with software engineering tasks.".to_owned();
            if !c.model.is_empty() {
                s.push_str(&format!("\nModel: {}", c.model));
            }
            Some(s)
        }),
        "style" => Arc::new(|_: &SystemPromptContext| {
            Some("# Tone and Style\n- Be concise and direct.\n- Prefer accuracy over agreement; say so when the user is wrong.\n- Read code before modifying it, and avoid over-engineering.".to_owned())
        }),
        "workflow" => Arc::new(|_: &SystemPromptContext| {
            Some("# Workflow\n1. Understand: explore the code first (prefer glob and grep).\n2. Plan: keep a todo list for tasks of three or more steps.\n3. Execute: work on one item at a time.\n4. Verify: run the tests or checks that prove the change.".to_owned())
        }),
        "security" => Arc::new(|_: &SystemPromptContext| {
            Some("# Security\n- Never ask for secrets, passwords or tokens in chat.\n- Do not simulate password prompts or sudo.".to_owned())
        }),
        "tool_guide" => Arc::new(|c: &SystemPromptContext| {
            let names: Vec<&str> = if c.tool_names.is_empty() {
                TOOL_HINTS.iter().map(|(n, _)| *n).collect()
            } else {
                c.tool_names.iter().map(String::as_str).collect()
            };
            let mut s = "# Tool Usage\n- Use paths exactly as given; never invent or shorten them."
                .to_owned();
            for n in names {
                if let Some((_, hint)) = TOOL_HINTS.iter().find(|(k, _)| *k == n) {
                    s.push_str(&format!("\n- {n}: {hint}"));
                }
            }
            Some(s)
        }),
        "tool_catalog" => Arc::new(|c: &SystemPromptContext| {
            c.tool_definitions
                .as_ref()
                .map(|defs| format_tool_catalog(defs, &c.tool_catalog_header))
        }),
        "paths" => {
            Arc::new(|c: &SystemPromptContext| {
                if c.workspace_dir.is_empty() {
                    return None;
                }
                let mut s = format!("# Paths — CRITICAL\n- Workspace: {}", c.workspace_dir);
                if !c.agent_dir.is_empty() {
                    s.push_str(&format!("\n- Runtime home: {}\n- Do not confuse the runtime home with the workspace.", c.agent_dir));
                }
                if !c.skills_dir.is_empty() {
                    s.push_str(&format!("\n- Skills: {}", c.skills_dir));
                }
                s.push_str("\n- `@workspace/x` resolves under the workspace, `@home/x` under the runtime home.");
                Some(s)
            })
        }
        "todo_discipline" => Arc::new(|_: &SystemPromptContext| {
            Some("# Todo Discipline\n- Create a todo list for multi-step tasks.\n- Keep at most one item in progress.\n- Mark items completed as soon as they are done.\n- Keep the list current; do not batch updates.".to_owned())
        }),
        "skills" => Arc::new(|c: &SystemPromptContext| {
            let d = c.skill_descriptions.trim();
            if d.is_empty() || d == "(no skills available)" {
                return None;
            }
            let dir = if c.skills_dir.is_empty() {
                "(default)"
            } else {
                c.skills_dir.as_str()
            };
            Some(format!(
                "# Skills\nSkills directory: {dir}\nLoad a skill with load_skill(name) before using it.\n{d}"
            ))
        }),
        _ => return None,
    };
    Some(r)
}

/// Builds a system prompt from named sections.
#[derive(Clone)]
pub struct SystemPromptBuilder {
    sections: Vec<(String, SectionRenderer)>,
}

impl std::fmt::Debug for SystemPromptBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SystemPromptBuilder")
            .field("sections", &self.section_names())
            .finish()
    }
}

impl Default for SystemPromptBuilder {
    fn default() -> Self {
        Self::new(true)
    }
}

impl SystemPromptBuilder {
    /// A builder with every built-in section (`use_defaults`) or none.
    pub fn new(use_defaults: bool) -> Self {
        let sections = if use_defaults {
            BUILTIN_SECTIONS
                .iter()
                .filter_map(|n| builtin(n).map(|r| ((*n).to_owned(), r)))
                .collect()
        } else {
            Vec::new()
        };
        SystemPromptBuilder { sections }
    }

    /// Keeps only the named sections, in this order (built-in or already present).
    pub fn use_sections(mut self, names: &[&str]) -> Result<Self> {
        let mut out = Vec::with_capacity(names.len());
        for n in names {
            let r = match self.sections.iter().find(|(k, _)| k == n) {
                Some((_, r)) => Arc::clone(r),
                None => builtin(n).ok_or_else(|| {
                    Error::invalid_argument(format!(
                        "unknown prompt section `{n}`; built-in sections: {}",
                        BUILTIN_SECTIONS.join(", ")
                    ))
                })?,
            };
            out.push(((*n).to_owned(), r));
        }
        self.sections = out;
        Ok(self)
    }

    /// Adds (or replaces in place) a section with fixed text.
    pub fn add_text(self, name: &str, text: impl Into<String>) -> Self {
        let text = text.into();
        self.add(
            name,
            Arc::new(move |_: &SystemPromptContext| Some(text.clone())),
            None,
        )
    }

    /// Adds (or replaces in place) a section; with `before` (`Some((anchor, true))`) or after
    /// (`Some((anchor, false))`) an anchor it is inserted there, or appended when the anchor is absent.
    pub fn add(
        mut self,
        name: &str,
        renderer: SectionRenderer,
        anchor: Option<(&str, bool)>,
    ) -> Self {
        if let Some(slot) = self.sections.iter_mut().find(|(k, _)| k == name) {
            slot.1 = renderer;
            return self;
        }
        let pos = anchor.and_then(|(a, before)| {
            self.sections
                .iter()
                .position(|(k, _)| k == a)
                .map(|p| if before { p } else { p + 1 })
        });
        let entry = (name.to_owned(), renderer);
        match pos {
            Some(p) => self.sections.insert(p, entry),
            None => self.sections.push(entry),
        }
        self
    }

    /// Removes sections.
    pub fn remove(mut self, names: &[&str]) -> Self {
        self.sections.retain(|(k, _)| !names.contains(&k.as_str()));
        self
    }

    /// Section names in order.
    pub fn section_names(&self) -> Vec<String> {
        self.sections.iter().map(|(k, _)| k.clone()).collect()
    }

    /// Renders: drop empty sections, trim each, join with a blank line, end with one newline.
    pub fn build(&self, ctx: &SystemPromptContext) -> String {
        let parts: Vec<String> = self
            .sections
            .iter()
            .filter_map(|(_, r)| r(ctx))
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        let mut out = parts.join("\n\n");
        out.push('\n');
        out
    }
}

/// The default main-agent system prompt.
pub fn default_agent_system_prompt() -> String {
    let ctx = SystemPromptContext::default();
    SystemPromptBuilder::default()
        .use_sections(&[
            "identity",
            "style",
            "workflow",
            "security",
            "tool_guide",
            "todo_discipline",
        ])
        .map(|b| b.build(&ctx))
        .unwrap_or_default()
}

/// The default sub-agent system prompt.
pub const DEFAULT_SUBAGENT_SYSTEM_PROMPT: &str = "You are an autonomous coding sub-agent. Complete the task you were given without asking questions, be concise, and back every finding with evidence: file paths and line anchors.";

/// The skills section of the system prompt for `dir`: a `## Available Skills` heading, a line
/// telling the model to load a skill with `load_skill`, then `  - name: description` per skill
/// (from each `SKILL.md`'s front matter). Empty when the directory holds no skills or cannot be
/// read (logged).
pub(crate) fn skills_section(dir: &std::path::Path) -> String {
    match power_loop_tools::SkillLoader::new(dir) {
        Ok(loader) => loader.system_prompt_section(),
        Err(e) => {
            tracing::warn!(target: "power_loop::agent", dir = %dir.display(), error = %e, "the skills directory cannot be read; the system prompt has no skills section");
            String::new()
        }
    }
}

/// `header`, a blank line, then `- **name**: description` per tool; empty for no tools.
pub fn format_tool_catalog(tools: &[ToolDefinition], header: &str) -> String {
    if tools.is_empty() {
        return String::new();
    }
    let mut s = format!("{header}\n");
    for t in tools {
        s.push_str(&format!("\n- **{}**: {}", t.name, t.description));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_orders_and_renders() {
        let b = SystemPromptBuilder::new(false)
            .add_text("a", "A")
            .add_text("c", "C")
            .add(
                "b",
                Arc::new(|_: &SystemPromptContext| Some(" B ".into())),
                Some(("c", true)),
            )
            .add_text("empty", "  ");
        assert_eq!(b.section_names(), vec!["a", "b", "c", "empty"]);
        assert_eq!(b.build(&SystemPromptContext::default()), "A\n\nB\n\nC\n");
        assert!(
            SystemPromptBuilder::default()
                .use_sections(&["nope"])
                .is_err()
        );
        assert!(default_agent_system_prompt().starts_with("You are"));
        let cat = format_tool_catalog(
            &[ToolDefinition::new(
                "echo",
                "Echo it",
                serde_json::json!({}),
            )],
            "# Available Tools",
        );
        assert_eq!(cat, "# Available Tools\n\n- **echo**: Echo it");
    }
}
