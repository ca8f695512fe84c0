//! Hello world: one agent session on an in-memory SQLite store, one message, one answer.
//!
//! Shows: the smallest complete program. The offline scripted model stands in for a provider,
//! so this runs with no network and no API key.
//!
//! Run: `cargo run -p examples --example hello-world`

use std::sync::Arc;

use power_loop::{NewSessionOptions, ScriptedLlm, StatefulAgentLoop};

#[tokio::main]
async fn main() -> power_loop::Result<()> {
    let llm = Arc::new(ScriptedLlm::new().text("Hello, world!"));
    let agent = StatefulAgentLoop::builder(llm)
        .dsn("sqlite://:memory:")
        .build()?;
    let session = agent.new_session(NewSessionOptions::default()).await?;
    let result = agent.send(&session, "Say hello.").await?;
    println!(
        "{} ({}, {} round)",
        result.final_text, result.status, result.rounds
    );
    assert_eq!(result.final_text, "Hello, world!");
    agent.close(std::time::Duration::from_secs(5)).await?;
    Ok(())
}
