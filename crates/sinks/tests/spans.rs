//! The native `tracing` span tree, seen through `tracing-opentelemetry`: GenAI names, kinds and
//! attributes, and every exit path of a send closes what it opened.
#![cfg(feature = "otel")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use opentelemetry::trace::{SpanKind, Status, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use power_loop_contracts::event::*;
use power_loop_contracts::{AgentEvent, EventPayload, EventSink};
use power_loop_sinks::{TraceOptions, TracingSink};
use serde_json::json;
use tracing_subscriber::prelude::*;

fn e(p: EventPayload) -> AgentEvent {
    AgentEvent::new(p).with_session("s1")
}

fn started() -> AgentEvent {
    e(EventPayload::SessionStarted(SessionStartedPayload {
        scope: "main".into(),
    }))
}
fn ended(reason: &str) -> AgentEvent {
    e(EventPayload::SessionEnded(SessionEndedPayload {
        reason: reason.into(),
    }))
}
fn round(r: u32) -> AgentEvent {
    e(EventPayload::RoundStarted(RoundStartedPayload {
        round_index: r,
    }))
    .with_round(r)
}
fn llm_start(r: u32, attempt: u32) -> AgentEvent {
    e(EventPayload::LlmCallStarted(LlmCallStartedPayload {
        call_id: format!("r{r}.a{attempt}"),
        round_index: r,
        attempt,
        model: "gpt-test".into(),
    }))
    .with_round(r)
}
fn llm_done(r: u32, attempt: u32, ok: bool) -> AgentEvent {
    e(EventPayload::LlmCallCompleted(LlmCallCompletedPayload {
        call_id: format!("r{r}.a{attempt}"),
        round_index: r,
        attempt,
        model: "gpt-test".into(),
        duration_ms: 5.0,
        success: ok,
        error_type: if ok {
            String::new()
        } else {
            "llm.server".into()
        },
        prompt_tokens: Some(11),
        completion_tokens: Some(7),
        total_tokens: Some(18),
    }))
    .with_round(r)
}
fn tool_start(r: u32, id: &str) -> AgentEvent {
    e(EventPayload::ToolCallStarted(ToolCallStartedPayload {
        name: "bash".into(),
        tool_input: json!({"cmd": "cat notes.txt", "api_key": "sk-1"}),
        tool_call_id: id.into(),
    }))
    .with_round(r)
}
fn tool_done(r: u32, id: &str) -> AgentEvent {
    e(EventPayload::ToolCallCompleted(ToolCallCompletedPayload {
        name: "bash".into(),
        output: "private output".into(),
        tool_input: json!({"cmd": "cat notes.txt"}),
        tool_call_id: id.into(),
        failed: false,
    }))
    .with_round(r)
}

/// Feeds events to a `TracingSink` under a subscriber with the OpenTelemetry layer; returns the
/// exported spans and the number still open before the final flush.
fn trace(opts: TraceOptions, events: &[AgentEvent], flush: bool) -> (Vec<SpanData>, usize) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    let open = tracing::subscriber::with_default(subscriber, || {
        let sink = TracingSink::new(opts);
        for ev in events {
            sink.handle(ev).unwrap();
        }
        let open = sink.open_spans();
        if flush {
            sink.flush().unwrap();
            assert_eq!(sink.open_spans(), 0);
        }
        open
    });
    (exporter.get_finished_spans().unwrap(), open)
}

fn attr(s: &SpanData, key: &str) -> Option<String> {
    s.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}

fn one<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    let found: Vec<&SpanData> = spans.iter().filter(|s| s.name == name).collect();
    assert_eq!(found.len(), 1, "one `{name}` in {:?}", names(spans));
    found[0]
}

fn names(spans: &[SpanData]) -> Vec<String> {
    spans.iter().map(|s| s.name.to_string()).collect()
}

#[test]
fn a_send_with_tools_forms_the_genai_span_tree() {
    let compaction = e(EventPayload::StatusChanged(StatusChanged::AutoCompact(
        AutoCompactStatus {
            phase: "started".into(),
            round_index: 1,
            trigger: "compactor_plan_emitted".into(),
            before_tokens: 900,
            after_tokens: 200,
        },
    )))
    .with_round(1);
    let events = vec![
        started(),
        round(0),
        llm_start(0, 1),
        llm_done(0, 1, false),
        llm_start(0, 2),
        llm_done(0, 2, true),
        tool_start(0, "t1"),
        tool_done(0, "t1"),
        e(EventPayload::RoundCompleted(RoundCompletedPayload {
            round_index: 0,
            has_tools: true,
            used_todo: false,
        })),
        compaction,
        round(1),
        llm_start(1, 1),
        llm_done(1, 1, true),
        e(EventPayload::RoundCompleted(RoundCompletedPayload {
            round_index: 1,
            ..Default::default()
        })),
        ended("completed"),
    ];
    let opts = TraceOptions::default().provider_name("openai");
    let (spans, open) = trace(opts, &events, true);
    assert_eq!(open, 1, "after the send only the session span is open");
    let session = one(&spans, "power_loop.session");
    let send = one(&spans, "invoke_agent power_loop");
    let rounds: Vec<&SpanData> = spans
        .iter()
        .filter(|s| s.name == "power_loop.round")
        .collect();
    let chats: Vec<&SpanData> = spans.iter().filter(|s| s.name == "chat gpt-test").collect();
    let tool = one(&spans, "execute_tool bash");
    let comp = one(&spans, "power_loop.compaction");
    assert_eq!((rounds.len(), chats.len()), (2, 3));
    assert_eq!(send.parent_span_id, session.span_context.span_id());
    for r in &rounds {
        assert_eq!(r.parent_span_id, send.span_context.span_id());
    }
    let r0 = rounds
        .iter()
        .find(|r| attr(r, "power_loop.round_index").as_deref() == Some("0"))
        .unwrap();
    let r1 = rounds
        .iter()
        .find(|r| attr(r, "power_loop.round_index").as_deref() == Some("1"))
        .unwrap();
    assert_eq!(tool.parent_span_id, r0.span_context.span_id());
    assert_eq!(comp.parent_span_id, r1.span_context.span_id());
    assert_eq!(
        attr(comp, "power_loop.compaction.before_tokens").as_deref(),
        Some("900")
    );
    let trace_id = session.span_context.trace_id();
    assert!(spans.iter().all(|s| s.span_context.trace_id() == trace_id));

    assert_eq!(
        attr(send, "gen_ai.operation.name").as_deref(),
        Some("invoke_agent")
    );
    assert_eq!(attr(send, "gen_ai.conversation.id").as_deref(), Some("s1"));
    assert_eq!(
        attr(send, "power_loop.end_reason").as_deref(),
        Some("completed")
    );
    for c in &chats {
        assert_eq!(c.span_kind, SpanKind::Client);
        assert_eq!(attr(c, "gen_ai.operation.name").as_deref(), Some("chat"));
        assert_eq!(attr(c, "gen_ai.request.model").as_deref(), Some("gpt-test"));
        assert_eq!(attr(c, "gen_ai.provider.name").as_deref(), Some("openai"));
        assert_eq!(attr(c, "gen_ai.usage.input_tokens").as_deref(), Some("11"));
        assert_eq!(attr(c, "gen_ai.usage.output_tokens").as_deref(), Some("7"));
    }
    let failed: Vec<&&SpanData> = chats
        .iter()
        .filter(|c| matches!(c.status, Status::Error { .. }))
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(attr(failed[0], "error.type").as_deref(), Some("llm.server"));
    assert_eq!(
        attr(failed[0], "power_loop.llm.attempt").as_deref(),
        Some("1")
    );
    assert_eq!(
        attr(tool, "gen_ai.operation.name").as_deref(),
        Some("execute_tool")
    );
    assert_eq!(attr(tool, "gen_ai.tool.name").as_deref(), Some("bash"));
    assert_eq!(attr(tool, "gen_ai.tool.call.id").as_deref(), Some("t1"));
    assert_eq!(attr(tool, "gen_ai.tool.type").as_deref(), Some("function"));
    // Content stays out by default.
    assert_eq!(attr(tool, "gen_ai.tool.call.arguments"), None);
    assert_eq!(attr(tool, "gen_ai.tool.call.result"), None);
}

#[test]
fn every_exit_path_closes_rounds_calls_and_tools() {
    for reason in [
        "completed",
        "degraded",
        "cancelled",
        "pending_tools",
        "error",
        "hook_break",
    ] {
        // A send that ends while its round, an LLM attempt and a tool are all still open.
        let events = vec![
            started(),
            round(0),
            llm_start(0, 1),
            tool_start(0, "t1"),
            ended(reason),
        ];
        let (spans, open) = trace(TraceOptions::default(), &events, false);
        assert_eq!(open, 1, "{reason}: only the session span may stay open");
        for name in [
            "invoke_agent power_loop",
            "power_loop.round",
            "chat gpt-test",
            "execute_tool bash",
        ] {
            one(&spans, name);
        }
        let send = one(&spans, "invoke_agent power_loop");
        assert_eq!(attr(send, "power_loop.end_reason").as_deref(), Some(reason));
        let is_err = matches!(send.status, Status::Error { .. });
        assert_eq!(is_err, matches!(reason, "degraded" | "error"), "{reason}");
    }
}

#[test]
fn a_send_that_stops_emitting_is_closed_by_the_next_send_and_flush() {
    let events = vec![started(), round(0), llm_start(0, 1), started(), round(0)];
    let (spans, open) = trace(TraceOptions::default(), &events, true);
    assert_eq!(open, 3, "session + second send + its round");
    let sends: Vec<&SpanData> = spans
        .iter()
        .filter(|s| s.name == "invoke_agent power_loop")
        .collect();
    assert_eq!(sends.len(), 2);
    assert!(
        sends
            .iter()
            .all(|s| attr(s, "power_loop.end_reason").as_deref() == Some("abandoned"))
    );
    let chat = one(&spans, "chat gpt-test");
    assert_eq!(attr(chat, "error.type").as_deref(), Some("abandoned"));
    one(&spans, "power_loop.session");
    assert_eq!(spans.len(), 6);
}

#[test]
fn tool_content_enters_spans_only_when_opted_in_and_stays_redacted() {
    let events = vec![
        started(),
        round(0),
        tool_start(0, "t1"),
        tool_done(0, "t1"),
        ended("completed"),
    ];
    let (spans, _) = trace(TraceOptions::default().include_content(true), &events, true);
    let tool = one(&spans, "execute_tool bash");
    let args = attr(tool, "gen_ai.tool.call.arguments").unwrap();
    assert!(
        args.contains("cat notes.txt") && !args.contains("sk-1"),
        "{args}"
    );
    assert_eq!(
        attr(tool, "gen_ai.tool.call.result").as_deref(),
        Some("private output")
    );
}

#[test]
fn session_spans_can_be_turned_off_and_evicted() {
    let events = vec![started(), ended("completed")];
    let (spans, open) = trace(TraceOptions::default().session_span(false), &events, false);
    assert_eq!(open, 0);
    let send = one(&spans, "invoke_agent power_loop");
    assert_eq!(send.parent_span_id, opentelemetry::trace::SpanId::INVALID);

    let many: Vec<AgentEvent> = (0..5)
        .flat_map(|i| {
            let sid = format!("s{i}");
            [
                AgentEvent::new(EventPayload::SessionStarted(
                    SessionStartedPayload::default(),
                ))
                .with_session(sid.clone()),
                AgentEvent::new(EventPayload::SessionEnded(SessionEndedPayload::default()))
                    .with_session(sid),
            ]
        })
        .collect();
    let (_, open) = trace(TraceOptions::default().max_open_sessions(2), &many, false);
    assert_eq!(open, 2, "idle sessions beyond the cap are ended");
}

#[test]
fn the_otel_bridge_closes_rounds_of_degraded_cancelled_and_pending_sends() {
    use opentelemetry::global::BoxedTracer;
    use power_loop_sinks::otel::OtelBridge;
    for reason in ["degraded", "cancelled", "pending_tools"] {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let bridge = OtelBridge::new(BoxedTracer::new(Box::new(provider.tracer("t"))));
        for ev in [
            started(),
            round(0),
            llm_start(0, 1),
            llm_done(0, 1, false),
            ended(reason),
        ] {
            bridge.handle(&ev).unwrap();
        }
        assert_eq!(bridge.open_spans(), 1, "{reason}");
        let spans = exporter.get_finished_spans().unwrap();
        one(&spans, "power_loop.round");
        bridge.flush().unwrap();
        assert_eq!(bridge.open_spans(), 0);
    }
}
