//! Sub-agents: a parent delegates to children that run in their own linked sessions.
//!
//! Shows the model-driven path (the parent calls the `spawn_agent` tool; the child runs on a
//! sibling loop sharing the model, store, hooks and event bus) and the declarative path
//! (`run_agent_spec` with an `AgentSpec` whose answer must match an output schema), plus the
//! `subagent_*` lifecycle events on the parent's bus.
//!
//! Run: `cargo run -p examples --example subagents`

use std::sync::{Arc, Mutex};

use power_loop::{
    AgentSpec, EventFilter, EventPayload, NewSessionOptions, ScriptedLlm, ScriptedStep,
    StatefulAgentLoop, ToolRegistry,
};
// The sub-agent tools and `run_agent_spec` live in the agent crate (not re-exported by the
// façade at the time of writing).
use power_loop_agent::{register_subagent_tools, run_agent_spec};
use serde_json::json;

#[tokio::main]
async fn main() -> power_loop::Result<()> {
    // One scripted model serves parent and children, in call order.
    let llm = Arc::new(ScriptedLlm::new().steps([
        // parent, round 0: delegate
        ScriptedStep::tool_call(
            "spawn_agent",
            json!({"task": "List two uses of durable timers.", "name": "researcher"}),
        ),
        // child: answers its task
        ScriptedStep::text("1. follow up later; 2. poll a slow job."),
        // parent, round 1: uses the child's report
        ScriptedStep::text("My researcher says: follow-ups and polling."),
        // declarative child with an output schema
        ScriptedStep::json(json!({"verdict": "approve", "score": 8})),
    ]));
    let mut tools = ToolRegistry::new();
    register_subagent_tools(&mut tools, true)?;
    let agent = StatefulAgentLoop::builder(llm)
        .dsn("sqlite://:memory:")
        .tools(tools)
        .build()?;

    let events: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = Arc::clone(&events);
    agent.event_bus().subscribe(EventFilter::All, move |e| {
        let line = match &e.payload {
            EventPayload::SubagentTaskStart(p) => {
                format!("start depth={} task={:?}", p.depth, p.task)
            }
            EventPayload::SubagentText(p) => format!("text {:?}", p.final_text),
            EventPayload::SubagentCompleted(p) => format!("completed status={}", p.status),
            _ => return Ok(()),
        };
        if let Ok(mut v) = log.lock() {
            v.push(line);
        }
        Ok(())
    });

    let sid = agent.new_session(NewSessionOptions::default()).await?;
    let result = agent.send(&sid, "Research durable timers for me.").await?;
    println!("parent: {}", result.final_text);
    for line in events.lock().map(|v| v.clone()).unwrap_or_default() {
        println!("  event: {line}");
    }

    // Declarative: a reviewer whose answer is validated against a schema, linked to the parent.
    let mut spec = AgentSpec::new("reviewer", "Review the plan; answer as JSON.");
    spec.output_schema = Some(json!({
        "type": "object",
        "properties": {"verdict": {"enum": ["approve", "reject"]}, "score": {"type": "integer"}},
        "required": ["verdict", "score"]
    }));
    spec.lifecycle = "linked".into();
    let report = run_agent_spec(
        &agent,
        Some(&sid),
        &spec,
        "Plan: ship on Friday.",
        None,
        None,
    )
    .await?;
    println!(
        "reviewer: status={} depth={} structured={}",
        report.status,
        report.depth,
        report.structured.clone().unwrap_or_default()
    );
    let children = agent.store().await?.list_children(&sid).await?;
    println!("linked children kept in the store: {}", children.len());
    assert_eq!(
        report.structured,
        Some(json!({"verdict": "approve", "score": 8}))
    );
    agent.close(std::time::Duration::from_secs(5)).await?;
    Ok(())
}
