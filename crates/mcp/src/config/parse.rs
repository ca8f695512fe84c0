//! Parsing of the `mcpServers` JSON into [`McpConfig`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use power_loop_contracts::{Error, Result};
use power_loop_tools::BubblewrapShell;
use serde_json::{Map, Value};

use super::expand::expand_env_vars;
use super::{
    DEFAULT_CALL_TIMEOUT, DEFAULT_STARTUP_TIMEOUT, HttpConfig, McpConfig, McpServerConfig,
    McpTransport, StdioConfig,
};

type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Parses the whole file.
pub(super) fn parse_config(text: &str, lookup: Lookup<'_>) -> Result<McpConfig> {
    let root: Value = serde_json::from_str(text)
        .map_err(|e| Error::config(format!("the MCP configuration is not valid JSON: {e}")))?;
    let Some(obj) = root.as_object() else {
        return Err(Error::config(
            "the MCP configuration must be a JSON object with an `mcpServers` object",
        ));
    };
    let servers = match obj.get("mcpServers").or_else(|| obj.get("servers")) {
        Some(Value::Object(m)) => m,
        Some(_) => return Err(Error::config("`mcpServers` must be an object of servers")),
        None => {
            return Err(Error::config(
                "the MCP configuration has no `mcpServers` object (expected {\"mcpServers\": {\"name\": {...}}})",
            ));
        }
    };
    let mut out = McpConfig::new();
    for (name, v) in servers {
        if name.trim().is_empty() {
            return Err(Error::config("an MCP server has an empty name"));
        }
        let server = parse_server(name, v, lookup).map_err(|m| {
            Error::config(format!("MCP server `{name}`: {m}")).with_detail("server", name.as_str())
        })?;
        out.servers.push((name.clone(), server));
    }
    Ok(out)
}

fn parse_server(
    name: &str,
    v: &Value,
    lookup: Lookup<'_>,
) -> std::result::Result<McpServerConfig, String> {
    let Some(o) = v.as_object() else {
        return Err("the entry must be an object".into());
    };
    let kind = opt_str(o, "type")?.or(opt_str(o, "transport")?);
    let kind = match kind.as_deref() {
        Some("stdio") => "stdio",
        Some("http" | "streamable-http" | "streamableHttp" | "streamable_http") => "http",
        Some("sse") => {
            return Err(
                "the deprecated HTTP+SSE transport is not supported; use the server's Streamable HTTP endpoint (`\"type\": \"http\"`)"
                    .into(),
            );
        }
        Some(other) => return Err(format!("unknown `type` {other:?} (use `stdio` or `http`)")),
        None if o.contains_key("command") => "stdio",
        None if o.contains_key("url") => "http",
        None => return Err("neither `command` (stdio) nor `url` (http) is set".into()),
    };
    let ex = |s: &str| expand_env_vars(s, lookup);
    let transport = if kind == "stdio" {
        let command = opt_str(o, "command")?.ok_or("`command` is missing")?;
        if command.trim().is_empty() {
            return Err("`command` is empty".into());
        }
        let args = str_list(o, "args")?
            .iter()
            .map(|a| ex(a))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let mut env = BTreeMap::new();
        for (k, v) in str_map(o, "env")? {
            env.insert(k, ex(&v)?);
        }
        let cwd = opt_str(o, "cwd")?
            .map(|c| ex(&c))
            .transpose()?
            .map(PathBuf::from);
        let launcher = match o.get("sandbox") {
            None | Some(Value::Null) | Some(Value::Bool(false)) => None,
            Some(s) => {
                if cwd.is_none() {
                    return Err("`sandbox` needs `cwd`: the directory the server may write (the sandbox's workspace)".into());
                }
                Some(parse_sandbox(s, &ex)?)
            }
        };
        McpTransport::Stdio(StdioConfig {
            command: ex(&command)?,
            args,
            env,
            inherit_env: str_list(o, "inheritEnv")?,
            cwd,
            launcher,
        })
    } else {
        let url = ex(&opt_str(o, "url")?.ok_or("`url` is missing")?)?;
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!(
                "`url` must be an http:// or https:// URL, got {url:?}"
            ));
        }
        let mut headers = BTreeMap::new();
        for (k, v) in str_map(o, "headers")? {
            headers.insert(k, ex(&v)?);
        }
        McpTransport::Http(HttpConfig { url, headers })
    };
    let mut denied = str_list(o, "deniedTools")?;
    denied.extend(str_list(o, "disabledTools")?);
    let allowed = if o.contains_key("allowedTools") {
        Some(str_list(o, "allowedTools")?)
    } else {
        None
    };
    let prefix = opt_str(o, "prefix")?;
    let _ = name;
    Ok(McpServerConfig {
        transport,
        prefix,
        allowed_tools: allowed,
        denied_tools: denied,
        call_timeout: secs(o, "timeout")?.unwrap_or(DEFAULT_CALL_TIMEOUT),
        startup_timeout: secs(o, "startupTimeout")?.unwrap_or(DEFAULT_STARTUP_TIMEOUT),
        disabled: match o.get("disabled") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err("`disabled` must be true or false".into()),
        },
    })
}

fn parse_sandbox(
    v: &Value,
    ex: &dyn Fn(&str) -> std::result::Result<String, String>,
) -> std::result::Result<Arc<dyn power_loop_tools::ShellBackend>, String> {
    let (kind, o) = match v {
        Value::Bool(true) => ("bubblewrap".to_owned(), Map::new()),
        Value::String(s) => (s.clone(), Map::new()),
        Value::Object(o) => (
            opt_str(o, "type")?.unwrap_or_else(|| "bubblewrap".to_owned()),
            o.clone(),
        ),
        _ => return Err("`sandbox` must be \"bubblewrap\" or an object".into()),
    };
    if kind != "bubblewrap" && kind != "bwrap" {
        return Err(format!("unknown sandbox {kind:?} (supported: bubblewrap)"));
    }
    let mut shell = BubblewrapShell::new();
    for p in str_list(&o, "readOnly")? {
        shell = shell.with_read_only(PathBuf::from(ex(&p)?));
    }
    for p in str_list(&o, "writable")? {
        shell = shell.with_writable(PathBuf::from(ex(&p)?));
    }
    match o.get("network") {
        None | Some(Value::Null) => {}
        Some(Value::Bool(b)) => shell = shell.with_network(*b),
        Some(_) => return Err("`sandbox.network` must be true or false".into()),
    }
    Ok(Arc::new(shell))
}

fn opt_str(o: &Map<String, Value>, key: &str) -> std::result::Result<Option<String>, String> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(format!("`{key}` must be a string")),
    }
}

fn str_list(o: &Map<String, Value>, key: &str) -> std::result::Result<Vec<String>, String> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| format!("`{key}` must be a list of strings"))
            })
            .collect(),
        Some(_) => Err(format!("`{key}` must be a list of strings")),
    }
}

fn str_map(
    o: &Map<String, Value>,
    key: &str,
) -> std::result::Result<Vec<(String, String)>, String> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                Value::Number(n) => Ok((k.clone(), n.to_string())),
                Value::Bool(b) => Ok((k.clone(), b.to_string())),
                _ => Err(format!("`{key}.{k}` must be a string")),
            })
            .collect(),
        Some(_) => Err(format!("`{key}` must be an object of strings")),
    }
}

fn secs(o: &Map<String, Value>, key: &str) -> std::result::Result<Option<Duration>, String> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(s) if s > 0.0 && s.is_finite() && s <= 86_400.0 => {
                Ok(Some(Duration::from_secs_f64(s)))
            }
            _ => Err(format!("`{key}` must be a number of seconds in (0, 86400]")),
        },
        Some(_) => Err(format!("`{key}` must be a number of seconds")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<McpConfig> {
        parse_config(text, &|k| (k == "TOKEN").then(|| "s3cret".to_owned()))
    }

    #[test]
    fn a_claude_desktop_file_parses_in_order() {
        let c = parse(
            r#"{"mcpServers": {
                "fs": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/tmp"]},
                "api": {"type": "http", "url": "https://x.test/mcp", "headers": {"Authorization": "Bearer ${TOKEN}"}},
                "off": {"command": "x", "disabled": true, "allowedTools": ["a"], "deniedTools": ["b"], "timeout": 2.5}
            }}"#,
        )
        .unwrap();
        let names: Vec<_> = c.servers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["fs", "api", "off"]);
        assert_eq!(c.enabled().count(), 2);
        let McpTransport::Http(h) = &c.server("api").unwrap().transport else {
            panic!("api must be http")
        };
        assert_eq!(h.headers["Authorization"], "Bearer s3cret");
        // Secrets never reach Debug output.
        assert!(!format!("{:?}", c).contains("s3cret"));
        let off = c.server("off").unwrap();
        assert!(off.tool_allowed("a") && !off.tool_allowed("b") && !off.tool_allowed("c"));
        assert_eq!(off.call_timeout, Duration::from_millis(2500));
    }

    #[test]
    fn bad_entries_are_config_errors_naming_the_server() {
        for (text, needle) in [
            (r#"[]"#, "JSON object"),
            (r#"{"servers": 1}"#, "must be an object"),
            (r#"{"mcpServers": {"a": {}}}"#, "neither `command`"),
            (
                r#"{"mcpServers": {"a": {"command": 3}}}"#,
                "`command` must be a string",
            ),
            (
                r#"{"mcpServers": {"a": {"type": "sse", "url": "http://x"}}}"#,
                "not supported",
            ),
            (r#"{"mcpServers": {"a": {"url": "ftp://x"}}}"#, "http://"),
            (
                r#"{"mcpServers": {"a": {"command": "x", "env": {"K": "${MISSING}"}}}}"#,
                "MISSING is not set",
            ),
            (
                r#"{"mcpServers": {"a": {"command": "x", "timeout": -1}}}"#,
                "seconds",
            ),
            (
                r#"{"mcpServers": {"a": {"command": "x", "sandbox": "bubblewrap"}}}"#,
                "needs `cwd`",
            ),
        ] {
            let e = parse(text).unwrap_err();
            assert_eq!(
                e.code(),
                power_loop_contracts::ErrorCode::ConfigInvalid,
                "{text}"
            );
            assert!(e.message().contains(needle), "{text}: {}", e.message());
        }
    }

    #[test]
    fn sandbox_entries_build_a_bubblewrap_launcher() {
        let c = parse(
            r#"{"mcpServers": {"s": {"command": "node", "cwd": "/tmp", "sandbox": {"readOnly": ["/opt"], "network": false}}}}"#,
        )
        .unwrap();
        let McpTransport::Stdio(s) = &c.server("s").unwrap().transport else {
            panic!("stdio expected")
        };
        assert_eq!(s.launcher.as_ref().unwrap().name(), "bubblewrap");
    }
}
