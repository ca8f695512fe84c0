//! Shared pieces of the agent-loop workloads (W1..W6): where the store lives, the runtime, the
//! loop, the scripted answers, the store-side message check and the peak-RSS probe.

use std::sync::Arc;
use std::time::Duration;

use power_loop::{AgentLoopConfig, RunStatus, StatefulAgentLoop, StatefulResult};
use power_loop::{ConnectOptions, SqliteSync, StoreOptions, open_store};
use power_loop::{LlmService, ToolDefinition, ToolOutput};
use power_loop::{ToolRegistry, tool_fn};
use serde_json::json;

use super::ScratchDir;
use crate::args::Args;

/// The 20-word scripted answer of every text turn.
pub(crate) const ANSWER: &str = "The quarterly figures show revenue up four percent while costs rose six \
     percent, so margins narrowed slightly this quarter overall.";

/// Where a workload's store lives: a fresh SQLite file in a scratch directory (default), the
/// `--dsn` given, `POWER_LOOP_TEST_PG_DSN` with `--pg`, or `POWER_LOOP_TEST_MYSQL_DSN` with
/// `--mysql`. Server DSNs get a unique table prefix (unless `--table-prefix` is given) so every
/// run starts on empty tables. `--pool N` sets the server connection pool size (default 16);
/// `--synchronous FULL|NORMAL` the SQLite durability level (default NORMAL, the store's default).
pub(crate) struct Target {
    /// The DSN handed to the loop.
    pub(crate) dsn: String,
    /// Store options (table prefix).
    pub(crate) options: StoreOptions,
    /// `sqlite`, `postgres` or `mysql` (for the report).
    pub(crate) backend: &'static str,
    /// The table prefix in use.
    pub(crate) prefix: String,
    /// `--lease off`: run without the cross-process session writer lease (a diagnostic; the
    /// default, like the loop's, is on).
    pub(crate) lease: bool,
    /// `--synchronous`: the SQLite `synchronous` level, `"NORMAL"` (default) or `"FULL"`.
    pub(crate) synchronous: &'static str,
    /// `--group-commit on|off`: SQLite group commit (default on; `off` is a diagnostic that
    /// commits every write transaction on its own).
    pub(crate) group_commit: bool,
    /// Keeps the scratch directory alive for the workload's duration.
    _scratch: Option<ScratchDir>,
}

impl Target {
    /// Resolves the store for `workload` from the command line.
    pub(crate) fn from_args(args: &Args, workload: &str) -> Result<Self, String> {
        let given = match args.get("dsn") {
            Some(d) => Some(d.to_owned()),
            None if args.flag("pg") => Some(std::env::var("POWER_LOOP_TEST_PG_DSN").map_err(|_| {
                "--pg needs POWER_LOOP_TEST_PG_DSN (e.g. postgres://postgres@127.0.0.1:5432/test)"
                    .to_owned()
            })?),
            None if args.flag("mysql") => {
                Some(std::env::var("POWER_LOOP_TEST_MYSQL_DSN").map_err(|_| {
                    "--mysql needs POWER_LOOP_TEST_MYSQL_DSN (e.g. mysql://root@127.0.0.1:3306/test)"
                        .to_owned()
                })?)
            }
            None => None,
        };
        let (dsn, scratch) = match given {
            Some(d) => (d, None),
            None => {
                let scratch = ScratchDir::new(args, workload)?;
                let path = scratch.0.join("bench.db");
                (format!("sqlite://{}", path.display()), Some(scratch))
            }
        };
        let backend = if dsn.starts_with("postgres://") || dsn.starts_with("postgresql://") {
            "postgres"
        } else if dsn.starts_with("mysql://") || dsn.starts_with("mariadb://") {
            "mysql"
        } else {
            "sqlite"
        };
        let prefix = match args.get("table-prefix") {
            Some(p) => p.to_owned(),
            None if backend != "sqlite" => {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.subsec_nanos())
                    .unwrap_or(0);
                format!(
                    "bench_{}_{:x}_{nanos:08x}_",
                    workload.to_ascii_lowercase(),
                    std::process::id()
                )
            }
            None => "pl_".to_owned(),
        };
        let lease = match args.get("lease").unwrap_or("on") {
            "on" => true,
            "off" => false,
            other => return Err(format!("--lease must be on or off, got `{other}`")),
        };
        let mut connect = ConnectOptions::default();
        if let Some(v) = args.get("pool") {
            let n: usize = v
                .parse()
                .map_err(|_| format!("--pool must be a positive integer, got `{v}`"))?;
            connect.pool_max_size = n.max(1);
        }
        let synchronous = match args.get("synchronous").map(str::to_ascii_uppercase) {
            None => "NORMAL",
            Some(v) if v == "NORMAL" => "NORMAL",
            Some(v) if v == "FULL" => {
                connect.sqlite_sync = SqliteSync::Full;
                "FULL"
            }
            Some(v) => return Err(format!("--synchronous must be FULL or NORMAL, got `{v}`")),
        };
        connect.sqlite_group_commit = match args.get("group-commit").unwrap_or("on") {
            "on" => true,
            "off" => false,
            other => return Err(format!("--group-commit must be on or off, got `{other}`")),
        };
        let group_commit = connect.sqlite_group_commit;
        let options = StoreOptions::new()
            .with_table_prefix(prefix.clone())
            .with_connect(connect);
        Ok(Target {
            lease,
            synchronous,
            group_commit,
            dsn,
            options,
            backend,
            prefix,
            _scratch: scratch,
        })
    }

    /// A loop over this store with `llm` and optional tools (default configuration; the provider
    /// behind the default retry layer, as the loop had it when retry was part of its config).
    pub(crate) fn agent_loop(
        &self,
        llm: Arc<dyn LlmService>,
        tools: Option<ToolRegistry>,
    ) -> Result<StatefulAgentLoop, String> {
        let llm = power_loop::with_retry(llm, power_loop::RetryPolicy::default());
        let mut b = StatefulAgentLoop::builder(llm)
            .dsn(&self.dsn)
            .store_options(self.options.clone())
            .config(AgentLoopConfig::default().with_session_lease(self.lease));
        if let Some(t) = tools {
            b = b.tools(t);
        }
        b.build().map_err(err)
    }

    /// Opens a separate store handle and checks that every `(session, expected)` pair holds
    /// exactly that many messages; returns the total checked.
    pub(crate) async fn check_messages(
        &self,
        workload: &str,
        expected: &[(String, usize)],
    ) -> Result<usize, String> {
        let store = open_store(&self.dsn, self.options.clone())
            .await
            .map_err(|e| format!("{workload}: reopening the store to check messages: {e}"))?;
        let mut total = 0;
        for (sid, want) in expected {
            let got = store
                .load_all_messages(sid)
                .await
                .map_err(|e| format!("{workload}: loading messages of `{sid}`: {e}"))?
                .len();
            if got != *want {
                let _ = store.close().await;
                return Err(format!(
                    "{workload}: session `{sid}` holds {got} messages in the store, expected {want}"
                ));
            }
            total += got;
        }
        store.close().await.map_err(err)?;
        Ok(total)
    }
}

/// A multi-threaded tokio runtime (one worker per core).
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(err)
}

/// Closes the loop (drains in-flight runs and the bus, closes the store it opened).
pub(crate) async fn close(lp: &StatefulAgentLoop) -> Result<(), String> {
    match lp.close(Duration::from_secs(60)).await {
        Ok(true) => Ok(()),
        Ok(false) => Err("closing the loop: in-flight runs did not drain within 60 s".into()),
        Err(e) => Err(format!("closing the loop: {e}")),
    }
}

/// Fails unless the send completed with a final answer.
pub(crate) fn expect_completed(
    workload: &str,
    r: power_loop::Result<StatefulResult>,
) -> Result<StatefulResult, String> {
    let r = r.map_err(|e| format!("{workload}: send failed: {e}"))?;
    if r.status != RunStatus::Completed {
        return Err(format!(
            "{workload}: send on `{}` ended with {:?}, expected Completed",
            r.session_id, r.status
        ));
    }
    Ok(r)
}

/// A registry holding one trivial `echo` tool (returns its `text` argument).
pub(crate) fn echo_registry() -> Result<ToolRegistry, String> {
    let mut r = ToolRegistry::new();
    r.register(
        tool_fn(
            ToolDefinition::new(
                "echo",
                "Echo the text back",
                json!({"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}),
            ),
            |_ctx, args| async move {
                Ok(ToolOutput::ok(
                    args.get("text")
                        .and_then(|t| t.as_str())
                        .unwrap_or_default()
                        .to_owned(),
                ))
            },
        )
        .concurrent(true),
    )
    .map_err(err)?;
    Ok(r)
}

/// Peak resident set size of this process in MiB (`VmHWM` of `/proc/self/status`).
pub(crate) fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(round1(kb / 1024.0))
}

/// Rounds to one decimal.
pub(crate) fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Rounds to two decimals.
pub(crate) fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Display → String (error mapping).
pub(crate) fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}
