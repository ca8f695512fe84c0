//! The engine's node semantics and failure modes on the scripted model (SQLite journal).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use power_loop_contracts::ErrorCode;
use power_loop_llm::Step;
use power_loop_workflow::{
    LeafStatus, RunOptions, RunStatus, SharedBudget, WorkflowEngine, get_run, list_runs,
};
use serde_json::json;
use support::*;
use tokio_util::sync::CancellationToken;

/// Answers `done:{user input}` for every leaf.
fn echo_model() -> power_loop_llm::ScriptedLlm {
    model(|_, user| Step::text(format!("done:{user}")))
}

#[tokio::test]
async fn sequence_runs_in_order_with_templates_and_inputs_from_context() {
    let (store, _d) = sqlite_store().await;
    let llm = echo_model();
    let lp = agent_loop(&llm, &store);
    let s = spec(
        json!({"name": "seq", "input": "tea", "root": {"type": "sequence", "steps": [
            leaf("a", "about {{input}}", "first {{input}}"),
            leaf("b", "p", "second"),
            {"type": "agent", "id": "c", "spec": {"name": "c", "system_prompt": "p"},
             "input": "third", "inputs_from": ["a", "b"]}
        ]}}),
    );
    let out = WorkflowEngine::builder(lp).build().run(&s).await.unwrap();
    let r = &out.result;
    assert_eq!(r.status, RunStatus::Completed);
    assert!(r.ok(), "{:?}", r.errors);
    assert_eq!(r.results.get("a").unwrap().text, "done:first tea");
    assert_eq!(
        r.results.get("c").unwrap().text,
        "done:third\n\n--- context ---\ndone:first tea\n\ndone:second"
    );
    assert_eq!(r.final_result.as_ref().unwrap().node_id, "c");
    // system prompts are rendered too
    assert_eq!(system(&llm.requests()[0]), "about tea");
    // usage: 3 leaves × (10 + 5)
    assert_eq!(r.usage.total_tokens, 45);
    assert_eq!(r.usage.prompt_tokens, 30);
    // journaled: a run id, three steps, the run finished
    let run_id = out.run_id.unwrap();
    assert_eq!(run_id.len(), 16);
    let view = get_run(&store, &run_id).await.unwrap().unwrap();
    assert_eq!(view.summary.status.as_str(), "completed");
    assert_eq!(view.finished_steps, 3);
    assert!(view.driver_session_id.is_some());
    assert_eq!(list_runs(&store, None, 10).await.unwrap().len(), 1);
    // leaves are linked children of the driver session and carry the idempotency key
    let kids = store
        .list_children(view.driver_session_id.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(kids.len(), 3);
    assert!(
        kids.iter()
            .any(|k| k.metadata.get("idempotency_key") == Some(&json!(format!("{run_id}:a"))))
    );
}

#[tokio::test]
async fn parallel_continue_keeps_going_and_halt_fails_the_run() {
    for (on_error, want_b) in [("continue", true), ("halt", false)] {
        let (store, _d) = sqlite_store().await;
        let llm = model(|sys, user| match sys {
            "boom" => Step::error(ErrorCode::LlmBadRequest),
            "slow" => slow_text(format!("ok:{user}"), 300),
            _ => Step::text(format!("ok:{user}")),
        });
        let lp = agent_loop(&llm, &store);
        let s = spec(
            json!({"name": "par", "root": {"type": "parallel", "on_error": on_error,
            "max_concurrency": 2, "branches": [
            leaf("a", "boom", "x"), leaf("b", "slow", "y")]}}),
        );
        let out = WorkflowEngine::builder(lp).build().run(&s).await.unwrap();
        let r = out.result;
        assert_eq!(r.status, RunStatus::Failed, "{on_error}");
        assert!(!r.ok());
        assert!(
            r.errors.iter().any(|e| e.contains("leaf 'a'")),
            "{:?}",
            r.errors
        );
        let b = r.results.get("b").unwrap();
        if want_b {
            assert_eq!(b.status, LeafStatus::Completed);
            assert!(r.errors[0].starts_with("parallel branch error: "));
        } else {
            // halt cancelled the slow sibling promptly
            assert_eq!(b.status, LeafStatus::Cancelled, "{b:?}");
        }
        assert_eq!(r.results.get("a").unwrap().status, LeafStatus::Failed);
    }
}

#[tokio::test]
async fn round_limit_and_leaf_error_are_failed_leaves() {
    let (store, _d) = sqlite_store().await;
    // a leaf that always calls a tool it does not have → never answers → round limit
    let llm = model(|sys, _| match sys {
        "loop" => Step::tool_call("nope", json!({})),
        _ => Step::text("fine"),
    });
    let lp = agent_loop(&llm, &store);
    let s = spec(
        json!({"name": "rl", "root": {"type": "parallel", "on_error": "continue", "branches": [
        {"type": "agent", "id": "a", "spec": {"name": "a", "system_prompt": "loop", "max_rounds": 2}},
        leaf("b", "p", "x")]}}),
    );
    let r = run_default(lp, &s).await;
    let a = r.results.get("a").unwrap();
    assert_ne!(a.status, LeafStatus::Completed);
    assert_eq!(r.status, RunStatus::Failed);
    assert!(
        r.errors
            .iter()
            .any(|e| e.contains("leaf 'a' ended with status")),
        "{:?}",
        r.errors
    );
    assert!(r.results.get("b").unwrap().ok());
}

#[tokio::test]
async fn budget_floor_refuses_new_leaves_and_stops_a_sequential_foreach() {
    let (store, _d) = sqlite_store().await;
    let llm = echo_model();
    let lp = agent_loop(&llm, &store);
    // each leaf costs 15; 40 budget with a 25 % floor (10): after 2 leaves 10 left → refused
    let s = spec(
        json!({"name": "b", "budget": {"max_tokens": 40, "stop_at_remaining_pct": 25},
        "root": {"type": "foreach", "id": "fe", "items": [1, 2, 3, 4, 5], "as": "n", "parallel": false,
            "body": leaf("w", "p", "item {{n}}")}}),
    );
    let r = run_default(lp, &s).await;
    assert_eq!(r.status, RunStatus::BudgetExceeded);
    assert_eq!(llm.call_count(), 2);
    let fe = r.results.get("fe").unwrap();
    assert_eq!(fe.status, LeafStatus::BudgetExceeded);
    // the third item is refused, the rest never start
    assert_eq!(
        r.results.get("fe[2]/w").unwrap().status,
        LeafStatus::BudgetExceeded
    );
    assert!(r.results.get("fe[3]/w").is_none());
    // a caller-supplied budget is shared the same way
    let b = Arc::new(SharedBudget::new(15, 0.0));
    let s2 = spec(
        json!({"name": "b2", "root": {"type": "sequence", "steps": [leaf("x", "p", "1"), leaf("y", "p", "2")]}}),
    );
    let r2 = WorkflowEngine::new(
        agent_loop(&llm, &store),
        RunOptions::new().with_budget(b.clone()),
    )
    .run(&s2)
    .await
    .unwrap()
    .result;
    assert_eq!(r2.status, RunStatus::BudgetExceeded);
    assert_eq!(b.spent(), 15);
}

#[tokio::test]
async fn cancellation_mid_fan_out_stops_the_remaining_items() {
    let (store, _d) = sqlite_store().await;
    let calls = Arc::new(AtomicUsize::new(0));
    let c2 = calls.clone();
    let cancel = CancellationToken::new();
    let cx = cancel.clone();
    let llm = model(move |_, user| {
        if c2.fetch_add(1, Ordering::SeqCst) == 3 {
            cx.cancel();
        }
        slow_text(format!("ok:{user}"), 50)
    });
    let lp = agent_loop(&llm, &store);
    let s = spec(
        json!({"name": "c", "root": {"type": "foreach", "id": "fan", "items": (0..40).collect::<Vec<_>>(),
        "as": "i", "max_concurrency": 2, "body": leaf("w", "p", "{{i}}")}}),
    );
    let r = WorkflowEngine::builder(lp)
        .cancel(cancel)
        .build()
        .run(&s)
        .await
        .unwrap()
        .result;
    assert_eq!(r.status, RunStatus::Cancelled);
    // at most the in-flight pair after the cancel called the model
    assert!(
        calls.load(Ordering::SeqCst) <= 6,
        "calls = {}",
        calls.load(Ordering::SeqCst)
    );
    let cancelled = r
        .results
        .iter()
        .filter(|x| x.status == LeafStatus::Cancelled)
        .count();
    assert!(cancelled >= 34, "{cancelled}");
    assert_eq!(
        r.results.get("fan[39]/w").unwrap().error.as_deref(),
        Some(power_loop_workflow::CANCELLED_BEFORE_START)
    );
    assert_eq!(r.results.get("fan").unwrap().status, LeafStatus::Cancelled);
}

#[tokio::test]
async fn branch_on_a_payload_and_a_reference_to_a_node_that_has_not_run() {
    let (store, _d) = sqlite_store().await;
    let llm = model(|sys, user| match sys {
        "plan" => Step::text(r#"{"mode": "deep", "topics": ["x", "y"]}"#),
        _ => Step::text(format!("{sys}:{user}")),
    });
    let lp = agent_loop(&llm, &store);
    let schema = json!({"name": "Plan", "schema": {"type": "object", "required": ["mode", "topics"],
        "properties": {"mode": {"type": "string"}, "topics": {"type": "array", "items": {"type": "string"}}}}});
    let s = spec(json!({"name": "br", "root": {"type": "sequence", "steps": [
        {"type": "agent", "id": "plan", "spec": {"name": "p", "system_prompt": "plan"}, "output_schema": schema},
        {"type": "branch", "on": "plan.mode", "cases": {
            "deep": {"type": "foreach", "id": "fan", "items_from": "plan.topics", "as": "t", "body": leaf("r", "research", "{{t}}")},
            "shallow": leaf("skim", "skim", "s")}},
        {"type": "branch", "on": "skim", "cases": {"x": leaf("never", "p", "x")}}
    ]}}));
    let r = run_default(lp, &s).await;
    assert_eq!(
        r.results.get("plan").unwrap().payload,
        Some(json!({"mode": "deep", "topics": ["x", "y"]}))
    );
    assert_eq!(r.results.get("fan[0]/r").unwrap().text, "research:x");
    assert_eq!(
        r.results.get("fan").unwrap().payload,
        Some(json!({"items": ["research:x", "research:y"]}))
    );
    assert!(r.results.get("skim").is_none());
    assert_eq!(r.status, RunStatus::Failed);
    assert_eq!(
        r.errors,
        vec!["reference 'skim': node 'skim' has not produced a result".to_owned()]
    );
    // final: the last leaf in document/item order
    assert_eq!(r.final_result.as_ref().unwrap().node_id, "fan[1]/r");
}

#[tokio::test]
async fn branch_default_no_match_and_unparsable_payload() {
    let (store, _d) = sqlite_store().await;
    let llm = model(|sys, _| match sys {
        "k" => Step::text("other"),
        "bad" => Step::text("no json here"),
        _ => Step::text("dflt"),
    });
    let lp = agent_loop(&llm, &store);
    let s = spec(json!({"name": "d", "root": {"type": "sequence", "steps": [
        leaf("k", "k", "x"),
        {"type": "branch", "on": "k", "cases": {"a": leaf("a", "p", "x")}, "default": leaf("dd", "p", "x")},
        {"type": "branch", "on": "k", "cases": {"a": leaf("a2", "p", "x")}}
    ]}}));
    let r = run_default(lp.clone(), &s).await;
    assert_eq!(r.results.get("dd").unwrap().text, "dflt");
    assert_eq!(
        r.errors,
        vec![r#"branch on 'k' got value "other" with no matching case and no default"#.to_owned()]
    );

    let s = spec(
        json!({"name": "p", "root": {"type": "agent", "id": "bad", "spec": {"name": "b", "system_prompt": "bad", "max_rounds": 1},
        "output_schema": {"name": "O", "schema": {"type": "object"}}}}),
    );
    let r = run_default(lp, &s).await;
    let bad = r.results.get("bad").unwrap();
    assert_eq!(bad.payload, None);
    assert!(!r.ok());
    assert!(
        r.errors
            .iter()
            .any(|e| e.starts_with("output_schema parse failed for 'bad'")),
        "{:?}",
        r.errors
    );
}

#[tokio::test]
async fn final_is_deterministic_under_concurrency_and_results_do_not_overwrite() {
    let (store, _d) = sqlite_store().await;
    // earlier items are slower: the last to settle is item 0
    let llm = model(|_, user| {
        let n: u64 = user.parse().unwrap_or(0);
        slow_text(format!("v{user}"), (5 - n) * 40)
    });
    let lp = agent_loop(&llm, &store);
    let s = spec(
        json!({"name": "f", "root": {"type": "foreach", "id": "fe", "items": [0, 1, 2, 3, 4],
        "as": "n", "max_concurrency": 5, "body": leaf("w", "p", "{{n}}")}}),
    );
    let r = WorkflowEngine::builder(lp)
        .journal(false)
        .build()
        .run(&s)
        .await
        .unwrap();
    assert_eq!(r.run_id, None);
    let r = r.result;
    assert_eq!(r.final_result.as_ref().unwrap().text, "v4");
    let keys: Vec<&str> = r.results.iter().map(|x| x.node_id.as_str()).collect();
    assert_eq!(
        keys,
        ["fe[0]/w", "fe[1]/w", "fe[2]/w", "fe[3]/w", "fe[4]/w", "fe"]
    );
    assert_eq!(
        r.results.get("fe").unwrap().text,
        "v0\n\nv1\n\nv2\n\nv3\n\nv4"
    );
    // the aggregate's usage is its items' sum; the run counts each leaf once
    assert_eq!(r.results.get("fe").unwrap().usage.total_tokens, 75);
    assert_eq!(r.usage.total_tokens, 75);
}

#[tokio::test]
async fn progress_reports_every_step() {
    let (store, _d) = sqlite_store().await;
    let llm = echo_model();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let lp = agent_loop(&llm, &store);
    let s = spec(json!({"name": "p", "root": {"type": "sequence", "steps": [
        leaf("a", "p", "x"),
        {"type": "foreach", "id": "fe", "items": [1, 2, 3], "as": "n", "body": leaf("w", "p", "{{n}}")}]}}));
    WorkflowEngine::builder(lp)
        .progress(move |p| s2.lock().unwrap().push((p.finished, p.total)))
        .build()
        .run(&s)
        .await
        .unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 5);
    assert_eq!(*seen.last().unwrap(), (5, 5));
}
