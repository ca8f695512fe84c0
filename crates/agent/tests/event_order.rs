//! Event-order tests with exact payloads for the main run shapes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::Duration;

use power_loop_agent::{
    AgentLoopConfig, NewSessionOptions, RunStatus, SendOptions, StatefulAgentLoop,
    StructuredOutputSpec,
};
use power_loop_contracts::hook::ToolBeforeDirective;
use power_loop_contracts::{
    BoxFuture, CancellationToken, LlmRequest, LlmService, LlmStream, Result, StreamChunk,
};
use power_loop_llm::{ScriptedLlm, Step};
use serde_json::{Value, json};
use support::*;

fn payloads(log: &Arc<std::sync::Mutex<Vec<power_loop_contracts::AgentEvent>>>) -> Vec<Value> {
    log.lock()
        .unwrap()
        .iter()
        .map(|e| {
            let mut v = serde_json::to_value(e).unwrap();
            let o = v.as_object_mut().unwrap();
            for k in ["seq", "ts", "mono", "session_id"] {
                o.remove(k);
            }
            if let Some(p) = o.get_mut("payload").and_then(Value::as_object_mut) {
                p.remove("duration_ms");
                p.remove("time_iso");
            }
            v
        })
        .collect()
}

async fn setup(
    llm: Arc<dyn LlmService>,
    config: AgentLoopConfig,
) -> (StatefulAgentLoop, String, tempfile::TempDir) {
    let (store, dir) = sqlite_store().await;
    let lp = StatefulAgentLoop::builder(llm)
        .store(store)
        .config(config)
        .tools(registry())
        .build()
        .unwrap();
    let sid = lp.new_session(NewSessionOptions::default()).await.unwrap();
    (lp, sid, dir)
}

#[tokio::test]
async fn plain_send_emits_the_canonical_sequence_with_exact_payloads() {
    let llm = ScriptedLlm::new().step(Step::text("hello there").with_tokens(10, 5));
    let (lp, sid, _d) = setup(Arc::new(llm), AgentLoopConfig::default()).await;
    let log = record(lp.event_bus());
    let r = lp.send(&sid, "hi").await.unwrap();
    assert_eq!(r.status, RunStatus::Completed);
    assert_eq!(r.final_text, "hello there");
    assert_eq!(r.rounds, 1);
    assert_eq!(r.usage.calls, 1);
    assert_eq!(r.usage.total_tokens, 15);
    let got = payloads(&log);
    let deltas: Vec<&Value> = got.iter().filter(|e| e["type"] == "stream_delta").collect();
    let text: String = deltas
        .iter()
        .map(|e| e["payload"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(text, "hello there");
    let rest: Vec<Value> = got
        .into_iter()
        .filter(|e| e["type"] != "stream_delta")
        .collect();
    let r0 = |t: &str, p: Value| json!({"type": t, "round_index": 0, "stream_id": null, "source": null, "payload": p});
    let s0 = |t: &str, p: Value| json!({"type": t, "round_index": 0, "stream_id": "main", "source": null, "payload": p});
    let top = |t: &str, p: Value| json!({"type": t, "round_index": null, "stream_id": null, "source": null, "payload": p});
    let expected = vec![
        top("session_started", json!({"scope": "main"})),
        r0("round_started", json!({"round_index": 0})),
        s0("stream_started", json!({"stream_id": "main"})),
        s0(
            "llm_call_started",
            json!({"call_id": "r0.a1", "round_index": 0, "attempt": 1, "model": "scripted"}),
        ),
        s0(
            "llm_call_completed",
            json!({"call_id": "r0.a1", "round_index": 0, "attempt": 1, "model": "scripted",
            "success": true, "error_type": "", "prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}),
        ),
        s0("stream_completed", json!({"stream_id": "main"})),
        r0(
            "status_changed",
            json!({"kind": "round_usage", "round_index": 0, "round_number": 1, "max_rounds": 24,
            "prompt_tokens": 10, "completion_tokens": 5, "cache_read_tokens": null, "reasoning_tokens": null}),
        ),
        r0(
            "usage_updated",
            json!({"usage": {"prompt_tokens": 10, "completion_tokens": 5, "cache_read_tokens": 0,
            "reasoning_tokens": 0, "total_tokens": 15, "input": 10, "output": 5, "cache_read": 0, "reasoning": 0}}),
        ),
        r0("round_tools_present", json!({"has_tools": false})),
        r0(
            "round_completed",
            json!({"round_index": 0, "has_tools": false, "used_todo": false}),
        ),
        top("session_ended", json!({"reason": "completed"})),
    ];
    assert_eq!(rest, expected);
    let msgs = lp.get_messages(&sid, false).await.unwrap();
    assert_eq!(msgs.len(), 2);
    assert!(lp.get_pending(&sid).await.unwrap().is_none());
}

#[tokio::test]
async fn two_concurrent_tool_calls_start_together_and_persist_in_call_order() {
    let llm = ScriptedLlm::new()
        .step(Step::tool_calls([
            ("slow_echo", json!({"text": "first", "ms": 150})),
            ("slow_echo", json!({"text": "second", "ms": 150})),
        ]))
        .then_text("both done");
    let (lp, sid, _d) = setup(Arc::new(llm), AgentLoopConfig::default()).await;
    let log = record(lp.event_bus());
    let t0 = std::time::Instant::now();
    let r = lp.send(&sid, "go").await.unwrap();
    let took = t0.elapsed();
    assert_eq!(r.status, RunStatus::Completed);
    assert_eq!(r.tool_calls, 2);
    assert!(
        took < Duration::from_millis(290),
        "calls ran concurrently: {took:?}"
    );
    let n = names(&log);
    let tools: Vec<&String> = n.iter().filter(|s| s.starts_with("tool_call")).collect();
    assert_eq!(
        tools,
        vec![
            "tool_call_started(call_1_0)",
            "tool_call_started(call_1_1)",
            "tool_call_completed(call_1_0)",
            "tool_call_completed(call_1_1)"
        ]
    );
    let i = n
        .iter()
        .position(|s| s == "round_tools_present(true)")
        .unwrap();
    assert_eq!(n[i + 5], "round_completed(true)");
    let got = payloads(&log);
    let done: Vec<&Value> = got
        .iter()
        .filter(|e| e["type"] == "tool_call_completed")
        .collect();
    assert_eq!(
        done[1]["payload"],
        json!({"name": "slow_echo", "output": "second", "tool_input": {"text": "second", "ms": 150},
               "tool_call_id": "call_1_1", "failed": false})
    );
    let msgs = lp.get_messages(&sid, false).await.unwrap();
    let tool_rows: Vec<String> = msgs
        .iter()
        .filter(|m| m.tool_call_id.is_some())
        .map(|m| m.text())
        .collect();
    assert_eq!(tool_rows, vec!["first", "second"]);
}

#[tokio::test]
async fn a_vetoed_tool_call_is_answered_without_running_or_tool_events() {
    let llm = ScriptedLlm::new()
        .tool_call("write_note", json!({"text": "secret"}))
        .then_text("ok");
    let (lp, sid, _d) = setup(Arc::new(llm), AgentLoopConfig::default()).await;
    lp.hooks().on_tool_before(0, |ctx| {
        if ctx.tool_name == "write_note" {
            ctx.directive = ToolBeforeDirective::Skip;
            ctx.output = "denied by policy".into();
        }
        Ok(())
    });
    let log = record(lp.event_bus());
    let r = lp.send(&sid, "note it").await.unwrap();
    assert_eq!(r.status, RunStatus::Completed);
    assert_eq!(r.tool_calls, 0);
    let n = names(&log);
    assert!(!n.iter().any(|s| s.starts_with("tool_call")), "{n:?}");
    let a = n
        .iter()
        .position(|s| s == "round_tools_present(true)")
        .unwrap();
    assert_eq!(n[a + 1], "round_completed(true)");
    let msgs = lp.get_messages(&sid, false).await.unwrap();
    assert_eq!(msgs[2].text(), "denied by policy");
    assert_eq!(msgs[2].name.as_deref(), Some("write_note"));
    assert!(lp.get_pending(&sid).await.unwrap().is_none());
}

#[tokio::test]
async fn a_budget_stop_ends_at_the_next_round_start() {
    let llm = ScriptedLlm::new()
        .step(Step::tool_call("echo", json!({"text": "x"})).with_tokens(80, 30))
        .then_text("never");
    let cfg = AgentLoopConfig::default().with_max_tokens_per_run(Some(100));
    let (lp, sid, _d) = setup(Arc::new(llm), cfg).await;
    let log = record(lp.event_bus());
    let r = lp.send(&sid, "go").await.unwrap();
    assert_eq!(r.status, RunStatus::BudgetExceeded);
    assert_eq!(r.final_text, "[budget_exceeded]");
    assert_eq!(r.rounds, 1);
    let got = payloads(&log);
    let tail: Vec<Value> = got[got.len() - 2..].to_vec();
    assert_eq!(
        tail,
        vec![
            json!({"type": "status_changed", "round_index": 1, "stream_id": null, "source": null,
                   "payload": {"kind": "budget_exceeded", "budget_tokens": 100, "spent_tokens": 110, "rounds": 1}}),
            json!({"type": "session_ended", "round_index": null, "stream_id": null, "source": null,
                   "payload": {"reason": "budget_exceeded"}}),
        ]
    );
    assert!(lp.get_pending(&sid).await.unwrap().is_none());
    let stats = lp.get_session_stats(&sid).await.unwrap().unwrap();
    assert_eq!(stats.sends, 1);
    assert_eq!(stats.total_tokens, 110);
}

/// Streams one delta, then stalls until the request's cancellation token fires.
struct StallingLlm;

impl LlmService for StallingLlm {
    fn stream(&self, request: LlmRequest) -> BoxFuture<'_, Result<LlmStream>> {
        Box::pin(async move {
            let cancel = request.cancel.clone().unwrap_or_default();
            let s = futures_util::stream::unfold(0u8, move |n| {
                let cancel = cancel.clone();
                async move {
                    if n == 0 {
                        return Some((Ok(StreamChunk::text("partial")), 1));
                    }
                    cancel.cancelled().await;
                    std::future::pending::<()>().await;
                    None
                }
            });
            Ok(Box::pin(s) as LlmStream)
        })
    }
    fn model_name(&self) -> String {
        "stall".into()
    }
}

#[tokio::test]
async fn cancellation_mid_stream_ends_cancelled_and_leaves_the_session_clean() {
    let (lp, sid, _d) = setup(Arc::new(StallingLlm), AgentLoopConfig::default()).await;
    let log = record(lp.event_bus());
    let token = CancellationToken::new();
    let t2 = token.clone();
    let bus = lp.event_bus().clone();
    bus.subscribe(
        power_loop_contracts::event::EventType::StreamDelta,
        move |_| {
            t2.cancel();
            Ok(())
        },
    );
    let r = lp
        .send_with(&sid, "go", SendOptions::new().with_cancel(token))
        .await
        .unwrap();
    assert_eq!(r.status, RunStatus::Cancelled);
    assert_eq!(r.final_text, "[cancelled by user]");
    assert_eq!(r.rounds, 0);
    assert_eq!(
        names(&log),
        [
            &SEND_START[..],
            &model_call(false),
            &["loop_cancelled", "session_ended(cancelled)"],
        ]
        .concat()
    );
    let got = payloads(&log);
    let failed = got
        .iter()
        .find(|e| e["type"] == "llm_call_completed")
        .unwrap();
    assert_eq!(failed["payload"]["error_type"], "cancelled");
    let lc = got.iter().find(|e| e["type"] == "loop_cancelled").unwrap();
    assert_eq!(
        lc["payload"],
        json!({"reason": "cancelled", "round_index": 0})
    );
    assert!(lp.get_pending(&sid).await.unwrap().is_none());
    // The unanswered input and the cancellation recorded as the assistant's turn.
    let msgs = lp.get_messages(&sid, false).await.unwrap();
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[1].text(), "[cancelled by user]");
}

#[tokio::test]
async fn a_round_limit_stop_persists_the_summary_reply() {
    let llm = ScriptedLlm::new()
        .tool_call("echo", json!({"text": "a"}))
        .tool_call("echo", json!({"text": "b"}))
        .then_text("summary: did a and b");
    let cfg = AgentLoopConfig::default().with_max_rounds(2);
    let (lp, sid, _d) = setup(Arc::new(llm.clone()), cfg).await;
    let log = record(lp.event_bus());
    let r = lp.send(&sid, "loop").await.unwrap();
    assert_eq!(r.status, RunStatus::HitRoundLimit);
    assert_eq!(r.final_text, "[hit_round_limit]\nsummary: did a and b");
    assert_eq!(r.rounds, 2);
    assert_eq!(r.usage.calls, 3);
    let n = names(&log);
    let tail: Vec<&str> = n[n.len() - 7..].iter().map(String::as_str).collect();
    assert_eq!(
        tail,
        [
            &["status_changed(hit_round_limit)"][..],
            &model_call(true),
            &["usage_updated", "session_ended(hit_round_limit)"],
        ]
        .concat()
    );
    let last_req = llm.last_request().unwrap();
    assert!(
        last_req.tools.is_empty(),
        "the summary call offers no tools"
    );
    let msgs = lp.get_messages(&sid, false).await.unwrap();
    assert_eq!(msgs.last().unwrap().text(), "summary: did a and b");
    assert!(msgs[msgs.len() - 2].text().contains("maximum of 2 rounds"));
    // The next send accepts the session.
    llm.push(Step::text("fine"));
    assert_eq!(lp.send(&sid, "again").await.unwrap().final_text, "fine");
}

#[tokio::test]
async fn a_structured_answer_that_does_not_validate_is_retried_with_a_correction() {
    let schema =
        json!({"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}});
    let llm = ScriptedLlm::new()
        .text("{\"n\": \"three\"}")
        .text("```json\n{\"n\": 3}\n```");
    let cfg = AgentLoopConfig::default()
        .with_structured_output(Some(StructuredOutputSpec::new("Count", schema)));
    let (lp, sid, _d) = setup(Arc::new(llm.clone()), cfg).await;
    let log = record(lp.event_bus());
    let r = lp.send(&sid, "count").await.unwrap();
    assert_eq!(r.status, RunStatus::Completed);
    assert_eq!(r.rounds, 2);
    assert_eq!(r.structured, Some(json!({"n": 3})));
    assert!(r.structured_error.is_none());
    let n = names(&log);
    let rounds: Vec<&String> = n
        .iter()
        .filter(|s| s.starts_with("round_") || s.starts_with("session_ended"))
        .collect();
    assert_eq!(
        rounds,
        vec![
            "round_started",
            "round_tools_present(false)",
            "round_completed(false)",
            "round_started",
            "round_tools_present(false)",
            "round_completed(false)",
            "session_ended(completed)"
        ]
    );
    let reqs = llm.requests();
    let fix = reqs[1].messages.last().unwrap();
    assert_eq!(fix.name.as_deref(), Some("structured_output_retry"));
    assert!(fix.text().contains("/n"), "{}", fix.text());
    assert!(reqs[0].response_format.is_some());
}
