//! Crash recovery: a child process (this test binary re-executed on an ignored test) is
//! SIGKILLed while a tool call blocks; a new loop in this process sees the session pending, and
//! `heal_pending`, `resume` and `abort_pending` each bring it to a consistent state that the next
//! `send` accepts. SQLite always; PostgreSQL when `POWER_LOOP_TEST_PG_DSN` is set.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use power_loop_agent::{NewSessionOptions, RunStatus, SendOptions, StatefulAgentLoop};
use power_loop_contracts::{ErrorCode, Role, ToolDefinition, ToolOutput};
use power_loop_llm::{ScriptedLlm, Step};
use power_loop_store::SessionStore;
use power_loop_tools::{ToolRegistry, tool_fn};
use serde_json::json;
use support::*;

/// Runs only inside the child process: drives a send whose tool blocks forever.
#[tokio::test]
#[ignore = "child process of the crash-recovery tests"]
async fn child_process_blocks_in_a_tool() {
    let Ok(dsn) = std::env::var("PL_CHILD_DSN") else {
        return;
    };
    let sid = std::env::var("PL_CHILD_SID").unwrap();
    let store = match std::env::var("PL_CHILD_PREFIX") {
        Ok(prefix) => pg_at(&dsn, &prefix).await,
        Err(_) => sqlite_at(&dsn).await,
    };
    let llm = ScriptedLlm::new()
        .step(Step::text_with_tool_calls(
            "working",
            [
                ("echo", json!({"text": "before"})),
                ("sleep_forever", json!({})),
            ],
        ))
        .then_text("unreachable");
    let lp = StatefulAgentLoop::builder(Arc::new(llm))
        .store(store)
        .tools(registry())
        .build()
        .unwrap();
    let _ = lp.send(&sid, "start the long job").await;
    panic!("the child should have been killed inside the tool");
}

fn parent_registry() -> ToolRegistry {
    let mut r = registry();
    r.register_overwrite(tool_fn(
        ToolDefinition::new(
            "sleep_forever",
            "now quick",
            json!({"type": "object", "properties": {}}),
        ),
        |_ctx, _args| async move { Ok(ToolOutput::ok("finished on resume")) },
    ))
    .unwrap();
    r
}

async fn crash_child(store: &SessionStore, dsn: &str, prefix: Option<&str>) -> String {
    let sid = StatefulAgentLoop::new(Arc::new(ScriptedLlm::new()), store.clone())
        .new_session(NewSessionOptions::default())
        .await
        .unwrap();
    let marker = tempfile::NamedTempFile::new().unwrap().into_temp_path();
    let marker_path = marker.to_path_buf();
    std::fs::remove_file(&marker_path).ok();
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args([
        "--exact",
        "child_process_blocks_in_a_tool",
        "--ignored",
        "--nocapture",
    ])
    .env("PL_CHILD_DSN", dsn)
    .env("PL_CHILD_SID", &sid)
    .env("PL_TEST_MARKER", &marker_path)
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    if let Some(p) = prefix {
        cmd.env("PL_CHILD_PREFIX", p);
    }
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !marker_path.exists() {
        assert!(Instant::now() < deadline, "child never reached the tool");
        assert!(child.try_wait().unwrap().is_none(), "child exited early");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    sid
}

fn new_loop(store: &SessionStore, llm: &ScriptedLlm) -> StatefulAgentLoop {
    StatefulAgentLoop::builder(Arc::new(llm.clone()))
        .store(store.clone())
        .tools(parent_registry())
        .build()
        .unwrap()
}

/// Every assistant tool call in the window has exactly one tool result after it.
async fn assert_consistent(lp: &StatefulAgentLoop, sid: &str) {
    assert!(lp.get_pending(sid).await.unwrap().is_none());
    let msgs = lp.get_messages(sid, false).await.unwrap();
    for (i, m) in msgs.iter().enumerate() {
        for c in &m.tool_calls {
            let answers = msgs[i + 1..]
                .iter()
                .filter(|r| {
                    r.role == Role::Tool && r.tool_call_id.as_deref() == Some(c.id.as_str())
                })
                .count();
            assert_eq!(answers, 1, "call {} has {answers} results", c.id);
        }
    }
}

async fn scenario(store: SessionStore, dsn: &str, prefix: Option<&str>) {
    for variant in ["heal", "resume", "abort"] {
        let sid = crash_child(&store, dsn, prefix).await;
        let llm = ScriptedLlm::new();
        let lp = new_loop(&store, &llm);
        // The crash left the session pending: the blocked call is unresolved, the echo is done.
        let p = lp
            .get_pending(&sid)
            .await
            .unwrap()
            .expect("pending after the crash");
        assert_eq!(p.tool_call_ids.len(), 1, "{p:?}");
        let e = lp.send(&sid, "hello?").await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::SessionPending);
        assert!(e.message().contains("sleep_forever"), "{e}");
        match variant {
            "heal" => {
                llm.push(Step::text("healed"));
                let r = lp
                    .send_with(&sid, "go on", SendOptions::new().with_heal_pending(true))
                    .await
                    .unwrap();
                assert_eq!(r.final_text, "healed");
                let msgs = lp.get_messages(&sid, false).await.unwrap();
                assert!(
                    msgs.iter()
                        .any(|m| m.text().starts_with("<aborted: auto-healed"))
                );
            }
            "resume" => {
                llm.push(Step::text("resumed"));
                let r = lp.resume(&sid, None).await.unwrap();
                assert_eq!(r.status, RunStatus::Completed);
                assert_eq!(r.final_text, "resumed");
                assert_eq!(r.tool_calls, 1, "only the unfinished call re-ran");
                let msgs = lp.get_messages(&sid, false).await.unwrap();
                assert!(msgs.iter().any(|m| m.text() == "finished on resume"));
            }
            _ => {
                assert_eq!(lp.abort_pending(&sid, "operator").await.unwrap(), 1);
                assert_eq!(lp.abort_pending(&sid, "again").await.unwrap(), 0);
            }
        }
        assert_consistent(&lp, &sid).await;
        llm.push(Step::text("next answer"));
        let r = lp.send(&sid, "next").await.unwrap();
        assert_eq!(r.final_text, "next answer");
        // The model saw a history the provider accepts (every call answered).
        let req = llm.last_request().unwrap();
        assert!(req.messages.iter().any(|m| m.text() == "before"));
        assert_consistent(&lp, &sid).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_session_recovers_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.db");
    let path = path.to_str().unwrap().to_owned();
    let store = sqlite_at(&path).await;
    scenario(store, &path, None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_session_recovers_on_postgres() {
    let Some(dsn) = power_loop_store::conformance::support::pg_dsn() else {
        return;
    };
    let prefix = unique_prefix("crash");
    let store = pg_at(&dsn, &prefix).await;
    scenario(store, &dsn, Some(&prefix)).await;
}
