//! Tools: the tool seam, the registry with JSON-Schema argument validation, and the built-in tools.
//!
//! # Owns
//! The [`Tool`] trait and its [`ToolContext`], closure tools ([`tool_fn`]), the [`ToolRegistry`]
//! (registration, whitelisting, argument decoding + full JSON-Schema validation, panic-safe
//! invocation into a [`ToolOutcome`]), the presets `core`/`explore`/`full`
//! ([`default_registry`]), the built-in tools (shell, files, search, skills, todo, notes,
//! background tasks, human input, blackboard), workspace confinement of paths (race-free opens
//! beneath a handle on the allowed root), the data-driven
//! [`CommandPolicy`], and the shell backends [`LocalShell`] and [`BubblewrapShell`].
//!
//! # Must not import
//! The agent or workflow crates, any LLM provider, any database driver. Session persistence is
//! reached only through the [`ToolStore`] seam (implemented here for `power_loop_store::SessionStore`).
//!
//! # Seams
//! - [`Tool`]: implement it (or use [`tool_fn`]) to add a tool; the agent crate registers its
//!   `spawn_agent`/`run_agent` tools this way and reaches its loop through
//!   [`ToolContext::extension`] (a type map the loop fills, see [`Extensions`]).
//! - [`ShellBackend`]: where `bash` and `background_run` execute (local, bubblewrap, or a host's).
//! - [`ToolStore`]: notes, shared state (blackboard), runtime state (todo) and background-task
//!   rows; implemented for the durable `power_loop_store::SessionStore` and by the in-process
//!   [`MemoryToolStore`].
//! - [`BoardBackend`]: the shared board behind the `board_*` tools ([`SharedStateBoard`]).
//! - Human input: `request_user_input` ends with an error of code `human_input.required`; the
//!   registry turns it into [`ToolOutcome::interrupt`] ([`HumanInputRequest`]).
//!
//! # Feature flags
//! None. (MCP tools live in `power-loop-mcp`, which registers them through the [`Tool`] seam.)
//!
//! # Stability
//! Internal crate: reach it through the `power-loop` façade, whose API is frozen in `api/`.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod backend;
mod builtin;
mod confined;
mod env;
mod paths;
mod policy;
mod presets;
pub mod pyrepr;
mod registry;
mod shell;
mod store_adapter;
mod text;
mod tool;

pub use backend::{
    BoardBackend, BoardPost, MemoryToolStore, NotesEviction, NotesPolicy, SharedStateBoard,
    ToolStore,
};
pub use builtin::human::HumanInputRequest;
pub use builtin::skills::{Skill, SkillLoader};
pub use env::RuntimeEnv;
pub use paths::{display_path, resolve_path};
pub use policy::{
    Analysis, CommandPolicy, MAX_COMMAND_BYTES, MAX_NESTING, MAX_SIMPLE_COMMANDS, PolicyContext,
    PolicyDecision, PolicyRule, RuleMatch, STEPS_BASE, STEPS_PER_BYTE, SimpleCommand,
    split_commands,
};
pub use presets::{
    CORE_TOOL_NAMES, EXPLORE_TOOL_NAMES, FULL_TOOL_NAMES, HOST_TOOL_NAMES, ToolSelection,
    default_registry, register_blackboard_tools,
};
pub use registry::{ToolOutcome, ToolRegistry, decode_arguments, schema_problem};
pub use shell::{
    BubblewrapShell, CommandOutput, LaunchSpec, LocalShell, ShellBackend, run_one_shot,
};
pub use text::{RESULT_MAX_CHARS, truncate_chars};
pub use tool::{Extensions, FnTool, Tool, ToolContext, tool_fn};
