//! Every process a shell started ends with it: on timeout, on cancel, when the shell is
//! dropped and when a background task times out, including `setsid`, `setsid -f` (orphaned)
//! and double-forked children. Checked by pid.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{Fixture, ok};
use power_loop_contracts::CancellationToken;
use power_loop_tools::{LocalShell, run_one_shot};
use serde_json::json;

/// Starts three escapees and records their pids in the workspace: one `setsid` child of the
/// shell, one `setsid -f` (forked, so orphaned at once) and one double-forked orphan.
const ESCAPEES: &str = "setsid sh -c 'echo $$ > p1; exec sleep 301' & \
    setsid -f sh -c 'echo $$ > p2; exec sleep 302'; \
    ( sh -c 'echo $$ > p3; exec sleep 303' & ); \
    for i in $(seq 100); do [ -s p1 ] && [ -s p2 ] && [ -s p3 ] && break; sleep 0.05; done; echo started";

fn read_pids(ws: &Path) -> Vec<u32> {
    ["p1", "p2", "p3"]
        .iter()
        .map(|f| {
            std::fs::read_to_string(ws.join(f))
                .unwrap_or_else(|e| panic!("{f}: {e}"))
                .trim()
                .parse()
                .unwrap()
        })
        .collect()
}

/// Alive = has a `/proc` entry that is not a zombie (a killed orphan may wait for its reaper).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            let state = s[s.rfind(')').unwrap() + 1..].split_whitespace().next();
            !matches!(state, Some("Z" | "X"))
        }
        Err(_) => false,
    }
}

fn assert_all_alive(pids: &[u32]) {
    for p in pids {
        assert!(alive(*p), "escapee {p} is not running before the kill");
    }
}

async fn assert_all_gone(pids: &[u32]) {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let living: Vec<u32> = pids.iter().copied().filter(|p| alive(*p)).collect();
        if living.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            for p in &living {
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", &p.to_string()])
                    .status();
            }
            panic!("processes still running after the shell ended: {living:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn bash_timeout_kills_setsid_and_orphaned_children() {
    let f = Fixture::new();
    let o = f
        .call(
            "bash",
            json!({"command": format!("{ESCAPEES}; sleep 60"), "timeout": 2}),
        )
        .await;
    assert!(
        o.output.content.contains("timed out"),
        "{}",
        o.output.content
    );
    let pids = read_pids(&f.ws());
    assert_all_gone(&pids).await;
}

#[tokio::test]
async fn bash_cancel_kills_setsid_and_orphaned_children() {
    let f = Fixture::new();
    let cancel = CancellationToken::new();
    let ws = f.ws();
    let trigger = cancel.clone();
    let watcher = tokio::spawn(async move {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !(ws.join("p1").exists() && ws.join("p2").exists() && ws.join("p3").exists()) {
            assert!(Instant::now() < deadline, "escapees never started");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let pids = read_pids(&ws);
        assert_all_alive(&pids);
        trigger.cancel();
        pids
    });
    let _ = f
        .call_ctx(
            f.ctx().with_cancel(cancel),
            "bash",
            json!({"command": format!("{ESCAPEES}; sleep 60"), "timeout": 60}),
        )
        .await;
    let pids = watcher.await.unwrap();
    assert_all_gone(&pids).await;
}

#[tokio::test]
async fn dropping_the_tools_kills_what_the_persistent_shell_left_running() {
    let f = Fixture::new();
    let o = f.call("bash", json!({"command": ESCAPEES})).await;
    assert!(ok(&o).ends_with("started"), "{}", o.output.content);
    let pids = read_pids(&f.ws());
    // The persistent shell keeps background work between calls…
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_all_alive(&pids);
    // …until the shell is dropped with the tools.
    drop(f);
    assert_all_gone(&pids).await;
}

#[tokio::test]
async fn one_shot_timeout_and_drop_kill_every_descendant() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path();
    let shell = LocalShell::new();
    // Timeout.
    let out = run_one_shot(
        &shell,
        ws,
        &format!("{ESCAPEES}; sleep 60"),
        Duration::from_secs(2),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert!(out.timed_out);
    assert_all_gone(&read_pids(ws)).await;
    // The future dropped mid-run.
    for p in ["p1", "p2", "p3"] {
        std::fs::remove_file(ws.join(p)).unwrap();
    }
    let cancel = CancellationToken::new();
    let script = format!("{ESCAPEES}; sleep 60");
    let run = run_one_shot(&shell, ws, &script, Duration::from_secs(60), &cancel);
    let waited = tokio::time::timeout(Duration::from_secs(3), run).await;
    assert!(waited.is_err(), "the run should still be going");
    let pids = read_pids(ws);
    assert_all_gone(&pids).await;
    // A normal exit also ends what the command left behind.
    for p in ["p1", "p2", "p3"] {
        std::fs::remove_file(ws.join(p)).unwrap();
    }
    let out = run_one_shot(
        &shell,
        ws,
        ESCAPEES,
        Duration::from_secs(30),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(out.exit_code, Some(0), "{}", out.output);
    assert_all_gone(&read_pids(ws)).await;
}

#[tokio::test]
async fn background_task_past_its_timeout_is_killed_and_reported() {
    let f = Fixture::with_env(|mut e| {
        e.background_timeout_secs = 1;
        e
    });
    let o = f
        .call(
            "background_run",
            json!({"command": format!("{ESCAPEES}; sleep 60")}),
        )
        .await;
    ok(&o);
    let id = o.output.data["task_id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        let o = f.call("check_background", json!({"task_id": id})).await;
        let text = ok(&o).to_owned();
        if !text.starts_with("[running]") {
            break text;
        }
        assert!(
            Instant::now() < deadline,
            "the task is still [running] 10 s after its 1 s timeout"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(status.starts_with("[timeout]"), "{status}");
    assert_all_gone(&read_pids(&f.ws())).await;
}
