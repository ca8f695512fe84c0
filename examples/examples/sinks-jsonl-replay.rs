//! Event sinks: a durable JSONL log of every event, replayed and filtered afterwards.
//!
//! Shows: `JsonlSink` on the event bus (one JSON line per event, flushed as written, rotated by
//! size, secrets redacted), `LogSink` turning events into `tracing` records, and `replay`
//! reading the log back in order, filtered by session and event type (what
//! `power-loop events replay` does from the command line).
//!
//! Run: `cargo run -p examples --example sinks-jsonl-replay`

use std::sync::Arc;

use power_loop::{
    EventFilter, EventSink, EventType, JsonlOptions, JsonlSink, LogSink, NewSessionOptions,
    ScriptedLlm, StatefulAgentLoop, replay,
};

#[tokio::main]
async fn main() -> power_loop::Result<()> {
    let dir = tempfile::tempdir()?;
    let log_path = dir.path().join("logs").join("events.jsonl");
    let llm = Arc::new(
        ScriptedLlm::new()
            .text("first answer")
            .then_text("second answer"),
    );
    let agent = StatefulAgentLoop::builder(llm)
        .dsn("sqlite://:memory:")
        .build()?;

    let sink = Arc::new(JsonlSink::open(
        &log_path,
        JsonlOptions::default().max_bytes(1 << 20),
    )?);
    let s = Arc::clone(&sink);
    agent
        .event_bus()
        .subscribe(EventFilter::All, move |e| s.handle(e));
    // A second sink: `session_ended` events as `tracing` records (visible once a subscriber,
    // e.g. tracing-subscriber's fmt, is installed; without one it costs almost nothing).
    let log = LogSink::new().events(vec![EventType::SessionEnded]);
    let log = Arc::new(log);
    let l = Arc::clone(&log);
    agent
        .event_bus()
        .subscribe(EventType::SessionEnded, move |e| {
            println!("  log sink: {}", l.message(e)?);
            l.handle(e)
        });

    let a = agent.new_session(NewSessionOptions::default()).await?;
    let b = agent.new_session(NewSessionOptions::default()).await?;
    agent.send(&a, "hello from a").await?;
    agent.send(&b, "hello from b").await?;
    agent.close(std::time::Duration::from_secs(5)).await?;
    sink.close();

    let lines = std::fs::read_to_string(&log_path)?;
    println!(
        "{} lines written; the first:\n  {}",
        lines.lines().count(),
        lines.lines().next().unwrap_or_default()
    );

    // Replay: every event of session `b` that ended a run.
    let ended: Vec<_> = replay(&log_path)?
        .filter(|e| e.session_id.as_deref() == Some(b.as_str()))
        .filter(|e| e.event_type().as_str() == "session_ended")
        .collect();
    for e in &ended {
        println!(
            "replayed: seq={} {} session={}",
            e.seq,
            e.event_type(),
            e.session_id.as_deref().unwrap_or("-")
        );
    }
    assert_eq!(ended.len(), 1);
    let total = replay(&log_path)?.count();
    assert_eq!(total, lines.lines().count());
    Ok(())
}
