//! The seed README's research example (plan → fan-out → summarize) end to end on the
//! scripted model, then resumed: everything replays, nothing calls the model again.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use power_loop_llm::Step;
use power_loop_workflow::{LeafStatus, RunOptions, RunStatus, WorkflowEngine, get_run, resume_run};
use serde_json::json;
use support::*;

fn research_spec() -> power_loop_workflow::WorkflowSpec {
    spec(json!({
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
    }))
}

#[tokio::test]
async fn research_example_runs_end_to_end_and_resume_replays_it() {
    let (store, _d) = sqlite_store().await;
    let llm = model(|sys, user| {
        if sys.starts_with("Break") {
            Step::text(r#"{"subtopics": ["history", "utensils", "etiquette"]}"#)
        } else if let Some(t) = sys.strip_prefix("Write 2 sentences on ") {
            Step::text(format!("Notes on {}", t.trim_end_matches('.')))
        } else {
            Step::text(format!("Summary of: {}", user.replace('\n', " | ")))
        }
    });
    let lp = agent_loop(&llm, &store);
    let parent = lp.new_session(Default::default()).await.unwrap();
    let out = WorkflowEngine::builder(lp.clone())
        .parent_session(&parent)
        .build()
        .run(&research_spec())
        .await
        .unwrap();
    let r = &out.result;
    assert!(r.ok(), "{:?}", r.errors);
    assert_eq!(llm.call_count(), 5);
    assert_eq!(
        r.results.get("plan").unwrap().payload,
        Some(json!({"subtopics": ["history", "utensils", "etiquette"]}))
    );
    assert_eq!(
        r.results.get("research[1]/r").unwrap().text,
        "Notes on utensils"
    );
    let research = r.results.get("research").unwrap();
    assert_eq!(research.status, LeafStatus::Completed);
    assert_eq!(
        research.text,
        "Notes on history\n\nNotes on utensils\n\nNotes on etiquette"
    );
    let write = r.final_result.as_ref().unwrap();
    assert_eq!(write.node_id, "write");
    assert!(
        write.text.contains("--- context --- | Notes on history"),
        "{}",
        write.text
    );
    assert_eq!(r.usage.total_tokens, 5 * 15);
    // journal: plan, three items, the aggregate, write
    let run_id = out.run_id.clone().unwrap();
    let view = get_run(&store, &run_id).await.unwrap().unwrap();
    assert_eq!(view.finished_steps, 6);
    assert_eq!(
        view.summary.parent_session_id.as_deref(),
        Some(parent.as_str())
    );
    // resuming a completed run replays everything (no model call) and bumps the attempt
    let again = resume_run(&lp, &run_id, RunOptions::new()).await.unwrap();
    assert_eq!(llm.call_count(), 5);
    assert_eq!(again.attempt, 2);
    assert_eq!(again.executed_leaves, 0);
    assert_eq!(again.result.status, RunStatus::Completed);
    assert_eq!(
        comparable(&again.result.to_value()),
        comparable(&r.to_value())
    );
    // the driver session was reused
    let v2 = get_run(&store, &run_id).await.unwrap().unwrap();
    assert_eq!(v2.driver_session_id, view.driver_session_id);
    assert_eq!(v2.summary.attempts, 2);
}
