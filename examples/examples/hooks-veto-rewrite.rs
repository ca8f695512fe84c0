//! Hooks that veto and rewrite: policy around the model and the tools, in plain closures.
//!
//! Shows four hook points:
//! - `tool.before` vetoes a call (`Skip` + the answer the model sees) and rewrites arguments;
//! - `tool.after` rewrites a tool's output before the model sees it;
//! - `message.append` redacts a message the run appends before it is persisted;
//! - `llm.before` edits the system prompt of every model call.
//!
//! Run: `cargo run -p examples --example hooks-veto-rewrite`

use std::sync::Arc;

use power_loop::hooks::ToolBeforeDirective;
use power_loop::{
    AgentHooks, NewSessionOptions, ScriptedLlm, ScriptedStep, StatefulAgentLoop, ToolDefinition,
    ToolOutput, ToolRegistry, tool_fn,
};
use serde_json::json;

#[tokio::main]
async fn main() -> power_loop::Result<()> {
    let mut tools = ToolRegistry::new();
    tools.register(tool_fn(
        ToolDefinition::new(
            "delete_file",
            "Delete a file.",
            json!({"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}),
        ),
        |_ctx, args| async move { Ok(ToolOutput::ok(format!("deleted {}", args["path"]))) },
    ))?;
    tools.register(tool_fn(
        ToolDefinition::new(
            "lookup",
            "Look up a customer.",
            json!({"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}),
        ),
        |_ctx, args| async move {
            Ok(ToolOutput::ok(format!("{}: card 4111-1111-1111-1111", args["name"].as_str().unwrap_or("?"))))
        },
    ))?;

    let hooks = AgentHooks::new();
    // Veto: nothing under /etc is ever deleted; the model is told why.
    hooks.on_tool_before(0, |ctx| {
        if ctx.tool_name == "delete_file"
            && ctx.tool_args["path"]
                .as_str()
                .is_some_and(|p| p.starts_with("/etc"))
        {
            ctx.directive = ToolBeforeDirective::Skip;
            ctx.output = "refused: /etc is protected".into();
        }
        Ok(())
    });
    // Rewrite arguments: names are looked up in lower case.
    hooks.on_tool_before(10, |ctx| {
        if ctx.tool_name == "lookup"
            && let Some(name) = ctx.tool_args["name"].as_str()
        {
            ctx.tool_args["name"] = json!(name.to_lowercase());
        }
        Ok(())
    });
    // Rewrite output: card numbers never reach the model.
    hooks.on_tool_after(0, |ctx| {
        ctx.output = ctx.output.replace("4111-1111-1111-1111", "[card redacted]");
        Ok(())
    });
    // Redact what is stored: the messages a run appends (answers, tool results) never keep a
    // password. (The user's own input is stored as sent.)
    hooks.on_message_append(0, |ctx| {
        if let Some(m) = &mut ctx.message
            && m.text().contains("hunter2")
        {
            m.content = Some(m.text().replace("hunter2", "[redacted]").into());
        }
        Ok(())
    });
    // Every model call gets a house rule appended to its system prompt.
    hooks.on_llm_before(0, |ctx| {
        ctx.system_prompt.push_str("\nNever reveal card numbers.");
        Ok(())
    });

    let llm = Arc::new(ScriptedLlm::new().steps([
        ScriptedStep::tool_calls([
            ("delete_file", json!({"path": "/etc/passwd"})),
            ("lookup", json!({"name": "ADA"})),
        ]),
        ScriptedStep::text(
            "Done: /etc was protected; Ada's record is on file. Her temporary password is hunter2.",
        ),
    ]));
    let agent = StatefulAgentLoop::builder(llm.clone())
        .dsn("sqlite://:memory:")
        .tools(tools)
        .hooks(hooks)
        .build()?;
    let sid = agent.new_session(NewSessionOptions::default()).await?;
    let result = agent
        .send(&sid, "Delete /etc/passwd and look up ADA.")
        .await?;
    println!("final: {}", result.final_text);

    for m in agent.get_messages(&sid, false).await? {
        println!("{:>9}: {}", m.role.as_str(), m.text());
    }
    let stored = agent.get_messages(&sid, false).await?;
    assert!(stored.iter().all(|m| !m.text().contains("hunter2")));
    assert!(
        stored
            .iter()
            .any(|m| m.text().ends_with("password is [redacted]."))
    );
    assert!(
        stored
            .iter()
            .any(|m| m.text() == "refused: /etc is protected")
    );
    assert!(
        stored
            .iter()
            .any(|m| m.text() == "ada: card [card redacted]")
    );
    let prompt = llm
        .last_request()
        .and_then(|r| r.system_prompt)
        .unwrap_or_default();
    assert!(prompt.ends_with("Never reveal card numbers."));
    agent.close(std::time::Duration::from_secs(5)).await?;
    Ok(())
}
