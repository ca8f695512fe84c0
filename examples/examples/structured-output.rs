//! Structured output: the final answer must match a JSON schema; a wrong answer is repaired.
//!
//! Shows: `AgentLoopConfig::with_structured_output`, the validated value in
//! `StatefulResult::structured`, and the repair round the loop runs when the first answer does
//! not validate (it tells the model what was wrong and asks again, up to
//! `structured_output_retries` times).
//!
//! Run: `cargo run -p examples --example structured-output`
// An example asserts what it demonstrates: an unexpected outcome should stop it loudly.
#![allow(clippy::expect_used)]

use std::sync::Arc;

use power_loop::{
    AgentLoopConfig, NewSessionOptions, ScriptedLlm, StatefulAgentLoop, StructuredOutputSpec,
};
use serde_json::json;

#[tokio::main]
async fn main() -> power_loop::Result<()> {
    let schema = json!({
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "celsius": {"type": "number"}
        },
        "required": ["city", "celsius"],
        "additionalProperties": false
    });
    // First answer: fenced JSON missing `celsius` (invalid). Second: valid.
    let llm = Arc::new(
        ScriptedLlm::new()
            .text("```json\n{\"city\": \"Oslo\"}\n```")
            .then_text("{\"city\": \"Oslo\", \"celsius\": -3.5}"),
    );
    let agent = StatefulAgentLoop::builder(llm.clone())
        .dsn("sqlite://:memory:")
        .config(
            AgentLoopConfig::new()
                .with_structured_output(Some(StructuredOutputSpec::new("Weather", schema))),
        )
        .build()?;
    let sid = agent.new_session(NewSessionOptions::default()).await?;
    let result = agent.send(&sid, "Weather in Oslo?").await?;

    let value = result.structured.clone().unwrap_or_default();
    println!("structured: {value}");
    println!("model calls: {} (one repair)", result.usage.calls);
    // The repair request told the model what was wrong.
    let repair = llm
        .last_request()
        .and_then(|r| r.messages.last().map(|m| m.text()))
        .unwrap_or_default();
    println!(
        "repair prompt: {}",
        repair.lines().next().unwrap_or_default()
    );
    assert_eq!(value["celsius"], json!(-3.5));
    assert!(result.structured_error.is_none());

    // The same validation is available on its own.
    let err = power_loop::parse_structured(
        "{\"city\": 1}",
        Some(&json!({"type": "object", "properties": {"city": {"type": "string"}}})),
    )
    .expect_err("a number is not a string");
    println!("parse_structured error code: {}", err.code());
    agent.close(std::time::Duration::from_secs(5)).await?;
    Ok(())
}
