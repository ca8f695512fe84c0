#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The JSON shapes of results: eight keys per leaf, the run's six keys, `ok()` and
//! `summary()`.

use power_loop_agent::RunUsage;
use power_loop_workflow::{AgentResult, LeafStatus, RunStatus, WorkflowResult};
use serde_json::json;

fn leaf(id: &str, status: LeafStatus, text: &str, total: u64) -> AgentResult {
    let mut r = AgentResult::new(id, status);
    r.text = text.into();
    r.usage = RunUsage {
        calls: 1,
        prompt_tokens: total / 2,
        completion_tokens: total - total / 2,
        total_tokens: total,
        ..RunUsage::default()
    };
    r
}

#[test]
fn agent_result_has_eight_keys_and_reads_back() {
    let mut r = leaf("plan", LeafStatus::Completed, "done", 10);
    r.payload = Some(json!({"subtopics": ["a"]}));
    r.session_id = Some("s1".into());
    let v = r.to_value();
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "node_id",
            "status",
            "text",
            "payload",
            "usage",
            "session_id",
            "error",
            "db_path"
        ]
    );
    assert_eq!(v["status"], "completed");
    assert_eq!(AgentResult::from_value(&v).unwrap(), r);
    assert!(r.ok());
    assert!(!leaf("x", LeafStatus::HitRoundLimit, "", 0).ok());
    assert!(AgentResult::from_value(&json!({"node_id": "x", "status": "weird"})).is_err());
}

#[test]
fn workflow_result_ok_requires_no_errors_and_summary_reads_well() {
    let mut w = WorkflowResult::new("research", RunStatus::Completed);
    w.results.insert(leaf(
        "plan",
        LeafStatus::Completed,
        "three\n  subtopics",
        30,
    ));
    w.results.insert(leaf("r", LeafStatus::Failed, "", 0));
    w.results
        .insert(leaf("plan", LeafStatus::Completed, "replaced", 30));
    w.usage.total_tokens = 60;
    assert!(w.ok());
    assert_eq!(
        w.summary(),
        "workflow 'research' -> completed\n  [ok] plan: replaced\n  [failed] r: \ntokens: 60"
    );
    w.errors.push("parallel branch error: boom".into());
    assert!(!w.ok());
    let v = w.to_value();
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["name", "status", "results", "final", "usage", "errors"]
    );
    let ids: Vec<&String> = v["results"].as_object().unwrap().keys().collect();
    assert_eq!(ids, ["plan", "r"]);
    assert_eq!(v["final"], serde_json::Value::Null);
    assert_eq!(
        v["usage"],
        json!({"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 60})
    );
    assert!(
        w.summary()
            .ends_with("errors:\n  - parallel branch error: boom\ntokens: 60")
    );
    assert!(!WorkflowResult::new("x", RunStatus::Cancelled).ok());
}
