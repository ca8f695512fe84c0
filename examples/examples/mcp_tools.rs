//! Tools from MCP servers: starts the reference server-everything over stdio (from the
//! `mcpServers` JSON that Claude Desktop and editors use), registers its tools under the
//! `everything_` prefix, and lets a scripted model call `echo` and `get-sum` end to end.
//! Closing the loop stops the server.
//!
//! Needs the peer: `bash scripts/peers.sh up` (or set `MCP_EVERYTHING_JS` to the server's
//! `dist/index.js`).
//!
//! Run: `cargo run -p examples --example mcp_tools`

use std::sync::Arc;
use std::time::Duration;

use power_loop::mcp::{McpConfig, McpToolset};
use power_loop::{
    EventFilter, EventPayload, NewSessionOptions, ScriptedLlm, ScriptedStep, StatefulAgentLoop,
    ToolRegistry,
};
use serde_json::json;

#[tokio::main]
async fn main() -> power_loop::Result<()> {
    let js = std::env::var("MCP_EVERYTHING_JS").unwrap_or_else(|_| {
        format!(
            "{}/.cache/power-loop-peers/mcp/node_modules/@modelcontextprotocol/server-everything/dist/index.js",
            std::env::var("HOME").unwrap_or_default()
        )
    });
    if !std::path::Path::new(&js).exists() {
        eprintln!("server-everything is not installed at {js}: run `bash scripts/peers.sh up`");
        std::process::exit(2);
    }

    // The standard configuration file, with power-loop's allow list.
    let config = McpConfig::from_json_str(
        &json!({"mcpServers": {
            "everything": {"command": "node", "args": [js, "stdio"],
                           "allowedTools": ["echo", "get-sum", "get-tiny-image"], "timeout": 30}
        }})
        .to_string(),
    )?;
    let mcp = McpToolset::connect(&config).await?;
    let mut tools = ToolRegistry::new();
    let names = mcp.register(&mut tools)?;
    println!("registered: {}", names.join(", "));

    let llm = Arc::new(ScriptedLlm::new().steps([
        ScriptedStep::tool_call("everything_echo", json!({"message": "hello over MCP"})),
        ScriptedStep::tool_call("everything_get-sum", json!({"a": 20, "b": 22})),
        ScriptedStep::text("The server echoed and added: 42."),
    ]));
    let agent = StatefulAgentLoop::builder(llm)
        .dsn("sqlite://:memory:")
        .tools(tools)
        .build()?;
    agent.event_bus().subscribe(EventFilter::All, |ev| {
        if let EventPayload::ToolCallCompleted(p) = &ev.payload {
            println!("tool {} -> {}", p.name, p.output);
        }
        Ok(())
    });
    let sid = agent.new_session(NewSessionOptions::default()).await?;
    let result = agent.send(&sid, "echo, then add 20 and 22").await?;
    println!("final: {}", result.final_text);
    // Closing the loop closes its tools: the server process is stopped and reaped.
    agent.close(Duration::from_secs(10)).await?;
    Ok(())
}
