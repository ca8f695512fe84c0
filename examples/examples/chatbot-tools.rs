//! A terminal chatbot with tools: streaming answers, a calculator, the clock, durable history.
//!
//! Shows everything together: a provider from the environment (or, with none set, an offline
//! scripted model that knows when to call which tool), a custom tool next to a built-in one
//! (`current_time`), answers streamed to the terminal as they arrive, tool calls shown as they
//! start, and a session stored in a SQLite file so the conversation survives a restart
//! (`--db chat.db` keeps it; `/new` starts a fresh session, `/quit` or end of input exits).
//!
//! Run: `cargo run -p examples --example chatbot-tools` and type, or pipe lines in:
//! `printf 'what time is it?\nwhat is 12 * 7?\n' | cargo run -p examples --example chatbot-tools`

use std::io::Write;
use std::sync::Arc;

use power_loop::{
    EventPayload, EventType, NewSessionOptions, Role, ScriptedLlm, ScriptedStep, StatefulAgentLoop,
    ToolDefinition, ToolOutput, ToolRegistry, timer_tools, tool_fn,
};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

/// `a op b` for op in + - * /.
fn calculate(expr: &str) -> Result<f64, String> {
    let expr = expr.replace(' ', "");
    let pos = expr
        .char_indices()
        .skip(1)
        .find(|(_, c)| "+-*/".contains(*c))
        .map(|(i, _)| i)
        .ok_or("expected `a op b`")?;
    let (a, rest) = expr.split_at(pos);
    let (op, b) = rest.split_at(1);
    let (a, b): (f64, f64) = (
        a.parse().map_err(|_| format!("not a number: {a}"))?,
        b.parse().map_err(|_| format!("not a number: {b}"))?,
    );
    match op {
        "+" => Ok(a + b),
        "-" => Ok(a - b),
        "*" => Ok(a * b),
        _ if b == 0.0 => Err("division by zero".into()),
        _ => Ok(a / b),
    }
}

/// The offline stand-in: picks a tool from the question, then words the tool's result.
fn offline_model() -> ScriptedLlm {
    ScriptedLlm::from_fn(|req| {
        let last = req.messages.last();
        if let Some(m) = last.filter(|m| m.role == Role::Tool) {
            return ScriptedStep::text(format!("The answer is {}.", m.text()));
        }
        let q = last.map(|m| m.text()).unwrap_or_default().to_lowercase();
        if q.contains("time") {
            ScriptedStep::tool_call("current_time", json!({}))
        } else if let Some(expr) = q
            .split("is ")
            .nth(1)
            .filter(|e| e.chars().any(|c| c.is_ascii_digit()))
        {
            ScriptedStep::tool_call(
                "calculator",
                json!({"expression": expr.trim_end_matches('?')}),
            )
        } else {
            ScriptedStep::text("I can tell the time and do arithmetic: ask 'what is 3 + 4?'.")
        }
    })
}

#[tokio::main]
async fn main() -> power_loop::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let db = args
        .iter()
        .position(|a| a == "--db")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let dir = tempfile::tempdir()?;
    let db = db.unwrap_or_else(|| dir.path().join("chat.db").display().to_string());

    let llm: Arc<dyn power_loop::LlmService> = if std::env::var("POWER_LOOP_BASE_URL").is_ok() {
        power_loop::LlmProviderConfig::build_from_env()?
    } else {
        eprintln!("(no POWER_LOOP_BASE_URL: using the offline scripted model)");
        Arc::new(offline_model())
    };
    let mut tools = ToolRegistry::new();
    tools.register(tool_fn(
        ToolDefinition::new(
            "calculator",
            "Compute `a op b` with op one of + - * /.",
            json!({"type": "object", "properties": {"expression": {"type": "string"}}, "required": ["expression"]}),
        ),
        |_ctx, args| async move {
            Ok(match calculate(args["expression"].as_str().unwrap_or_default()) {
                Ok(v) => ToolOutput::ok(v.to_string()),
                Err(e) => ToolOutput::failed(e),
            })
        },
    ))?;
    // `current_time` is one of the timer tools; register only it.
    for t in timer_tools()
        .into_iter()
        .filter(|t| t.definition().name == "current_time")
    {
        tools.register_arc(t, false)?;
    }
    let agent = StatefulAgentLoop::builder(llm)
        .dsn(db)
        .tools(tools)
        .build()?;
    agent.event_bus().subscribe(EventType::StreamDelta, |e| {
        if let EventPayload::StreamDelta(d) = &e.payload {
            print!("{}", d.text);
            std::io::stdout().flush()?;
        }
        Ok(())
    });
    agent
        .event_bus()
        .subscribe(EventType::ToolCallStarted, |e| {
            if let EventPayload::ToolCallStarted(t) = &e.payload {
                println!("  [tool {} {}]", t.name, t.tool_input);
            }
            Ok(())
        });

    let system = "You are a helpful assistant. Use the calculator for arithmetic and current_time for the time.";
    let mut sid = agent
        .new_session(NewSessionOptions::default().with_system_prompt(system))
        .await?;
    println!("session {sid}. Type a message; /new starts over, /quit exits.");
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    loop {
        print!("> ");
        std::io::stdout().flush()?;
        let Some(line) = lines.next_line().await? else {
            break;
        };
        match line.trim() {
            "" => continue,
            "/quit" => break,
            "/new" => {
                sid = agent
                    .new_session(NewSessionOptions::default().with_system_prompt(system))
                    .await?;
                println!("new session {sid}");
                continue;
            }
            text => {
                let r = agent.send(&sid, text).await?;
                // The streamed text is already on screen; end the line and flag non-answers.
                println!();
                if r.status != power_loop::RunStatus::Completed {
                    println!("  [{}]", r.status);
                }
            }
        }
    }
    println!(
        "\nbye ({} messages in this session)",
        agent.get_messages(&sid, false).await?.len()
    );
    agent.close(std::time::Duration::from_secs(5)).await?;
    Ok(())
}
