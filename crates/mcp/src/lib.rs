//! Tools from Model Context Protocol servers, on the official Rust SDK (`rmcp`).
//!
//! ```no_run
//! # async fn demo() -> power_loop_contracts::Result<()> {
//! use power_loop_mcp::{McpConfig, McpToolset};
//! let config = McpConfig::from_file("mcp.json")?; // the `mcpServers` file of Claude Desktop & co.
//! let mcp = McpToolset::connect(&config).await?;
//! let mut registry = power_loop_tools::ToolRegistry::new();
//! let names = mcp.register(&mut registry)?; // e.g. ["fs_read_text_file", "time_get_current_time"]
//! # let _ = names;
//! // … hand `registry` to the agent loop; closing the loop (or `mcp.close()`) stops the servers.
//! # Ok(()) }
//! ```
//!
//! # Owns
//! The MCP client side: stdio servers started as child processes (clean environment plus what
//! the configuration names, optionally inside a sandbox launcher such as `BubblewrapShell`, in
//! their own process group, stopped without zombies) and Streamable HTTP servers (headers from
//! the configuration); the initialize handshake; paginated `tools/list` and refresh on
//! `notifications/tools/list_changed`; registration into a `ToolRegistry` under a prefix with
//! portable (`^[a-zA-Z0-9_-]{1,64}$`) unique names; argument validation against each input
//! schema; result mapping (text, image, audio, resources, structured content, `isError`);
//! per-call timeouts and cancellation (`notifications/cancelled`); restart of a dead server on
//! the next call, with backoff; the standard `mcpServers` configuration file with allow/deny
//! lists.
//!
//! # Must not import
//! The agent, workflow, store or LLM crates: it sits on the tools floor (contracts + tools).
//! rmcp types never appear in its public API (they are adapted at the edge, as JSON).
//!
//! # Seams
//! Implements `power_loop_tools::Tool` ([`McpTool`]); runs sandboxed servers through
//! `power_loop_tools::ShellBackend`.
//!
//! # Feature flags
//! None (the façade's `mcp` feature turns this crate on).
//!
//! # Stability
//! Internal crate: reach it through the `power-loop` façade (`power_loop::mcp`), whose API is
//! frozen in `api/`.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod config;
mod connection;
mod content;
mod names;
mod process;
mod schema;
mod server;
mod table;
mod tool;
mod toolset;

pub use config::{
    DEFAULT_CALL_TIMEOUT, DEFAULT_INHERITED_ENV, DEFAULT_STARTUP_TIMEOUT, HttpConfig, McpConfig,
    McpServerConfig, McpTransport, StdioConfig, expand_env_vars,
};
pub use content::map_call_result;
pub use names::{MAX_TOOL_NAME_LEN, is_portable_tool_name, sanitize_tool_name};
pub use schema::normalize_input_schema;
pub use server::McpServer;
pub use table::McpToolInfo;
pub use tool::McpTool;
pub use toolset::McpToolset;
