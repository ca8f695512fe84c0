//! The built-in tools in a workspace: files, search and a shell under the command policy.
//!
//! Shows: `default_registry` with a `RuntimeEnv` confined to a workspace directory (paths
//! outside it are refused), the `core` preset's file tools writing and reading a file, `grep`
//! finding it, and the shell's command policy denying a destructive command before it runs.
//! The shell is `LocalShell` here: a guard rail, not a sandbox (see docs/sandboxing.md for
//! `BubblewrapShell`).
//!
//! Run: `cargo run -p examples --example default-tools`

use std::sync::Arc;

use power_loop::{
    NewSessionOptions, Role, RuntimeEnv, ScriptedLlm, ScriptedStep, StatefulAgentLoop,
    ToolSelection, default_registry,
};
use serde_json::json;

#[tokio::main]
async fn main() -> power_loop::Result<()> {
    let workspace = tempfile::tempdir()?;
    let env = Arc::new(RuntimeEnv::new().with_workspace(workspace.path())?);
    let tools = default_registry(&env, &ToolSelection::preset("core"))?;
    println!("core tools: {}", tools.names().join(", "));

    let llm = Arc::new(ScriptedLlm::new().steps([
        ScriptedStep::tool_call(
            "write_file",
            json!({"path": "notes/todo.md", "content": "- ship the docs\n"}),
        ),
        ScriptedStep::tool_call("read_file", json!({"path": "notes/todo.md"})),
        ScriptedStep::tool_call("grep", json!({"pattern": "ship"})),
        ScriptedStep::tool_call("read_file", json!({"path": "/etc/hostname"})),
        ScriptedStep::tool_call("bash", json!({"command": "rm -rf /"})),
        ScriptedStep::text("Done."),
    ]));
    let agent = StatefulAgentLoop::builder(llm)
        .dsn("sqlite://:memory:")
        .tools(tools)
        .runtime_env(env)
        .build()?;
    let sid = agent.new_session(NewSessionOptions::default()).await?;
    agent
        .send(
            &sid,
            "Write a todo, read it, find it, peek at /etc, clean up.",
        )
        .await?;
    for m in agent.get_messages(&sid, false).await? {
        if m.role == Role::Tool {
            let text = m.text();
            println!("tool → {}", text.lines().next().unwrap_or_default());
        }
    }
    assert!(workspace.path().join("notes/todo.md").exists());
    agent.close(std::time::Duration::from_secs(5)).await?;
    Ok(())
}
