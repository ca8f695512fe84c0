//! Shared support of the MCP tests: where the reference servers are installed (by
//! `scripts/peers.sh up`), the skip-or-fail rule for missing peers, and a scripted-model
//! session that calls MCP tools end to end.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use power_loop::mcp::McpServerConfig;
use power_loop::{
    EventFilter, EventPayload, NewSessionOptions, ScriptedLlm, ScriptedStep, SendOptions,
    StatefulAgentLoop, StatefulResult, ToolRegistry,
};

/// The peers cache of `scripts/peers.sh`.
pub(crate) fn peers_dir() -> PathBuf {
    std::env::var_os("POWER_LOOP_PEERS_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/power-loop-peers")
        })
}

fn require_peers() -> bool {
    std::env::var("POWER_LOOP_REQUIRE_PEERS").as_deref() == Ok("1")
}

/// `Some(value)` when present; otherwise prints why the test skips (or fails with
/// `POWER_LOOP_REQUIRE_PEERS=1`).
pub(crate) fn need<T>(value: Option<T>, what: &str) -> Option<T> {
    if value.is_none() {
        let reason = format!("{what} is not installed (run scripts/peers.sh up)");
        assert!(
            !require_peers(),
            "peer missing with POWER_LOOP_REQUIRE_PEERS=1: {reason}"
        );
        eprintln!("SKIP: {reason}");
    }
    value
}

fn existing(p: PathBuf) -> Option<PathBuf> {
    p.exists().then_some(p)
}

/// `dist/index.js` of @modelcontextprotocol/server-everything.
pub(crate) fn everything_js() -> Option<PathBuf> {
    existing(
        peers_dir().join("mcp/node_modules/@modelcontextprotocol/server-everything/dist/index.js"),
    )
}

/// `dist/index.js` of @modelcontextprotocol/server-filesystem.
pub(crate) fn filesystem_js() -> Option<PathBuf> {
    existing(
        peers_dir().join("mcp/node_modules/@modelcontextprotocol/server-filesystem/dist/index.js"),
    )
}

/// The `mcp-server-time` entry point of its virtualenv.
pub(crate) fn time_bin() -> Option<PathBuf> {
    existing(peers_dir().join("mcp-time-venv/bin/mcp-server-time"))
}

/// `bwrap`, when installed.
pub(crate) fn bwrap() -> Option<PathBuf> {
    ["/usr/bin/bwrap", "/bin/bwrap", "/usr/local/bin/bwrap"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// server-everything over stdio (skips when missing).
pub(crate) fn everything() -> Option<McpServerConfig> {
    let js = need(
        everything_js(),
        "npm @modelcontextprotocol/server-everything",
    )?;
    Some(McpServerConfig::stdio(
        "node",
        [js.display().to_string(), "stdio".to_owned()],
    ))
}

/// The paginating test server of this crate (always available).
pub(crate) fn pager() -> McpServerConfig {
    McpServerConfig::stdio(env!("CARGO_BIN_EXE_mcp_test_server"), Vec::<String>::new())
}

/// What the tools returned during a session, in order: `(tool name, output, failed)`.
pub(crate) type Outputs = Arc<Mutex<Vec<(String, String, bool)>>>;

/// A loop over a fresh in-memory SQLite store whose scripted model plays `steps`, with `tools`.
pub(crate) fn scripted_loop(
    tools: ToolRegistry,
    steps: Vec<ScriptedStep>,
) -> (StatefulAgentLoop, Outputs) {
    let llm = Arc::new(ScriptedLlm::new().steps(steps));
    let agent = StatefulAgentLoop::builder(llm)
        .dsn("sqlite://:memory:")
        .tools(tools)
        .build()
        .unwrap();
    let outputs: Outputs = Arc::default();
    let o = Arc::clone(&outputs);
    agent.event_bus().subscribe(EventFilter::All, move |ev| {
        if let EventPayload::ToolCallCompleted(p) = &ev.payload {
            o.lock()
                .unwrap()
                .push((p.name.clone(), p.output.clone(), p.failed));
        }
        Ok(())
    });
    (agent, outputs)
}

/// Runs one send of `prompt` in a new session.
pub(crate) async fn run(
    agent: &StatefulAgentLoop,
    prompt: &str,
    opts: SendOptions,
) -> power_loop::Result<StatefulResult> {
    let sid = agent.new_session(NewSessionOptions::default()).await?;
    agent.send_with(&sid, prompt, opts).await
}

/// Whether a process with this pid exists (a zombie counts: it is not reaped).
pub(crate) fn pid_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Waits up to `ms` for `pid` to disappear.
pub(crate) async fn wait_gone(pid: u32, ms: u64) -> bool {
    for _ in 0..ms / 20 {
        if !pid_alive(pid) {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    !pid_alive(pid)
}

/// SIGKILLs one process.
pub(crate) fn kill9(pid: u32) {
    let pid = rustix::process::Pid::from_raw(i32::try_from(pid).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
}
