//! A real model from the environment: the provider is read from `POWER_LOOP_*` variables.
//!
//! Shows: `LlmProviderConfig::build_from_env()` (provider, base URL, key, model, timeout and retries
//! from the environment, wrapped in the retry and timeout layers) driving a durable session on a
//! SQLite file. Needs a reachable provider (network or a local server); CI only builds it.
//!
//! Run, for example against a local OpenAI-compatible server:
//! ```sh
//! export POWER_LOOP_BASE_URL=http://127.0.0.1:8080/v1 POWER_LOOP_API_KEY=none POWER_LOOP_MODEL=local
//! cargo run -p examples --example real-provider -- "Name three prime numbers."
//! ```
//! (`POWER_LOOP_PROVIDER=anthropic` selects the native Anthropic API, which needs the
//! `anthropic` feature of `power-loop`.) With nothing set it exits with status 2 and says what
//! to set.

use std::sync::Arc;

use power_loop::{NewSessionOptions, StatefulAgentLoop};

#[tokio::main]
async fn main() -> power_loop::Result<()> {
    let configured = ["POWER_LOOP_BASE_URL", "POWER_LOOP_PROVIDER"]
        .iter()
        .any(|v| std::env::var(v).is_ok_and(|s| !s.trim().is_empty()));
    if !configured {
        eprintln!(
            "real-provider: no provider configured. Set POWER_LOOP_BASE_URL, POWER_LOOP_API_KEY and \
             POWER_LOOP_MODEL (and POWER_LOOP_PROVIDER=anthropic for Anthropic), then run again."
        );
        std::process::exit(2);
    }
    // A missing or malformed variable is a `config.invalid` error naming it.
    let llm: Arc<dyn power_loop::LlmService> = power_loop::LlmProviderConfig::build_from_env()?;

    let prompt = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "In one sentence: what is an agent loop?".to_owned());
    let dir = tempfile::tempdir()?;
    let agent = StatefulAgentLoop::builder(llm)
        .dsn(dir.path().join("real.db").display().to_string())
        .build()?;
    let sid = agent
        .new_session(NewSessionOptions::default().with_system_prompt("Answer briefly."))
        .await?;
    let result = agent.send(&sid, prompt.as_str()).await?;
    println!("{}", result.final_text);
    eprintln!(
        "status: {}, rounds: {}, tokens: {} prompt + {} completion",
        result.status, result.rounds, result.usage.prompt_tokens, result.usage.completion_tokens
    );
    agent.close(std::time::Duration::from_secs(5)).await?;
    if result.status != power_loop::RunStatus::Completed {
        // e.g. `degraded`: the model call failed after retries; the marker text is not an answer.
        std::process::exit(3);
    }
    Ok(())
}
