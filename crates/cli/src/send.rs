//! `send` (one message, an exit code per outcome, `--json` on every exit) and `chat`
//! (interactive): the prompt, the session, streaming, Ctrl-C and the result.

use std::io::{IsTerminal, Read, Write};
use std::sync::{Arc, Mutex};

use clap::Args;
use power_loop::{
    AgentLoopConfig, CancellationToken, Error, ErrorCode, EventPayload, EventType,
    NewSessionOptions, Result, RunStatus, SendOptions, SessionStore, StatefulAgentLoop,
    StatefulResult, ToolRegistry, validate_session_id,
};
use tokio::io::AsyncBufReadExt;

use crate::commands::{build_loop_with, unknown_session};
use crate::open::{Access, open_store};
use crate::{Cli, exit, output, provider};

/// Extra help of `send`.
pub(crate) const SEND_HELP: &str = "\
Exit codes: 0 completed, 1 error, 2 usage, 3 degraded, 4 cancelled, 5 budget or round limit,
6 waiting for input or a pending tool call. With --json one object is printed on every exit:
{session_id, final_text, status, exit_code, rounds, usage, error?}.

Examples:
  power-loop send \"hello\"                                  # a new session
  power-loop send --session sess_0123 \"and then?\"          # continue (the session must exist)
  power-loop send --new-session support-42 \"hi\"            # create a session with this id
  git diff | power-loop send -m gpt-4o-mini --stream -       # prompt from stdin, streamed
  power-loop send --json --max-tokens 256 --temperature 0.2 \"hi\"";

/// The session, model and sampling flags `send` and `chat` share.
#[derive(Debug, Args)]
pub(crate) struct TurnArgs {
    /// Continue this existing session (an unknown id is an error; see --new-session).
    #[arg(long, conflicts_with = "new_session")]
    pub(crate) session: Option<String>,
    /// Create a session with this id (1-128 of A-Z a-z 0-9 . _ : -) and use it.
    #[arg(long, value_name = "ID")]
    pub(crate) new_session: Option<String>,
    /// System prompt for a new session.
    #[arg(long)]
    pub(crate) system: Option<String>,
    /// Model name (replaces POWER_LOOP_MODEL).
    #[arg(short = 'm', long)]
    pub(crate) model: Option<String>,
    /// Completion cap per model call (default: the provider's, e.g. POWER_LOOP_MAX_TOKENS).
    #[arg(long, value_name = "N")]
    pub(crate) max_tokens: Option<u32>,
    /// Sampling temperature (default: the provider's, e.g. POWER_LOOP_TEMPERATURE).
    #[arg(long, value_name = "T")]
    pub(crate) temperature: Option<f64>,
    /// Round cap per send (default 24); reaching it exits 5.
    #[arg(long, value_name = "N")]
    pub(crate) max_rounds: Option<u32>,
    /// Token budget per send (prompt + completion); spending it exits 5.
    #[arg(long, value_name = "TOKENS")]
    pub(crate) token_budget: Option<u64>,
    /// Give the model the durable timer tools (schedule_wakeup, list_wakeups, cancel_wakeup,
    /// current_time); `power-loop timers run` fires the wakeups. Without tools, a tool call
    /// the model makes stays pending (exit 6).
    #[arg(long)]
    pub(crate) timer_tools: bool,
}

/// Arguments of `send`.
#[derive(Debug, Args)]
pub(crate) struct SendArgs {
    #[command(flatten)]
    pub(crate) turn: TurnArgs,
    /// Print one JSON object on every exit (session_id, final_text, status, exit_code, rounds,
    /// usage, error).
    #[arg(long)]
    pub(crate) json: bool,
    /// Stream the answer to stdout as it arrives.
    #[arg(long)]
    pub(crate) stream: bool,
    /// The message; `-` (or nothing, with a pipe on stdin) reads it from stdin.
    pub(crate) text: Option<String>,
}

/// Arguments of `chat`.
#[derive(Debug, Args)]
pub(crate) struct ChatArgs {
    #[command(flatten)]
    pub(crate) turn: TurnArgs,
}

/// Checks the flags before anything is opened (usage errors, exit 2).
fn check_turn(t: &TurnArgs) -> Result<()> {
    for id in [&t.session, &t.new_session].into_iter().flatten() {
        validate_session_id(id).map_err(|e| exit::usage(e.message().to_owned()))?;
    }
    if let Some(temp) = t.temperature
        && (!temp.is_finite() || !(0.0..=2.0).contains(&temp))
    {
        return Err(exit::usage(format!(
            "--temperature must be between 0 and 2, got {temp}"
        )));
    }
    if t.max_tokens == Some(0) {
        return Err(exit::usage("--max-tokens must be at least 1"));
    }
    if t.max_rounds == Some(0) {
        return Err(exit::usage("--max-rounds must be at least 1"));
    }
    Ok(())
}

/// The loop configuration of the flags: unset values defer to the provider's settings.
fn loop_config(t: &TurnArgs) -> AgentLoopConfig {
    let mut c = AgentLoopConfig::default()
        .with_max_tokens(t.max_tokens)
        .with_temperature(t.temperature)
        .with_max_tokens_per_run(t.token_budget);
    if let Some(n) = t.max_rounds {
        c = c.with_max_rounds(n);
    }
    c
}

/// The tools of the flags (`--timer-tools`), or none.
fn tools(t: &TurnArgs) -> Result<Option<ToolRegistry>> {
    if !t.timer_tools {
        return Ok(None);
    }
    crate::commands::timer_registry().map(Some)
}

/// The prompt: the argument, or stdin for `-` or a missing argument with a pipe on stdin.
fn read_prompt(text: Option<&str>) -> Result<String> {
    let from_stdin = match text {
        Some("-") => true,
        Some(t) => return non_empty(t.to_owned()),
        None if std::io::stdin().is_terminal() => {
            return Err(exit::usage(
                "no message: pass it as an argument, or pipe it in (`echo hi | power-loop send`, or `-`)",
            ));
        }
        None => true,
    };
    debug_assert!(from_stdin);
    let mut buf = String::new();
    std::io::stdin().read_to_string(&mut buf)?;
    non_empty(buf)
}

fn non_empty(text: String) -> Result<String> {
    if text.trim().is_empty() {
        return Err(exit::usage("the message is empty"));
    }
    Ok(text)
}

/// Picks the provider, opens the store, builds the loop of the flags and picks the session:
/// `--session` must exist, `--new-session` creates, neither makes a fresh one.
async fn start(cli: &Cli, t: &TurnArgs) -> Result<(StatefulAgentLoop, SessionStore, String)> {
    let (llm, _offline) = provider::choose_with(cli.offline, t.model.as_deref())?;
    let config = loop_config(t);
    let tools = crate::mcp::registry(cli.mcp_config.as_deref(), tools(t)?).await?;
    // Continuing a session needs an existing store: a mistyped --dsn creates nothing.
    let access = if t.session.is_some() {
        Access::Existing
    } else {
        Access::Create
    };
    let store = open_store(cli, access).await?;
    let agent = build_loop_with(llm, store.clone(), config, tools)?;
    let sid = match (&t.session, &t.new_session) {
        (Some(id), _) => {
            if !store.session_exists(id).await? {
                return Err(unknown_session(id));
            }
            id.clone()
        }
        (None, Some(id)) => {
            let mut new = power_loop::NewSession::new().with_id(id);
            new.system_prompt = t.system.clone();
            store.create_session(new).await?
        }
        (None, None) => {
            let mut opts = NewSessionOptions::default();
            if let Some(s) = &t.system {
                opts = opts.with_system_prompt(s);
            }
            agent.new_session(opts).await?
        }
    };
    Ok((agent, store, sid))
}

/// `send`: returns the exit code; with `--json` a failure still prints its JSON object.
pub(crate) async fn send(cli: &Cli, args: &SendArgs) -> Result<u8> {
    let sid = Arc::new(Mutex::new(None::<String>));
    match send_inner(cli, args, &sid).await {
        Ok(code) => Ok(code),
        Err(e) if args.json => {
            let code = exit::code_of(&e);
            if code == exit::OK {
                return Ok(code);
            }
            eprintln!("power-loop: [{}] {}", e.code().as_str(), e.message());
            let sid = sid.lock().ok().and_then(|s| s.clone());
            let status = if code == exit::USAGE {
                "usage_error"
            } else {
                "error"
            };
            print_json_failure(sid.as_deref(), status, e.code().as_str(), e.message(), code);
            Ok(code)
        }
        Err(e) => Err(e),
    }
}

/// What the event bus saw during a send.
#[derive(Default)]
struct Seen {
    streamed: bool,
    degraded: Option<(String, u32, String, String)>,
}

async fn send_inner(cli: &Cli, args: &SendArgs, sid_out: &Mutex<Option<String>>) -> Result<u8> {
    check_turn(&args.turn)?;
    let text = read_prompt(args.text.as_deref())?;
    let (agent, store, sid) = start(cli, &args.turn).await?;
    if let Ok(mut slot) = sid_out.lock() {
        *slot = Some(sid.clone());
    }
    let seen = Arc::new(Mutex::new(Seen::default()));
    watch(&agent, &seen, args.stream && !args.json);
    let cancel = CancellationToken::new();
    let guard = on_ctrl_c(cancel.clone());
    let result = agent
        .send_with(&sid, text, SendOptions::new().with_cancel(cancel))
        .await;
    guard.abort();
    let closed = agent.close(std::time::Duration::from_secs(10)).await;
    let _ = store.close().await;
    let result = result?;
    closed?;
    let seen = seen
        .lock()
        .map(|s| Seen {
            streamed: s.streamed,
            degraded: s.degraded.clone(),
        })
        .unwrap_or_default();
    report(&result, &seen, args.json)
}

/// Subscribes the stream printer (when streaming) and the degraded-reason recorder.
fn watch(agent: &StatefulAgentLoop, seen: &Arc<Mutex<Seen>>, stream: bool) {
    let s = Arc::clone(seen);
    agent
        .event_bus()
        .subscribe(EventType::LlmDegraded, move |ev| {
            if let EventPayload::LlmDegraded(d) = &ev.payload
                && let Ok(mut s) = s.lock()
            {
                s.degraded = Some((
                    d.reason.clone(),
                    d.attempts,
                    d.error_type.clone(),
                    d.error_message.clone(),
                ));
            }
            Ok(())
        });
    if stream {
        let s = Arc::clone(seen);
        agent
            .event_bus()
            .subscribe(EventType::StreamDelta, move |ev| {
                if let EventPayload::StreamDelta(d) = &ev.payload {
                    if let Ok(mut s) = s.lock() {
                        s.streamed = true;
                    }
                    // A closed stdout ends the printing, not the run.
                    let _ = output::out(&d.text);
                }
                Ok(())
            });
    }
}

/// Ctrl-C cancels the send (the session stays usable); a second Ctrl-C exits at once.
fn on_ctrl_c(cancel: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\npower-loop: interrupted; cancelling the send (Ctrl-C again to quit now)");
            cancel.cancel();
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(i32::from(exit::CANCELLED));
            }
        }
    })
}

/// Prints the result (stdout: the answer or the JSON object; stderr: status) and returns the
/// exit code.
fn report(r: &StatefulResult, seen: &Seen, json: bool) -> Result<u8> {
    let code = exit::for_status(r.status);
    if json {
        let mut v = serde_json::json!({
            "session_id": r.session_id,
            "final_text": r.final_text,
            "status": r.status.as_str(),
            "exit_code": code,
            "rounds": r.rounds,
            "tool_calls": r.tool_calls,
            "usage": serde_json::to_value(r.usage)?,
        });
        if let Some((reason, attempts, kind, message)) = &seen.degraded {
            v["error"] = serde_json::json!({
                "code": kind, "message": message, "reason": reason, "attempts": attempts,
            });
        }
        if !r.pending_tool_calls.is_empty() || !r.pending_interactions.is_empty() {
            v["pending_tool_calls"] = serde_json::to_value(&r.pending_tool_calls)?;
            v["pending_interactions"] = serde_json::to_value(&r.pending_interactions)?;
        }
        output::json(&v)?;
    } else {
        match r.status {
            RunStatus::Degraded => {}
            _ if seen.streamed => output::out("\n")?,
            _ => output::line(&r.final_text)?,
        }
    }
    status_line(r, seen);
    Ok(code)
}

/// The stderr status of a result: the session id, and why it did not complete.
fn status_line(r: &StatefulResult, seen: &Seen) {
    let sid = &r.session_id;
    match r.status {
        RunStatus::Completed => eprintln!("session: {sid}"),
        RunStatus::Degraded => match &seen.degraded {
            Some((reason, attempts, kind, message)) => eprintln!(
                "power-loop: degraded: the model call failed ({reason} after {attempts} attempt(s)): [{kind}] {message}\nsession: {sid}"
            ),
            None => eprintln!("power-loop: degraded: {}\nsession: {sid}", r.final_text),
        },
        RunStatus::Cancelled => {
            eprintln!("power-loop: cancelled; the session is usable\nsession: {sid}")
        }
        RunStatus::HitRoundLimit => {
            eprintln!("power-loop: stopped at the round limit\nsession: {sid}")
        }
        RunStatus::BudgetExceeded => {
            eprintln!("power-loop: stopped by the token budget\nsession: {sid}")
        }
        RunStatus::WaitingForInput | RunStatus::PendingTools => {
            let calls: Vec<&str> = r
                .pending_tool_calls
                .iter()
                .map(|c| c.function.name.as_str())
                .collect();
            eprintln!(
                "power-loop: {}: pending tool call(s) {calls:?}, {} interaction(s) waiting\nsession: {sid}",
                r.status.as_str(),
                r.pending_interactions.len()
            );
        }
    }
}

/// The JSON object of a send that ended in an error (`final_text` empty, usage zero).
pub(crate) fn print_json_failure(
    session_id: Option<&str>,
    status: &str,
    code: &str,
    message: &str,
    exit_code: u8,
) {
    let v = serde_json::json!({
        "session_id": session_id,
        "final_text": "",
        "status": status,
        "exit_code": exit_code,
        "rounds": 0,
        "usage": serde_json::to_value(power_loop::RunUsage::default()).unwrap_or_default(),
        "error": {"code": code, "message": message},
    });
    let _ = output::json(&v);
}

/// `chat`: reads lines from stdin and streams each answer; Ctrl-C cancels the answer in flight.
pub(crate) async fn chat(cli: &Cli, args: &ChatArgs) -> Result<()> {
    check_turn(&args.turn)?;
    let (agent, store, sid) = start(cli, &args.turn).await?;
    let seen = Arc::new(Mutex::new(Seen::default()));
    watch(&agent, &seen, true);
    let current: Arc<Mutex<Option<CancellationToken>>> = Arc::new(Mutex::new(None));
    let slot = Arc::clone(&current);
    let interrupts = tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            let token = slot.lock().ok().and_then(|s| s.clone());
            match token {
                Some(t) => {
                    eprintln!("\n[cancelling]");
                    t.cancel();
                }
                None => std::process::exit(i32::from(exit::OK)),
            }
        }
    });
    eprintln!("session: {sid}  (type /exit to quit, /session to print the id)");
    let r = chat_loop(&agent, &sid, &seen, &current).await;
    interrupts.abort();
    let closed = agent.close(std::time::Duration::from_secs(10)).await;
    let _ = store.close().await;
    r?;
    closed.map(|_| ())
}

async fn chat_loop(
    agent: &StatefulAgentLoop,
    sid: &str,
    seen: &Mutex<Seen>,
    current: &Mutex<Option<CancellationToken>>,
) -> Result<()> {
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    loop {
        eprint!("> ");
        let _ = std::io::stderr().flush();
        let Some(line) = lines.next_line().await.map_err(Error::from)? else {
            break;
        };
        let line = line.trim();
        match line {
            "" => continue,
            "/exit" | "/quit" => break,
            "/session" => {
                output::line(sid)?;
                continue;
            }
            _ => {}
        }
        if let Ok(mut s) = seen.lock() {
            *s = Seen::default();
        }
        let token = CancellationToken::new();
        if let Ok(mut c) = current.lock() {
            *c = Some(token.clone());
        }
        let r = agent
            .send_with(sid, line, SendOptions::new().with_cancel(token))
            .await;
        if let Ok(mut c) = current.lock() {
            *c = None;
        }
        match r {
            Ok(r) => {
                let streamed = seen.lock().map(|s| s.streamed).unwrap_or(false);
                if r.status == RunStatus::Degraded {
                    eprintln!("[degraded] {}", r.final_text);
                } else {
                    if !streamed {
                        output::out(&r.final_text)?;
                    }
                    output::out("\n")?;
                    if r.status != RunStatus::Completed {
                        eprintln!("[{}]", r.status.as_str());
                    }
                }
            }
            Err(e) if e.code() == ErrorCode::SessionPending => {
                eprintln!("{e}");
                let healed = agent.heal_pending(sid).await?;
                eprintln!("healed {healed} unfinished tool call(s); send again");
            }
            Err(e) => eprintln!("error: {e}"),
        }
    }
    Ok(())
}
