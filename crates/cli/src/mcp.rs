//! MCP in the CLI: `--mcp-config FILE` offers the tools of the servers in a standard
//! `mcpServers` file to `send` and `chat`; `mcp list` shows the servers and their tools.
//! Everything goes through the façade (`power_loop::mcp`).

use std::path::Path;

use clap::Subcommand;
use power_loop::mcp::{McpConfig, McpToolset};
use power_loop::{Error, Result, ToolRegistry};

/// `power-loop mcp …`.
#[derive(Debug, Subcommand)]
pub(crate) enum McpCommand {
    /// Start the servers of `--mcp-config FILE`, list their tools, stop them.
    List {
        /// Print one JSON object (`servers` with their tools, `failures`).
        #[arg(long)]
        json: bool,
    },
}

fn load(path: Option<&Path>) -> Result<McpConfig> {
    let Some(path) = path else {
        return Err(Error::config(
            "no MCP configuration: pass --mcp-config FILE (an `mcpServers` JSON file) or set POWER_LOOP_MCP_CONFIG",
        ));
    };
    McpConfig::from_file(path)
}

/// The tools of the configured servers as a registry (`None` without `--mcp-config`). Every
/// server must start; the loop's close stops them.
pub(crate) async fn registry(
    path: Option<&Path>,
    base: Option<ToolRegistry>,
) -> Result<Option<ToolRegistry>> {
    if path.is_none() {
        return Ok(base);
    }
    let set = McpToolset::connect(&load(path)?).await?;
    let mut registry = base.unwrap_or_default();
    let names = set.register(&mut registry)?;
    eprintln!(
        "power-loop: {} MCP tool(s) from {} server(s)",
        names.len(),
        set.servers().len()
    );
    Ok(Some(registry))
}

/// `mcp list`: `Ok(false)` when a server did not start (listed as a failure).
pub(crate) async fn run(path: Option<&Path>, cmd: &McpCommand) -> Result<bool> {
    let McpCommand::List { json } = cmd;
    let set = McpToolset::connect_lenient(&load(path)?).await;
    if *json {
        println!("{}", serde_json::to_string_pretty(&set.describe())?);
    } else {
        for server in set.servers() {
            let info = server.server_info();
            let id = info
                .pointer("/serverInfo/name")
                .and_then(|v| v.as_str())
                .map(|n| {
                    let v = info.pointer("/serverInfo/version").and_then(|v| v.as_str());
                    format!(" ({n} {})", v.unwrap_or(""))
                })
                .unwrap_or_default();
            let tools = server.tools();
            println!("{}{id}: {} tool(s)", server.name(), tools.len());
            for t in tools {
                let first = t.description.lines().next().unwrap_or("");
                println!("  {:<40} {first}", t.local_name);
            }
            for (name, why) in server.skipped_tools() {
                println!("  (skipped {name}: {why})");
            }
        }
        for (name, why) in set.failures() {
            println!("{name}: FAILED: {why}");
        }
    }
    set.close().await;
    Ok(set.failures().is_empty())
}
