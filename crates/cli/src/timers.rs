//! `timers list|run`: the durable timers of the store, and a timer runner process that fires
//! them through the agent loop until SIGTERM or Ctrl-C (which drain it: the firings in
//! progress complete, then it exits 0).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::Subcommand;
use power_loop::{
    AgentLoopConfig, Result, TimerRow, TimerRunner, TimerRunnerOptions, timer_status,
};

use crate::open::{Access, open_store};
use crate::{Cli, ListArgs, commands, exit, output, provider};

/// The `timers` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum TimersCommand {
    /// List timers: every timer of one session, or the armed timers of all sessions.
    ///
    /// With `--session`, every timer of that session (all statuses); without it, the armed
    /// timers of all sessions, at most `--limit`.
    #[command(
        after_help = "Examples:\n  power-loop timers list\n  power-loop timers list --session sess_0123 --json"
    )]
    List(ListArgs),
    /// Run a timer runner: poll the store and fire due timers (each wakes its session with a
    /// model call). SIGTERM or Ctrl-C drains it and exits 0.
    #[command(
        after_help = "Examples:\n  power-loop timers run --poll 2s\n  power-loop timers run --once --json"
    )]
    Run {
        /// Poll interval (`500ms`, `2s`, `1m`).
        #[arg(long, default_value = "2s")]
        poll: String,
        /// Poll once, fire what is due, and exit.
        #[arg(long)]
        once: bool,
        /// Concurrent firings.
        #[arg(long, default_value_t = 4)]
        concurrency: usize,
        /// Print one JSON line per firing.
        #[arg(long)]
        json: bool,
        /// Give the woken sessions the durable timer tools (as `send --timer-tools` does), so
        /// a model can schedule its next wakeup.
        #[arg(long)]
        timer_tools: bool,
    },
}

/// Runs a `timers` subcommand.
pub(crate) async fn run(cli: &Cli, cmd: &TimersCommand) -> Result<()> {
    match cmd {
        TimersCommand::List(args) => list(cli, args).await,
        TimersCommand::Run {
            poll,
            once,
            concurrency,
            json,
            timer_tools,
        } => {
            let poll = output::parse_duration_ms(poll)?;
            if poll <= 0 {
                return Err(exit::usage("--poll must be positive"));
            }
            let flags = RunnerFlags {
                poll: Duration::from_millis(poll.unsigned_abs()),
                once: *once,
                concurrency: *concurrency,
                json: *json,
                timer_tools: *timer_tools,
            };
            runner(cli, &flags).await
        }
    }
}

fn timer_value(t: &TimerRow) -> serde_json::Value {
    serde_json::json!({
        "session_id": t.session_id,
        "timer_id": t.timer_id,
        "status": t.status,
        "due_at_ms": t.due_at,
        "interval_s": t.interval_s,
        "fire_count": t.fire_count,
        "note": t.note,
    })
}

async fn list(cli: &Cli, args: &ListArgs) -> Result<()> {
    let store = open_store(cli, Access::ReadOnly).await?;
    let rows = match args.session.as_deref() {
        Some(sid) => {
            store
                .list_timers(
                    sid,
                    &[
                        timer_status::ARMED,
                        timer_status::FIRING,
                        timer_status::FIRED,
                        timer_status::CANCELLED,
                    ],
                )
                .await
        }
        None => store.due_timers(Some(i64::MAX), args.limit).await,
    };
    let _ = store.close().await;
    let rows = rows?;
    if args.json {
        return output::json(&rows.iter().map(timer_value).collect());
    }
    let mut t = output::table([
        "SESSION", "TIMER", "STATUS", "DUE", "EVERY", "FIRED", "NOTE",
    ]);
    for r in &rows {
        t.add_row([
            r.session_id.clone(),
            r.timer_id.to_string(),
            r.status.clone(),
            output::time(r.due_at),
            r.interval_s.map_or_else(String::new, |s| format!("{s} s")),
            r.fire_count.to_string(),
            r.note.chars().take(60).collect(),
        ]);
    }
    output::print_table(&t, "no timers")
}

/// Sets `stop` on SIGTERM or Ctrl-C.
fn stop_on_signals(stop: Arc<AtomicBool>, wake: Arc<tokio::sync::Notify>) -> Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => eprintln!("power-loop: SIGTERM; draining the timer runner"),
            _ = tokio::signal::ctrl_c() => eprintln!("power-loop: interrupted; draining the timer runner"),
        }
        stop.store(true, Ordering::SeqCst);
        wake.notify_one();
    });
    Ok(())
}

/// The flags of `timers run`.
#[derive(Debug, Clone, Copy)]
struct RunnerFlags {
    poll: Duration,
    once: bool,
    concurrency: usize,
    json: bool,
    timer_tools: bool,
}

async fn runner(cli: &Cli, flags: &RunnerFlags) -> Result<()> {
    let RunnerFlags {
        poll,
        once,
        concurrency,
        json,
        timer_tools,
    } = *flags;
    let (llm, _offline) = provider::choose(cli.offline)?;
    let store = open_store(cli, Access::Existing).await?;
    let tools = if timer_tools {
        Some(commands::timer_registry()?)
    } else {
        None
    };
    let lp = commands::build_loop_with(llm, store.clone(), AgentLoopConfig::default(), tools)?;
    let opts = TimerRunnerOptions::default()
        .with_poll_interval(poll)
        .with_concurrency(concurrency.max(1));
    let runner = TimerRunner::new(lp.clone(), opts);
    let stop = Arc::new(AtomicBool::new(false));
    let wake = Arc::new(tokio::sync::Notify::new());
    stop_on_signals(Arc::clone(&stop), Arc::clone(&wake))?;
    eprintln!(
        "power-loop: timer runner on {} (poll every {} ms){}",
        store.backend_name(),
        poll.as_millis(),
        if once {
            ", one poll"
        } else {
            "; SIGTERM drains it"
        }
    );
    let mut fired = 0usize;
    let result = loop {
        // A poll runs to its end: a signal only stops the loop between polls (the drain).
        match runner.run_once(output::power_loop_now_ms()).await {
            Ok(firings) => {
                for f in &firings {
                    fired += 1;
                    if json {
                        output::json(&serde_json::json!({
                            "session_id": f.session_id,
                            "timer_id": f.timer_id,
                            "outcome": f.outcome.as_str(),
                            "deduplicated": f.deduplicated,
                            "error": f.error,
                        }))?;
                    } else {
                        eprintln!(
                            "fired timer {} of {}: {}{}",
                            f.timer_id,
                            f.session_id,
                            f.outcome.as_str(),
                            f.error
                                .as_deref()
                                .map(|e| format!(" ({e})"))
                                .unwrap_or_default()
                        );
                    }
                }
            }
            Err(e) if once => break Err(e),
            Err(e) => eprintln!("power-loop: timer poll failed (retrying): {e}"),
        }
        if once || stop.load(Ordering::SeqCst) {
            break Ok(());
        }
        tokio::select! {
            () = tokio::time::sleep(poll) => {}
            () = wake.notified() => {}
        }
        if stop.load(Ordering::SeqCst) {
            break Ok(());
        }
    };
    let closed = lp.close(Duration::from_secs(30)).await;
    let _ = store.close().await;
    eprintln!("power-loop: timer runner stopped after {fired} firing(s)");
    result?;
    closed.map(|_| ())
}
