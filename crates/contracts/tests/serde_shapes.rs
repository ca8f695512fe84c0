#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Serde shapes match the spec's JSON exactly, and every type round-trips.

use std::collections::HashSet;

use power_loop_contracts::event::*;
use power_loop_contracts::hook::*;
use power_loop_contracts::*;
use serde_json::json;

fn round_trip<T>(v: &T) -> T
where
    T: serde::Serialize + serde::de::DeserializeOwned,
{
    let s = serde_json::to_string(v).unwrap();
    serde_json::from_str(&s).unwrap()
}

#[test]
fn messages_have_the_openai_shape() {
    let call = ToolCall::new("call_1", "read_file", r#"{"path":"a.txt"}"#);
    assert_eq!(
        serde_json::to_value(&call).unwrap(),
        json!({"id": "call_1", "type": "function", "function": {"name": "read_file", "arguments": "{\"path\":\"a.txt\"}"}})
    );
    let asst = Message::assistant_tool_calls("", vec![call.clone()]);
    assert_eq!(
        serde_json::to_value(&asst).unwrap(),
        json!({"role": "assistant", "tool_calls": [serde_json::to_value(&call).unwrap()]})
    );
    let tool = Message::tool("call_1", "contents");
    assert_eq!(
        serde_json::to_value(&tool).unwrap(),
        json!({"role": "tool", "content": "contents", "tool_call_id": "call_1"})
    );
    let user = Message::user(vec![
        ContentPart::text("look"),
        ContentPart::image_url("data:image/png;base64,AAAA"),
    ]);
    assert_eq!(
        serde_json::to_value(&user).unwrap(),
        json!({"role": "user", "content": [
            {"type": "text", "text": "look"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
        ]})
    );
    assert_eq!(user.text(), "look");
    for m in [asst, tool, user, Message::system("s").with_name("memory_0")] {
        assert_eq!(round_trip(&m), m);
    }
    // Lenient input: a tool call without "type" still parses.
    let parsed: ToolCall =
        serde_json::from_value(json!({"id": "x", "function": {"name": "n", "arguments": "{}"}}))
            .unwrap();
    assert_eq!(parsed.kind, ToolCallKind::Function);
    assert_eq!(parsed.arguments_json().unwrap(), json!({}));
}

#[test]
fn tool_types_round_trip() {
    let def = ToolDefinition::new(
        "echo",
        "Echo text",
        json!({"type": "object", "properties": {"text": {"type": "string"}}}),
    );
    assert_eq!(
        def.to_openai(),
        json!({"type": "function", "function": {"name": "echo", "description": "Echo text",
            "parameters": {"type": "object", "properties": {"text": {"type": "string"}}}}})
    );
    assert_eq!(round_trip(&def), def);
    let out = ToolOutput::failed("boom").with_data("exit", 2);
    assert_eq!(round_trip(&out), out);
    let res = ToolResult {
        tool_call_id: "c".into(),
        name: "echo".into(),
        content: "hi".into(),
        failed: false,
    };
    assert_eq!(round_trip(&res), res);
}

#[test]
fn llm_types_round_trip_and_keep_wire_names() {
    let req = LlmRequest::from_prompt("hi")
        .with_system_prompt("be brief")
        .with_model("m")
        .with_temperature(0.5)
        .with_max_tokens(10)
        .with_tools(vec![ToolDefinition::new(
            "t",
            "d",
            json!({"type": "object"}),
        )])
        .with_tool_choice(ToolChoice::Function("t".into()))
        .with_response_format(ResponseFormat::json_schema(
            "Out",
            json!({"type": "object"}),
        ))
        .with_extra("seed", json!(7));
    let v = serde_json::to_value(&req).unwrap();
    assert_eq!(
        v["tool_choice"],
        json!({"type": "function", "function": {"name": "t"}})
    );
    assert_eq!(
        v["response_format"],
        json!({"type": "json_schema", "json_schema": {"name": "Out", "schema": {"type": "object"}, "strict": true}})
    );
    let back: LlmRequest = serde_json::from_value(v.clone()).unwrap();
    assert_eq!(serde_json::to_value(&back).unwrap(), v);
    assert_eq!(req.to_messages()[0], Message::system("be brief"));
    // The shared vectors serialize as plain arrays; an empty tool list is left out.
    assert_eq!(v["messages"], json!([{"role": "user", "content": "hi"}]));
    assert_eq!(v["tools"][0]["name"], "t");
    let bare = serde_json::to_value(LlmRequest::from_prompt("hi")).unwrap();
    assert_eq!(
        bare,
        json!({"messages": [{"role": "user", "content": "hi"}]})
    );
}

#[test]
fn llm_request_clones_share_the_conversation_and_edit_on_write() {
    let history = std::sync::Arc::new(vec![Message::user("a"), Message::assistant("b")]);
    let req =
        LlmRequest::shared(std::sync::Arc::clone(&history)).with_shared_tools(std::sync::Arc::new(
            vec![ToolDefinition::new("t", "d", json!({"type": "object"}))],
        ));
    let mut copy = req.clone();
    assert!(std::sync::Arc::ptr_eq(&copy.messages, &history));
    assert!(std::sync::Arc::ptr_eq(&copy.tools, &req.tools));
    // Editing one request's messages leaves the shared vector (and the other request) alone.
    copy.messages_mut().push(Message::user("c"));
    assert_eq!(copy.messages.len(), 3);
    assert_eq!(req.messages.len(), 2);
    assert_eq!(history.len(), 2);

    for c in [
        ToolChoice::Auto,
        ToolChoice::None,
        ToolChoice::Required,
        ToolChoice::Function("f".into()),
    ] {
        assert_eq!(round_trip(&c), c);
    }

    let usage = TokenUsage {
        prompt_tokens: Some(10),
        completion_tokens: Some(5),
        prompt_cached_tokens: Some(3),
        ..Default::default()
    };
    assert_eq!(round_trip(&usage), usage);
    let n = usage.normalized();
    assert_eq!(
        (
            n.prompt_tokens,
            n.completion_tokens,
            n.cache_read_tokens,
            n.total_tokens
        ),
        (10, 5, 3, 15)
    );

    let resp =
        LlmResponse::with_tool_calls("", vec![ToolCall::new("a", "b", "{}")]).with_usage(usage);
    assert_eq!(round_trip(&resp), resp);
    let chunk = StreamChunk::finished(Some(FinishReason::parse("eos")), Some(usage));
    assert_eq!(round_trip(&chunk), chunk);
    assert_eq!(FinishReason::parse("eos"), FinishReason::Stop);
    assert_eq!(
        FinishReason::parse("weird"),
        FinishReason::Other("weird".into())
    );
    assert_eq!(
        round_trip(&FinishReason::Other("weird".into())),
        FinishReason::Other("weird".into())
    );
    let caps = ProviderCapabilities::new("scripted").with_image_input(true);
    assert_eq!(round_trip(&caps), caps);
}

#[test]
fn stream_aggregator_reassembles_tool_calls_and_refuses_cut_streams() {
    let mut agg = StreamAggregator::new();
    agg.push(&StreamChunk::text("Hel"));
    agg.push(&StreamChunk::text("lo"));
    for (i, piece) in ["{\"pa", "th\":", "\"a.txt\"}"].iter().enumerate() {
        agg.push(&StreamChunk::tool_call(ToolCallDelta {
            index: 1,
            id: (i == 0).then(|| "call_b".to_owned()),
            name: (i == 0).then(|| "read_file".to_owned()),
            arguments: (*piece).to_owned(),
        }));
    }
    agg.push(&StreamChunk::tool_call(ToolCallDelta {
        index: 0,
        id: Some("call_a".into()),
        name: Some("ls".into()),
        arguments: "{}".into(),
    }));
    let mut cut = StreamAggregator::new();
    cut.push(&StreamChunk::text("partial"));
    let err = cut.finish().unwrap_err();
    assert_eq!(err.code(), ErrorCode::LlmStreamIncomplete);

    agg.push(&StreamChunk::finished(Some(FinishReason::ToolCalls), None));
    let resp = agg.finish().unwrap();
    assert_eq!(resp.raw_text, "Hello");
    assert_eq!(resp.tool_calls.len(), 2);
    assert_eq!(resp.tool_calls[0].id, "call_a");
    assert_eq!(
        resp.tool_calls[1].function.arguments,
        "{\"path\":\"a.txt\"}"
    );
    assert_eq!(resp.tool_calls[1].name(), "read_file");
}

fn sample_events() -> Vec<EventPayload> {
    use EventPayload as P;
    vec![
        P::SessionStarted(SessionStartedPayload {
            scope: "main".into(),
        }),
        P::SessionEnded(SessionEndedPayload {
            reason: "completed".into(),
        }),
        P::RoundStarted(RoundStartedPayload { round_index: 1 }),
        P::RoundCompleted(RoundCompletedPayload {
            round_index: 1,
            has_tools: true,
            used_todo: false,
        }),
        P::RoundToolsPresent(RoundToolsPresentPayload { has_tools: true }),
        P::LlmCallStarted(LlmCallStartedPayload {
            call_id: "c".into(),
            round_index: 0,
            attempt: 1,
            model: "m".into(),
        }),
        P::LlmCallCompleted(LlmCallCompletedPayload {
            call_id: "c".into(),
            attempt: 1,
            success: true,
            duration_ms: 1.5,
            prompt_tokens: Some(3),
            ..Default::default()
        }),
        P::LlmRetryAttempted(LlmRetryAttemptedPayload {
            attempt: 0,
            max_attempts: 3,
            error_type: "llm.rate_limited".into(),
            error_message: "429".into(),
            next_sleep_seconds: 0.5,
        }),
        P::LlmDegraded(LlmDegradedPayload {
            reason: "timeout".into(),
            attempts: 3,
            ..Default::default()
        }),
        P::LoopCancelled(LoopCancelledPayload {
            reason: "cancelled".into(),
            round_index: Some(2),
        }),
        P::MemoryRecalled(MemoryRecalledPayload {
            returned: 2,
            injected: 2,
            budget_tokens: 1500,
        }),
        P::MemoryFailed(MemoryFailedPayload {
            phase: "recall".into(),
            ..Default::default()
        }),
        P::StreamStarted(StreamStartedPayload {
            stream_id: "main".into(),
        }),
        P::StreamDelta(StreamDeltaPayload {
            stream_id: "main".into(),
            text: "he".into(),
            is_think: false,
        }),
        P::StreamThinkDelta(StreamDeltaPayload {
            stream_id: "main".into(),
            text: "hm".into(),
            is_think: true,
        }),
        P::StreamCompleted(StreamCompletedPayload {
            stream_id: "main".into(),
        }),
        P::ToolCallStarted(ToolCallStartedPayload {
            name: "t".into(),
            tool_input: json!({"a": 1}),
            tool_call_id: "c".into(),
        }),
        P::ToolCallCompleted(ToolCallCompletedPayload {
            name: "t".into(),
            output: "ok".into(),
            tool_input: json!({}),
            tool_call_id: "c".into(),
            failed: false,
        }),
        P::ToolCallFailed(ToolCallFailedPayload {
            name: "t".into(),
            output: "bad".into(),
            tool_input: json!({}),
            tool_call_id: "c".into(),
        }),
        P::StatusChanged(StatusChanged::BudgetExceeded(BudgetExceededStatus {
            budget_tokens: 10,
            spent_tokens: 12,
            rounds: 2,
        })),
        P::UsageUpdated(UsageUpdatedPayload {
            usage: serde_json::from_value(json!({"prompt_tokens": 3})).unwrap(),
        }),
        P::TimerFired(TimerFiredPayload {
            timer_id: 1,
            note: "wake".into(),
            due_at: 5,
            outcome: "delivered".into(),
        }),
        P::TodoUpdated(TodoUpdatedPayload {
            kind: "todo_snapshot".into(),
            ..Default::default()
        }),
        P::UserNotification(UserNotificationPayload {
            message: "hi".into(),
        }),
        P::AgentError(AgentErrorPayload {
            error: "x".into(),
            error_type: "power_loop.error".into(),
            details: String::new(),
        }),
        P::SystemLog(SystemLogPayload {
            message: "m".into(),
            level: "info".into(),
        }),
        P::SubagentTaskStart(SubagentTaskStartPayload {
            task: "t".into(),
            preset: "core".into(),
            sub_session_id: "s".into(),
            depth: 1,
        }),
        P::SubagentText(SubagentTextPayload {
            sub_session_id: "s".into(),
            status: "completed".into(),
            rounds: 1,
            final_text: "f".into(),
        }),
        P::SubagentLimit(SubagentLimitPayload {
            sub_session_id: "s".into(),
            max_rounds: 3,
        }),
        P::SubagentCompleted(SubagentCompletedPayload {
            sub_session_id: "s".into(),
            status: "completed".into(),
            rounds: 1,
            final_text: "f".into(),
        }),
        P::WorkflowRunStarted(WorkflowRunStartedPayload {
            workflow: "w".into(),
            run_id: "r".into(),
            attempt: 1,
        }),
        P::WorkflowRunCompleted(WorkflowRunCompletedPayload {
            workflow: "w".into(),
            run_id: "r".into(),
            attempt: 1,
            status: "completed".into(),
            duration_ms: 12.5,
            leaves: 2,
        }),
        P::WorkflowLeafCompleted(WorkflowLeafCompletedPayload {
            workflow: "w".into(),
            run_id: "r".into(),
            step_key: "a".into(),
            agent: "a".into(),
            status: "completed".into(),
            duration_ms: 3.0,
            total_tokens: 15,
        }),
    ]
}

#[test]
fn every_event_type_round_trips_in_the_envelope_shape() {
    let samples = sample_events();
    let covered: HashSet<EventType> = samples.iter().map(EventPayload::event_type).collect();
    let all: HashSet<EventType> = EventType::ALL.iter().copied().collect();
    assert_eq!(covered, all, "every event type needs a sample");

    let mut last_seq = 0;
    for p in samples {
        let ev = AgentEvent::new(p)
            .with_session("sess_1")
            .with_round(0)
            .with_stream("main");
        assert!(ev.seq > last_seq, "seq must increase");
        last_seq = ev.seq;
        let v = serde_json::to_value(&ev).unwrap();
        assert_eq!(v["type"], json!(ev.event_type().as_str()));
        assert!(v.get("payload").is_some());
        for key in [
            "seq",
            "ts",
            "mono",
            "session_id",
            "round_index",
            "stream_id",
            "source",
        ] {
            assert!(v.get(key).is_some(), "envelope key {key} missing");
        }
        let back: AgentEvent = serde_json::from_value(v).unwrap();
        assert_eq!(back, ev);
        assert_eq!(back.seq, ev.seq);
        assert_eq!(
            EventType::parse(ev.event_type().as_str()),
            Some(ev.event_type())
        );
    }
}

#[test]
fn status_changed_is_discriminated_by_kind() {
    let ev = EventPayload::StatusChanged(StatusChanged::RoundUsage(RoundUsageStatus {
        round_index: 0,
        round_number: 1,
        max_rounds: 8,
        ..Default::default()
    }));
    let v = serde_json::to_value(&ev).unwrap();
    assert_eq!(v["type"], "status_changed");
    assert_eq!(v["payload"]["kind"], "round_usage");
    assert_eq!(v["payload"]["round_number"], 1);
    let back: EventPayload = serde_json::from_value(v).unwrap();
    assert_eq!(back, ev);
}

#[test]
fn hook_points_use_the_contract_strings() {
    let expected = [
        "session.start",
        "session.end",
        "round.start",
        "round.end",
        "llm.before",
        "llm.after",
        "round.decide",
        "tools.batch.before",
        "tools.batch.after",
        "tool.before",
        "tool.after",
        "tool.error",
        "compact.before",
        "compact.after",
        "message.append",
        "memory.recalled",
        "timer.fire",
    ];
    let got: Vec<&str> = HookPoint::ALL.iter().map(|p| p.as_str()).collect();
    assert_eq!(got, expected);
    for p in HookPoint::ALL {
        assert_eq!(HookPoint::parse(p.as_str()), Some(*p));
        assert_eq!(serde_json::to_value(p).unwrap(), json!(p.as_str()));
        assert_eq!(round_trip(p), *p);
    }
    assert_eq!(
        serde_json::to_value(ToolErrorDirective::Retry).unwrap(),
        json!("retry")
    );
    assert_eq!(
        round_trip(&LlmBeforeDirective::ShortCircuit),
        LlmBeforeDirective::ShortCircuit
    );
    assert_eq!(TimerFireDirective::default(), TimerFireDirective::Continue);
}

struct Veto;
impl Hook for Veto {
    fn tool_before<'a>(&'a self, ctx: &'a mut ToolBeforeCtx) -> HookFuture<'a> {
        Box::pin(async move {
            if ctx.tool_name == "bash" {
                ctx.directive = ToolBeforeDirective::Skip;
                ctx.output = "refused".into();
            }
            Ok(())
        })
    }
}

#[tokio::test]
async fn a_hook_can_veto_and_other_points_default_to_no_op() {
    let hook: std::sync::Arc<dyn Hook> = std::sync::Arc::new(Veto);
    let mut ctx = ToolBeforeCtx {
        tool_name: "bash".into(),
        ..Default::default()
    };
    hook.tool_before(&mut ctx).await.unwrap();
    assert_eq!(ctx.directive, ToolBeforeDirective::Skip);
    let mut other = RoundStartCtx::default();
    hook.round_start(&mut other).await.unwrap();
    assert_eq!(other.directive, RoundStartDirective::Continue);
}
