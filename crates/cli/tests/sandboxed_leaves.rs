//! Sandboxed leaves: under bubblewrap and under firejail, a leaf whose `bash` tool writes
//! outside its workspace, reads a file outside it, or connects to 127.0.0.1:5432 fails, the
//! failure reaches the run result, and the host is untouched. The same leaf under the plain
//! launcher succeeds at all three (so the probes can fail). Variables of the
//! parent's environment (here `CARGO_MANIFEST_DIR`) never reach a worker. A sandbox that cannot start fails the leaf
//! (never an unsandboxed run).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "leaf_support/mod.rs"]
mod support;

use std::path::Path;
use std::sync::Arc;

use power_loop::{
    AgentResult, BubblewrapLauncher, FirejailLauncher, LauncherChoice, LeafStatus, ScriptedStep,
    SubprocessExecutorBuilder, WorkerLauncher,
};
use serde_json::json;
use support::*;

/// Runs one leaf granted `bash` whose model runs `command` once and answers with the tool's
/// output.
async fn run_bash_leaf(ex: SubprocessExecutorBuilder, command: &str) -> AgentResult {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(dir.path()).await;
    let cmd = command.to_owned();
    let llm = model(move |req| match last_tool(req) {
        None => ScriptedStep::tool_call("bash", json!({"command": cmd.clone(), "timeout": 20})),
        Some(out) => ScriptedStep::text(format!("TOOL SAID: {out}")),
    });
    let lp = parent_loop(&llm, &store);
    let ex = ex.tool_preset("core").unwrap().build();
    let spec = spec(json!({"name": "probe", "root":
        tool_leaf("probe", "p", "go", &["bash"])}));
    let out = run_without_journal(lp, ex, &spec).await;
    out.result.results.get("probe").unwrap().clone()
}

/// A directory outside /tmp (the runs dir is under /tmp): the sandboxes see neither.
fn outside_dir() -> tempfile::TempDir {
    let base = std::env::var("HOME").map_or_else(|_| std::env::temp_dir(), Into::into);
    let base = Path::new(&base).join(".cache");
    std::fs::create_dir_all(&base).unwrap();
    tempfile::Builder::new()
        .prefix("pl-sandbox-probe-")
        .tempdir_in(base)
        .unwrap()
}

struct Probes {
    write: AgentResult,
    read: AgentResult,
    connect: AgentResult,
    env: AgentResult,
}

async fn probes(launcher: Option<Arc<dyn WorkerLauncher>>, outside: &Path) -> Probes {
    let runs = tempfile::tempdir().unwrap();
    let builder = || {
        let b = executor(runs.path()).env("POWER_LOOP_SANDBOX_PROBE", "visible");
        match &launcher {
            Some(l) => b.launcher(LauncherChoice::sandbox_host_tools(l.clone())),
            None => b,
        }
    };
    let target = outside.join("written.txt");
    let secret = outside.join("secret.txt");
    std::fs::write(&secret, "TOP-SECRET-42").unwrap();
    Probes {
        write: run_bash_leaf(
            builder(),
            &format!("echo pwned > '{}' && echo WRITE-OK", target.display()),
        )
        .await,
        read: run_bash_leaf(builder(), &format!("cat '{}'", secret.display())).await,
        connect: run_bash_leaf(
            builder(),
            "(exec 3<>/dev/tcp/127.0.0.1/5432) && echo CONNECT-OK",
        )
        .await,
        env: run_bash_leaf(
            builder(),
            "echo \"leak=${CARGO_MANIFEST_DIR:-none} probe=${POWER_LOOP_SANDBOX_PROBE:-none}\"",
        )
        .await,
    }
}

fn assert_blocked(p: &Probes, outside: &Path, who: &str) {
    for (name, r, ok_marker) in [
        ("write", &p.write, "WRITE-OK"),
        ("read", &p.read, "TOP-SECRET-42"),
        ("connect", &p.connect, "CONNECT-OK"),
    ] {
        assert_eq!(r.status, LeafStatus::Completed, "{who} {name}: {r:?}");
        assert!(
            r.text.starts_with("TOOL SAID:") && !r.text.contains(ok_marker),
            "{who} {name} was not blocked: {}",
            r.text
        );
        // the failure reached the run result: the tool's error (exit code and message)
        assert!(
            !r.text.contains("exit_code=0") && r.text.contains("exit_code="),
            "{who} {name}: {}",
            r.text
        );
    }
    assert!(
        !outside.join("written.txt").exists(),
        "{who}: the host file was written"
    );
    assert!(
        p.env.text.contains("leak=none") && p.env.text.contains("probe=visible"),
        "{who}: {}",
        p.env.text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_launcher_lets_the_probes_through() {
    // CARGO_MANIFEST_DIR is in this process's environment, not on the allow-list
    assert!(std::env::var("CARGO_MANIFEST_DIR").is_ok());
    let outside = outside_dir();
    let p = probes(None, outside.path()).await;
    assert!(p.write.text.contains("WRITE-OK"), "{}", p.write.text);
    assert!(outside.path().join("written.txt").exists());
    assert!(p.read.text.contains("TOP-SECRET-42"), "{}", p.read.text);
    if pg_listening() {
        assert!(p.connect.text.contains("CONNECT-OK"), "{}", p.connect.text);
    }
    assert!(
        p.env.text.contains("probe=visible") && p.env.text.contains("leak=none"),
        "{}",
        p.env.text
    );
}

fn pg_listening() -> bool {
    std::net::TcpStream::connect("127.0.0.1:5432").is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bubblewrap_blocks_writes_reads_and_network_outside_the_workspace() {
    if !have_peer("bwrap") {
        return;
    }
    let outside = outside_dir();
    let p = probes(Some(Arc::new(BubblewrapLauncher::new())), outside.path()).await;
    assert_blocked(&p, outside.path(), "bubblewrap");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn firejail_blocks_writes_reads_and_network_outside_the_workspace() {
    if !have_peer("firejail") {
        return;
    }
    let outside = outside_dir();
    let p = probes(Some(Arc::new(FirejailLauncher::new())), outside.path()).await;
    assert_blocked(&p, outside.path(), "firejail");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_sandbox_fails_the_leaf_closed() {
    let outside = outside_dir();
    let marker = outside.path().join("ran.txt");
    for l in [
        Arc::new(BubblewrapLauncher::with_bwrap_path("/nonexistent/bwrap"))
            as Arc<dyn WorkerLauncher>,
        Arc::new(FirejailLauncher::with_firejail_path(
            "/nonexistent/firejail",
        )),
    ] {
        let runs = tempfile::tempdir().unwrap();
        let ex = executor(runs.path()).launcher(LauncherChoice::sandbox_host_tools(l.clone()));
        let r = run_bash_leaf(ex, &format!("touch '{}'", marker.display())).await;
        assert_eq!(r.status, LeafStatus::Failed, "{r:?}");
        let e = r.error.unwrap();
        assert!(
            e.contains(&format!("worker launch failed ({})", l.name())) && e.contains("cannot"),
            "{e}"
        );
        assert!(!marker.exists(), "{} ran the leaf unsandboxed", l.name());
    }
}
