//! Compaction with recall: long sessions are folded into a summary; the originals stay readable.
//!
//! Shows: `DefaultCompactor` (here with a tiny threshold so it fires at once) folding older
//! exchanges into one summary note written by a summary call, the `auto_compact` status events,
//! and the model reading the folded originals back with the `recall_compacted` tool.
//!
//! Run: `cargo run -p examples --example compaction-recall`

use std::sync::Arc;

use power_loop::{
    AgentLoopConfig, DefaultCompactor, EventPayload, EventType, NewSessionOptions, ScriptedLlm,
    ScriptedStep, StatefulAgentLoop, StatusChanged, ToolRegistry, recall_compacted_tool,
};
use serde_json::json;

#[tokio::main]
async fn main() -> power_loop::Result<()> {
    // The summary call is recognisable by its transcript; everything else follows a small plan.
    let llm = Arc::new(ScriptedLlm::from_fn(|req| {
        let last = req.messages.last().map(|m| m.text()).unwrap_or_default();
        if last.contains("--- transcript slice ---") {
            ScriptedStep::text("<summary>The user shared the launch code word.</summary>")
        } else if last.contains("code word?") {
            ScriptedStep::tool_call("recall_compacted", json!({"query": "code word"}))
        } else if req
            .messages
            .iter()
            .any(|m| m.role == power_loop::Role::Tool)
        {
            ScriptedStep::text("From the folded history: the code word is 'marmalade'.")
        } else {
            ScriptedStep::text("Noted.")
        }
    }));
    let compactor = DefaultCompactor::new()
        .with_absolute_threshold(Some(1)) // fire whenever there is something to fold
        .with_keep_last_n(1);
    let mut tools = ToolRegistry::new();
    tools.register(recall_compacted_tool())?;
    let agent = StatefulAgentLoop::builder(llm)
        .dsn("sqlite://:memory:")
        .config(AgentLoopConfig::new().with_compactor(Some(Arc::new(compactor))))
        .tools(tools)
        .build()?;
    agent.event_bus().subscribe(EventType::StatusChanged, |e| {
        if let EventPayload::StatusChanged(StatusChanged::AutoCompact(a)) = &e.payload {
            println!(
                "  auto_compact {} ({} → {} tokens)",
                a.phase, a.before_tokens, a.after_tokens
            );
        }
        Ok(())
    });

    let sid = agent.new_session(NewSessionOptions::default()).await?;
    agent.send(&sid, "The code word is 'marmalade'.").await?;
    agent.send(&sid, "Let's talk about something else.").await?;
    let answer = agent.send(&sid, "What was the code word?").await?;
    println!("answer: {}", answer.final_text);

    let active = agent.get_messages(&sid, false).await?;
    let all = agent.get_messages(&sid, true).await?;
    println!(
        "active window: {} messages; with folded originals: {}",
        active.len(),
        all.len()
    );
    assert!(all.len() > active.len());
    assert!(answer.final_text.contains("marmalade"));
    agent.close(std::time::Duration::from_secs(5)).await?;
    Ok(())
}
