#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Metrics are counted exactly as the mapping table says; spans form the documented tree.

use std::sync::{Arc, Mutex};

use power_loop_contracts::event::*;
use power_loop_contracts::{AgentEvent, EventPayload, EventSink, Result};
use power_loop_sinks::{MetricsBackend, MetricsSink};
use serde_json::json;

#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl Recorder {
    fn record(&self, line: String) -> Result<()> {
        self.0.lock().unwrap().push(line);
        Ok(())
    }
}

impl MetricsBackend for Recorder {
    fn incr(&self, name: &str, value: u64, labels: &[(&str, &str)]) -> Result<()> {
        self.record(format!("incr {name} {value} {labels:?}"))
    }
    fn observe(&self, name: &str, value: f64, labels: &[(&str, &str)]) -> Result<()> {
        self.record(format!("observe {name} {value} {labels:?}"))
    }
    fn gauge(&self, name: &str, value: f64, labels: &[(&str, &str)]) -> Result<()> {
        self.record(format!("gauge {name} {value} {labels:?}"))
    }
}

fn ev(p: EventPayload) -> AgentEvent {
    AgentEvent::new(p).with_session("s").with_round(0)
}

/// A successful `llm_call_completed` of model `gpt` that took `duration_ms`.
fn llm_done(duration_ms: f64) -> AgentEvent {
    ev(EventPayload::LlmCallCompleted(LlmCallCompletedPayload {
        model: "gpt".into(),
        success: true,
        duration_ms,
        ..Default::default()
    }))
}

/// What a [`MetricsSink`] over a [`Recorder`] records for `events`, in order.
fn recorded(events: &[AgentEvent]) -> Vec<String> {
    let rec = Arc::new(Recorder::default());
    let sink = MetricsSink::new(rec.clone());
    for e in events {
        sink.handle(e).unwrap();
    }
    rec.0.lock().unwrap().clone()
}

#[test]
fn metrics_mapping_counts_each_tool_once() {
    let failed = ToolCallFailedPayload {
        name: "bash".into(),
        ..Default::default()
    };
    let got = recorded(&[
        ev(EventPayload::ToolCallFailed(failed)),
        ev(EventPayload::ToolCallCompleted(ToolCallCompletedPayload {
            name: "bash".into(),
            failed: true,
            ..Default::default()
        })),
        ev(EventPayload::ToolCallCompleted(ToolCallCompletedPayload {
            name: "read_file".into(),
            ..Default::default()
        })),
        llm_done(12.5),
        ev(EventPayload::UsageUpdated(UsageUpdatedPayload {
            usage: serde_json::from_value(json!({"prompt_tokens": 1})).unwrap(),
        })),
        ev(EventPayload::UsageUpdated(UsageUpdatedPayload {
            usage: serde_json::from_value(json!({"total_tokens": 9})).unwrap(),
        })),
        ev(EventPayload::RoundCompleted(
            RoundCompletedPayload::default(),
        )),
        ev(EventPayload::AgentError(AgentErrorPayload {
            error_type: "llm.timeout".into(),
            ..Default::default()
        })),
    ]);
    assert_eq!(
        got,
        vec![
            r#"incr power_loop_tool_calls 1 [("tool", "bash"), ("success", "false")]"#,
            r#"incr power_loop_tool_calls 1 [("tool", "read_file"), ("success", "true")]"#,
            r#"incr power_loop_llm_calls 1 [("model", "gpt"), ("success", "true")]"#,
            r#"observe power_loop_llm_call_duration_ms 12.5 [("model", "gpt"), ("success", "true")]"#,
            "observe power_loop_usage_total_tokens 9 []",
            "incr power_loop_rounds 1 []",
            r#"incr power_loop_errors 1 [("error_type", "llm.timeout")]"#,
        ]
    );
}

#[cfg(feature = "statsd")]
#[test]
fn statsd_datagrams_carry_tags_or_reference_names() {
    use power_loop_sinks::metrics::{StatsdBackend, StatsdLabels, StatsdOptions};
    let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    server
        .set_read_timeout(Some(std::time::Duration::from_secs(2)))
        .unwrap();
    let addr = server.local_addr().unwrap().to_string();
    let recv = || {
        let mut buf = [0u8; 512];
        let n = server.recv(&mut buf).unwrap();
        String::from_utf8(buf[..n].to_vec()).unwrap()
    };
    // One successful `fs.read` tool call, the same sample under both label styles.
    let count_tool_call = |b: &StatsdBackend| {
        b.incr(
            "power_loop_tool_calls",
            1,
            &[("tool", "fs.read"), ("success", "true")],
        )
        .unwrap();
    };
    let tagged = StatsdBackend::new(&addr).unwrap();
    assert!(tagged.local_addr().ip().is_loopback(), "bound to loopback");
    count_tool_call(&tagged);
    assert_eq!(
        recv(),
        "power_loop_tool_calls:1|c|#tool:fs.read,success:true"
    );
    tagged
        .observe(
            "power_loop_llm_call_duration_ms",
            1.5,
            &[("model", "gpt-4o"), ("success", "true")],
        )
        .unwrap();
    assert_eq!(
        recv(),
        "power_loop_llm_call_duration_ms:2|ms|#model:gpt-4o,success:true"
    );
    let named =
        StatsdBackend::with_options(StatsdOptions::new(&addr).labels(StatsdLabels::Name)).unwrap();
    count_tool_call(&named);
    assert_eq!(
        recv(),
        "power_loop_tool_calls.success_true.tool_fs.read:1|c"
    );
    assert_eq!(tagged.dropped() + named.dropped(), 0);
}

#[cfg(feature = "statsd")]
#[test]
fn statsd_refuses_a_remote_daemon_without_an_explicit_bind_address() {
    use power_loop_sinks::metrics::StatsdBackend;
    let err = StatsdBackend::new("192.0.2.1:8125").unwrap_err();
    assert_eq!(err.code(), power_loop_contracts::ErrorCode::ConfigInvalid);
    assert!(err.message().contains("bind"), "{}", err.message());
    let err = StatsdBackend::new("not an address").unwrap_err();
    assert_eq!(err.code(), power_loop_contracts::ErrorCode::ConfigInvalid);
}

#[cfg(feature = "prometheus")]
#[test]
fn prometheus_exposition_uses_total_suffix_and_labels() {
    use power_loop_sinks::metrics::PrometheusBackend;
    let prom = Arc::new(PrometheusBackend::new());
    let sink = MetricsSink::new(prom.clone());
    sink.handle(&llm_done(3.0)).unwrap();
    sink.handle(&ev(EventPayload::ToolCallFailed(ToolCallFailedPayload {
        name: "bash".into(),
        ..Default::default()
    })))
    .unwrap();
    sink.handle(&ev(EventPayload::RoundCompleted(
        RoundCompletedPayload::default(),
    )))
    .unwrap();
    let text = prom.encode().unwrap();
    assert!(
        text.contains(r#"power_loop_llm_calls_total{model="gpt",success="true"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"power_loop_tool_calls_total{success="false",tool="bash"} 1"#),
        "{text}"
    );
    assert!(text.contains("power_loop_rounds_total 1"), "{text}");
    assert!(
        text.contains("power_loop_llm_call_duration_ms_count"),
        "{text}"
    );
}

#[test]
fn workflow_events_count_runs_by_status_and_time_leaves() {
    let wf = |p| AgentEvent::new(p).with_session("driver");
    let got = recorded(&[
        wf(EventPayload::WorkflowRunStarted(
            WorkflowRunStartedPayload {
                workflow: "research".into(),
                run_id: "r1".into(),
                attempt: 1,
            },
        )),
        wf(EventPayload::WorkflowLeafCompleted(
            WorkflowLeafCompletedPayload {
                workflow: "research".into(),
                step_key: "a".into(),
                status: "failed".into(),
                duration_ms: 4.0,
                ..Default::default()
            },
        )),
        wf(EventPayload::WorkflowRunCompleted(
            WorkflowRunCompletedPayload {
                workflow: "research".into(),
                status: "failed".into(),
                duration_ms: 9.0,
                leaves: 1,
                ..Default::default()
            },
        )),
    ]);
    assert_eq!(
        got,
        vec![
            r#"incr power_loop_workflow_runs_started 1 [("workflow", "research")]"#,
            r#"incr power_loop_workflow_leaves 1 [("workflow", "research"), ("status", "failed")]"#,
            r#"observe power_loop_workflow_leaf_duration_ms 4 [("workflow", "research"), ("status", "failed")]"#,
            r#"incr power_loop_workflow_runs 1 [("workflow", "research"), ("status", "failed")]"#,
            r#"observe power_loop_workflow_run_duration_ms 9 [("workflow", "research"), ("status", "failed")]"#,
        ]
    );
}

#[cfg(feature = "prometheus")]
#[test]
fn prometheus_exposes_the_workflow_metrics() {
    use power_loop_sinks::metrics::PrometheusBackend;
    let prom = Arc::new(PrometheusBackend::new());
    let sink = MetricsSink::new(prom.clone());
    sink.handle(&AgentEvent::new(EventPayload::WorkflowRunCompleted(
        WorkflowRunCompletedPayload {
            workflow: "w".into(),
            status: "completed".into(),
            duration_ms: 2.0,
            ..Default::default()
        },
    )))
    .unwrap();
    let text = prom.encode().unwrap();
    assert!(
        text.contains(r#"power_loop_workflow_runs_total{status="completed",workflow="w"} 1"#),
        "{text}"
    );
    assert!(
        text.contains("# HELP power_loop_workflow_runs Workflow run attempts ended"),
        "{text}"
    );
    assert!(
        text.contains("power_loop_workflow_run_duration_ms_count"),
        "{text}"
    );
}

#[cfg(feature = "otel")]
#[test]
fn otel_bridge_spans_form_session_send_round_call_tree() {
    use opentelemetry::global::BoxedTracer;
    use opentelemetry::trace::{Status, TracerProvider};
    use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider};
    use power_loop_sinks::otel::OtelBridge;

    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let bridge = OtelBridge::new(BoxedTracer::new(Box::new(provider.tracer("power_loop"))));
    let e = |p| AgentEvent::new(p).with_session("s");
    bridge
        .handle(&e(EventPayload::SessionStarted(SessionStartedPayload {
            scope: "main".into(),
        })))
        .unwrap();
    bridge
        .handle(&e(EventPayload::RoundStarted(RoundStartedPayload {
            round_index: 0,
        })))
        .unwrap();
    for (attempt, ok) in [(1, false), (2, true)] {
        bridge
            .handle(&e(EventPayload::LlmCallStarted(LlmCallStartedPayload {
                call_id: "c1".into(),
                round_index: 0,
                attempt,
                model: "m".into(),
            })))
            .unwrap();
        bridge
            .handle(&e(EventPayload::LlmCallCompleted(
                LlmCallCompletedPayload {
                    call_id: "c1".into(),
                    attempt,
                    success: ok,
                    error_type: if ok {
                        String::new()
                    } else {
                        "llm.server".into()
                    },
                    ..Default::default()
                },
            )))
            .unwrap();
    }
    bridge
        .handle(
            &AgentEvent::new(EventPayload::ToolCallStarted(ToolCallStartedPayload {
                name: "bash".into(),
                tool_call_id: "t1".into(),
                ..Default::default()
            }))
            .with_session("s")
            .with_round(0),
        )
        .unwrap();
    bridge
        .handle(&e(EventPayload::ToolCallFailed(ToolCallFailedPayload {
            name: "bash".into(),
            tool_call_id: "t1".into(),
            ..Default::default()
        })))
        .unwrap();
    bridge
        .handle(&e(EventPayload::ToolCallCompleted(
            ToolCallCompletedPayload {
                name: "bash".into(),
                tool_call_id: "t1".into(),
                failed: true,
                ..Default::default()
            },
        )))
        .unwrap();
    bridge
        .handle(&e(EventPayload::RoundCompleted(RoundCompletedPayload {
            round_index: 0,
            ..Default::default()
        })))
        .unwrap();
    bridge
        .handle(&e(EventPayload::SessionEnded(SessionEndedPayload {
            reason: "completed".into(),
        })))
        .unwrap();

    assert_eq!(bridge.open_spans(), 1, "only the session span stays open");
    bridge.close();
    let spans = exporter.get_finished_spans().unwrap();
    let by_name = |n: &str| spans.iter().filter(|s| s.name == n).collect::<Vec<_>>();
    let session = by_name("power_loop.session");
    let send = by_name("invoke_agent power_loop");
    let round = by_name("power_loop.round");
    let calls = by_name("chat m");
    let tools = by_name("execute_tool bash");
    assert_eq!(
        (
            session.len(),
            send.len(),
            round.len(),
            calls.len(),
            tools.len()
        ),
        (1, 1, 1, 2, 1)
    );
    assert_eq!(send[0].parent_span_id, session[0].span_context.span_id());
    assert_eq!(round[0].parent_span_id, send[0].span_context.span_id());
    assert_eq!(calls[0].span_kind, opentelemetry::trace::SpanKind::Client);
    for c in &calls {
        assert_eq!(c.parent_span_id, round[0].span_context.span_id());
    }
    assert!(matches!(calls[0].status, Status::Error { .. }));
    assert_eq!(tools[0].parent_span_id, round[0].span_context.span_id());
    assert_eq!(tools[0].status, Status::error("tool_error"));
    assert!(
        calls[1]
            .attributes
            .iter()
            .any(|kv| kv.key.as_str() == "gen_ai.request.model")
    );
}
