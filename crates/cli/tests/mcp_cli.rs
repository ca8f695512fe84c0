#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `power-loop mcp list --mcp-config FILE [--json]` and `send --mcp-config FILE` against the
//! reference server-everything (skips with the reason when it is not installed, unless
//! `POWER_LOOP_REQUIRE_PEERS=1`).

use std::path::PathBuf;
use std::process::{Command, Output};

fn everything_js() -> Option<PathBuf> {
    let cache = std::env::var_os("POWER_LOOP_PEERS_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/power-loop-peers")
        });
    let p = cache.join("mcp/node_modules/@modelcontextprotocol/server-everything/dist/index.js");
    if p.exists() {
        return Some(p);
    }
    assert!(
        std::env::var("POWER_LOOP_REQUIRE_PEERS").as_deref() != Ok("1"),
        "peer missing with POWER_LOOP_REQUIRE_PEERS=1: server-everything (run scripts/peers.sh up)"
    );
    eprintln!(
        "SKIP: npm @modelcontextprotocol/server-everything is not installed (run scripts/peers.sh up)"
    );
    None
}

fn run(dir: &tempfile::TempDir, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_power-loop"))
        .args(args)
        .current_dir(dir.path())
        .env_remove("POWER_LOOP_DSN")
        .env_remove("POWER_LOOP_MCP_CONFIG")
        .output()
        .unwrap()
}

/// `--offline send --mcp-config CONFIG hello` in `dir`.
fn send_hello(dir: &tempfile::TempDir, config: &std::path::Path) -> Output {
    run(
        dir,
        &[
            "--offline",
            "send",
            "--mcp-config",
            config.to_str().unwrap(),
            "hello",
        ],
    )
}

fn config(dir: &tempfile::TempDir, js: &std::path::Path) -> String {
    let p = dir.path().join("mcp.json");
    let text = serde_json::json!({"mcpServers": {
        "everything": {"command": "node", "args": [js.display().to_string(), "stdio"], "allowedTools": ["echo", "get-sum"]},
        "broken": {"command": "/nonexistent/server"}
    }});
    std::fs::write(&p, text.to_string()).unwrap();
    p.display().to_string()
}

#[test]
fn mcp_list_shows_servers_tools_and_failures() {
    let Some(js) = everything_js() else { return };
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&dir, &js);
    let out = run(&dir, &["mcp", "list", "--mcp-config", &cfg, "--json"]);
    // A server failed to start: exit 1, but the listing is still printed.
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let tools: Vec<&str> = v["servers"][0]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["local_name"].as_str().unwrap())
        .collect();
    assert_eq!(tools, ["everything_echo", "everything_get-sum"]);
    assert_eq!(v["failures"][0]["name"], "broken");
    let out = run(&dir, &["mcp", "list", "--mcp-config", &cfg]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("everything_get-sum"), "{text}");
    assert!(text.contains("broken: FAILED"), "{text}");
}

#[test]
fn send_with_an_mcp_config_offers_the_tools_and_bad_configs_fail_clearly() {
    let Some(js) = everything_js() else { return };
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("ok.json");
    std::fs::write(
        &p,
        serde_json::json!({"mcpServers": {"everything": {"command": "node", "args": [js.display().to_string(), "stdio"]}}}).to_string(),
    )
    .unwrap();
    let out = send_hello(&dir, &p);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("MCP tool(s) from 1 server(s)"));
    std::fs::write(&p, "{\"mcpServers\": {\"x\": {}}}").unwrap();
    let out = send_hello(&dir, &p);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("config.invalid"));
    let out = run(&dir, &["mcp", "list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--mcp-config"));
}
