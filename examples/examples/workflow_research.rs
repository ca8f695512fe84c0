//! The seed README's research workflow (plan → parallel fan-out → write), journaled in SQLite
//! and driven by the offline scripted model; then its summary and a `workflow status`-like
//! view of the journal, and a resume that replays every finished step without a model call.
//!
//! Run: `cargo run -p examples --example workflow_research`

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use power_loop::{
    LlmRequest, NewSessionOptions, Role, ScriptedLlm, ScriptedStep, StatefulAgentLoop,
    WorkflowEngine, WorkflowRunOptions, WorkflowSpec, get_workflow_run, resume_run,
};

const SPEC: &str = r#"{
  "name": "research", "input": "the Japanese tea ceremony",
  "root": {"type": "sequence", "steps": [
    {"type": "agent", "id": "plan",
     "spec": {"name": "planner", "system_prompt": "Break the topic into 3 subtopics."},
     "output_schema": {"name": "Plan", "schema": {"type": "object", "required": ["subtopics"],
       "properties": {"subtopics": {"type": "array", "items": {"type": "string"}}}}}},
    {"type": "foreach", "id": "research", "items_from": "plan.subtopics", "as": "t",
     "parallel": true, "max_concurrency": 3,
     "body": {"type": "agent", "id": "r",
       "spec": {"name": "researcher", "system_prompt": "Write 2 sentences on {{t}}."},
       "input": "Subtopic: {{t}}"}},
    {"type": "agent", "id": "write",
     "spec": {"name": "writer", "system_prompt": "Synthesize the notes."},
     "inputs_from": ["research"]}
  ]}
}"#;

/// The system prompt of a request (each leaf has its own).
fn system_of(req: &LlmRequest) -> String {
    req.system_prompt.clone().unwrap_or_else(|| {
        req.messages
            .iter()
            .find(|m| m.role == Role::System)
            .map(|m| m.text())
            .unwrap_or_default()
    })
}

/// A scripted stand-in for a provider: the planner answers JSON, researchers a note on their
/// subtopic, the writer a summary of its context.
fn scripted_model(calls: Arc<AtomicUsize>) -> ScriptedLlm {
    ScriptedLlm::from_fn(move |req| {
        calls.fetch_add(1, Ordering::Relaxed);
        let system = system_of(req);
        if system.starts_with("Break") {
            ScriptedStep::json(
                serde_json::json!({"subtopics": ["history", "utensils", "etiquette"]}),
            )
        } else if let Some(t) = system.strip_prefix("Write 2 sentences on ") {
            let t = t.trim_end_matches('.');
            ScriptedStep::text(format!(
                "{t} is central to the ceremony. Masters study {t} for years."
            ))
        } else {
            ScriptedStep::text("The ceremony joins its history, its utensils and its etiquette.")
        }
    })
}

#[tokio::main]
async fn main() -> power_loop::Result<()> {
    let dir = tempfile::tempdir()?;
    let dsn = dir.path().join("research.db").display().to_string();
    let calls = Arc::new(AtomicUsize::new(0));
    let agent = StatefulAgentLoop::builder(Arc::new(scripted_model(calls.clone())))
        .dsn(dsn)
        .build()?;
    let parent = agent
        .new_session(NewSessionOptions::default().with_system_prompt("You coordinate research."))
        .await?;

    // Validated on parsing: an invalid spec lists every problem at once.
    let spec = WorkflowSpec::from_json_str(SPEC)?;
    let options = WorkflowRunOptions::new()
        .with_parent_session(parent.as_str())
        .with_progress(|p| eprintln!("  progress: {}/{} ({})", p.finished, p.total, p.step_key));
    let out = WorkflowEngine::new(agent.clone(), options)
        .run(&spec)
        .await?;
    println!("{}", out.result.summary());
    let run_id = out.run_id.clone().unwrap_or_default();
    println!(
        "run id: {run_id}; model calls: {}",
        calls.load(Ordering::Relaxed)
    );

    // What `power-loop workflow status RUN_ID` shows, from the journal in the store.
    let store = agent.store().await?.clone();
    if let Some(view) = get_workflow_run(&store, &run_id).await? {
        println!(
            "status: {} (attempt {}), {} steps finished, {} completed",
            view.summary.status.as_str(),
            view.summary.attempts,
            view.finished_steps,
            view.completed_steps
        );
        for s in &view.steps {
            println!("  [{}] {}", s.result.status, s.step_key);
        }
    }

    // Resuming a finished run replays every journaled step: no model call.
    let before = calls.load(Ordering::Relaxed);
    let again = resume_run(&agent, &run_id, WorkflowRunOptions::new()).await?;
    println!(
        "resumed: {} (attempt {}), {} steps replayed, {} new model calls",
        again.result.status,
        again.attempt,
        again.replayed_steps,
        calls.load(Ordering::Relaxed) - before
    );
    assert!(out.result.ok() && again.result.ok());
    assert_eq!(calls.load(Ordering::Relaxed), before);
    agent.close(std::time::Duration::from_secs(5)).await?;
    Ok(())
}
