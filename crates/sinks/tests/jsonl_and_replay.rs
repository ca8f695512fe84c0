#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The JSONL sink writes the contract line shape, rotates by size, and replays what it wrote.

use power_loop_contracts::event::*;
use power_loop_contracts::{AgentEvent, EventPayload, EventSink, EventType};
use power_loop_sinks::redact::Redactor;
use power_loop_sinks::{BadLineKind, JsonlOptions, JsonlSink, replay, replay_report};
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

/// A JSONL sink with default options on `events.jsonl` in a fresh temporary directory (keep the
/// directory alive for the test).
fn fresh_sink() -> (tempfile::TempDir, std::path::PathBuf, JsonlSink) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let sink = JsonlSink::open(&path, JsonlOptions::default()).unwrap();
    (dir, path, sink)
}

/// A `session_started` event of the main scope.
fn started() -> AgentEvent {
    AgentEvent::new(EventPayload::SessionStarted(SessionStartedPayload {
        scope: "main".into(),
    }))
}

#[test]
fn lines_have_contract_key_order_and_sanitized_payload_with_content_opted_in() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs/events.jsonl");
    let sink = JsonlSink::open(
        &path,
        JsonlOptions::default()
            .max_field_len(20)
            .include_content(true),
    )
    .unwrap();
    let ev = tool_event(1);
    sink.handle(&ev).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.ends_with('\n'));
    let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys.join(","),
        "type,session_id,round_index,stream_id,source,ts,seq,mono,payload"
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
    let (_dir, path, sink) = fresh_sink();
    let a = started();
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

#[test]
fn tool_content_is_left_out_by_default() {
    let (_dir, path, sink) = fresh_sink();
    sink.handle(&tool_event(1)).unwrap();
    sink.handle(
        &AgentEvent::new(EventPayload::ToolCallCompleted(ToolCallCompletedPayload {
            name: "echo".into(),
            output: "the secret plan".into(),
            tool_input: json!({"text": "hello"}),
            tool_call_id: "call1".into(),
            failed: false,
        }))
        .with_session("sess_1"),
    )
    .unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("sk-secret") && !text.contains("the secret plan"));
    assert!(!text.contains("hello"), "{text}");
    let got: Vec<AgentEvent> = replay(&path).unwrap().collect();
    let EventPayload::ToolCallCompleted(p) = &got[1].payload else {
        panic!("wrong event {:?}", got[1]);
    };
    assert_eq!(p.output, "[content omitted: 15 chars]");
    assert_eq!(p.name, "echo");
    assert_eq!(p.tool_call_id, "call1");
}

#[test]
fn backup_count_zero_never_rotates_and_keeps_every_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let opts = JsonlOptions::default().max_bytes(300).backup_count(0);
    let sink = JsonlSink::open(&path, opts.clone()).unwrap();
    let events: Vec<AgentEvent> = (0..20).map(tool_event).collect();
    for ev in &events[..10] {
        sink.handle(ev).unwrap();
    }
    drop(sink);
    // Reopening appends; nothing is truncated either.
    let sink = JsonlSink::open(&path, opts).unwrap();
    for ev in &events[10..] {
        sink.handle(ev).unwrap();
    }
    assert!(!dir.path().join("events.jsonl.1").exists());
    let got: Vec<u64> = replay(&path).unwrap().map(|e| e.seq).collect();
    assert_eq!(got, events.iter().map(|e| e.seq).collect::<Vec<_>>());
}

#[test]
fn rotation_loses_no_line_within_the_kept_backups() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let sink = JsonlSink::open(
        &path,
        JsonlOptions::default().max_bytes(400).backup_count(50),
    )
    .unwrap();
    let events: Vec<AgentEvent> = (0..30).map(tool_event).collect();
    for ev in &events {
        sink.handle(ev).unwrap();
    }
    let report = replay_report(&path).unwrap();
    assert!(report.files.len() > 5, "rotated: {:?}", report.files);
    assert!(report.bad_lines.is_empty());
    let got: Vec<(u64, f64, f64)> = report
        .events
        .iter()
        .map(|e| (e.seq, e.ts, e.mono))
        .collect();
    let want: Vec<(u64, f64, f64)> = events.iter().map(|e| (e.seq, e.ts, e.mono)).collect();
    assert_eq!(got, want);
}

#[test]
fn replay_reports_bad_lines_with_file_line_and_kind() {
    let (_dir, path, sink) = fresh_sink();
    let a = started();
    sink.handle(&a).unwrap();
    sink.write_line("not json").unwrap(); // line 2
    sink.write_line(r#"{"type": "no_such_event", "payload": {}}"#) // line 3
        .unwrap();
    sink.write_line("").unwrap(); // line 4: blank, ignored
    sink.write_line(r#"{"payload": {}}"#).unwrap(); // line 5
    sink.write_line(r#"{"type": "round_started", "seq": "x", "ts": 1, "mono": 1, "payload": {}}"#) // line 6
        .unwrap();
    sink.write_line(r#"{"type": "session_ended", "seq": 99, "payl"#) // line 7: torn
        .unwrap();
    let report = replay_report(&path).unwrap();
    assert_eq!(report.events.len(), 1);
    assert_eq!(report.events[0], a);
    let bad: Vec<(usize, BadLineKind)> =
        report.bad_lines.iter().map(|b| (b.line, b.kind)).collect();
    assert_eq!(
        bad,
        vec![
            (2, BadLineKind::NotJson),
            (3, BadLineKind::UnknownType),
            (5, BadLineKind::MissingType),
            (6, BadLineKind::InvalidEvent),
            (7, BadLineKind::NotJson),
        ]
    );
    assert!(report.bad_lines.iter().all(|b| b.file == path));
    assert!(report.bad_lines[1].message.contains("no_such_event"));
}

#[test]
fn replay_puts_rotated_files_with_gaps_back_in_seq_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let evs: Vec<AgentEvent> = (0..6).map(tool_event).collect();
    let line = |e: &AgentEvent| serde_json::to_string(e).unwrap() + "\n";
    // Oldest in .5 (a gap at .2–.4), delivered slightly out of order inside a file.
    std::fs::write(
        dir.path().join("events.jsonl.5"),
        line(&evs[1]) + &line(&evs[0]),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("events.jsonl.1"),
        line(&evs[2]) + &line(&evs[3]),
    )
    .unwrap();
    std::fs::write(&path, line(&evs[5]) + &line(&evs[4])).unwrap();
    let got: Vec<u64> = replay(&path).unwrap().map(|e| e.seq).collect();
    assert_eq!(got, evs.iter().map(|e| e.seq).collect::<Vec<_>>());
}

#[test]
fn replay_keeps_process_runs_apart_when_seq_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let mk = |seq: u64, ts: f64| {
        let mut e = tool_event(seq as usize);
        e.seq = seq;
        e.ts = ts;
        serde_json::to_string(&e).unwrap() + "\n"
    };
    // First process: seq 7, 8; a restarted process: seq 1, 2 (later wall clock).
    let text = mk(7, 100.0) + &mk(8, 101.0) + &mk(1, 200.0) + &mk(2, 201.0);
    std::fs::write(&path, text).unwrap();
    let got: Vec<u64> = replay(&path).unwrap().map(|e| e.seq).collect();
    assert_eq!(got, vec![7, 8, 1, 2]);
}

#[test]
fn jsonl_replay_equals_the_live_stream() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.jsonl");
    let sink = JsonlSink::open(
        &path,
        JsonlOptions::default()
            .include_content(true)
            .max_bytes(1500)
            .backup_count(100),
    )
    .unwrap();
    let s = |p: EventPayload| AgentEvent::new(p).with_session("sess_live");
    let mut live = vec![
        s(EventPayload::SessionStarted(SessionStartedPayload {
            scope: "main".into(),
        })),
        s(EventPayload::RoundStarted(RoundStartedPayload {
            round_index: 0,
        }))
        .with_round(0),
        s(EventPayload::LlmCallStarted(LlmCallStartedPayload {
            call_id: "r0.a1".into(),
            round_index: 0,
            attempt: 1,
            model: "m".into(),
        }))
        .with_round(0)
        .with_stream("main"),
        s(EventPayload::StreamDelta(StreamDeltaPayload {
            stream_id: "main".into(),
            text: "héllo ✓".into(),
            is_think: false,
        })),
        s(EventPayload::LlmCallCompleted(LlmCallCompletedPayload {
            call_id: "r0.a1".into(),
            round_index: 0,
            attempt: 1,
            model: "m".into(),
            duration_ms: 12.345678901234,
            success: true,
            prompt_tokens: Some(10),
            completion_tokens: Some(3),
            total_tokens: Some(13),
            ..Default::default()
        })),
        s(EventPayload::ToolCallStarted(ToolCallStartedPayload {
            name: "bash".into(),
            tool_input: json!({"cmd": "ls -la", "n": [1, 2.5, null]}),
            tool_call_id: "t1".into(),
        }))
        .with_round(0),
        s(EventPayload::ToolCallCompleted(ToolCallCompletedPayload {
            name: "bash".into(),
            output: "a\nb".into(),
            tool_input: json!({"cmd": "ls -la", "n": [1, 2.5, null]}),
            tool_call_id: "t1".into(),
            failed: false,
        }))
        .with_round(0),
        s(EventPayload::RoundCompleted(RoundCompletedPayload {
            round_index: 0,
            has_tools: true,
            used_todo: false,
        })),
        s(EventPayload::SessionEnded(SessionEndedPayload {
            reason: "completed".into(),
        })),
    ];
    // Awkward clock values must come back bit for bit.
    live[1].ts = 1796589109.0472963;
    live[2].ts = 0.1 + 0.2;
    for ev in &live {
        sink.handle(ev).unwrap();
    }
    sink.flush().unwrap();
    let got: Vec<AgentEvent> = replay(&path).unwrap().collect();
    assert_eq!(got.len(), live.len());
    for (g, w) in got.iter().zip(&live) {
        assert_eq!(g, w);
        assert_eq!(
            (g.seq, g.ts.to_bits(), g.mono.to_bits()),
            (w.seq, w.ts.to_bits(), w.mono.to_bits())
        );
    }
}

#[test]
fn replay_of_a_missing_log_is_an_error_not_an_empty_log() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-events.jsonl");
    let err = power_loop_sinks::replay_report(&missing).unwrap_err();
    assert_eq!(err.code().as_str(), "io");
    assert!(err.message().contains("no-such-events.jsonl"), "{err}");
    assert!(power_loop_sinks::replay(&missing).is_err());
    // A rotated file alone is a log.
    std::fs::write(dir.path().join("no-such-events.jsonl.1"), "").unwrap();
    assert!(
        power_loop_sinks::replay_report(&missing)
            .unwrap()
            .events
            .is_empty()
    );
}
