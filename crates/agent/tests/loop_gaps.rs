//! The loop's remaining gaps: runtime projections and `todo_updated`, the skills section and the
//! notes policy, cancellation reasons, conflicting builder options, the pending state's
//! `assistant_seq`, the `tool.error` hook's error text, and the echo provider through the loop.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use power_loop_agent::{
    AgentLoopConfig, CancelHandle, NewSessionOptions, RunStatus, SendOptions, StatefulAgentLoop,
};
use power_loop_contracts::{
    Error, ErrorCode, EventPayload, LlmService, Role, ToolDefinition, ToolOutput,
};
use power_loop_llm::{EchoLlm, ScriptedLlm, Step};
use power_loop_store::BackgroundTaskUpdate;
use power_loop_tools::{
    NotesEviction, NotesPolicy, RuntimeEnv, ToolRegistry, ToolSelection, default_registry, tool_fn,
};
use serde_json::json;
use support::*;

async fn setup(
    llm: Arc<dyn LlmService>,
    cfg: AgentLoopConfig,
    reg: Option<ToolRegistry>,
) -> (StatefulAgentLoop, String, tempfile::TempDir) {
    let (store, dir) = sqlite_store().await;
    let mut b = StatefulAgentLoop::builder(llm).store(store).config(cfg);
    if let Some(r) = reg {
        b = b.tools(r);
    }
    let lp = b.build().unwrap();
    let sid = lp.new_session(NewSessionOptions::default()).await.unwrap();
    (lp, sid, dir)
}

fn builtin(names: &[&str]) -> ToolRegistry {
    default_registry(&RuntimeEnv::default(), &ToolSelection::include(names)).unwrap()
}

fn named(req: &power_loop_contracts::LlmRequest, name: &str) -> Vec<String> {
    req.messages
        .iter()
        .filter(|m| m.name.as_deref() == Some(name))
        .map(|m| m.text())
        .collect()
}

#[tokio::test]
async fn the_todo_list_reaches_the_model_each_round_and_todo_updated_is_emitted() {
    let items = json!({"items": [
        {"id": "1", "text": "write the test", "status": "in_progress"},
        {"id": "2", "text": "ship it", "status": "pending"}
    ]});
    let llm = ScriptedLlm::new()
        .record_requests(true)
        .tool_call("todo", items)
        .then_text("working on it")
        .then_text("second send");
    let (lp, sid, _d) = setup(
        Arc::new(llm.clone()),
        AgentLoopConfig::default(),
        Some(builtin(&["todo"])),
    )
    .await;
    let log = record(lp.event_bus());
    let r = lp.send(&sid, "plan it").await.unwrap();
    assert_eq!(r.status, RunStatus::Completed);
    let reqs = llm.requests();
    assert_eq!(reqs.len(), 2);
    // Round 0: no list yet. Round 1: the list, last, as a transient user message.
    assert!(named(&reqs[0], "runtime_todo_state").is_empty());
    let last = reqs[1].messages.last().unwrap();
    assert_eq!(last.role, Role::User);
    assert_eq!(last.name.as_deref(), Some("runtime_todo_state"));
    assert_eq!(
        last.text(),
        "<current_todos>\n[>] #1: write the test\n[ ] #2: ship it\n\n(0/2 completed)\n</current_todos>"
    );
    // Never persisted: the stored history has no projection.
    let stored = lp.get_messages(&sid, true).await.unwrap();
    assert!(
        stored
            .iter()
            .all(|m| m.name.as_deref() != Some("runtime_todo_state")),
        "{stored:?}"
    );
    // The event, once, with the snapshot.
    let events = log.lock().unwrap().clone();
    let todo: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.payload {
            EventPayload::TodoUpdated(p) => Some(p.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(todo.len(), 1, "{:?}", names(&log));
    assert_eq!(todo[0].kind, "todo_snapshot");
    assert_eq!(todo[0].items.len(), 2);
    assert_eq!(todo[0].counts["total"], json!(2));
    assert!(todo[0].rendered.contains("[>] #1: write the test"));
    // The next send is rebuilt from the store: the list is still projected.
    lp.send(&sid, "status?").await.unwrap();
    let reqs = llm.requests();
    assert_eq!(
        named(&reqs[2], "runtime_todo_state").len(),
        1,
        "{:?}",
        reqs[2].messages
    );
}

#[tokio::test]
async fn background_updates_are_projected_once_then_marked_seen() {
    let llm = ScriptedLlm::new()
        .record_requests(true)
        .text("one")
        .then_text("two");
    let (lp, sid, _d) = setup(
        Arc::new(llm.clone()),
        AgentLoopConfig::default(),
        Some(builtin(&["check_background"])),
    )
    .await;
    let store = lp.store().await.unwrap().clone();
    let mut t = BackgroundTaskUpdate::new("abc123", "cargo build --release", "completed");
    t.return_code = Some(0);
    t.output_tail = Some("Finished release".into());
    store.upsert_background_task(&sid, t).await.unwrap();
    lp.send(&sid, "hi").await.unwrap();
    lp.send(&sid, "again").await.unwrap();
    let reqs = llm.requests();
    let first = named(&reqs[0], "runtime_background_updates");
    assert_eq!(
        first,
        vec![
            "<background_updates>\n- abc123: [completed] cargo build --release\n    Finished release\n</background_updates>"
        ]
    );
    assert!(
        named(&reqs[1], "runtime_background_updates").is_empty(),
        "seen updates are not repeated"
    );
    assert!(
        store
            .list_unseen_background_updates(&sid)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn no_projectors_means_the_request_is_the_history() {
    let llm = ScriptedLlm::new()
        .record_requests(true)
        .tool_call(
            "todo",
            json!({"items": [{"id": "1", "text": "x", "status": "pending"}]}),
        )
        .then_text("done");
    let cfg = AgentLoopConfig::default().with_runtime_projectors(Vec::new());
    let (lp, sid, _d) = setup(Arc::new(llm.clone()), cfg, Some(builtin(&["todo"]))).await;
    lp.send(&sid, "go").await.unwrap();
    assert!(named(&llm.requests()[1], "runtime_todo_state").is_empty());
}

fn skills_dir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let a = d.path().join("deploy");
    std::fs::create_dir(&a).unwrap();
    std::fs::write(
        a.join("SKILL.md"),
        "---\ndescription: Ship the service to production\n---\nSteps...",
    )
    .unwrap();
    let b = d.path().join("lint");
    std::fs::create_dir(&b).unwrap();
    std::fs::write(b.join("SKILL.md"), "No front matter here.").unwrap();
    d
}

#[tokio::test]
async fn skills_dir_lists_the_skills_in_the_system_prompt() {
    let skills = skills_dir();
    let llm = ScriptedLlm::new().record_requests(true).text("ok");
    let cfg = AgentLoopConfig::default()
        .with_system_prompt("You are terse.")
        .with_skills_dir(skills.path());
    let (lp, sid, _d) = setup(Arc::new(llm.clone()), cfg, None).await;
    let expected = "You are terse.\n\n## Available Skills\nCall the `load_skill` tool with a skill name to load its full instructions.\n\nAvailable skills:\n  - deploy: Ship the service to production\n  - lint: No description";
    assert_eq!(lp.resolve_system_prompt(None).await.unwrap(), expected);
    lp.send(&sid, "hi").await.unwrap();
    assert_eq!(
        llm.last_request().unwrap().system_prompt.as_deref(),
        Some(expected)
    );
    // Without the setting the prompt has no section.
    let (lp, _sid, _d) = setup(
        Arc::new(ScriptedLlm::new()),
        AgentLoopConfig::default().with_system_prompt("You are terse."),
        None,
    )
    .await;
    assert_eq!(
        lp.resolve_system_prompt(None).await.unwrap(),
        "You are terse."
    );
}

#[tokio::test]
async fn a_missing_skills_dir_fails_at_build() {
    let (store, _d) = sqlite_store().await;
    let e = StatefulAgentLoop::builder(Arc::new(ScriptedLlm::new()))
        .store(store)
        .config(AgentLoopConfig::default().with_skills_dir("/definitely/not/here"))
        .build()
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::RuntimeEnvMissing, "{e}");
}

#[tokio::test]
async fn notes_policy_bounds_the_note_tools_of_the_loop() {
    let policy = NotesPolicy {
        max_notes: 1,
        max_note_chars: 10,
        eviction: NotesEviction::Reject,
    };
    let llm = ScriptedLlm::new()
        .tool_call("note_add", json!({"content": "this note is too long"}))
        .then_text("ok");
    let cfg = AgentLoopConfig::default().with_notes_policy(Some(policy));
    let (lp, sid, _d) = setup(Arc::new(llm), cfg, Some(builtin(&["note_add"]))).await;
    let log = record(lp.event_bus());
    lp.send(&sid, "remember").await.unwrap();
    let out = log
        .lock()
        .unwrap()
        .iter()
        .find_map(|e| match &e.payload {
            EventPayload::ToolCallCompleted(p) => Some(p.clone()),
            _ => None,
        })
        .unwrap();
    assert!(out.failed, "{out:?}");
    assert!(out.output.contains("> 10"), "{}", out.output);
}

#[tokio::test]
async fn cancellation_carries_its_reason_into_the_result_and_the_event() {
    let llm = ScriptedLlm::new()
        .step(Step::text("late").with_delay(Duration::from_secs(30)))
        .then_text("hi again");
    let (lp, sid, _d) = setup(Arc::new(llm), AgentLoopConfig::default(), None).await;
    let log = record(lp.event_bus());
    let handle = CancelHandle::new();
    let h = handle.clone();
    lp.event_bus().subscribe(
        power_loop_contracts::event::EventType::LlmCallStarted,
        move |_| {
            h.cancel_with_reason("user pressed stop");
            Ok(())
        },
    );
    let r = lp
        .send_with(&sid, "slow", SendOptions::new().with_cancel_handle(handle))
        .await
        .unwrap();
    assert_eq!(r.status, RunStatus::Cancelled);
    assert_eq!(r.cancel_reason.as_deref(), Some("user pressed stop"));
    let lc = log
        .lock()
        .unwrap()
        .iter()
        .find_map(|e| match &e.payload {
            EventPayload::LoopCancelled(p) => Some(p.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(lc.reason, "user pressed stop");
    assert_eq!(lc.round_index, Some(0));
}

#[tokio::test]
async fn a_plain_token_cancelled_at_round_start_reports_the_default_reason() {
    let (lp, sid, _d) = setup(
        Arc::new(ScriptedLlm::new().text("never")),
        AgentLoopConfig::default(),
        None,
    )
    .await;
    let log = record(lp.event_bus());
    let t = power_loop_contracts::CancellationToken::new();
    t.cancel();
    let r = lp
        .send_with(&sid, "x", SendOptions::new().with_cancel(t))
        .await
        .unwrap();
    assert_eq!(r.status, RunStatus::Cancelled);
    assert_eq!(r.cancel_reason.as_deref(), Some("cancelled"));
    assert_eq!(
        names(&log),
        vec![
            "session_started",
            "loop_cancelled",
            "session_ended(cancelled)"
        ]
    );
}

#[tokio::test]
async fn the_builder_rejects_a_store_together_with_a_dsn() {
    let (store, _d) = sqlite_store().await;
    let llm: Arc<dyn LlmService> = Arc::new(ScriptedLlm::new());
    let e = StatefulAgentLoop::builder(Arc::clone(&llm))
        .store(store.clone())
        .dsn(":memory:")
        .build()
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::ConfigInvalid, "{e}");
    assert_eq!(e.detail("conflict"), Some(&json!(["store", "dsn"])));
    // The other order too, and options that only apply to a DSN-opened store.
    let e = StatefulAgentLoop::builder(Arc::clone(&llm))
        .dsn(":memory:")
        .store(store.clone())
        .build()
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::ConfigInvalid);
    let e = StatefulAgentLoop::builder(Arc::clone(&llm))
        .store(store.clone())
        .store_options(power_loop_store::StoreOptions::default())
        .build()
        .unwrap_err();
    assert_eq!(
        e.detail("conflict"),
        Some(&json!(["store", "store_options"]))
    );
    // A store alone, and a DSN with its options, still build.
    assert!(
        StatefulAgentLoop::builder(Arc::clone(&llm))
            .store(store)
            .build()
            .is_ok()
    );
    assert!(
        StatefulAgentLoop::builder(llm)
            .dsn(":memory:")
            .store_options(power_loop_store::StoreOptions::default())
            .build()
            .is_ok()
    );
}

#[tokio::test]
async fn pending_assistant_seq_names_the_assistant_row_that_asked_for_the_tools() {
    // No registry: the run stops `pending_tools` right after the assistant row.
    let llm = ScriptedLlm::new()
        .text("first answer")
        .tool_call("echo", json!({"text": "x"}));
    let (lp, sid, _d) = setup(Arc::new(llm), AgentLoopConfig::default(), None).await;
    lp.send(&sid, "one").await.unwrap();
    let r = lp.send(&sid, "two").await.unwrap();
    assert_eq!(r.status, RunStatus::PendingTools);
    let rows = lp
        .store()
        .await
        .unwrap()
        .load_all_messages(&sid)
        .await
        .unwrap();
    let asked = rows
        .iter()
        .find(|r| r.tool_calls.is_some())
        .expect("the assistant row with tool calls");
    assert_eq!(asked.role, "assistant");
    assert_eq!(asked.seq, 4, "user, assistant, user, assistant(tool_calls)");
    let pending = lp.get_pending(&sid).await.unwrap().unwrap();
    assert_eq!(pending.assistant_seq, asked.seq);
    let e = lp.send(&sid, "three").await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::SessionPending);
    assert_eq!(e.detail("assistant_seq"), Some(&json!(asked.seq)));
}

#[tokio::test]
async fn the_tool_error_hook_gets_the_errors_own_text() {
    let mut reg = ToolRegistry::new();
    reg.register(tool_fn(
        ToolDefinition::new("boom", "Fails", json!({"type": "object", "properties": {}})),
        |_c, _a| async move { Err::<ToolOutput, _>(Error::new(ErrorCode::ToolFailed, "kaboom")) },
    ))
    .unwrap();
    let llm = ScriptedLlm::new()
        .tool_call("boom", json!({}))
        .then_text("done");
    let (lp, sid, _d) = setup(Arc::new(llm), AgentLoopConfig::default(), Some(reg)).await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = Arc::clone(&seen);
    lp.hooks().on_tool_error(0, move |ctx| {
        s2.lock().unwrap().push(ctx.error_message.clone());
        ctx.output = format!("recovered: {}", ctx.error_message);
        ctx.directive = power_loop_contracts::hook::ToolErrorDirective::Skip;
        Ok(())
    });
    lp.send(&sid, "go").await.unwrap();
    assert_eq!(*seen.lock().unwrap(), vec!["kaboom".to_owned()]);
    let msgs = lp.get_messages(&sid, false).await.unwrap();
    let tool = msgs.iter().find(|m| m.role == Role::Tool).unwrap();
    assert_eq!(tool.text(), "recovered: kaboom");
}

#[tokio::test]
async fn the_echo_provider_through_the_loop_has_fixed_usage_and_no_deltas() {
    let (lp, sid, _d) = setup(
        Arc::new(EchoLlm::new().with_prefix("echo: ")),
        AgentLoopConfig::default(),
        None,
    )
    .await;
    let log = record(lp.event_bus());
    let r = lp.send(&sid, "hello there").await.unwrap();
    assert_eq!(r.status, RunStatus::Completed);
    assert_eq!(r.final_text, "echo: hello there");
    assert_eq!(r.rounds, 1);
    assert_eq!(
        (
            r.usage.calls,
            r.usage.prompt_tokens,
            r.usage.completion_tokens,
            r.usage.total_tokens
        ),
        (1, 1, 1, 2)
    );
    let events = log.lock().unwrap().clone();
    assert!(
        !events
            .iter()
            .any(|e| matches!(e.payload, EventPayload::StreamDelta(_))),
        "the echo provider does not stream"
    );
    let done = events
        .iter()
        .find_map(|e| match &e.payload {
            EventPayload::LlmCallCompleted(p) => Some(p.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        (
            done.prompt_tokens,
            done.completion_tokens,
            done.total_tokens
        ),
        (Some(1), Some(1), Some(2))
    );
}
