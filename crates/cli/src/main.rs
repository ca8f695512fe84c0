//! `power-loop`: chat with a durable agent session, send one-shot messages, and operate the store.
//!
//! The provider comes from the `POWER_LOOP_*` environment variables (`POWER_LOOP_BASE_URL`,
//! `POWER_LOOP_API_KEY`, `POWER_LOOP_MODEL`, `POWER_LOOP_PROVIDER`, …). When none is set the tool
//! runs offline on the scripted model and says so on stderr.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod commands;
mod mcp;
mod provider;
mod workflow;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Command line of the `power-loop` tool.
#[derive(Debug, Parser)]
#[command(
    name = "power-loop",
    version,
    about = "A durable agent session on your own store."
)]
struct Cli {
    /// Store DSN: a SQLite path (default `power-loop.db`), `sqlite:///abs/path.db`,
    /// `postgres://…` or `mysql://…`.
    #[arg(
        long,
        global = true,
        env = "POWER_LOOP_DSN",
        default_value = "power-loop.db"
    )]
    dsn: String,
    /// Table prefix of the store.
    #[arg(long, global = true, default_value = "pl_")]
    table_prefix: String,
    /// Force the offline scripted model even when a provider is configured.
    #[arg(long, global = true)]
    offline: bool,
    /// An `mcpServers` JSON file: `send` and `chat` offer its servers' tools; `mcp list` lists them.
    #[arg(long, global = true, env = "POWER_LOOP_MCP_CONFIG")]
    mcp_config: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Interactive chat; the answer streams as it arrives. `/exit` quits, `/session` prints the id.
    Chat {
        /// Continue this session (created when it does not exist).
        #[arg(long)]
        session: Option<String>,
        /// System prompt for a new session.
        #[arg(long)]
        system: Option<String>,
    },
    /// Send one message and print the answer and the session id.
    Send {
        /// Continue this session (created when it does not exist).
        #[arg(long)]
        session: Option<String>,
        /// Print one JSON object (`session_id`, `final_text`, `usage`, `status`, `rounds`).
        #[arg(long)]
        json: bool,
        /// System prompt for a new session.
        #[arg(long)]
        system: Option<String>,
        /// The message.
        text: String,
    },
    /// Inspect and move sessions.
    #[command(subcommand)]
    Sessions(SessionsCommand),
    /// Schema provisioning.
    #[command(subcommand)]
    Schema(SchemaCommand),
    /// Workflow specs.
    #[command(subcommand)]
    Workflow(WorkflowCommand),
    /// MCP servers (`--mcp-config FILE`).
    #[command(subcommand)]
    Mcp(mcp::McpCommand),
}

#[derive(Debug, Subcommand)]
enum WorkflowCommand {
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
    List {
        /// Only the runs of this parent session.
        #[arg(long)]
        session: Option<String>,
        /// How many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Print one JSON line: an array of `{run_id, workflow, status, attempts, detached,
        /// parent_session_id, created_at_ms, finished_at_ms}`.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum SessionsCommand {
    /// List the most recent sessions.
    List {
        /// How many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
    },
    /// Print a session's messages.
    Show {
        /// Session id.
        id: String,
        /// Include compacted-out messages.
        #[arg(long)]
        all: bool,
    },
    /// Export a session to a JSON archive (stdout or `--out`).
    Export {
        /// Session id.
        id: String,
        /// Output file.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// Import a JSON archive; prints the new session id.
    Import {
        /// Archive file.
        file: std::path::PathBuf,
        /// Id for the imported session (default: the archived id).
        #[arg(long)]
        id: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum SchemaCommand {
    /// Print the provisioning DDL for the DSN's backend (run it as a user with DDL rights).
    PrintDdl,
    /// Check that the schema exists and matches this build (opens with SchemaPolicy::Verify).
    Verify,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Workflow(WorkflowCommand::Validate { file, json }) = &cli.command {
        // no store, provider or runtime needed
        return match workflow::validate(file, *json) {
            Ok(true) => ExitCode::SUCCESS,
            Ok(false) => ExitCode::FAILURE,
            Err(e) => {
                eprintln!("power-loop: {e}");
                ExitCode::FAILURE
            }
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
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(commands::run(cli)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("power-loop: {e}");
            ExitCode::FAILURE
        }
    }
}
