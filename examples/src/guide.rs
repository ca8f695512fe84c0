//! The user guide's Rust blocks, compiled and run as doctests (`cargo test --doc -p examples`).
//!
//! Each page of `docs/` is included as the doc comment of an item that exists only under
//! `cfg(doctest)`, so rustdoc tests every fenced `rust` block on it with this package's
//! dependencies (the `power-loop` façade, `power-loop-agent`, `serde_json`, `tokio`,
//! `tempfile`). Blocks marked `no_run` (a real provider or server) are compiled only.

/// docs/getting-started.md
#[doc = include_str!("../../docs/getting-started.md")]
pub struct GettingStarted;

/// docs/sessions.md
#[doc = include_str!("../../docs/sessions.md")]
pub struct Sessions;

/// docs/storage.md
#[doc = include_str!("../../docs/storage.md")]
pub struct Storage;

/// docs/tools.md
#[doc = include_str!("../../docs/tools.md")]
pub struct Tools;

/// docs/subagents.md
#[doc = include_str!("../../docs/subagents.md")]
pub struct Subagents;

/// docs/hooks.md
#[doc = include_str!("../../docs/hooks.md")]
pub struct Hooks;

/// docs/events.md
#[doc = include_str!("../../docs/events.md")]
pub struct Events;

/// docs/structured-output.md
#[doc = include_str!("../../docs/structured-output.md")]
pub struct StructuredOutput;

/// docs/memory.md
#[doc = include_str!("../../docs/memory.md")]
pub struct Memory;

/// docs/retry-cancel-budgets.md
#[doc = include_str!("../../docs/retry-cancel-budgets.md")]
pub struct RetryCancelBudgets;

/// docs/compaction.md
#[doc = include_str!("../../docs/compaction.md")]
pub struct Compaction;

/// docs/timers.md
#[doc = include_str!("../../docs/timers.md")]
pub struct Timers;

/// docs/cli.md
#[doc = include_str!("../../docs/cli.md")]
pub struct Cli;

/// docs/error-codes.md
#[doc = include_str!("../../docs/error-codes.md")]
pub struct ErrorCodes;

/// docs/scaling.md
#[doc = include_str!("../../docs/scaling.md")]
pub struct Scaling;

/// docs/workflows.md
#[doc = include_str!("../../docs/workflows.md")]
pub struct Workflows;

/// docs/mcp.md
#[doc = include_str!("../../docs/mcp.md")]
pub struct Mcp;
