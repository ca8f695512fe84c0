#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The JSONL sink writes the contract line shape, rotates by size, and replays what it wrote.

use power_loop_contracts::event::*;
use power_loop_contracts::{AgentEvent, EventPayload, EventSink, EventType};
use power_loop_sinks::redact::Redactor;
use power_loop_sinks::{JsonlOptions, JsonlSink, replay};
use serde_json::json;

fn tool_event(i: usize) -> AgentEvent {
    AgentEvent::new(EventPayload::ToolCallStarted(ToolCallStartedPayload {
        name: "echo".into(),
        tool_input: json!({"text": "x".repeat(80), "api_key": "sk-secret", "i": i}),
        tool_call_id: format!("call{i}"),
    }))
    .with_session("sess_1")
    .with_round(0)
}

#[test]
fn lines_have_contract_key_order_and_sanitized_payload() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs/events.jsonl");
    let sink = JsonlSink::open(&path, JsonlOptions::default().max_field_len(20)).unwrap();
    let ev = tool_event(1);
    sink.handle(&ev).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.ends_with('\n'));
    let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "type",
            "session_id",
            "round_index",
            "stream_id",
            "source",
            "ts",
            "seq",
            "mono",
            "payload"
        ]
    );
    assert_eq!(v["type"], "tool_call_started");
    assert_eq!(v["payload"]["tool_input"]["api_key"], "***");
    assert_eq!(
        v["payload"]["tool_input"]["text"],
        format!("{}…(+60)", "x".repeat(20))
    );
    assert_eq!(v["seq"], ev.seq);
}

#[test]
fn rotation_keeps_backup_count_files_and_replay_is_ordered() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let events: Vec<AgentEvent> = (0..12).map(tool_event).collect();
    let line_len = {
        let probe = tempfile::tempdir().unwrap();
        let p = probe.path().join("p.jsonl");
        let s = JsonlSink::open(&p, JsonlOptions::default().max_bytes(0)).unwrap();
        s.handle(&events[11]).unwrap();
        std::fs::read_to_string(&p).unwrap().len() as u64
    };
    // Room for exactly two lines per file.
    let opts = JsonlOptions::default()
        .max_bytes(2 * line_len + 20)
        .backup_count(2)
        .redactor(Redactor::new(2000));
    let sink = JsonlSink::open(&path, opts).unwrap();
    for ev in &events {
        sink.handle(ev).unwrap();
    }
    assert!(path.exists());
    assert!(dir.path().join("events.jsonl.1").exists());
    assert!(dir.path().join("events.jsonl.2").exists());
    assert!(!dir.path().join("events.jsonl.3").exists());
    let replayed: Vec<AgentEvent> = replay(&path).unwrap().collect();
    let want: Vec<&AgentEvent> = events[6..].iter().collect();
    assert_eq!(replayed.len(), want.len());
    for (got, want) in replayed.iter().zip(want) {
        assert_eq!(got.seq, want.seq);
        assert_eq!(got.ts, want.ts);
        assert_eq!(got.mono, want.mono);
        assert_eq!(got.event_type(), EventType::ToolCallStarted);
    }
}

#[test]
fn replay_skips_garbage_and_torn_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let sink = JsonlSink::open(&path, JsonlOptions::default()).unwrap();
    let a = AgentEvent::new(EventPayload::SessionStarted(SessionStartedPayload {
        scope: "main".into(),
    }));
    sink.handle(&a).unwrap();
    sink.write_line("not json").unwrap();
    sink.write_line(r#"{"type": "no_such_event", "payload": {}}"#)
        .unwrap();
    sink.write_line("").unwrap();
    let b = AgentEvent::new(EventPayload::SessionEnded(SessionEndedPayload {
        reason: "completed".into(),
    }));
    sink.handle(&b).unwrap();
    sink.write_line(r#"{"type": "session_ended", "seq": 99, "payl"#)
        .unwrap();
    let got: Vec<AgentEvent> = replay(&path).unwrap().collect();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0], a);
    assert_eq!(got[1], b);
}

#[test]
fn event_filter_and_close() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let sink = JsonlSink::open(
        &path,
        JsonlOptions::default().events(vec![EventType::SessionEnded]),
    )
    .unwrap();
    sink.handle(&AgentEvent::new(EventPayload::SessionStarted(
        SessionStartedPayload::default(),
    )))
    .unwrap();
    sink.handle(&AgentEvent::new(EventPayload::SessionEnded(
        SessionEndedPayload::default(),
    )))
    .unwrap();
    sink.close();
    sink.handle(&AgentEvent::new(EventPayload::SessionEnded(
        SessionEndedPayload::default(),
    )))
    .unwrap();
    assert_eq!(replay(&path).unwrap().count(), 1);
}
