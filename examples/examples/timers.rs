//! Durable timers: the agent schedules a wake-up; a runner delivers it into the session later.
//!
//! Shows: the timer tools (`schedule_wakeup`, `list_wakeups`, …) called by the model, a timer
//! armed from code (`schedule_timer`), and `TimerRunner::run_once(now)` firing both: each note is
//! sent into its session as a user message and the model answers it. Timers live in the store,
//! so a runner in any process (several share one database safely) can fire them.
//!
//! Run: `cargo run -p examples --example timers`

use std::sync::Arc;

use power_loop::{
    NewSessionOptions, ScriptedLlm, ScriptedStep, StatefulAgentLoop, TimerDue, TimerRunner,
    TimerRunnerOptions, ToolRegistry, register_timer_tools,
};
use serde_json::json;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[tokio::main]
async fn main() -> power_loop::Result<()> {
    let llm = Arc::new(ScriptedLlm::new().steps([
        ScriptedStep::tool_call(
            "schedule_wakeup",
            json!({"delay_seconds": 60, "note": "Check whether the export finished."}),
        ),
        ScriptedStep::text("I'll check back in a minute."),
        // answers to the two deliveries (the earlier-due timer fires first)
        ScriptedStep::text("Woken up: sending the daily summary."),
        ScriptedStep::text("Woken up: checking the export now."),
    ]));
    let mut tools = ToolRegistry::new();
    register_timer_tools(&mut tools)?;
    let dir = tempfile::tempdir()?;
    let agent = StatefulAgentLoop::builder(llm)
        .dsn(dir.path().join("timers.db").display().to_string())
        .tools(tools)
        .build()?;
    let sid = agent.new_session(NewSessionOptions::default()).await?;
    println!(
        "agent: {}",
        agent
            .send(&sid, "Start the export and check on it.")
            .await?
            .final_text
    );

    // A timer armed by the host: a recurring daily summary, first due in 30 s.
    agent
        .schedule_timer(
            &sid,
            TimerDue::InSeconds(30),
            "Send the daily summary.",
            Some(86_400),
        )
        .await?;
    for t in agent.list_timers(&sid).await? {
        println!(
            "armed: #{} {:?} every {:?}s",
            t.timer_id, t.note, t.interval_s
        );
    }

    // A runner process would call `start()` and poll; here we fire "two minutes from now".
    let runner = TimerRunner::new(agent.clone(), TimerRunnerOptions::default());
    let firings = runner.run_once(now_ms() + 120_000).await?;
    for f in &firings {
        println!("fired #{} → {}", f.timer_id, f.outcome.as_str());
    }
    assert_eq!(firings.len(), 2);
    for m in agent
        .get_messages(&sid, false)
        .await?
        .iter()
        .rev()
        .take(2)
        .rev()
    {
        println!("{:>9}: {}", m.role.as_str(), m.text().replace('\n', " "));
    }
    // The recurring timer is re-armed for tomorrow; the one-shot is done.
    println!("still armed: {}", agent.list_timers(&sid).await?.len());
    agent.close(std::time::Duration::from_secs(5)).await?;
    Ok(())
}
