//! The `mcpServers` configuration file (the format Claude Desktop, Claude Code, Cursor and other
//! editors use) and the typed per-server configuration.
//!
//! ```json
//! {
//!   "mcpServers": {
//!     "fs":   { "command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/data"] },
//!     "time": { "command": "uvx", "args": ["mcp-server-time"], "env": {"TZ": "UTC"} },
//!     "docs": { "type": "http", "url": "https://example.com/mcp",
//!               "headers": {"Authorization": "Bearer ${DOCS_TOKEN}"} }
//!   }
//! }
//! ```
//!
//! Standard keys: `command`, `args`, `env`, `cwd`, `type` (`stdio`, `http`, `streamable-http`),
//! `url`, `headers`, `disabled`. power-loop adds `allowedTools` / `deniedTools` (also accepted:
//! `disabledTools`), `prefix`, `timeout` (seconds per tool call), `startupTimeout` (seconds),
//! `inheritEnv` (host variables passed through by name) and `sandbox` (`"bubblewrap"` or an
//! object with `writable`, `readOnly`, `network`). `${VAR}` and `${VAR:-default}` in `args`,
//! `env`, `cwd`, `url` and `headers` expand from the host environment.

mod expand;
mod parse;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use power_loop_contracts::{Error, Result};
use power_loop_tools::ShellBackend;

pub use expand::expand_env_vars;

/// Default per-call timeout of a tool call.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_secs(120);
/// Default time a server may take to start and answer `initialize` and `tools/list`.
pub const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Host variables a stdio server inherits by default (the MCP SDKs' safe set); everything else
/// must be named in `env` or `inheritEnv`.
pub const DEFAULT_INHERITED_ENV: &[&str] =
    &["HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER", "LANG"];

/// Every server of one `mcpServers` file, in file order.
#[derive(Debug, Clone, Default)]
pub struct McpConfig {
    /// `(name, config)` pairs in the order of the file.
    pub servers: Vec<(String, McpServerConfig)>,
}

impl McpConfig {
    /// An empty configuration.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses the JSON text of an `mcpServers` file (`config.invalid` on any problem, naming the
    /// server and key). `${VAR}` references are expanded from the process environment.
    pub fn from_json_str(text: &str) -> Result<Self> {
        parse::parse_config(text, &|k| std::env::var(k).ok())
    }

    /// Reads and parses an `mcpServers` file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::config(format!(
                "cannot read the MCP configuration file {}: {e}",
                path.display()
            ))
            .with_source(e)
        })?;
        Self::from_json_str(&text).map_err(|e| {
            Error::config(format!("{}: {}", path.display(), e.message()))
                .with_detail("path", path.display().to_string())
        })
    }

    /// Adds (or replaces) a server.
    pub fn with_server(mut self, name: impl Into<String>, config: McpServerConfig) -> Self {
        let name = name.into();
        self.servers.retain(|(n, _)| *n != name);
        self.servers.push((name, config));
        self
    }

    /// The configuration of the server `name`.
    pub fn server(&self, name: &str) -> Option<&McpServerConfig> {
        self.servers.iter().find(|(n, _)| n == name).map(|(_, c)| c)
    }

    /// The servers that are not `disabled`.
    pub fn enabled(&self) -> impl Iterator<Item = &(String, McpServerConfig)> {
        self.servers.iter().filter(|(_, c)| !c.disabled)
    }
}

/// How to reach one server, and what to take from it.
#[derive(Debug, Clone)]
pub struct McpServerConfig {
    /// Child process over stdio, or Streamable HTTP.
    pub transport: McpTransport,
    /// Prefix of the registered tool names (default: the server name and `_`).
    pub prefix: Option<String>,
    /// Only these remote tools are registered (remote names; `None` = all).
    pub allowed_tools: Option<Vec<String>>,
    /// These remote tools are never registered (remote names).
    pub denied_tools: Vec<String>,
    /// Time limit of one tool call; the call is cancelled on the server when it passes.
    pub call_timeout: Duration,
    /// Time limit to start, initialize and list the tools.
    pub startup_timeout: Duration,
    /// Skipped by [`McpConfig::enabled`] (and so by the toolset).
    pub disabled: bool,
}

impl McpServerConfig {
    /// A stdio server: `command args…`.
    pub fn stdio<S: Into<String>>(
        command: impl Into<String>,
        args: impl IntoIterator<Item = S>,
    ) -> Self {
        Self::with_transport(McpTransport::Stdio(StdioConfig {
            command: command.into(),
            args: args.into_iter().map(Into::into).collect(),
            env: BTreeMap::new(),
            inherit_env: Vec::new(),
            cwd: None,
            launcher: None,
        }))
    }

    /// A Streamable HTTP server at `url`.
    pub fn http(url: impl Into<String>) -> Self {
        Self::with_transport(McpTransport::Http(HttpConfig {
            url: url.into(),
            headers: BTreeMap::new(),
        }))
    }

    fn with_transport(transport: McpTransport) -> Self {
        McpServerConfig {
            transport,
            prefix: None,
            allowed_tools: None,
            denied_tools: Vec::new(),
            call_timeout: DEFAULT_CALL_TIMEOUT,
            startup_timeout: DEFAULT_STARTUP_TIMEOUT,
            disabled: false,
        }
    }

    /// Sets an environment variable of a stdio server (ignored for HTTP).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        if let McpTransport::Stdio(s) = &mut self.transport {
            s.env.insert(key.into(), value.into());
        }
        self
    }

    /// Sets the working directory of a stdio server (ignored for HTTP).
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        if let McpTransport::Stdio(s) = &mut self.transport {
            s.cwd = Some(dir.into());
        }
        self
    }

    /// Runs a stdio server through a shell backend (e.g. `BubblewrapShell`): the server starts
    /// inside the same sandbox as the shell tool, with the backend's environment (ignored for
    /// HTTP). The working directory (`cwd`) is the sandbox's workspace and must be set.
    pub fn launcher(mut self, backend: Arc<dyn ShellBackend>) -> Self {
        if let McpTransport::Stdio(s) = &mut self.transport {
            s.launcher = Some(backend);
        }
        self
    }

    /// Adds an HTTP header (e.g. `Authorization`) of a Streamable HTTP server (ignored for stdio).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        if let McpTransport::Http(h) = &mut self.transport {
            h.headers.insert(name.into(), value.into());
        }
        self
    }

    /// Sets the tool-name prefix.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// Registers only these remote tools.
    pub fn allow_tools<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.allowed_tools = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// Never registers these remote tools.
    pub fn deny_tools<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.denied_tools = names.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the per-call timeout.
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// Sets the startup timeout.
    pub fn startup_timeout(mut self, timeout: Duration) -> Self {
        self.startup_timeout = timeout;
        self
    }

    /// Whether the allow/deny lists let the remote tool `name` through.
    pub fn tool_allowed(&self, name: &str) -> bool {
        if self.denied_tools.iter().any(|d| d == name) {
            return false;
        }
        match &self.allowed_tools {
            Some(list) => list.iter().any(|a| a == name),
            None => true,
        }
    }
}

/// The transport of a server.
#[derive(Debug, Clone)]
pub enum McpTransport {
    /// A child process speaking MCP over stdin/stdout.
    Stdio(StdioConfig),
    /// A Streamable HTTP endpoint.
    Http(HttpConfig),
}

/// A stdio server: what to start and with which environment.
#[derive(Clone)]
pub struct StdioConfig {
    /// The program (looked up on the child's `PATH`).
    pub command: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Variables set for the child (on top of the clean base environment).
    pub env: BTreeMap<String, String>,
    /// Host variables passed through by name (besides [`DEFAULT_INHERITED_ENV`]).
    pub inherit_env: Vec<String>,
    /// Working directory (default: the host process's).
    pub cwd: Option<PathBuf>,
    /// A shell backend whose sandbox wraps the server (`None`: started directly).
    pub launcher: Option<Arc<dyn ShellBackend>>,
}

impl fmt::Debug for StdioConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StdioConfig")
            .field("command", &self.command)
            .field("args", &self.args)
            // Values may be secrets: only the names.
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("inherit_env", &self.inherit_env)
            .field("cwd", &self.cwd)
            .field(
                "launcher",
                &self.launcher.as_ref().map(|l| l.name().to_owned()),
            )
            .finish()
    }
}

/// A Streamable HTTP server.
#[derive(Clone)]
pub struct HttpConfig {
    /// The endpoint (e.g. `http://127.0.0.1:3001/mcp`).
    pub url: String,
    /// Headers sent with every request (e.g. `Authorization`).
    pub headers: BTreeMap<String, String>,
}

impl fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpConfig")
            .field("url", &self.url)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish()
    }
}
