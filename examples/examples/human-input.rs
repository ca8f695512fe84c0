//! Human in the loop: the model asks a question, the run pauses durably, the answer resumes it.
//!
//! Shows: the built-in `request_user_input` tool, a run ending `waiting_for_input` with the open
//! interaction (id, prompt, options) in the result and in the store, and `submit_input`
//! (possibly from another process, hours later) answering it and continuing the run.
//!
//! Run: `cargo run -p examples --example human-input`

use std::sync::Arc;

use power_loop::{
    NewSessionOptions, RunStatus, RuntimeEnv, ScriptedLlm, ScriptedStep, StatefulAgentLoop,
    ToolSelection, default_registry,
};
use serde_json::json;

#[tokio::main]
async fn main() -> power_loop::Result<()> {
    let llm = Arc::new(ScriptedLlm::new().steps([
        ScriptedStep::tool_call(
            "request_user_input",
            json!({
                "kind": "choice",
                "prompt": "Which environment should I deploy to?",
                "options": [{"id": "staging", "label": "Staging"}, {"id": "prod", "label": "Production"}]
            }),
        ),
        ScriptedStep::text("Deploying to staging as you chose."),
    ]));
    // Only the human-input tool from the built-in set (no workspace needed for it).
    let tools = default_registry(
        &RuntimeEnv::new(),
        &ToolSelection::include(&["request_user_input"]),
    )?;
    let dir = tempfile::tempdir()?;
    let agent = StatefulAgentLoop::builder(llm)
        .dsn(dir.path().join("hitl.db").display().to_string())
        .tools(tools)
        .build()?;
    let sid = agent.new_session(NewSessionOptions::default()).await?;

    let paused = agent.send(&sid, "Deploy the new build.").await?;
    println!("status: {}", paused.status);
    assert_eq!(paused.status, RunStatus::WaitingForInput);
    let question = &paused.pending_interactions[0];
    println!(
        "question {}: {} options={:?}",
        question.interaction_id,
        question.prompt.as_deref().unwrap_or_default(),
        question.options
    );
    // The question is durable: any process can read it back from the store.
    let stored = agent
        .get_pending(&sid)
        .await?
        .map(|p| p.pending_interactions.len())
        .unwrap_or(0);
    println!("open interactions in the store: {stored}");

    let done = agent
        .submit_input(&sid, &question.interaction_id, json!("staging"), None)
        .await?;
    println!("status: {} → {}", done.status, done.final_text);
    assert_eq!(done.status, RunStatus::Completed);
    agent.close(std::time::Duration::from_secs(5)).await?;
    Ok(())
}
