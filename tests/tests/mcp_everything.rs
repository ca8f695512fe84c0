//! MCP client against the reference server `@modelcontextprotocol/server-everything` over stdio,
//! through scripted-model sessions: echo, get-sum, argument validation, an image result,
//! structured content, an error result, a long-running call cancelled mid-call, a server
//! killed mid-session and restarted (with backoff while restarts fail), and no zombies.
//! Skips (with the reason) when the peer is missing, unless `POWER_LOOP_REQUIRE_PEERS=1`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod mcp_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use mcp_support::*;
use power_loop::mcp::{McpServer, McpServerConfig};
use power_loop::{
    CancellationToken, ErrorCode, RunStatus, RuntimeEnv, ScriptedStep, SendOptions, ToolContext,
    ToolRegistry,
};
use serde_json::json;

async fn connected(cfg: McpServerConfig) -> (McpServer, ToolRegistry) {
    let server = McpServer::connect("everything", cfg).await.unwrap();
    let mut reg = ToolRegistry::new();
    server.register(&mut reg).unwrap();
    (server, reg)
}

fn ctx() -> ToolContext {
    ToolContext::new(Arc::new(RuntimeEnv::default()))
}

#[tokio::test]
async fn echo_and_get_sum_end_to_end() {
    let Some(cfg) = everything() else { return };
    let (server, reg) = connected(cfg).await;
    assert!(
        reg.has("everything_echo") && reg.has("everything_get-sum"),
        "{:?}",
        reg.names()
    );
    let (agent, outputs) = scripted_loop(
        reg,
        vec![
            ScriptedStep::tool_call("everything_echo", json!({"message": "hello mcp"})),
            ScriptedStep::tool_call("everything_get-sum", json!({"a": 2, "b": 3})),
            ScriptedStep::text("2 + 3 = 5"),
        ],
    );
    let r = run(&agent, "add", SendOptions::new()).await.unwrap();
    assert_eq!(r.final_text, "2 + 3 = 5");
    assert_eq!(r.tool_calls, 2);
    let out = outputs.lock().unwrap().clone();
    assert_eq!(
        out[0],
        ("everything_echo".into(), "Echo: hello mcp".into(), false)
    );
    assert_eq!(
        out[1],
        (
            "everything_get-sum".into(),
            "The sum of 2 and 3 is 5.".into(),
            false
        )
    );
    let pid = server.pid().await.unwrap();
    agent.close(Duration::from_secs(5)).await.unwrap();
    assert!(
        wait_gone(pid, 8000).await,
        "the server {pid} outlived the loop"
    );
}

#[tokio::test]
async fn bad_arguments_are_refused_before_the_server_is_called() {
    let Some(cfg) = everything() else { return };
    let (server, reg) = connected(cfg).await;
    let o = reg
        .invoke_args(ctx(), "everything_get-sum", json!({"a": "two", "b": 3}))
        .await;
    assert!(o.is_failed());
    assert_eq!(o.error_code, Some(ErrorCode::ToolInvalidArgs));
    assert!(!o.handler_ran);
    assert!(o.output.content.contains("/a"), "{}", o.output.content);
    server.close().await;
}

#[tokio::test]
async fn an_image_result_keeps_the_image_for_the_host() {
    let Some(cfg) = everything() else { return };
    let (server, reg) = connected(cfg).await;
    let o = reg
        .invoke_args(ctx(), "everything_get-tiny-image", json!({}))
        .await;
    assert!(!o.is_failed(), "{:?}", o.output);
    assert!(o.output.content.contains("Here's the image you requested:"));
    assert!(
        o.output.content.contains("[image: image/png,"),
        "{}",
        o.output.content
    );
    let img = &o.output.data["images"][0];
    assert_eq!(img["mime_type"], "image/png");
    assert!(
        img["data"].as_str().unwrap().starts_with("iVBOR"),
        "not a base64 PNG"
    );
    // The same call in a scripted session reaches the model as text.
    let (agent, outputs) = scripted_loop(
        reg,
        vec![
            ScriptedStep::tool_call("everything_get-tiny-image", json!({})),
            ScriptedStep::text("ok"),
        ],
    );
    run(&agent, "img", SendOptions::new()).await.unwrap();
    assert!(outputs.lock().unwrap()[0].1.contains("[image: image/png"));
    server.close().await;
}

#[tokio::test]
async fn structured_content_is_kept() {
    let Some(cfg) = everything() else { return };
    let (server, reg) = connected(cfg).await;
    let o = reg
        .invoke_args(
            ctx(),
            "everything_get-structured-content",
            json!({"location": "Chicago"}),
        )
        .await;
    assert!(!o.is_failed(), "{:?}", o.output);
    assert!(
        o.output.data["structured_content"]["temperature"].is_number(),
        "{:?}",
        o.output.data
    );
    server.close().await;
}

#[tokio::test]
async fn an_error_result_is_a_failed_tool_result() {
    let Some(cfg) = everything() else { return };
    let server = McpServer::connect("everything", cfg).await.unwrap();
    // Bypass local validation: the server itself rejects the arguments with `isError: true`.
    let mut args = serde_json::Map::new();
    args.insert("a".into(), json!("x"));
    let out = server
        .call("get-sum", args, &CancellationToken::new())
        .await
        .unwrap();
    assert!(!out.ok, "{out:?}");
    assert!(out.content.starts_with("Error: "), "{}", out.content);
    // An unknown tool: an error result or a JSON-RPC error, never a success.
    match server
        .call(
            "no-such-tool",
            serde_json::Map::new(),
            &CancellationToken::new(),
        )
        .await
    {
        Ok(o) => assert!(!o.ok, "{o:?}"),
        Err(e) => assert_eq!(e.code(), ErrorCode::McpFailed),
    }
    server.close().await;
}

#[tokio::test]
async fn a_long_running_tool_is_cancelled_mid_call() {
    let Some(cfg) = everything() else { return };
    let (server, reg) = connected(cfg).await;
    let (agent, _outputs) = scripted_loop(
        reg.clone(),
        vec![
            ScriptedStep::tool_call(
                "everything_trigger-long-running-operation",
                json!({"duration": 30, "steps": 30}),
            ),
            ScriptedStep::text("never"),
        ],
    );
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(500)).await;
        c.cancel();
    });
    let started = Instant::now();
    let r = run(&agent, "go", SendOptions::new().with_cancel(cancel))
        .await
        .unwrap();
    assert_eq!(r.status, RunStatus::Cancelled);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    // The server is still usable.
    let o = reg
        .invoke_args(ctx(), "everything_echo", json!({"message": "still here"}))
        .await;
    assert_eq!(o.output.content, "Echo: still here");
    server.close().await;
}

#[tokio::test]
async fn a_server_killed_mid_session_fails_the_call_and_restarts_on_the_next() {
    let Some(cfg) = everything() else { return };
    let (server, reg) = connected(cfg).await;
    let old_pid = server.pid().await.unwrap();
    let (agent, outputs) = scripted_loop(
        reg,
        vec![
            ScriptedStep::tool_call(
                "everything_trigger-long-running-operation",
                json!({"duration": 20, "steps": 20}),
            ),
            ScriptedStep::tool_call("everything_echo", json!({"message": "back"})),
            ScriptedStep::text("recovered"),
        ],
    );
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(600)).await;
        kill9(old_pid);
    });
    let r = run(&agent, "go", SendOptions::new()).await.unwrap();
    assert_eq!(r.final_text, "recovered");
    let out = outputs.lock().unwrap().clone();
    assert!(out[0].2, "the call in flight must fail: {out:?}");
    assert!(
        out[0].1.contains("unavailable") || out[0].1.contains("exited"),
        "{}",
        out[0].1
    );
    assert_eq!(
        out[1],
        ("everything_echo".into(), "Echo: back".into(), false)
    );
    let new_pid = server.pid().await.unwrap();
    assert_ne!(new_pid, old_pid);
    assert!(
        wait_gone(old_pid, 5000).await,
        "the killed server was not reaped"
    );
    agent.close(Duration::from_secs(5)).await.unwrap();
    assert!(wait_gone(new_pid, 8000).await);
}

#[tokio::test]
async fn failing_restarts_back_off_then_recover() {
    let Some(js) = need(
        everything_js(),
        "npm @modelcontextprotocol/server-everything",
    ) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("broken");
    // Starts the server unless the marker file exists.
    let script = format!(
        "test -e '{}' && {{ echo 'refusing to start' >&2; exit 7; }}; exec node '{}' stdio",
        marker.display(),
        js.display()
    );
    let server = McpServer::connect(
        "flaky",
        McpServerConfig::stdio("sh", ["-c", script.as_str()]),
    )
    .await
    .unwrap();
    let echo = |m: &str| {
        let mut a = serde_json::Map::new();
        a.insert("message".into(), json!(m));
        a
    };
    std::fs::write(&marker, "").unwrap();
    kill9(server.pid().await.unwrap());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let e = server
        .call("echo", echo("1"), &CancellationToken::new())
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::McpUnavailable);
    assert!(e.message().contains("refusing to start"), "{}", e.message());
    // Within the backoff window the next call fails fast, without a new process.
    let e = server
        .call("echo", echo("2"), &CancellationToken::new())
        .await
        .unwrap_err();
    assert!(
        e.message().contains("next attempt is in"),
        "{}",
        e.message()
    );
    std::fs::remove_file(&marker).unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let ok = server
        .call("echo", echo("3"), &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(ok.content, "Echo: 3");
    server.close().await;
}
