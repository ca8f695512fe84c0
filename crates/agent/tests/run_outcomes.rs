//! Terminal outcomes and recovery paths: hook errors, degraded calls with retry events,
//! subscriber failures, human input, follow-ups, graceful close.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use power_loop_agent::{
    AgentLoopConfig, FollowUpOutcome, NewSessionOptions, RunStatus, SendOptions, StatefulAgentLoop,
};
use power_loop_contracts::LlmService;
use power_loop_contracts::{Error, ErrorCode, ToolDefinition};
use power_loop_llm::{LlmStack, RetryPolicy, ScriptedLlm, Step};
use power_loop_tools::{HumanInputRequest, ToolRegistry, tool_fn};
use serde_json::json;
use support::*;

async fn setup(
    llm: &ScriptedLlm,
    cfg: AgentLoopConfig,
    reg: ToolRegistry,
) -> (StatefulAgentLoop, String, tempfile::TempDir) {
    setup_with(Arc::new(llm.clone()), cfg, reg).await
}

async fn setup_with(
    llm: Arc<dyn LlmService>,
    cfg: AgentLoopConfig,
    reg: ToolRegistry,
) -> (StatefulAgentLoop, String, tempfile::TempDir) {
    let (store, dir) = sqlite_store().await;
    let lp = StatefulAgentLoop::builder(llm)
        .store(store)
        .config(cfg)
        .tools(reg)
        .build()
        .unwrap();
    let sid = lp.new_session(NewSessionOptions::default()).await.unwrap();
    (lp, sid, dir)
}

#[tokio::test]
async fn a_failing_hook_takes_the_error_path_and_the_session_stays_usable() {
    let llm = ScriptedLlm::new().text("unused").text("ok now");
    let (lp, sid, _d) = setup(&llm, AgentLoopConfig::default(), registry()).await;
    let h = lp
        .hooks()
        .on_llm_before(0, |_| Err(Error::new(ErrorCode::HookFailed, "policy down")));
    let log = record(lp.event_bus());
    let e = lp.send(&sid, "hi").await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::HookFailed);
    let n = names(&log);
    assert_eq!(n[n.len() - 2], "agent_error");
    assert_eq!(n[n.len() - 1], "session_ended(error)");
    lp.hooks().unregister(h);
    assert_eq!(lp.send(&sid, "again").await.unwrap().final_text, "unused");
}

#[tokio::test]
async fn exhausted_retries_degrade_with_retry_events_and_a_persisted_marker() {
    let llm = ScriptedLlm::new()
        .error(ErrorCode::LlmServer)
        .error(ErrorCode::LlmServer)
        .text("recovered");
    let policy = RetryPolicy::new()
        .with_max_attempts(2)
        .with_base_delay(Duration::from_millis(1))
        .with_jitter(0.0);
    // The caller wraps the provider once; the retry layer reports to the loop's observer.
    let wrapped = LlmStack::new().retry(policy).wrap(Arc::new(llm.clone()));
    let (lp, sid, _d) = setup_with(wrapped, AgentLoopConfig::default(), registry()).await;
    let log = record(lp.event_bus());
    let r = lp.send(&sid, "hi").await.unwrap();
    assert_eq!(r.status, RunStatus::Degraded);
    assert!(
        r.final_text.starts_with("[degraded: LLM retry_exhausted"),
        "{}",
        r.final_text
    );
    assert_eq!(
        names(&log),
        [
            &SEND_START[..],
            &model_call(false),
            &["llm_retry_attempted"],
            &model_call(false),
            &["llm_degraded", "session_ended(degraded)"],
        ]
        .concat()
    );
    let msgs = lp.get_messages(&sid, false).await.unwrap();
    assert_eq!(msgs.last().unwrap().text(), r.final_text);
    assert_eq!(
        lp.send(&sid, "again").await.unwrap().final_text,
        "recovered"
    );
}

#[tokio::test]
async fn a_failing_subscriber_does_not_abort_the_run_unless_asked() {
    let llm = ScriptedLlm::new().text("one").text("two");
    let (lp, sid, _d) = setup(&llm, AgentLoopConfig::default(), registry()).await;
    lp.event_bus()
        .subscribe(power_loop_agent::EventFilter::All, |_| {
            Err(Error::internal("sink down"))
        });
    let r = lp.send(&sid, "hi").await.unwrap();
    assert_eq!(r.final_text, "one");
    assert!(lp.event_bus().subscriber_errors() > 0);
    lp.event_bus().propagate_subscriber_errors(true);
    let e = lp.send(&sid, "hi").await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::SubscriberFailed);
}

fn human_registry() -> ToolRegistry {
    let mut r = registry();
    r.register(tool_fn(
        ToolDefinition::new(
            "ask",
            "Ask the user",
            json!({"type": "object", "properties": {"q": {"type": "string"}}}),
        ),
        |ctx, args| async move {
            Err(HumanInputRequest {
                interaction_id: "input_0123456789abcdef".into(),
                tool_call_id: ctx.tool_call_id.clone(),
                tool_name: "ask".into(),
                kind: "text".into(),
                prompt: args["q"].as_str().unwrap_or("?").into(),
                options: vec![],
                metadata: Default::default(),
            }
            .into_error())
        },
    ))
    .unwrap();
    r
}

#[tokio::test]
async fn human_input_pauses_the_run_and_submit_input_continues_it() {
    let llm = ScriptedLlm::new()
        .tool_calls([
            ("ask", json!({"q": "which colour?"})),
            ("echo", json!({"text": "later"})),
        ])
        .then_text("teal it is");
    let (lp, sid, _d) = setup(&llm, AgentLoopConfig::default(), human_registry()).await;
    let r = lp.send(&sid, "paint").await.unwrap();
    assert_eq!(r.status, RunStatus::WaitingForInput);
    assert_eq!(r.pending_interactions.len(), 1);
    assert_eq!(
        r.pending_interactions[0].prompt.as_deref(),
        Some("which colour?")
    );
    let e = lp.send(&sid, "hello?").await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::SessionPending);
    let w = lp.resume(&sid, None).await.unwrap();
    assert_eq!(w.status, RunStatus::WaitingForInput);
    assert!(
        lp.submit_input(&sid, "input_nope", json!("x"), None)
            .await
            .is_err()
    );
    let r = lp
        .submit_input(
            &sid,
            "input_0123456789abcdef",
            json!({"choice": "teal"}),
            None,
        )
        .await
        .unwrap();
    assert_eq!(r.status, RunStatus::Completed);
    assert_eq!(r.final_text, "teal it is");
    let msgs = lp.get_messages(&sid, false).await.unwrap();
    assert!(msgs.iter().any(|m| m.text() == "{\"choice\":\"teal\"}"));
    assert!(
        msgs.iter()
            .any(|m| m.text() == "[skipped: superseded by a user-input request]")
    );
    assert!(lp.get_pending(&sid).await.unwrap().is_none());
}

#[tokio::test]
async fn follow_ups_queue_while_a_run_is_in_progress_and_join_its_next_round() {
    let llm = ScriptedLlm::new()
        .step(Step::tool_call(
            "slow_echo",
            json!({"text": "x", "ms": 200}),
        ))
        .then_text("done with both");
    let (lp, sid, _d) = setup(&llm, AgentLoopConfig::default(), registry()).await;
    let lp2 = lp.clone();
    let sid2 = sid.clone();
    let run = tokio::spawn(async move { lp2.send(&sid2, "first").await.unwrap() });
    tokio::time::sleep(Duration::from_millis(80)).await;
    match lp
        .follow_up(&sid, "also this", SendOptions::new())
        .await
        .unwrap()
    {
        FollowUpOutcome::Queued(q) => assert_eq!(q.queue_depth, 1),
        FollowUpOutcome::Ran(_) => panic!("expected the follow-up to be queued"),
    }
    let r = run.await.unwrap();
    assert_eq!(r.final_text, "done with both");
    let last = llm.last_request().unwrap();
    let fu = last.messages.last().unwrap();
    assert_eq!(fu.name.as_deref(), Some("follow_up"));
    assert_eq!(fu.text(), "<follow_up>\nalso this\n</follow_up>");
    assert_eq!(lp.pending_follow_up_count(&sid), 0);
}

#[tokio::test]
async fn close_waits_for_in_flight_sends_and_refuses_new_ones() {
    let llm = ScriptedLlm::new().step(Step::text("slow").with_delay(Duration::from_millis(150)));
    let (lp, sid, _d) = setup(&llm, AgentLoopConfig::default(), registry()).await;
    let lp2 = lp.clone();
    let sid2 = sid.clone();
    let run = tokio::spawn(async move { lp2.send(&sid2, "x").await });
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert!(lp.close(Duration::from_secs(5)).await.unwrap());
    assert!(run.is_finished());
    assert_eq!(run.await.unwrap().unwrap().final_text, "slow");
    let e = lp.send(&sid, "y").await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::LoopClosed);
}

#[tokio::test]
async fn unknown_sessions_and_tool_errors_are_reported() {
    let llm = ScriptedLlm::new()
        .tool_call("echo", json!({"wrong": 1}))
        .then_text("fixed");
    let (lp, sid, _d) = setup(&llm, AgentLoopConfig::default(), registry()).await;
    let e = lp.send("sess_missing", "x").await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::SessionNotFound);
    let log = record(lp.event_bus());
    let r = lp.send(&sid, "x").await.unwrap();
    assert_eq!(r.tool_calls, 0, "invalid arguments never run the handler");
    let n = names(&log);
    assert!(n.contains(&"tool_call_failed".to_owned()), "{n:?}");
    let stats = lp.get_session_stats(&sid).await.unwrap().unwrap();
    assert_eq!((stats.sends, stats.rounds, stats.llm_calls), (1, 2, 2));
}

#[tokio::test]
async fn a_second_worker_is_kept_out_by_the_session_lease() {
    let (store, _d) = sqlite_store().await;
    let llm_a = ScriptedLlm::new()
        .step(Step::tool_call(
            "slow_echo",
            json!({"text": "x", "ms": 300}),
        ))
        .then_text("a done");
    let a = StatefulAgentLoop::builder(Arc::new(llm_a))
        .store(store.clone())
        .tools(registry())
        .build()
        .unwrap();
    let b = StatefulAgentLoop::builder(Arc::new(ScriptedLlm::new().text("b done")))
        .store(store.clone())
        .tools(registry())
        .lease_wait(Duration::from_millis(50))
        .build()
        .unwrap();
    let sid = a.new_session(NewSessionOptions::default()).await.unwrap();
    let (a2, s2) = (a.clone(), sid.clone());
    let run = tokio::spawn(async move { a2.send(&s2, "long").await.unwrap() });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let e = b.send(&sid, "intrude").await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::SessionLeaseHeld);
    assert_eq!(run.await.unwrap().final_text, "a done");
    assert_eq!(b.send(&sid, "now").await.unwrap().final_text, "b done");
}
