//! Presets and the default registry factory.

use std::sync::Arc;

use power_loop_contracts::{Error, ErrorCode, Result};

use crate::builtin::{self, Shared, SharedRef};
use crate::env::RuntimeEnv;
use crate::registry::ToolRegistry;
use crate::tool::{FnTool, Tool};

/// The file and search tools, in the order the presets list them.
const FILE_TOOLS: &[&str] = &[
    "read_file",
    "write_file",
    "edit_file",
    "apply_patch",
    "glob",
    "grep",
];

/// `parts` one after the other, at compile time; `N` must be their total length.
const fn join<const N: usize>(parts: &[&[&'static str]]) -> [&'static str; N] {
    let mut out = [""; N];
    let mut k = 0;
    let mut i = 0;
    while i < parts.len() {
        let mut j = 0;
        while j < parts[i].len() {
            out[k] = parts[i][j];
            k += 1;
            j += 1;
        }
        i += 1;
    }
    assert!(k == N, "join: N is not the total length of the parts");
    out
}

/// Preset `core`, in order.
pub const CORE_TOOL_NAMES: &[&str] =
    &join::<9>(&[&["bash"], FILE_TOOLS, &["load_skill", "request_user_input"]]);
/// Preset `explore`, in order.
pub const EXPLORE_TOOL_NAMES: &[&str] = &[
    "bash",
    "read_file",
    "glob",
    "grep",
    "load_skill",
    "request_user_input",
];
/// Preset `full` (the default), in order. The timer tools and `recall_compacted` belong to
/// the agent crate: pass them in [`ToolSelection::external`] to get them at their position.
pub const FULL_TOOL_NAMES: &[&str] = &[
    "write_file",
    "read_file",
    "edit_file",
    "apply_patch",
    "bash",
    "glob",
    "grep",
    "load_skill",
    "todo",
    "note_add",
    "note_update",
    "note_delete",
    "schedule_wakeup",
    "list_wakeups",
    "cancel_wakeup",
    "current_time",
    "recall_compacted",
    "background_run",
    "check_background",
    "request_user_input",
];
/// Default tools provided by other crates (agent loop: timers, compaction recall).
const EXTERNAL_TOOL_NAMES: &[&str] = &[
    "schedule_wakeup",
    "list_wakeups",
    "cancel_wakeup",
    "current_time",
    "recall_compacted",
];
/// The default tools that need a workspace.
const WORKSPACE_TOOLS: &[&str] = &join::<8>(&[&["bash"], FILE_TOOLS, &["background_run"]]);
/// The default tools that reach the host (files, shell, background processes, skills): the ones
/// a sandbox is for.
pub const HOST_TOOL_NAMES: &[&str] = &join::<10>(&[
    &["bash", "background_run", "check_background"],
    FILE_TOOLS,
    &["load_skill"],
]);

/// Which default tools to build.
#[derive(Clone, Default)]
pub struct ToolSelection {
    /// `core`, `explore` or `full` (default `full`).
    pub preset: Option<String>,
    /// Explicit tool names, in order; beats `preset`.
    pub include: Option<Vec<String>>,
    /// Names removed last.
    pub exclude: Vec<String>,
    /// Implementations of default tools owned by other crates (timers, `recall_compacted`);
    /// placed at their preset position. Selected external tools without an implementation
    /// are left out.
    pub external: Vec<Arc<dyn Tool>>,
}

impl std::fmt::Debug for ToolSelection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolSelection")
            .field("preset", &self.preset)
            .field("include", &self.include)
            .field("exclude", &self.exclude)
            .field("external", &self.external.len())
            .finish()
    }
}

impl ToolSelection {
    /// A preset by name.
    pub fn preset(name: impl Into<String>) -> Self {
        ToolSelection {
            preset: Some(name.into()),
            ..Self::default()
        }
    }

    /// An explicit list.
    pub fn include(names: &[&str]) -> Self {
        ToolSelection {
            include: Some(names.iter().map(|s| (*s).to_owned()).collect()),
            ..Self::default()
        }
    }

    /// Removes names.
    pub fn excluding(mut self, names: &[&str]) -> Self {
        self.exclude.extend(names.iter().map(|s| (*s).to_owned()));
        self
    }

    /// Resolves the names (include > preset > full; exclude last).
    pub fn names(&self) -> Result<Vec<String>> {
        let base: Vec<String> = if let Some(inc) = &self.include {
            for n in inc {
                if !FULL_TOOL_NAMES.contains(&n.as_str()) {
                    return Err(Error::new(
                        ErrorCode::ConfigInvalid,
                        format!("Unknown default tool: '{n}'"),
                    ));
                }
            }
            inc.clone()
        } else {
            let list = match self.preset.as_deref() {
                None | Some("full") => FULL_TOOL_NAMES,
                Some("core") => CORE_TOOL_NAMES,
                Some("explore") => EXPLORE_TOOL_NAMES,
                Some(p) => {
                    return Err(Error::new(
                        ErrorCode::ConfigInvalid,
                        format!("Unknown preset '{p}'. Choose from: core, explore, full"),
                    ));
                }
            };
            list.iter().map(|s| (*s).to_owned()).collect()
        };
        for n in &self.exclude {
            if !FULL_TOOL_NAMES.contains(&n.as_str()) {
                return Err(Error::new(
                    ErrorCode::ConfigInvalid,
                    format!("Unknown default tool: '{n}'"),
                ));
            }
        }
        let mut out: Vec<String> = Vec::new();
        for n in base {
            if !self.exclude.contains(&n) && !out.contains(&n) {
                out.push(n);
            }
        }
        Ok(out)
    }
}

fn builtin_tool(name: &str, shared: &SharedRef) -> Option<FnTool> {
    use builtin::*;
    Some(match name {
        "bash" => bash::bash_tool(shared.clone()),
        "read_file" => files::read_file_tool(shared.clone()),
        "write_file" => files::write_file_tool(shared.clone()),
        "edit_file" => edit::edit_file_tool(shared.clone()),
        "apply_patch" => edit::apply_patch_tool(shared.clone()),
        "glob" => search::glob_tool(),
        "grep" => search::grep_tool(),
        "load_skill" => skills::load_skill_tool(),
        "todo" => todo::todo_tool(shared.clone()),
        "note_add" => notes::note_add_tool(),
        "note_update" => notes::note_update_tool(),
        "note_delete" => notes::note_delete_tool(),
        "background_run" => background::background_run_tool(shared.clone()),
        "check_background" => background::check_background_tool(shared.clone()),
        "request_user_input" => human::request_user_input_tool(),
        _ => return None,
    })
}

/// Builds a registry with the selected default tools.
///
/// Fails with `runtime_env.missing` when a workspace tool is selected and `env` has no
/// workspace, `config.invalid` for an unknown preset or tool name. Tools read the
/// [`RuntimeEnv`] of each call's [`crate::ToolContext`] (pass the same env there); the
/// built-in tools of one registry share read stamps, bash sessions and background tasks.
pub fn default_registry(env: &RuntimeEnv, selection: &ToolSelection) -> Result<ToolRegistry> {
    let names = selection.names()?;
    if env.workspace_dir.is_none() && names.iter().any(|n| WORKSPACE_TOOLS.contains(&n.as_str())) {
        return Err(Error::new(
            ErrorCode::RuntimeEnvMissing,
            "a workspace is required for the default filesystem, search, shell and background tools; \
             pass RuntimeEnv::with_workspace(..) or set POWER_LOOP_WORKSPACE",
        ));
    }
    let shared: SharedRef = Arc::new(Shared::default());
    let mut reg = ToolRegistry::new();
    for name in &names {
        if let Some(t) = builtin_tool(name, &shared) {
            reg.register(t)?;
        } else if EXTERNAL_TOOL_NAMES.contains(&name.as_str())
            && let Some(t) = selection
                .external
                .iter()
                .find(|t| t.definition().name == *name)
        {
            reg.register_arc(t.clone(), false)?;
        }
    }
    Ok(reg)
}

/// Registers the four `board_*` tools (not part of any preset).
///
/// `kinds` default `["note", "task"]`, `statuses` default `["open", "doing", "done"]`,
/// `default_kind` default `note`. The tools use [`crate::ToolContext::blackboard`] and
/// [`RuntimeEnv::board_id`]; without both they answer that no board is configured.
pub fn register_blackboard_tools(
    registry: &mut ToolRegistry,
    kinds: Option<&[&str]>,
    statuses: Option<&[&str]>,
    default_kind: Option<&str>,
    overwrite: bool,
) -> Result<()> {
    let owned = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let cfg = builtin::board::BoardConfig {
        kinds: owned(kinds.unwrap_or(&["note", "task"])),
        statuses: owned(statuses.unwrap_or(&["open", "doing", "done"])),
        default_kind: default_kind.unwrap_or("note").to_owned(),
    };
    if !cfg.kinds.contains(&cfg.default_kind) {
        return Err(Error::invalid_argument(format!(
            "default_kind '{}' is not one of the kinds",
            cfg.default_kind
        )));
    }
    for t in builtin::board::board_tools(&cfg) {
        registry.register_arc(Arc::new(t), overwrite)?;
    }
    Ok(())
}
