//! Sub-agents: `spawn_agent` delegates to a child session on a sibling loop, lifecycle events go
//! to the parent's bus, ephemeral children are deleted after completing, depth is bounded.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use power_loop_agent::{
    AgentSpec, NewSessionOptions, StatefulAgentLoop, register_subagent_tools, run_agent_spec,
};
use power_loop_contracts::EventPayload;
use power_loop_llm::ScriptedLlm;
use power_loop_store::{NewSession, StoreOptions, open_store};
use serde_json::json;
use support::*;

#[tokio::test]
async fn spawn_agent_runs_a_child_and_reports_to_the_parent_bus() {
    let (store, _d) = sqlite_store().await;
    let llm = ScriptedLlm::new()
        .tool_call(
            "spawn_agent",
            json!({"task": "add 2 and 2", "tools": ["echo"]}),
        )
        .text("child says 4")
        .text("the answer is 4");
    let mut reg = registry();
    register_subagent_tools(&mut reg, true).unwrap();
    let lp = StatefulAgentLoop::builder(Arc::new(llm.clone()))
        .store(store.clone())
        .tools(reg)
        .build()
        .unwrap();
    let sid = lp.new_session(NewSessionOptions::default()).await.unwrap();
    let log = record(lp.event_bus());
    let r = lp.send(&sid, "what is 2+2? delegate").await.unwrap();
    assert_eq!(r.final_text, "the answer is 4");
    let msgs = lp.get_messages(&sid, false).await.unwrap();
    assert_eq!(msgs[2].text(), "child says 4");
    // The child saw only its whitelisted tools and its own prompt.
    let child_req = &llm.requests()[1];
    let names: Vec<&str> = child_req.tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, vec!["echo"]);
    assert!(
        child_req
            .system_prompt
            .as_deref()
            .unwrap()
            .contains("focused sub-agent")
    );
    let evs = log.lock().unwrap().clone();
    let sub: Vec<&power_loop_contracts::AgentEvent> = evs
        .iter()
        .filter(|e| e.source.as_deref() == Some("subagent"))
        .collect();
    assert_eq!(sub.len(), 3);
    assert!(
        matches!(sub[0].payload, EventPayload::SubagentTaskStart(ref p) if p.depth == 1 && p.task == "add 2 and 2")
    );
    assert!(
        matches!(sub[1].payload, EventPayload::SubagentText(ref p) if p.final_text == "child says 4")
    );
    assert!(
        matches!(sub[2].payload, EventPayload::SubagentCompleted(ref p) if p.status == "completed")
    );
    assert!(
        sub.iter()
            .all(|e| e.session_id.as_deref() == Some(sid.as_str()))
    );
    // Ephemeral + completed → deleted.
    assert!(store.list_children(&sid).await.unwrap().is_empty());
}

#[tokio::test]
async fn run_agent_spec_validates_structured_output_and_bounds_depth() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.db");
    let store = open_store(
        path.to_str().unwrap(),
        StoreOptions::default().with_max_spawn_depth(1),
        &[power_loop_store_sqlite::BACKEND],
    )
    .await
    .unwrap();
    let llm = ScriptedLlm::new().text("{\"total\": 4}");
    let lp = StatefulAgentLoop::builder(Arc::new(llm))
        .store(store.clone())
        .tools(registry())
        .build()
        .unwrap();
    let root = lp.new_session(NewSessionOptions::default()).await.unwrap();
    let spec = AgentSpec::from_json(&json!({
        "name": "adder", "system_prompt": "Add numbers.", "lifecycle": "linked",
        "output_schema": {"name": "Sum", "schema": {"type": "object", "required": ["total"],
            "properties": {"total": {"type": "integer"}}}}
    }))
    .unwrap();
    let r = run_agent_spec(&lp, Some(&root), &spec, "2+2", None, None)
        .await
        .unwrap();
    assert_eq!(r.status, "completed");
    assert_eq!(r.structured, Some(json!({"total": 4})));
    assert_eq!(r.depth, 1);
    let child = r.session_id.clone().expect("linked children are kept");
    assert_eq!(store.list_children(&root).await.unwrap().len(), 1);
    // A grandchild would be depth 2 > max 1.
    let r2 = run_agent_spec(&lp, Some(&child), &spec, "again", None, None)
        .await
        .unwrap();
    assert_eq!(r2.status, "rejected");
    assert_eq!(r2.final_text, "spawn rejected — depth 2 exceeds max 1");
    let _ = NewSession::new();
}
