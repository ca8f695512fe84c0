//! Retry: a rate-limited model call is retried after the server's `Retry-After`; a model that
//! keeps failing ends the run as `degraded` instead of hanging.
//!
//! Shows: the default retry layer wrapped around the provider (`power_loop::with_retry` with
//! `RetryPolicy::default()`: 4 attempts, exponential backoff with jitter, honouring
//! `Retry-After`; `LlmProviderConfig::build` adds it for real providers), the `llm_retry_attempted` and `llm_degraded` events, and what a degraded run
//! returns (a marker text persisted as the reply, status `degraded`: a caller must check the
//! status, not only the text).
//!
//! Run: `cargo run -p examples --example retry-rate-limit`

use std::sync::Arc;
use std::time::Duration;

use power_loop::{
    EventFilter, EventPayload, NewSessionOptions, RetryPolicy, RunStatus, ScriptedLlm,
    ScriptedStep, StatefulAgentLoop,
};

#[tokio::main]
async fn main() -> power_loop::Result<()> {
    let wait = Duration::from_millis(50);
    let scripted = Arc::new(ScriptedLlm::new().steps([
        // send 1: two 429s, then an answer
        ScriptedStep::rate_limited(wait),
        ScriptedStep::rate_limited(wait),
        ScriptedStep::text("Answered on the third attempt."),
        // send 2: four 429s: every attempt fails
        ScriptedStep::rate_limited(wait),
        ScriptedStep::rate_limited(wait),
        ScriptedStep::rate_limited(wait),
        ScriptedStep::rate_limited(wait),
    ]));
    // The loop makes one attempt per call; retry wraps the provider before it reaches the loop.
    let llm = power_loop::with_retry(scripted, RetryPolicy::default());
    let agent = StatefulAgentLoop::builder(llm)
        .dsn("sqlite://:memory:")
        .build()?;
    agent.event_bus().subscribe(EventFilter::All, |e| {
        match &e.payload {
            EventPayload::LlmRetryAttempted(p) => println!("  retry: {p:?}"),
            EventPayload::LlmDegraded(p) => println!("  degraded: {p:?}"),
            _ => {}
        }
        Ok(())
    });

    let sid = agent.new_session(NewSessionOptions::default()).await?;
    let r = agent.send(&sid, "first").await?;
    println!("send 1: {} → {}", r.status, r.final_text);
    assert_eq!(r.status, RunStatus::Completed);

    let r = agent.send(&sid, "second").await?;
    println!("send 2: {} → {}", r.status, r.final_text);
    assert_eq!(r.status, RunStatus::Degraded);
    agent.close(Duration::from_secs(5)).await?;
    Ok(())
}
