#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The seed README's research workflow (plan → parallel fan-out → write) with real leaves, on
//! both wire formats: the planner's structured plan drives the fan-out, each researcher's
//! request carries its subtopic, the writer's carries the researchers' answers, and a resume
//! replays the journal without a model call.

use std::time::Duration;

use power_loop::{NewSessionOptions, WorkflowEngine, WorkflowRunOptions, WorkflowSpec, resume_run};
use power_loop_real_tests::wire::sqlite_dsn;
use power_loop_real_tests::{Proxy, RealServer, Wire, real_test};

/// The seed README's spec, with every leaf's `max_tokens` bounded (a leaf does not inherit the
/// parent loop's cap: its `AgentSpec` default of 8000 applies, and four unbounded answers
/// overflowed the writer's 2048-token context) and the plan's array and strings bounded so a 135M
/// model's constrained answer stays short.
const SPEC: &str = r#"{
  "name": "research", "input": "the Japanese tea ceremony",
  "root": {"type": "sequence", "steps": [
    {"type": "agent", "id": "plan",
     "spec": {"name": "planner", "max_tokens": 64, "system_prompt": "Break the topic into 3 subtopics. Answer with JSON only."},
     "output_schema": {"name": "Plan", "schema": {"type": "object", "required": ["subtopics"],
       "properties": {"subtopics": {"type": "array", "minItems": 2, "maxItems": 3,
         "items": {"type": "string", "minLength": 3, "maxLength": 30}}}}}},
    {"type": "foreach", "id": "research", "items_from": "plan.subtopics", "as": "t",
     "parallel": true, "max_concurrency": 3,
     "body": {"type": "agent", "id": "r",
       "spec": {"name": "researcher", "max_tokens": 64, "system_prompt": "Write 2 sentences on {{t}}."},
       "input": "Subtopic: {{t}}"}},
    {"type": "agent", "id": "write",
     "spec": {"name": "writer", "max_tokens": 64, "system_prompt": "Synthesize the notes."},
     "inputs_from": ["research"]}
  ]}
}"#;

/// The spec as sent on `wire`. llama-server's Messages endpoint drops JSON-schema constraints
/// and the 135M model does not follow a JSON instruction, so on the Anthropic wire the planner
/// answers free text and the fan-out takes a literal list; every leaf still runs on the model.
fn spec_for(wire: Wire) -> String {
    let mut v: serde_json::Value = serde_json::from_str(SPEC).unwrap();
    if wire == Wire::Anthropic {
        let steps = v["root"]["steps"].as_array_mut().unwrap();
        steps[0].as_object_mut().unwrap().remove("output_schema");
        steps[0]["spec"]["system_prompt"] = "Break the topic into 3 subtopics.".into();
        let fan = steps[1].as_object_mut().unwrap();
        fan.remove("items_from");
        fan.insert(
            "items".into(),
            serde_json::json!(["history", "utensils", "etiquette"]),
        );
    }
    v.to_string()
}

async fn research(wire: Wire, server: RealServer) {
    let dir = tempfile::tempdir().unwrap();
    let proxy = Proxy::start(&server.base_url);
    let agent = wire.agent(&proxy.base_url, &sqlite_dsn(&dir), 64);
    let parent = agent
        .new_session(NewSessionOptions::default().with_system_prompt("You coordinate research."))
        .await
        .unwrap();
    let spec = WorkflowSpec::from_json_str(&spec_for(wire)).unwrap();
    let out = tokio::time::timeout(
        Duration::from_secs(240),
        WorkflowEngine::new(
            agent.clone(),
            WorkflowRunOptions::new().with_parent_session(parent.as_str()),
        )
        .run(&spec),
    )
    .await
    .expect("the workflow finishes")
    .unwrap();
    let result = &out.result;
    assert!(result.ok(), "{}\n{:?}", result.summary(), result.errors);

    // The plan is the planner's real structured answer.
    let plan = result.results.get("plan").expect("plan result");
    assert!(!plan.text.trim().is_empty());
    let subtopics: Vec<String> = match wire {
        Wire::OpenAi => plan
            .payload
            .as_ref()
            .and_then(|p| p["subtopics"].as_array())
            .unwrap_or_else(|| panic!("structured plan: {plan:?}"))
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect(),
        Wire::Anthropic => vec!["history".into(), "utensils".into(), "etiquette".into()],
    };
    assert!((2..=3).contains(&subtopics.len()), "{subtopics:?}");

    // One researcher per subtopic, each asked about its own; the writer got their answers.
    let calls = proxy.model_calls();
    let researcher_inputs: Vec<String> = calls
        .iter()
        .filter_map(|c| {
            wire.request_texts(&c.body)
                .into_iter()
                .find(|t| t.starts_with("Subtopic: "))
        })
        .collect();
    for t in &subtopics {
        assert!(
            researcher_inputs.contains(&format!("Subtopic: {t}")),
            "{t:?} not researched: {researcher_inputs:?}"
        );
    }
    let notes: Vec<String> = result
        .results
        .iter()
        .filter(|r| r.node_id.starts_with("research[") && r.node_id.ends_with("/r"))
        .map(|r| r.text.clone())
        .collect();
    assert_eq!(notes.len(), subtopics.len(), "{:?}", result.results);
    assert!(notes.iter().all(|n| !n.trim().is_empty()));
    let writer = calls
        .iter()
        .find(|c| {
            wire.request_texts(&c.body)
                .first()
                .is_some_and(|s| s.starts_with("Synthesize the notes."))
        })
        .expect("the writer's call");
    let writer_body = writer.body.to_string();
    for n in &notes {
        let quoted = serde_json::to_string(n.trim()).unwrap();
        let inner = &quoted[1..quoted.len() - 1];
        assert!(
            writer_body.contains(inner),
            "the writer's request carries {n:?}"
        );
    }
    let write = result.results.get("write").expect("writer result");
    assert!(!write.text.trim().is_empty());
    assert_eq!(
        calls.len(),
        2 + subtopics.len(),
        "plan + researchers + writer"
    );

    // A resume replays the journal: no model call.
    let before = proxy.model_calls().len();
    let run_id = out.run_id.clone().expect("a journaled run");
    let again = resume_run(&agent, &run_id, WorkflowRunOptions::new())
        .await
        .unwrap();
    assert!(again.result.ok());
    assert_eq!(proxy.model_calls().len(), before, "replayed, not re-run");
    agent.close(Duration::from_secs(10)).await.unwrap();
}
real_test!(research_workflow_with_real_leaves, super::research);
