//! MCP client against the paginating test server (`src/bin/mcp_test_server.rs`, rmcp server
//! side): pagination, portable names, clean environment, cancellation and timeouts sending
//! `notifications/cancelled`, `tools/list_changed` refresh, allow/deny lists, the config file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod mcp_support;

use std::time::{Duration, Instant};

use mcp_support::*;
use power_loop::mcp::{McpConfig, McpServer, McpToolset, is_portable_tool_name};
use power_loop::{
    CancellationToken, ErrorCode, RunStatus, ScriptedStep, SendOptions, ToolRegistry,
};
use serde_json::json;

async fn cancellations(server: &McpServer) -> String {
    server
        .call(
            "cancellations",
            serde_json::Map::new(),
            &CancellationToken::new(),
        )
        .await
        .unwrap()
        .content
}

/// Polls the server's cancellation count (up to 2 s) until it reads `want`; returns the last read.
async fn wait_for_cancellations(server: &McpServer, want: &str) -> String {
    let mut seen = String::new();
    for _ in 0..100 {
        seen = cancellations(server).await;
        if seen == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    seen
}

#[tokio::test]
async fn pagination_lists_every_page_and_names_are_portable() {
    let server = McpServer::connect("pager", pager()).await.unwrap();
    let tools = server.tools();
    // 25 numbered + slow, cancellations, add_tool, dotted.name, env = 30 tools over 3 pages.
    assert_eq!(
        tools.len(),
        30,
        "{:?}",
        tools.iter().map(|t| &t.local_name).collect::<Vec<_>>()
    );
    assert_eq!(tools[0].local_name, "pager_tool_00");
    assert_eq!(tools[24].local_name, "pager_tool_24");
    let dotted = tools
        .iter()
        .find(|t| t.remote_name == "dotted.name")
        .unwrap();
    assert_eq!(dotted.local_name, "pager_dotted_name");
    assert!(tools.iter().all(|t| is_portable_tool_name(&t.local_name)));
    assert_eq!(
        server.server_info()["serverInfo"]["name"],
        "power-loop-mcp-test-server"
    );
    server.close().await;
}

#[tokio::test]
async fn a_scripted_session_calls_a_tool_from_the_last_page() {
    let server = McpServer::connect("pager", pager()).await.unwrap();
    let mut reg = ToolRegistry::new();
    server.register(&mut reg).unwrap();
    let (agent, outputs) = scripted_loop(
        reg,
        vec![
            ScriptedStep::tool_call("pager_dotted_name", json!({})),
            ScriptedStep::tool_call("pager_tool_24", json!({"x": 7})),
            ScriptedStep::text("done"),
        ],
    );
    let r = run(&agent, "go", SendOptions::new()).await.unwrap();
    assert_eq!(r.final_text, "done");
    let out = outputs.lock().unwrap().clone();
    assert_eq!(out[0], ("pager_dotted_name".into(), "dotted".into(), false));
    assert_eq!(
        out[1],
        ("pager_tool_24".into(), "tool_24 x=7".into(), false)
    );
    let pid = server.pid().await.unwrap();
    agent.close(Duration::from_secs(5)).await.unwrap();
    assert!(
        wait_gone(pid, 5000).await,
        "closing the loop must stop (and reap) the server"
    );
}

#[tokio::test]
async fn the_server_starts_with_a_clean_environment_plus_its_config() {
    let server = McpServer::connect("pager", pager().env("PL_MCP_GIVEN", "yes"))
        .await
        .unwrap();
    let out = server
        .call("env", serde_json::Map::new(), &CancellationToken::new())
        .await
        .unwrap();
    let env: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&out.content).unwrap();
    assert_eq!(env["PL_MCP_GIVEN"], "yes");
    // Cargo sets CARGO_MANIFEST_DIR for this test process; the server must not inherit it.
    assert!(std::env::var("CARGO_MANIFEST_DIR").is_ok());
    assert!(
        !env.contains_key("CARGO_MANIFEST_DIR"),
        "leaked host env: {:?}",
        env.keys()
    );
    for k in env.keys() {
        assert!(
            power_loop::mcp::DEFAULT_INHERITED_ENV.contains(&k.as_str()) || k == "PL_MCP_GIVEN",
            "unexpected variable {k}"
        );
    }
    server.close().await;
}

#[tokio::test]
async fn cancelling_the_agent_run_cancels_the_call_on_the_server() {
    let server = McpServer::connect("pager", pager()).await.unwrap();
    let mut reg = ToolRegistry::new();
    server.register(&mut reg).unwrap();
    let (agent, _outputs) = scripted_loop(
        reg,
        vec![
            ScriptedStep::tool_call("pager_slow", json!({"ms": 30000})),
            ScriptedStep::text("never"),
        ],
    );
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(400)).await;
        c.cancel();
    });
    let started = Instant::now();
    let r = run(&agent, "go", SendOptions::new().with_cancel(cancel))
        .await
        .unwrap();
    assert_eq!(r.status, RunStatus::Cancelled);
    assert!(started.elapsed() < Duration::from_secs(10));
    // The server saw notifications/cancelled for the request.
    assert_eq!(
        wait_for_cancellations(&server, "cancelled=1").await,
        "cancelled=1"
    );
    server.close().await;
}

#[tokio::test]
async fn a_call_past_its_timeout_fails_typed_and_is_cancelled_on_the_server() {
    let server = McpServer::connect("pager", pager().call_timeout(Duration::from_millis(300)))
        .await
        .unwrap();
    let mut args = serde_json::Map::new();
    args.insert("ms".into(), json!(20000));
    let started = Instant::now();
    let e = server
        .call("slow", args, &CancellationToken::new())
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::ToolTimeout);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        wait_for_cancellations(&server, "cancelled=1").await,
        "cancelled=1"
    );
    server.close().await;
}

#[tokio::test]
async fn list_changed_notifications_refresh_the_tools_and_the_registry() {
    let server = McpServer::connect("pager", pager()).await.unwrap();
    let mut reg = ToolRegistry::new();
    server.register(&mut reg).unwrap();
    let before = server.generation();
    let out = server
        .call(
            "add_tool",
            serde_json::Map::new(),
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(out.content, "added extra_0");
    for _ in 0..250 {
        if server.generation() != before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_ne!(
        server.generation(),
        before,
        "no refresh after notifications/tools/list_changed"
    );
    assert!(
        server
            .tools()
            .iter()
            .any(|t| t.local_name == "pager_extra_0")
    );
    assert!(!reg.has("pager_extra_0"));
    assert!(server.sync_registry(&mut reg));
    assert!(reg.has("pager_extra_0"));
    let outcome = reg
        .invoke_args(
            power_loop::ToolContext::new(std::sync::Arc::new(power_loop::RuntimeEnv::default())),
            "pager_extra_0",
            json!({}),
        )
        .await;
    assert!(!outcome.is_failed(), "{:?}", outcome.output);
    server.close().await;
}

#[tokio::test]
async fn allow_and_deny_lists_pick_the_registered_tools() {
    let allowed = McpServer::connect(
        "pager",
        pager()
            .allow_tools(["tool_01", "slow", "env"])
            .deny_tools(["env"]),
    )
    .await
    .unwrap();
    let names: Vec<String> = allowed.tools().into_iter().map(|t| t.remote_name).collect();
    assert_eq!(names, ["tool_01", "slow"]);
    assert!(
        allowed
            .skipped_tools()
            .iter()
            .any(|(n, why)| n == "env" && why.contains("allow/deny"))
    );
    allowed.close().await;
}

#[tokio::test]
async fn a_config_file_connects_every_server_and_describes_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mcp.json");
    let bin = env!("CARGO_BIN_EXE_mcp_test_server");
    std::fs::write(
        &path,
        json!({"mcpServers": {
            "one": {"command": bin, "allowedTools": ["tool_00"]},
            "two": {"command": bin, "prefix": "p2_", "deniedTools": ["env"]},
            "off": {"command": "/nonexistent", "disabled": true}
        }})
        .to_string(),
    )
    .unwrap();
    let set = McpToolset::connect(&McpConfig::from_file(&path).unwrap())
        .await
        .unwrap();
    let mut reg = ToolRegistry::new();
    let names = set.register(&mut reg).unwrap();
    assert_eq!(names.len(), 1 + 29);
    assert!(reg.has("one_tool_00") && reg.has("p2_tool_00") && !reg.has("p2_env"));
    let d = set.describe();
    assert_eq!(d["servers"].as_array().unwrap().len(), 2);
    assert_eq!(d["servers"][0]["transport"], "stdio");
    // Registering twice clashes on names and adds nothing.
    let n = reg.len();
    assert!(set.register(&mut reg).is_err());
    assert_eq!(reg.len(), n);
    let pids = [
        set.servers()[0].pid().await.unwrap(),
        set.servers()[1].pid().await.unwrap(),
    ];
    reg.close().await;
    for pid in pids {
        assert!(
            wait_gone(pid, 5000).await,
            "closing the registry must stop server {pid}"
        );
    }
}

#[tokio::test]
async fn a_broken_server_in_a_config_fails_connect_but_not_connect_lenient() {
    let text = json!({"mcpServers": {
        "good": {"command": env!("CARGO_BIN_EXE_mcp_test_server")},
        "bad": {"command": "sh", "args": ["-c", "echo nope >&2; exit 2"]}
    }})
    .to_string();
    let cfg = McpConfig::from_json_str(&text).unwrap();
    let e = McpToolset::connect(&cfg).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::McpUnavailable);
    assert!(e.message().contains("`bad`"), "{}", e.message());
    let set = McpToolset::connect_lenient(&cfg).await;
    assert_eq!(set.servers().len(), 1);
    assert_eq!(set.failures()[0].0, "bad");
    assert!(set.failures()[0].1.contains("nope"), "{:?}", set.failures());
    set.close().await;
}
