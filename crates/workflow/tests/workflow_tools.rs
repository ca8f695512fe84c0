#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The workflow tools: every problem of an invalid spec at once, nesting refused, leaves
//! without the workflow tools, synchronous runs journaled, `workflow_status` output.

use std::sync::{Arc, Mutex};

use power_loop_agent::{NewSessionOptions, StatefulAgentLoop};
use power_loop_contracts::{LlmRequest, Role, ToolCall};
use power_loop_llm::{ScriptedLlm, Step};
use power_loop_store::{JsonMap, NewSession};
use power_loop_tools::{RuntimeEnv, ToolContext, ToolRegistry};
use power_loop_workflow::{WORKFLOW_TOOL_NAMES, get_run, list_runs, register_workflow_tools};
use serde_json::{Value, json};

const PARENT_PROMPT: &str = "You orchestrate.";

fn spec() -> Value {
    json!({"name": "pair", "input": "tea", "root": {"type": "sequence", "steps": [
        {"type": "agent", "id": "a", "spec": {"name": "a", "system_prompt": "leaf a"}, "input": "about {{input}}"},
        {"type": "agent", "id": "b", "spec": {"name": "b", "system_prompt": "leaf b"}, "inputs_from": ["a"]}
    ]}})
}

/// Four problems: empty name, a foreach without items, a branch on a foreach-body node whose
/// `cases` is a list.
fn invalid_spec() -> Value {
    json!({"name": "", "root": {"type": "sequence", "steps": [
        {"type": "foreach", "as": "x", "body": {"type": "agent", "id": "r", "spec": {"name": "r", "system_prompt": "p"}}},
        {"type": "branch", "on": "r", "cases": ["a"]}
    ]}})
}

fn system_of(req: &LlmRequest) -> String {
    req.system_prompt.clone().unwrap_or_else(|| {
        req.messages
            .iter()
            .find(|m| m.role == Role::System)
            .map(|m| m.text())
            .unwrap_or_default()
    })
}

/// A loop with the workflow tools whose scripted model: as the parent, calls `create_workflow`
/// with `call` and then answers `done`; as a leaf, answers `leaf:{system prompt}` and records
/// the tool names it was offered.
fn agent(call: Value) -> (StatefulAgentLoop, Arc<Mutex<Vec<Vec<String>>>>) {
    let offered = Arc::new(Mutex::new(Vec::new()));
    let seen = offered.clone();
    let llm = ScriptedLlm::from_fn(move |req| {
        let system = system_of(req);
        if system.contains(PARENT_PROMPT) {
            let last = req.messages.last().map(|m| m.role);
            if last == Some(Role::Tool) {
                Step::text("done")
            } else {
                Step::tool_call("create_workflow", call.clone())
            }
        } else {
            seen.lock()
                .unwrap()
                .push(req.tools.iter().map(|t| t.name.clone()).collect());
            Step::text(format!("leaf:{system}"))
        }
    });
    let mut reg = ToolRegistry::new();
    register_workflow_tools(&mut reg).unwrap();
    reg.register(power_loop_tools::tool_fn(
        power_loop_contracts::ToolDefinition::new(
            "echo",
            "echo",
            json!({"type": "object", "properties": {}}),
        ),
        |_c, _a| async move { Ok(power_loop_contracts::ToolOutput::ok("e")) },
    ))
    .unwrap();
    let lp = StatefulAgentLoop::builder(Arc::new(llm))
        .dsn("sqlite://:memory:")
        .store_options(power_loop_store::StoreOptions::default())
        .backends(&[power_loop_store_sqlite::BACKEND])
        .tools(reg)
        .build()
        .unwrap();
    (lp, offered)
}

async fn parent_session(lp: &StatefulAgentLoop) -> String {
    lp.new_session(NewSessionOptions::default().with_system_prompt(PARENT_PROMPT))
        .await
        .unwrap()
}

async fn call_tool(
    lp: &StatefulAgentLoop,
    session: &str,
    name: &str,
    args: Value,
) -> power_loop_tools::ToolOutcome {
    let reg = lp.tool_registry().unwrap().clone();
    let ctx = ToolContext::new(Arc::new(RuntimeEnv::default()))
        .with_session(session)
        .with_extension(Arc::new(lp.clone()));
    let call = ToolCall::new("c1", name, args.to_string());
    reg.invoke(ctx, &call).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_spec_lists_every_problem_and_runs_nothing() {
    let (lp, offered) = agent(json!({}));
    let sid = parent_session(&lp).await;
    for tool in ["validate_workflow", "create_workflow"] {
        let out = call_tool(&lp, &sid, tool, json!({"spec": invalid_spec()})).await;
        assert!(out.is_failed(), "{tool}: {out:?}");
        let text = out.to_result().content;
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5, "{tool}: {text}");
        assert_eq!(lines[0], "Error: invalid WorkflowSpec — 4 problem(s):");
        assert_eq!(lines[1], "  - 'name' must be a non-empty string");
        assert_eq!(
            lines[2],
            "  - root.steps[0]: foreach requires either 'items_from' or 'items'"
        );
        assert!(
            lines[3].starts_with("  - root.steps[1]: 'on' references 'r'"),
            "{text}"
        );
        assert_eq!(
            lines[4],
            "  - root.steps[1]: branch requires a non-empty 'cases' object"
        );
        assert_eq!(out.to_result().content, text);
    }
    // Also as a JSON string, and not JSON at all.
    let out = call_tool(&lp, &sid, "validate_workflow", json!({"spec": "{nope"})).await;
    assert!(out.is_failed());
    assert!(out.to_result().content.contains("JSON parse error"));
    let out = call_tool(
        &lp,
        &sid,
        "validate_workflow",
        json!({"spec": spec().to_string()}),
    )
    .await;
    assert!(!out.is_failed(), "{out:?}");
    assert_eq!(out.to_result().content, "valid: pair (3 nodes)");
    let store = lp.store().await.unwrap();
    assert!(list_runs(store, None, 10).await.unwrap().is_empty());
    assert!(offered.lock().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_runs_a_journaled_workflow_whose_leaves_lack_the_tools() {
    let (lp, offered) = agent(json!({"spec": spec(), "input": "matcha"}));
    let sid = parent_session(&lp).await;
    let r = lp.send(&sid, "go").await.unwrap();
    assert_eq!(r.final_text, "done");
    // The tool result the model saw: the summary and the run id.
    let store = lp.store().await.unwrap().clone();
    let msgs = store.load_all_messages(&sid).await.unwrap();
    let tool_msg = msgs.iter().find(|m| m.role == "tool").unwrap();
    let content = tool_msg.content.clone().unwrap();
    assert!(
        content.starts_with("workflow 'pair' -> completed"),
        "{content}"
    );
    assert!(content.contains("[ok] a: leaf:leaf a"), "{content}");
    let run_id = content
        .lines()
        .last()
        .unwrap()
        .strip_prefix("run id: ")
        .unwrap();
    // Journaled under the calling session, input overridden.
    let runs = list_runs(&store, Some(&sid), 10).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].run_id, run_id);
    let view = get_run(&store, run_id).await.unwrap().unwrap();
    assert_eq!(view.summary.status.as_str(), "completed");
    assert_eq!(view.finished_steps, 2);
    let row = store.get_workflow_run(run_id).await.unwrap().unwrap();
    assert_eq!(row.input, "matcha");
    // Both leaves ran, and neither was offered a workflow tool (but the other tool was).
    let offered = offered.lock().unwrap().clone();
    assert_eq!(offered.len(), 2);
    for tools in &offered {
        assert!(tools.contains(&"echo".to_owned()), "{tools:?}");
        for name in WORKFLOW_TOOL_NAMES {
            assert!(!tools.contains(&(*name).to_owned()), "{tools:?}");
        }
    }

    // workflow_status: one run by id (JSON, steps only with detail) and the session's list.
    let out = call_tool(&lp, &sid, "workflow_status", json!({"run_id": run_id})).await;
    assert!(!out.is_failed());
    let v: Value = serde_json::from_str(&out.to_result().content).unwrap();
    assert_eq!(v["run_id"], run_id);
    assert_eq!(v["status"], "completed");
    assert_eq!(v["progress"]["finished_steps"], 2);
    assert!(v.get("steps").is_none());
    let out = call_tool(
        &lp,
        &sid,
        "workflow_status",
        json!({"run_id": run_id, "detail": true}),
    )
    .await;
    let v: Value = serde_json::from_str(&out.to_result().content).unwrap();
    assert_eq!(v["steps"].as_array().unwrap().len(), 2);
    let out = call_tool(&lp, &sid, "workflow_status", json!({})).await;
    assert_eq!(
        out.to_result().content,
        format!("{run_id}  completed      pair (2 steps)")
    );
    let out = call_tool(&lp, &sid, "workflow_status", json!({"run_id": "feedbeef"})).await;
    assert_eq!(out.to_result().content, "No workflow run 'feedbeef' found.");
    let other = parent_session(&lp).await;
    let out = call_tool(&lp, &other, "workflow_status", json!({})).await;
    assert_eq!(out.to_result().content, "No workflow runs.");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nesting_is_refused_at_call_time() {
    let (lp, offered) = agent(json!({}));
    let store = lp.store().await.unwrap().clone();
    let mut md = JsonMap::new();
    md.insert("workflow_run_id".into(), "0123456789abcdef".into());
    let leaf = store
        .create_session(NewSession::new().with_metadata(md))
        .await
        .unwrap();
    // A sub-agent spawned below the leaf is inside the workflow too.
    let below = store
        .create_session(NewSession::new().with_parent(leaf.clone()))
        .await
        .unwrap();
    let mut md = JsonMap::new();
    md.insert("kind".into(), "wf_driver".into());
    let driver = store
        .create_session(NewSession::new().with_metadata(md))
        .await
        .unwrap();
    for sid in [&leaf, &below, &driver] {
        let out = call_tool(&lp, sid, "create_workflow", json!({"spec": spec()})).await;
        assert!(out.is_failed());
        assert!(
            out.to_result()
                .content
                .starts_with("Error: nested workflow creation is not allowed"),
            "{out:?}"
        );
    }
    assert!(list_runs(&store, None, 10).await.unwrap().is_empty());
    assert!(offered.lock().unwrap().is_empty());
    // Missing spec; detached without a session; outside a loop.
    let plain = parent_session(&lp).await;
    let out = call_tool(&lp, &plain, "create_workflow", json!({})).await;
    assert!(out.is_failed());
    let out = call_tool(
        &lp,
        "",
        "create_workflow",
        json!({"spec": spec(), "detached": true}),
    )
    .await;
    assert!(out.is_failed());
    assert!(
        out.to_result()
            .content
            .contains("detached workflows need an active session")
    );
    let reg = lp.tool_registry().unwrap().clone();
    let ctx = ToolContext::new(Arc::new(RuntimeEnv::default())).with_session(plain.as_str());
    let out = reg
        .invoke(ctx, &ToolCall::new("c", "workflow_status", "{}"))
        .await;
    assert!(out.is_failed());
    assert!(
        out.to_result()
            .content
            .contains("inside an active StatefulAgentLoop")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn detached_create_returns_a_run_id_and_finishes_in_the_background() {
    let (lp, _offered) = agent(json!({}));
    let sid = parent_session(&lp).await;
    let out = call_tool(
        &lp,
        &sid,
        "create_workflow",
        json!({"spec": spec(), "detached": true}),
    )
    .await;
    assert!(!out.is_failed(), "{out:?}");
    let text = out.to_result().content;
    assert!(
        text.starts_with("Started detached workflow 'pair' as run "),
        "{text}"
    );
    let run_id = text
        .strip_prefix("Started detached workflow 'pair' as run ")
        .unwrap()
        .split('.')
        .next()
        .unwrap()
        .to_owned();
    let store = lp.store().await.unwrap().clone();
    let mut status = String::new();
    for _ in 0..200 {
        status = get_run(&store, &run_id)
            .await
            .unwrap()
            .unwrap()
            .summary
            .status
            .as_str()
            .to_owned();
        if status != "running" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(status, "completed");
    let row = store.get_workflow_run(&run_id).await.unwrap().unwrap();
    assert!(row.detached);
    assert_eq!(row.parent_session_id.as_deref(), Some(sid.as_str()));
    // The wake timer of the parent is armed.
    let timers = store.list_live_timers(&sid).await.unwrap();
    assert!(
        timers.iter().any(|t| t.note.contains(&run_id)),
        "{timers:?}"
    );
}
