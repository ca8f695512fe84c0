//! A leaf run by a `power-loop worker` process in its own SQLite store that delegates to a
//! linked sub-agent (`run_agent`), which delegates again: the sub-agent's session is shipped back with the leaf's and
//! merged into the parent's store under the leaf's session.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "leaf_support/mod.rs"]
mod support;

use std::sync::Arc;

use power_loop::{ScriptedStep, WorkflowRunOptions};
use serde_json::json;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_leafs_sub_agent_sessions_join_the_parent_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(dir.path()).await;
    let llm = model(|req| {
        let system = req.system_prompt.clone().unwrap_or_default();
        if system.contains("helper") {
            // the sub-agent (and its own sub-agent one level down)
            if system.contains("deep") || last_tool(req).is_some() {
                return ScriptedStep::text(format!("helper found: {}", req.last_user_text()));
            }
            return ScriptedStep::tool_call(
                "run_agent",
                json!({"input": "dig deeper", "spec": {"name": "deep",
                       "system_prompt": "deep helper", "lifecycle": "linked"}}),
            );
        }
        match last_tool(req) {
            None => ScriptedStep::tool_call(
                "run_agent",
                json!({"input": "find the answer", "spec": {"name": "helper",
                       "system_prompt": "helper", "lifecycle": "linked",
                       "tools": ["run_agent"]}}),
            ),
            Some(t) => ScriptedStep::text(format!("boss done after: {t}")),
        }
    });
    let lp = parent_loop(&llm, &store);
    let ex = Arc::new(executor(dir.path()).tool_preset("core").unwrap().build());
    let spec = spec(json!({"name": "delegate", "root":
        tool_leaf("boss", "boss", "go", &["run_agent"])}));
    let out = run_with(&lp, WorkflowRunOptions::new().with_executor(ex), &spec).await;
    let r = &out.result;
    assert_completed(r);
    let boss = r.results.get("boss").unwrap();
    assert!(boss.text.starts_with("boss done after:"), "{}", boss.text);
    let boss_sid = boss.session_id.clone().unwrap();
    let boss_row = store.get_session(&boss_sid).await.unwrap().unwrap();
    // the leaf's sub-agent is in the parent's store, one level below the leaf
    let children = store.list_children(&boss_sid).await.unwrap();
    assert_eq!(children.len(), 1, "{children:?}");
    let helper = &children[0];
    assert_eq!(helper.spawn_depth, boss_row.spawn_depth + 1);
    let msgs = lp.get_messages(&helper.session_id, false).await.unwrap();
    assert!(
        msgs.iter().any(|m| m.text().starts_with("helper found:")),
        "{msgs:?}"
    );
    // and the sub-agent's own sub-agent, one level further down
    let grand = store.list_children(&helper.session_id).await.unwrap();
    assert_eq!(grand.len(), 1, "{grand:?}");
    assert_eq!(grand[0].spawn_depth, helper.spawn_depth + 1);
    let msgs = lp.get_messages(&grand[0].session_id, false).await.unwrap();
    assert!(
        msgs.iter().any(|m| m.text() == "helper found: dig deeper"),
        "{msgs:?}"
    );
}
