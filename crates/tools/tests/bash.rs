//! The persistent bash tool, command policy and background tasks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use std::time::{Duration, Instant};

use common::{Fixture, failed, ok};
use power_loop_contracts::ErrorCode;
use serde_json::json;

#[tokio::test]
async fn exit_code_header_merged_output_and_blank_lines() {
    let f = Fixture::new();
    let o = f
        .call(
            "bash",
            json!({"command": "echo out; echo; echo err >&2; false"}),
        )
        .await;
    assert_eq!(ok(&o), "exit_code=1\nout\nerr");
    let o = f.call("bash", json!({"command": "true"})).await;
    assert_eq!(ok(&o), "exit_code=0\n(no output)");
}

#[tokio::test]
async fn state_persists_and_restart_resets() {
    let f = Fixture::new();
    ok(&f
        .call(
            "bash",
            json!({"command": "mkdir -p sub && cd sub && export FOO=bar"}),
        )
        .await);
    let o = f.call("bash", json!({"command": "pwd; echo $FOO"})).await;
    let out = ok(&o);
    assert!(out.ends_with("/sub\nbar"), "{out}");
    let o = f
        .call("bash", json!({"command": "", "restart": true}))
        .await;
    assert_eq!(ok(&o), "Bash session restarted.");
    let o = f.call("bash", json!({"command": "echo \"[$FOO]\""})).await;
    assert_eq!(ok(&o), "exit_code=0\n[]");
}

#[tokio::test]
async fn commands_reading_stdin_do_not_hang() {
    let f = Fixture::new();
    let o = f
        .call("bash", json!({"command": "cat", "timeout": 5}))
        .await;
    assert_eq!(ok(&o), "exit_code=0\n(no output)");
}

#[tokio::test]
async fn timeout_kills_process_group_and_restarts() {
    let f = Fixture::new();
    let marker = f.ws().join("survived");
    let cmd = format!("(sleep 3; touch {}) & sleep 30", marker.display());
    let t0 = Instant::now();
    let o = f.call("bash", json!({"command": cmd, "timeout": 1})).await;
    assert!(t0.elapsed() < Duration::from_secs(10));
    assert!(!o.output.ok);
    assert!(
        o.output
            .content
            .starts_with("exit_code=? (timed out after 1s; bash session was restarted)"),
        "{}",
        o.output.content
    );
    assert_eq!(o.output.data["error_code"], "tool.timeout");
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        !marker.exists(),
        "the background child must have been killed with the group"
    );
    // the session works again
    assert_eq!(
        ok(&f.call("bash", json!({"command": "echo back"})).await),
        "exit_code=0\nback"
    );
}

#[tokio::test]
async fn cancel_kills_the_command() {
    let f = Fixture::new();
    let ctx = f.ctx();
    let token = ctx.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        token.cancel();
    });
    let t0 = Instant::now();
    let o = f
        .call_ctx(ctx, "bash", json!({"command": "sleep 30"}))
        .await;
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert_eq!(o.error_code, Some(ErrorCode::Cancelled));
}

#[tokio::test]
async fn exit_in_shell_reports_code_and_recovers() {
    let f = Fixture::new();
    let t0 = Instant::now();
    let o = f.call("bash", json!({"command": "echo bye; exit 3"})).await;
    assert!(t0.elapsed() < Duration::from_secs(4));
    let out = ok(&o);
    assert!(out.starts_with("exit_code=3 (the shell exited"), "{out}");
    assert!(out.ends_with("bye"));
    assert_eq!(
        ok(&f.call("bash", json!({"command": "echo again"})).await),
        "exit_code=0\nagain"
    );
}

#[tokio::test]
async fn huge_output_is_truncated_with_markers() {
    let f = Fixture::new();
    let o = f.call("bash", json!({"command": "seq 1 100000"})).await;
    let out = ok(&o);
    assert!(
        out.contains("\n30\n\n... (99800 lines omitted) ...\n\n99831\n"),
        "{}",
        &out[..200.min(out.len())]
    );
    assert!(out.ends_with("100000"));
    let o = f
        .call(
            "bash",
            json!({"command": "head -c 300000 /dev/zero | tr '\\0' 'a'"}),
        )
        .await;
    let out = ok(&o);
    assert!(out.contains("chars omitted"));
    assert!(out.chars().count() < 51_000);
}

#[tokio::test]
async fn bad_input_and_policy() {
    let f = Fixture::new();
    assert!(failed(&f.call("bash", json!({})).await).contains("command"));
    assert!(failed(&f.call("bash", json!({"command": 1})).await).contains("/command"));
    assert!(
        failed(
            &f.call("bash", json!({"command": "ls", "timeout": "x"}))
                .await
        )
        .contains("/timeout")
    );
    assert!(
        failed(&f.call("bash", json!({"command": "  "})).await).contains("command is required")
    );
    let o = f
        .call("bash", json!({"command": "echo hi && shutdown -h now"}))
        .await;
    assert_eq!(o.error_code, Some(ErrorCode::ToolDenied));
    assert!(o.output.content.contains("Dangerous command blocked"));
    let o = f.call("bash", json!({"command": "rm -rf /"})).await;
    assert_eq!(o.error_code, Some(ErrorCode::ToolDenied));
    assert_eq!(
        ok(&f.call("bash", json!({"command": "echo halt"})).await),
        "exit_code=0\nhalt"
    );
}

#[tokio::test]
async fn background_run_and_check() {
    let f = Fixture::new();
    let o = f
        .call(
            "background_run",
            json!({"command": "sleep 0.3; echo done-bg"}),
        )
        .await;
    let out = ok(&o).to_owned();
    assert!(out.starts_with("Background task "), "{out}");
    let id = o.output.data["task_id"].as_str().unwrap().to_owned();
    let o = f.call("check_background", json!({"task_id": id})).await;
    assert!(ok(&o).starts_with("[running]"));
    let mut done = String::new();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let o = f.call("check_background", json!({"task_id": id})).await;
        if !o.output.content.starts_with("[running]") {
            done = o.output.content.clone();
            break;
        }
    }
    assert_eq!(done, "[completed] sleep 0.3; echo done-bg\ndone-bg");
    let o = f.call("check_background", json!({})).await;
    assert_eq!(ok(&o), format!("{id}: [completed] sleep 0.3; echo done-bg"));
    assert!(
        failed(&f.call("check_background", json!({"task_id": "nope"})).await)
            .contains("Unknown task nope")
    );
    assert_eq!(
        f.call("background_run", json!({"command": "reboot"}))
            .await
            .error_code,
        Some(ErrorCode::ToolDenied)
    );
    assert!(failed(&f.call("background_run", json!({})).await).contains("command"));
}

#[tokio::test]
async fn home_scope_is_enforced() {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(home.path().join(".cache")).unwrap();
    let h = home.path().to_path_buf();
    let f = Fixture::with_env(move |e| e.with_home(&h).unwrap());
    let home = f.env.home_dir.clone().unwrap();
    let o = f
        .call(
            "bash",
            json!({"command": format!("cat {}/secrets.txt", home.display())}),
        )
        .await;
    assert_eq!(o.error_code, Some(ErrorCode::ToolDenied));
    assert!(o.output.content.contains("Reading agent-home internals"));
    let o = f
        .call(
            "bash",
            json!({"command": format!("echo x > {}/x", home.display())}),
        )
        .await;
    assert!(o.output.content.contains("Writing under the agent home"));
    let o = f
        .call(
            "bash",
            json!({"command": format!("ls {}/.cache", home.display())}),
        )
        .await;
    assert!(o.output.ok, "{}", o.output.content);
}
