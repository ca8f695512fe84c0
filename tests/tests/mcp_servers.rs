//! MCP client against the other reference servers: server-filesystem (a read inside the allowed
//! directory, one outside that the server refuses, the server inside a bubblewrap sandbox),
//! mcp-server-time over stdio, and server-everything over Streamable HTTP. Skips (with the
//! reason) when a peer is missing, unless `POWER_LOOP_REQUIRE_PEERS=1`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod mcp_support;

use std::sync::Arc;
use std::time::Duration;

use mcp_support::*;
use power_loop::mcp::{McpServer, McpServerConfig};
use power_loop::{
    BubblewrapShell, ErrorCode, RuntimeEnv, ScriptedStep, SendOptions, ToolContext, ToolRegistry,
};
use serde_json::json;

fn filesystem(allowed: &std::path::Path) -> Option<McpServerConfig> {
    let js = need(
        filesystem_js(),
        "npm @modelcontextprotocol/server-filesystem",
    )?;
    Some(McpServerConfig::stdio(
        "node",
        [js.display().to_string(), allowed.display().to_string()],
    ))
}

#[tokio::test]
async fn filesystem_reads_inside_the_allowed_dir_and_is_refused_outside() {
    let allowed = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let Some(cfg) = filesystem(allowed.path()) else {
        return;
    };
    std::fs::write(allowed.path().join("inside.txt"), "the inside text").unwrap();
    std::fs::write(outside.path().join("secret.txt"), "the secret").unwrap();
    let server = McpServer::connect("fs", cfg).await.unwrap();
    let mut reg = ToolRegistry::new();
    server.register(&mut reg).unwrap();
    let inside = allowed.path().canonicalize().unwrap().join("inside.txt");
    let secret = outside.path().join("secret.txt");
    let (agent, outputs) = scripted_loop(
        reg,
        vec![
            ScriptedStep::tool_calls([(
                "fs_read_text_file",
                json!({"path": inside.display().to_string()}),
            )]),
            ScriptedStep::tool_call(
                "fs_read_text_file",
                json!({"path": secret.display().to_string()}),
            ),
            ScriptedStep::text("done"),
        ],
    );
    run(&agent, "read", SendOptions::new()).await.unwrap();
    let out = outputs.lock().unwrap().clone();
    assert_eq!(
        out[0],
        ("fs_read_text_file".into(), "the inside text".into(), false)
    );
    assert!(
        out[1].2,
        "reading outside the allowed dir must fail: {:?}",
        out[1]
    );
    assert!(!out[1].1.contains("the secret"));
    assert!(
        out[1].1.to_lowercase().contains("denied") || out[1].1.contains("outside"),
        "{}",
        out[1].1
    );
    agent.close(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn filesystem_runs_inside_the_bubblewrap_sandbox() {
    let allowed = tempfile::tempdir().unwrap();
    let Some(cfg) = filesystem(allowed.path()) else {
        return;
    };
    let Some(_) = need(bwrap(), "bubblewrap (bwrap)") else {
        return;
    };
    std::fs::write(allowed.path().join("a.txt"), "sandboxed read").unwrap();
    // The package lives under the peers cache: mount it read-only into the sandbox.
    let shell = BubblewrapShell::new().with_read_only(peers_dir().join("mcp"));
    let cfg = cfg.cwd(allowed.path()).launcher(Arc::new(shell));
    let server = match McpServer::connect("fs", cfg).await {
        Ok(s) => s,
        Err(e) if e.code() == ErrorCode::SandboxUnavailable => {
            assert!(
                std::env::var("POWER_LOOP_REQUIRE_PEERS").as_deref() != Ok("1"),
                "{e}"
            );
            eprintln!("SKIP: the sandbox is unavailable here: {e}");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    let mut reg = ToolRegistry::new();
    server.register(&mut reg).unwrap();
    let path = allowed.path().canonicalize().unwrap().join("a.txt");
    let o = reg
        .invoke_args(
            ToolContext::new(Arc::new(RuntimeEnv::default())),
            "fs_read_text_file",
            json!({"path": path.display().to_string()}),
        )
        .await;
    assert_eq!(o.output.content, "sandboxed read", "{:?}", o.output);
    // Host files outside the sandbox's mounts do not exist for the server.
    let o = reg
        .invoke_args(
            ToolContext::new(Arc::new(RuntimeEnv::default())),
            "fs_read_text_file",
            json!({"path": "/root/.bashrc"}),
        )
        .await;
    assert!(o.is_failed());
    server.close().await;
}

#[tokio::test]
async fn mcp_server_time_over_stdio() {
    let Some(bin) = need(time_bin(), "PyPI mcp-server-time") else {
        return;
    };
    let cfg = McpServerConfig::stdio(bin.display().to_string(), ["--local-timezone", "UTC"]);
    let server = McpServer::connect("time", cfg).await.unwrap();
    let mut reg = ToolRegistry::new();
    server.register(&mut reg).unwrap();
    assert!(
        reg.has("time_get_current_time") && reg.has("time_convert_time"),
        "{:?}",
        reg.names()
    );
    let (agent, outputs) = scripted_loop(
        reg,
        vec![
            ScriptedStep::tool_call("time_get_current_time", json!({"timezone": "Europe/Paris"})),
            ScriptedStep::text("it is late"),
        ],
    );
    run(&agent, "time?", SendOptions::new()).await.unwrap();
    let out = outputs.lock().unwrap().clone();
    assert!(!out[0].2, "{:?}", out[0]);
    let v: serde_json::Value = serde_json::from_str(&out[0].1).unwrap();
    assert_eq!(v["timezone"], "Europe/Paris");
    assert!(v["datetime"].as_str().unwrap().len() >= 19);
    agent.close(Duration::from_secs(5)).await.unwrap();
}

/// A free loopback port.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn streamable_http_against_server_everything() {
    let Some(js) = need(
        everything_js(),
        "npm @modelcontextprotocol/server-everything",
    ) else {
        return;
    };
    let port = free_port();
    let mut child = tokio::process::Command::new("node")
        .arg(&js)
        .arg("streamableHttp")
        .env("PORT", port.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut up = false;
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "server-everything did not listen on {port}");
    let cfg = McpServerConfig::http(format!("http://127.0.0.1:{port}/mcp"))
        .header("Authorization", "Bearer test-token")
        .header("X-Client", "power-loop-tests");
    let server = McpServer::connect("web", cfg).await.unwrap();
    let mut reg = ToolRegistry::new();
    server.register(&mut reg).unwrap();
    assert_eq!(server.pid().await, None);
    let (agent, outputs) = scripted_loop(
        reg,
        vec![
            ScriptedStep::tool_call("web_echo", json!({"message": "over http"})),
            ScriptedStep::tool_call("web_get-sum", json!({"a": 40, "b": 2})),
            ScriptedStep::text("done"),
        ],
    );
    run(&agent, "go", SendOptions::new()).await.unwrap();
    let out = outputs.lock().unwrap().clone();
    assert_eq!(out[0].1, "Echo: over http");
    assert_eq!(out[1].1, "The sum of 40 and 2 is 42.");
    agent.close(Duration::from_secs(5)).await.unwrap();
    let _ = child.kill().await;
}

#[tokio::test]
async fn an_unreachable_http_server_is_a_typed_error() {
    let port = free_port();
    let cfg = McpServerConfig::http(format!("http://127.0.0.1:{port}/mcp"))
        .startup_timeout(Duration::from_secs(10));
    let e = McpServer::connect("nowhere", cfg).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::McpUnavailable);
    assert!(e.message().contains("`nowhere`"), "{}", e.message());
}
