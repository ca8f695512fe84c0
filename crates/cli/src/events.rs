//! `events replay FILE`: read a JSONL event log (the JSONL sink's files, rotated ones
//! included) back, filtered by session and type.

use std::path::PathBuf;

use clap::Subcommand;
use power_loop::{AgentEvent, EventType, Result, replay_report};

use crate::{exit, output};

/// The `events` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum EventsCommand {
    /// Replay a JSONL event log in stream order (rotated `FILE.N` … `FILE.1` first).
    #[command(
        after_help = "Examples:\n  power-loop events replay events.jsonl --session sess_0123\n  power-loop events replay events.jsonl --type tool_call_completed --type llm_degraded --json"
    )]
    Replay {
        /// The log file.
        file: PathBuf,
        /// Only events of this session.
        #[arg(long)]
        session: Option<String>,
        /// Only events of this type (repeatable), e.g. `tool_call_completed`.
        #[arg(long = "type", value_name = "TYPE")]
        types: Vec<String>,
        /// Print the events as JSON lines (as written).
        #[arg(long)]
        json: bool,
        /// Exit 1 when the log has lines that are not events.
        #[arg(long)]
        strict: bool,
    },
}

/// Runs an `events` subcommand.
pub(crate) fn run(cmd: &EventsCommand) -> Result<()> {
    let EventsCommand::Replay {
        file,
        session,
        types,
        json,
        strict,
    } = cmd;
    let mut wanted = Vec::new();
    for t in types {
        match EventType::parse(t) {
            Some(et) => wanted.push(et),
            None => {
                let known: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
                return Err(exit::usage(format!(
                    "unknown event type `{t}`; known types: {}",
                    known.join(", ")
                )));
            }
        }
    }
    let report = replay_report(file)?;
    let keep = |ev: &AgentEvent| {
        session
            .as_deref()
            .is_none_or(|s| ev.session_id.as_deref() == Some(s))
            && (wanted.is_empty() || wanted.contains(&ev.payload.event_type()))
    };
    let bar = output::progress(report.events.len() as u64, "replaying");
    let mut text = String::new();
    let mut table = output::table(["SEQ", "TIME", "TYPE", "SESSION", "ROUND"]);
    let mut shown = 0usize;
    for ev in report.events.iter() {
        bar.inc(1);
        if !keep(ev) {
            continue;
        }
        shown += 1;
        if *json {
            text.push_str(&serde_json::to_string(ev)?);
            text.push('\n');
        } else {
            table.add_row([
                ev.seq.to_string(),
                output::time((ev.ts * 1000.0) as i64),
                ev.payload.event_type().as_str().to_owned(),
                ev.session_id.clone().unwrap_or_default(),
                ev.round_index.map_or_else(String::new, |r| r.to_string()),
            ]);
        }
    }
    bar.finish_and_clear();
    for bad in &report.bad_lines {
        eprintln!(
            "power-loop: skipped {}:{} ({:?}): {}",
            bad.file.display(),
            bad.line,
            bad.kind,
            bad.message
        );
    }
    eprintln!(
        "{shown} of {} event(s) from {} file(s)",
        report.events.len(),
        report.files.len()
    );
    if *json {
        output::out(&text)?;
    } else {
        output::print_table(&table, "no matching events")?;
    }
    if *strict && !report.bad_lines.is_empty() {
        return Err(power_loop::Error::new(
            power_loop::ErrorCode::InvalidArgument,
            format!(
                "{} line(s) of the log are not events",
                report.bad_lines.len()
            ),
        ));
    }
    Ok(())
}
