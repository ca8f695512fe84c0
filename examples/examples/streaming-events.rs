//! Streaming: print the answer as it arrives, and watch the run's typed events.
//!
//! Shows: subscribing to `stream_delta` on the loop's event bus (the loop streams from the
//! model whenever someone listens), a second subscriber counting every event type, and the
//! event envelope (`seq`, `session_id`, `round_index`).
//!
//! Run: `cargo run -p examples --example streaming-events`

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use power_loop::{
    EventFilter, EventPayload, EventType, NewSessionOptions, ScriptedLlm, StatefulAgentLoop,
};

#[tokio::main]
async fn main() -> power_loop::Result<()> {
    // The scripted model streams its text in 6 pieces, 20 ms apart.
    let llm = Arc::new(
        ScriptedLlm::new()
            .text("Streaming lets a user read the answer while the model is still writing it.")
            .text_pieces(6)
            .with_delay(std::time::Duration::from_millis(20)),
    );
    let agent = StatefulAgentLoop::builder(llm)
        .dsn("sqlite://:memory:")
        .build()?;

    // 1. Print text deltas as they arrive.
    agent
        .event_bus()
        .subscribe(EventType::StreamDelta, |event| {
            if let EventPayload::StreamDelta(delta) = &event.payload {
                print!("{}|", delta.text);
                std::io::stdout().flush()?;
            }
            Ok(())
        });
    // 2. Count every event by type.
    let counts: Arc<Mutex<BTreeMap<&'static str, u32>>> = Arc::default();
    let c = Arc::clone(&counts);
    agent.event_bus().subscribe(EventFilter::All, move |event| {
        if let Ok(mut map) = c.lock() {
            *map.entry(event.event_type().as_str()).or_default() += 1;
        }
        Ok(())
    });

    let sid = agent.new_session(NewSessionOptions::default()).await?;
    let result = agent.send(&sid, "Why stream?").await?;
    println!("\nfinal text: {}", result.final_text);
    let counts = counts.lock().map(|m| m.clone()).unwrap_or_default();
    for (kind, n) in &counts {
        println!("{kind:>20}: {n}");
    }
    assert!(counts.get("stream_delta").copied().unwrap_or(0) >= 2);
    agent.close(std::time::Duration::from_secs(5)).await?;
    Ok(())
}
