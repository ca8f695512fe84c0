//! `power-loop`: chat with a durable agent session, send one-shot messages, and operate the store.
//!
//! The provider comes from the `POWER_LOOP_*` environment variables (`POWER_LOOP_BASE_URL`,
//! `POWER_LOOP_API_KEY`, `POWER_LOOP_MODEL`, `POWER_LOOP_PROVIDER`, …). When neither
//! `POWER_LOOP_BASE_URL` nor `POWER_LOOP_PROVIDER` is set the tool runs offline on the scripted
//! model and says so on stderr.
//!
//! Layout: one module per command group (`send` for send/chat, `sessions`, `maint` for
//! store/schema, `timers`, `events`, `workflow`), plus `exit` (exit codes), `output` (tables,
//! times, pipe-safe printing), `open` (opening the store read-only or for writing) and
//! `provider`. It depends on the `power-loop` façade only.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod commands;
mod events;
mod exit;
mod maint;
mod mcp;
mod open;
mod output;
mod provider;
mod send;
mod sessions;
mod timers;
mod worker;
mod workflow;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

const AFTER_HELP: &str = "\
Exit codes:
  0  completed            3  degraded (the model call failed after retries)
  1  error (store, configuration, I/O)
  2  usage error          4  cancelled (Ctrl-C)
  5  stopped by a budget or the round limit
  6  waiting for input, or a pending tool call

Examples:
  power-loop send \"Summarize our plan.\"             # new session; answer on stdout, id on stderr
  power-loop send --session SID \"And the risks?\"    # continue an existing session
  echo \"hello\" | power-loop send --json              # prompt from stdin, one JSON object out
  power-loop sessions list --dsn postgres://app@db/app
  power-loop schema print-ddl | head -3

Provider: POWER_LOOP_BASE_URL / POWER_LOOP_PROVIDER select one (POWER_LOOP_MODEL, POWER_LOOP_API_KEY,
or OPENAI_API_KEY / ANTHROPIC_API_KEY); otherwise the offline scripted model answers.
Logs: -v (info), -vv (debug), or RUST_LOG=power_loop=debug.";

/// Command line of the `power-loop` tool.
#[derive(Debug, Parser)]
#[command(
    name = "power-loop",
    version,
    about = "A durable agent session on your own store.",
    after_help = AFTER_HELP
)]
pub(crate) struct Cli {
    /// Store DSN: a SQLite path (default `power-loop.db`), `sqlite:///abs/path.db`,
    /// `postgres://…` or `mysql://…`.
    #[arg(
        long,
        global = true,
        env = "POWER_LOOP_DSN",
        default_value = "power-loop.db"
    )]
    pub(crate) dsn: String,
    /// Table prefix of the store.
    #[arg(long, global = true, default_value = "pl_")]
    pub(crate) table_prefix: String,
    /// Force the offline scripted model even when a provider is configured.
    #[arg(long, global = true)]
    pub(crate) offline: bool,
    /// Log to stderr: -v info, -vv debug, -vvv trace (RUST_LOG overrides the filter).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
    /// An `mcpServers` JSON file: `send` and `chat` offer its servers' tools; `mcp list` lists them.
    #[arg(long, global = true, env = "POWER_LOOP_MCP_CONFIG")]
    pub(crate) mcp_config: Option<std::path::PathBuf>,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Interactive chat; the answer streams as it arrives. `/exit` quits, `/session` prints the id.
    Chat(send::ChatArgs),
    /// Send one message; the answer goes to stdout, status and the session id to stderr.
    #[command(after_help = send::SEND_HELP)]
    Send(send::SendArgs),
    /// Inspect, move, prune and delete sessions.
    #[command(subcommand)]
    Sessions(sessions::SessionsCommand),
    /// Store maintenance: vacuum, checkpoint, stats.
    #[command(subcommand)]
    Store(maint::StoreCommand),
    /// Schema provisioning.
    #[command(subcommand)]
    Schema(SchemaCommand),
    /// Durable timers: list them, or run a timer runner process (SIGTERM drains it).
    #[command(subcommand)]
    Timers(timers::TimersCommand),
    /// Event logs written by the JSONL sink.
    #[command(subcommand)]
    Events(events::EventsCommand),
    /// Workflow specs.
    #[command(subcommand)]
    Workflow(WorkflowCommand),
    /// Workflow leaves: `--fleet` runs a long-running fleet worker on a shared store (SIGTERM
    /// drains it); without it, serves one leaf over stdin/stdout for the subprocess executor.
    #[command(after_help = worker::WORKER_HELP)]
    Worker(worker::WorkerArgs),
    /// MCP servers (`--mcp-config FILE`).
    #[command(subcommand)]
    Mcp(mcp::McpCommand),
}

#[derive(Debug, Subcommand)]
pub(crate) enum WorkflowCommand {
    /// Check a WorkflowSpec JSON file and list every problem; exits 1 when it is invalid.
    Validate {
        /// The spec file.
        file: std::path::PathBuf,
        /// Print one JSON line: `{"valid": bool, "problems": [{"path", "message"}]}`.
        #[arg(long)]
        json: bool,
    },
    /// Validate and run a WorkflowSpec file as a journaled run; exits 0 when the run is ok, 1
    /// otherwise (an invalid spec prints the `validate` output).
    Run {
        /// The spec file.
        file: std::path::PathBuf,
        /// Replaces the spec's `input`.
        #[arg(long)]
        input: Option<String>,
        /// The parent session of the run (it must exist; a detached run wakes it at its end).
        #[arg(long)]
        session: Option<String>,
        /// Run in a background process and print the run id at once (needs `--session`).
        #[arg(long, requires = "session")]
        detach: bool,
        /// Print one JSON line: the result document plus `run_id` (with `--detach`:
        /// `{"run_id", "status": "running", "detached": true, "log"}`).
        #[arg(long)]
        json: bool,
        /// Show progress on stderr even when it is not a terminal.
        #[arg(long)]
        progress: bool,
        /// Internal: this process is the background half of `--detach`.
        #[arg(long, hide = true)]
        internal_detached: bool,
    },
    /// Resume a journaled run: finished steps are replayed, only unfinished work runs.
    Resume {
        /// The run id.
        run_id: String,
        /// Print one JSON line: the result document plus `run_id`.
        #[arg(long)]
        json: bool,
        /// Show progress on stderr even when it is not a terminal.
        #[arg(long)]
        progress: bool,
    },
    /// Show a run's status, attempts, progress, per-step lines and errors.
    Status {
        /// The run id.
        run_id: String,
        /// Print one JSON line (the full status document, steps included).
        #[arg(long)]
        json: bool,
    },
    /// List runs (oldest first), optionally only those of one parent session.
    ///
    /// `--session` names the parent session of the runs. `--json` prints an array of `{run_id,
    /// workflow, status, attempts, detached, parent_session_id, created_at_ms, finished_at_ms}`.
    List(ListArgs),
}

/// The `--session/--limit/--json` flags of the list commands that can keep to one session
/// (`workflow list`, `timers list`).
#[derive(Debug, clap::Args)]
pub(crate) struct ListArgs {
    /// Only the rows of this session.
    #[arg(long)]
    pub(crate) session: Option<String>,
    /// How many.
    #[arg(long, default_value_t = 100)]
    pub(crate) limit: usize,
    /// Print one JSON line: an array of the rows.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum SchemaCommand {
    /// Print the provisioning DDL for the DSN's backend (run it as a user with DDL rights).
    PrintDdl,
    /// Check that the schema exists and matches this build (opens with SchemaPolicy::Verify).
    Verify,
}

/// Installs the stderr log subscriber for `-v` / `RUST_LOG`.
fn init_logging(verbose: u8) {
    use tracing_subscriber::EnvFilter;
    let from_env = std::env::var("RUST_LOG").is_ok_and(|v| !v.trim().is_empty());
    if verbose == 0 && !from_env {
        return;
    }
    let filter = if from_env {
        EnvFilter::from_default_env()
    } else {
        EnvFilter::new(match verbose {
            1 => "info",
            2 => "debug",
            _ => "trace",
        })
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(true)
        .try_init();
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return clap_error(e),
    };
    init_logging(cli.verbose);
    if let Command::Workflow(WorkflowCommand::Validate { file, json }) = &cli.command {
        // no store, provider or runtime needed
        return match workflow::validate(file, *json) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(e) => exit::report(&e),
        };
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("power-loop: cannot start the async runtime: {e}");
            return ExitCode::from(exit::ERROR);
        }
    };
    if matches!(&cli.command, Command::Worker(a) if !a.fleet) {
        let ok = rt.block_on(worker::run());
        // the stdin reader is a blocking thread the runtime would wait for: do not wait
        rt.shutdown_background();
        return if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    let code = match rt.block_on(dispatch(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => exit::report(&e),
    };
    // Do not wait for a blocked stdin reader or a stuck connection at exit.
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    code
}

/// Runs the command; returns the process exit code.
async fn dispatch(cli: Cli) -> power_loop::Result<u8> {
    match &cli.command {
        Command::Workflow(cmd) => crate::workflow::run(&cli, cmd)
            .await
            .map(|ok| if ok { exit::OK } else { exit::ERROR }),
        Command::Send(args) => crate::send::send(&cli, args).await,
        Command::Chat(args) => crate::send::chat(&cli, args).await.map(|()| exit::OK),
        Command::Sessions(cmd) => crate::sessions::run(&cli, cmd).await.map(|()| exit::OK),
        Command::Store(cmd) => crate::maint::run(&cli, cmd).await.map(|()| exit::OK),
        Command::Timers(cmd) => crate::timers::run(&cli, cmd).await.map(|()| exit::OK),
        Command::Events(cmd) => crate::events::run(cmd).map(|()| exit::OK),
        Command::Schema(cmd) => commands::schema(&cli, cmd).await.map(|()| exit::OK),
        Command::Mcp(cmd) => crate::mcp::run(cli.mcp_config.as_deref(), cmd)
            .await
            .map(|ok| if ok { exit::OK } else { exit::ERROR }),
        Command::Worker(args) => crate::worker::fleet(&cli, args).await,
    }
}

/// A clap parse error: help and version exit 0 on stdout; a usage error exits 2. A `send
/// --json` command line still gets its JSON object on stdout.
fn clap_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    let is_info = matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion);
    if !is_info {
        let args: Vec<String> = std::env::args().collect();
        if args.iter().any(|a| a == "send") && args.iter().any(|a| a == "--json") {
            let msg = e.kind().to_string();
            crate::send::print_json_failure(
                None,
                "usage_error",
                "invalid_argument",
                &msg,
                exit::USAGE,
            );
        }
    }
    let _ = e.print();
    if is_info {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(exit::USAGE)
    }
}
