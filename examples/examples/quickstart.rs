//! Quickstart: a durable agent session on SQLite, driven by the offline scripted model.
//!
//! Run: `cargo run -p examples --example quickstart`

use std::sync::Arc;

use power_loop::{NewSessionOptions, ScriptedLlm, StatefulAgentLoop};

#[tokio::main]
async fn main() -> power_loop::Result<()> {
    let dir = tempfile::tempdir()?;
    let dsn = dir.path().join("quickstart.db").display().to_string();

    // The scripted model stands in for a provider (see `LlmProviderConfig::build_from_env`).
    let llm = Arc::new(
        ScriptedLlm::new()
            .text("Hi! I'm a scripted model.")
            .then_text("You said your name is Ada."),
    );
    let agent = StatefulAgentLoop::builder(llm.clone())
        .dsn(dsn.clone())
        .build()?;
    let sid = agent
        .new_session(NewSessionOptions::default().with_system_prompt("Be brief."))
        .await?;
    let first = agent.send(&sid, "hello").await?;
    println!("assistant: {}", first.final_text);
    agent.close(std::time::Duration::from_secs(5)).await?;

    // A brand-new loop (as in another process) resumes the session by id from the store.
    let agent2 = StatefulAgentLoop::builder(llm.clone()).dsn(dsn).build()?;
    let second = agent2.send(&sid, "my name is Ada").await?;
    println!("assistant: {}", second.final_text);
    let request = llm.last_request().map(|r| r.messages.len()).unwrap_or(0);
    println!("the second request carried {request} messages of history");
    assert_eq!(request, 3);
    agent2.close(std::time::Duration::from_secs(5)).await?;
    Ok(())
}
