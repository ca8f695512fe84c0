#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Real bubblewrap sandbox tests. Skip (with the exact error) when bwrap cannot run here.

mod common;
use std::sync::Arc;

use common::{Fixture, ok};
use power_loop_contracts::ErrorCode;
use power_loop_tools::BubblewrapShell;
use serde_json::json;

async fn sandbox_or_skip(f: &Fixture) -> bool {
    match f.env.shell_backend.ensure_available(&f.ws()).await {
        Ok(()) => true,
        Err(e) => {
            eprintln!("SKIP: bubblewrap unavailable on this machine: {e}");
            false
        }
    }
}

#[tokio::test]
async fn sandbox_confines_writes_and_network() {
    let f = Fixture::with_env(|e| e.with_shell(Arc::new(BubblewrapShell::new())));
    if !sandbox_or_skip(&f).await {
        return;
    }
    // can write inside the workspace
    let o = f
        .call(
            "bash",
            json!({"command": "echo inside > in.txt && cat in.txt"}),
        )
        .await;
    assert_eq!(ok(&o), "exit_code=0\ninside");
    assert_eq!(
        std::fs::read_to_string(f.ws().join("in.txt")).unwrap(),
        "inside\n"
    );
    // cannot write outside (a host dir that exists and is writable for us)
    let outside = tempfile::tempdir_in(std::env::temp_dir()).unwrap();
    let target = outside.path().join("escape.txt");
    let o = f
        .call(
            "bash",
            json!({"command": format!("echo x > {} ; echo rc=$?", target.display())}),
        )
        .await;
    assert!(ok(&o).contains("rc=1"), "{}", o.output.content);
    assert!(!target.exists(), "wrote outside the workspace");
    let o = f
        .call(
            "bash",
            json!({"command": "touch /usr/escape 2>&1; touch /etc/escape 2>&1; echo done"}),
        )
        .await;
    let out = ok(&o);
    assert!(out.contains("Read-only file system"), "{out}");
    assert!(!std::path::Path::new("/usr/escape").exists());
    // no network: PostgreSQL listens on the host's 127.0.0.1:5432, not reachable inside
    let o = f
        .call("bash", json!({"command": "(exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null && echo CONNECTED || echo REFUSED", "timeout": 10}))
        .await;
    assert!(ok(&o).ends_with("REFUSED"), "{}", o.output.content);
    // background_run goes through the sandbox too
    let o = f
        .call(
            "background_run",
            json!({"command": format!("touch {}", target.display())}),
        )
        .await;
    ok(&o);
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    assert!(!target.exists());
}

#[tokio::test]
async fn host_network_is_reachable_outside_the_sandbox_for_comparison() {
    // Control: the same probe outside the sandbox connects when PostgreSQL runs here.
    let f = Fixture::new();
    let o = f
        .call("bash", json!({"command": "(exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null && echo CONNECTED || echo REFUSED", "timeout": 10}))
        .await;
    eprintln!("host probe: {}", o.output.content);
}

#[tokio::test]
async fn missing_bwrap_fails_closed() {
    let shell = BubblewrapShell::new().with_bwrap_path("/nonexistent/bwrap");
    let f = Fixture::with_env(|e| e.with_shell(Arc::new(shell)));
    let marker = f.ws().join("ran");
    let o = f
        .call(
            "bash",
            json!({"command": format!("touch {}", marker.display())}),
        )
        .await;
    assert_eq!(
        o.error_code,
        Some(ErrorCode::SandboxUnavailable),
        "{}",
        o.output.content
    );
    assert!(o.output.content.contains("/nonexistent/bwrap"));
    assert!(!marker.exists(), "must never run unsandboxed");
    let o = f
        .call(
            "background_run",
            json!({"command": format!("touch {}", marker.display())}),
        )
        .await;
    assert_eq!(o.error_code, Some(ErrorCode::SandboxUnavailable));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!marker.exists());
}

#[tokio::test]
async fn unusable_bwrap_reports_exact_stderr() {
    // /bin/false as "bwrap" exits 1: the probe fails and nothing runs.
    let shell = BubblewrapShell::new().with_bwrap_path("/bin/false");
    let f = Fixture::with_env(|e| e.with_shell(Arc::new(shell)));
    let o = f.call("bash", json!({"command": "echo hi"})).await;
    assert_eq!(o.error_code, Some(ErrorCode::SandboxUnavailable));
    assert!(
        o.output.content.contains("probe failed"),
        "{}",
        o.output.content
    );
}
