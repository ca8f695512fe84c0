//! Cancel, budgets and round limits: three ways a run stops before a final answer.
//!
//! Shows: a `CancellationToken` passed in `SendOptions` stopping a slow model call mid-stream
//! (status `cancelled`; the session stays usable), a per-run token budget
//! (`max_tokens_per_run`, status `budget_exceeded`) and the round cap (`max_rounds`, status
//! `hit_round_limit`), each with what the caller sees in `StatefulResult`.
//!
//! Run: `cargo run -p examples --example cancel-and-budgets`

use std::sync::Arc;
use std::time::{Duration, Instant};

use power_loop::{
    AgentLoopConfig, CancellationToken, NewSessionOptions, RunStatus, ScriptedLlm, ScriptedStep,
    SendOptions, StatefulAgentLoop, ToolDefinition, ToolOutput, ToolRegistry, tool_fn,
};
use serde_json::json;

fn busy_tools() -> power_loop::Result<ToolRegistry> {
    let mut tools = ToolRegistry::new();
    tools.register(tool_fn(
        ToolDefinition::new(
            "poll",
            "Poll a job.",
            json!({"type": "object", "properties": {}}),
        ),
        |_ctx, _args| async move { Ok(ToolOutput::ok("still running")) },
    ))?;
    Ok(tools)
}

/// A model that never stops calling `poll`, 100 + 60 tokens a call.
fn endless() -> Arc<ScriptedLlm> {
    Arc::new(ScriptedLlm::from_fn(|_| {
        ScriptedStep::tool_call("poll", json!({})).with_tokens(100, 60)
    }))
}

fn build(
    llm: Arc<ScriptedLlm>,
    config: AgentLoopConfig,
    tools: Option<ToolRegistry>,
) -> power_loop::Result<StatefulAgentLoop> {
    let mut b = StatefulAgentLoop::builder(llm)
        .dsn("sqlite://:memory:")
        .config(config);
    if let Some(t) = tools {
        b = b.tools(t);
    }
    b.build()
}

#[tokio::main]
async fn main() -> power_loop::Result<()> {
    // 1. Cancel: the model takes 5 s; we cancel after 100 ms.
    let slow = Arc::new(
        ScriptedLlm::new()
            .step(ScriptedStep::text("too late").with_delay(Duration::from_secs(5)))
            .then_text("back again"),
    );
    let agent = build(slow, AgentLoopConfig::new(), None)?;
    let sid = agent.new_session(NewSessionOptions::default()).await?;
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        t.cancel();
    });
    let started = Instant::now();
    let r = agent
        .send_with(&sid, "slow question", SendOptions::new().with_cancel(token))
        .await?;
    println!(
        "cancel:  status={} text={:?} after {:?}",
        r.status,
        r.final_text,
        started.elapsed()
    );
    assert_eq!(r.status, RunStatus::Cancelled);
    let again = agent.send(&sid, "still there?").await?;
    println!(
        "         next send: {} ({})",
        again.final_text, again.status
    );
    agent.close(Duration::from_secs(5)).await?;

    // 2. Budget: 400 tokens per run; each call spends 160.
    let agent = build(
        endless(),
        AgentLoopConfig::new().with_max_tokens_per_run(Some(400)),
        Some(busy_tools()?),
    )?;
    let sid = agent.new_session(NewSessionOptions::default()).await?;
    let r = agent.send(&sid, "wait for the job").await?;
    println!(
        "budget:  status={} rounds={} tokens spent={}",
        r.status,
        r.rounds,
        r.usage.spent()
    );
    assert_eq!(r.status, RunStatus::BudgetExceeded);
    agent.close(Duration::from_secs(5)).await?;

    // 3. Round cap: 3 rounds.
    let agent = build(
        endless(),
        AgentLoopConfig::new().with_max_rounds(3),
        Some(busy_tools()?),
    )?;
    let sid = agent.new_session(NewSessionOptions::default()).await?;
    let r = agent.send(&sid, "wait for the job").await?;
    println!(
        "rounds:  status={} rounds={} tool calls={}",
        r.status, r.rounds, r.tool_calls
    );
    assert_eq!(r.status, RunStatus::HitRoundLimit);
    agent.close(Duration::from_secs(5)).await?;
    Ok(())
}
