//! Resume after a crash: a process dies in the middle of a tool call; another one finishes the run.
//!
//! Shows: the durability contract. The model's tool-call request is committed before any tool
//! runs, so when the process is killed mid-tool the session is left *pending* (the unresolved
//! calls are in the store). A fresh process sees it with `get_pending`, and `resume` runs the
//! pending calls through the normal dispatch and then continues the loop. (`heal_pending`
//! would instead answer them with an `<aborted …>` marker.) Tools that may be re-run after a
//! crash should be idempotent, e.g. keyed by `ctx.tool_call_id`.
//!
//! The example re-executes itself as the child that crashes (`std::process::exit` inside the
//! tool stands in for `kill -9`).
//!
//! Run: `cargo run -p examples --example resume-after-crash`
// An example asserts what it demonstrates: an unexpected outcome should stop it loudly.
#![allow(clippy::expect_used)]

use std::sync::Arc;

use power_loop::{
    NewSessionOptions, RunStatus, ScriptedLlm, ScriptedStep, StatefulAgentLoop, ToolDefinition,
    ToolOutput, ToolRegistry, tool_fn,
};
use serde_json::json;

const CHILD_ENV: &str = "RESUME_EXAMPLE_CHILD";

fn charge_tool(crash: bool) -> power_loop::FnTool {
    tool_fn(
        ToolDefinition::new(
            "charge",
            "Charge an order.",
            json!({"type": "object", "properties": {"order": {"type": "string"}}, "required": ["order"]}),
        ),
        move |ctx, args| async move {
            if crash {
                eprintln!("child: crashing inside the tool call {}", ctx.tool_call_id);
                std::process::exit(137);
            }
            // A real tool would use ctx.tool_call_id as its idempotency key.
            Ok(ToolOutput::ok(format!(
                "charged {} (key {})",
                args["order"], ctx.tool_call_id
            )))
        },
    )
}

fn agent(dsn: &str, llm: ScriptedLlm, crash: bool) -> power_loop::Result<StatefulAgentLoop> {
    let mut tools = ToolRegistry::new();
    tools.register(charge_tool(crash))?;
    StatefulAgentLoop::builder(Arc::new(llm))
        .dsn(dsn)
        .tools(tools)
        .build()
}

#[tokio::main]
async fn main() -> power_loop::Result<()> {
    if let Ok(arg) = std::env::var(CHILD_ENV) {
        // The child: asks the model, which calls `charge`, and dies inside the tool.
        let (dsn, sid) = arg.split_once('|').unwrap_or_default();
        let llm = ScriptedLlm::new().tool_call("charge", json!({"order": "A-17"}));
        let lp = agent(dsn, llm, true)?;
        lp.send(sid, "Charge order A-17.").await?;
        unreachable!("the tool exits the process");
    }

    let dir = tempfile::tempdir()?;
    let dsn = dir.path().join("crash.db").display().to_string();
    let setup = agent(&dsn, ScriptedLlm::new(), false)?;
    let sid = setup.new_session(NewSessionOptions::default()).await?;
    setup.close(std::time::Duration::from_secs(5)).await?;

    let status = std::process::Command::new(std::env::current_exe()?)
        .env(CHILD_ENV, format!("{dsn}|{sid}"))
        .status()?;
    println!("child exited with {:?}", status.code());

    // A fresh process (here: a fresh loop) picks the session up from the store.
    let llm = ScriptedLlm::new().steps([ScriptedStep::text("Order A-17 is charged.")]);
    let lp = agent(&dsn, llm, false)?;
    let pending = lp.get_pending(&sid).await?;
    let calls = pending.as_ref().map(|p| p.tool_call_ids.len()).unwrap_or(0);
    println!("pending tool calls left by the crash: {calls}");
    assert_eq!(calls, 1);

    // A plain `send` now would fail with `session.pending`; `resume` finishes the run.
    let err = lp
        .send(&sid, "hello?")
        .await
        .expect_err("the session is pending");
    println!("send on a pending session: {}", err.code());
    let result = lp.resume(&sid, None).await?;
    println!(
        "resumed: {} ({} tool call run)",
        result.final_text, result.tool_calls
    );
    assert_eq!(result.status, RunStatus::Completed);
    assert!(
        lp.get_pending(&sid)
            .await?
            .is_none_or(|p| !p.has_unresolved())
    );
    for m in lp.get_messages(&sid, false).await? {
        println!("{:>9}: {}", m.role.as_str(), m.text());
    }
    lp.close(std::time::Duration::from_secs(5)).await?;
    Ok(())
}
