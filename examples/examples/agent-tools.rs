//! An agent with a custom tool, a veto hook and a JSONL event log.
//!
//! Run: `cargo run -p examples --example agent-tools`

use std::sync::Arc;

use power_loop::hooks::ToolBeforeDirective;
use power_loop::{
    AgentHooks, EventFilter, EventSink, JsonlOptions, JsonlSink, NewSessionOptions, ScriptedLlm,
    ScriptedStep, StatefulAgentLoop, ToolDefinition, ToolOutput, ToolRegistry, replay, tool_fn,
};
use serde_json::json;

#[tokio::main]
async fn main() -> power_loop::Result<()> {
    let dir = tempfile::tempdir()?;

    // A tool: JSON-schema validated before the handler runs.
    let mut tools = ToolRegistry::new();
    tools.register(tool_fn(
        ToolDefinition::new(
            "echo",
            "Echo the given text back.",
            json!({"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}),
        ),
        |_ctx, args| async move { Ok(ToolOutput::ok(args["text"].as_str().unwrap_or_default().to_uppercase())) },
    ))?;

    // A hook that vetoes any call of a tool named `rm`.
    let hooks = AgentHooks::new();
    hooks.on_tool_before(0, |ctx| {
        if ctx.tool_name == "rm" {
            ctx.directive = ToolBeforeDirective::Skip;
            ctx.output = "refused by policy".into();
        }
        Ok(())
    });

    // The model first calls `echo`, then answers.
    let llm = Arc::new(ScriptedLlm::new().steps([
        ScriptedStep::tool_call("echo", json!({"text": "durable"})),
        ScriptedStep::text("The tool said DURABLE."),
    ]));
    let agent = StatefulAgentLoop::builder(llm)
        .dsn(dir.path().join("agent.db").display().to_string())
        .tools(tools)
        .hooks(hooks)
        .build()?;

    let log_path = dir.path().join("events.jsonl");
    let sink = Arc::new(JsonlSink::open(&log_path, JsonlOptions::default())?);
    let s = sink.clone();
    agent
        .event_bus()
        .subscribe(EventFilter::All, move |ev| s.handle(ev));

    let sid = agent.new_session(NewSessionOptions::default()).await?;
    let result = agent.send(&sid, "shout 'durable'").await?;
    println!(
        "final: {} (rounds: {}, tool calls: {})",
        result.final_text, result.rounds, result.tool_calls
    );
    agent.close(std::time::Duration::from_secs(5)).await?;

    let types: Vec<&str> = replay(&log_path)?
        .map(|e| e.event_type().as_str())
        .collect();
    println!("{} events replayed: {}", types.len(), types.join(", "));
    assert!(types.contains(&"tool_call_completed"));
    Ok(())
}
