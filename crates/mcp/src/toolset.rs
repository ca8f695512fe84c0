//! [`McpToolset`]: every server of an `mcpServers` configuration, connected together.

use power_loop_contracts::{Error, Result};
use power_loop_tools::ToolRegistry;
use serde_json::{Value, json};

use crate::config::McpConfig;
use crate::server::{McpServer, transport_kind};
use crate::table::McpToolInfo;

/// The connected servers of one configuration. Cloning is cheap.
#[derive(Debug, Clone, Default)]
pub struct McpToolset {
    servers: Vec<McpServer>,
    failures: Vec<(String, String)>,
}

impl McpToolset {
    /// Connects every enabled server of `config` (concurrently); any failure is an error that
    /// names the server (the servers already started are stopped).
    pub async fn connect(config: &McpConfig) -> Result<McpToolset> {
        let set = Self::connect_lenient(config).await;
        if let Some((name, why)) = set.failures.first() {
            set.close().await;
            return Err(Error::new(
                power_loop_contracts::ErrorCode::McpUnavailable,
                format!("MCP server `{name}` did not start: {why}"),
            )
            .with_detail("server", name.as_str()));
        }
        Ok(set)
    }

    /// Connects every enabled server; the ones that fail are left out and reported by
    /// [`failures`](Self::failures).
    pub async fn connect_lenient(config: &McpConfig) -> McpToolset {
        let mut tasks = Vec::new();
        for (name, cfg) in config.enabled() {
            let (name, cfg) = (name.clone(), cfg.clone());
            tasks.push(tokio::spawn(async move {
                let r = McpServer::connect(name.clone(), cfg).await;
                (name, r)
            }));
        }
        let mut set = McpToolset::default();
        for t in tasks {
            match t.await {
                Ok((_, Ok(server))) => set.servers.push(server),
                Ok((name, Err(e))) => set.failures.push((name, e.message().to_owned())),
                Err(e) => set.failures.push(("(task)".into(), e.to_string())),
            }
        }
        set
    }

    /// Adds an already connected server.
    pub fn push(&mut self, server: McpServer) {
        self.servers.push(server);
    }

    /// The connected servers, in configuration order.
    pub fn servers(&self) -> &[McpServer] {
        &self.servers
    }

    /// The server `name`.
    pub fn server(&self, name: &str) -> Option<&McpServer> {
        self.servers.iter().find(|s| s.name() == name)
    }

    /// Servers that did not start (`connect_lenient`): `(name, reason)`.
    pub fn failures(&self) -> &[(String, String)] {
        &self.failures
    }

    /// Every tool of every server, in order.
    pub fn tools(&self) -> Vec<McpToolInfo> {
        self.servers.iter().flat_map(McpServer::tools).collect()
    }

    /// Registers every server's tools into `registry`; returns the registered names. All or
    /// nothing: on an error the tools added so far are removed again.
    pub fn register(&self, registry: &mut ToolRegistry) -> Result<Vec<String>> {
        let mut added = Vec::new();
        for s in &self.servers {
            match s.register(registry) {
                Ok(names) => added.extend(names),
                Err(e) => {
                    for n in &added {
                        registry.unregister(n);
                    }
                    return Err(e);
                }
            }
        }
        Ok(added)
    }

    /// A registry holding only the MCP tools.
    pub fn registry(&self) -> Result<ToolRegistry> {
        let mut r = ToolRegistry::new();
        self.register(&mut r)?;
        Ok(r)
    }

    /// [`McpServer::sync_registry`] for every server; returns whether anything changed.
    pub fn sync_registry(&self, registry: &mut ToolRegistry) -> bool {
        let mut changed = false;
        for s in &self.servers {
            changed |= s.sync_registry(registry);
        }
        changed
    }

    /// Sum of the servers' generations: changes whenever any tool list changes.
    pub fn generation(&self) -> u64 {
        self.servers.iter().map(McpServer::generation).sum()
    }

    /// Stops every server (see [`McpServer::close`]).
    pub async fn close(&self) {
        for s in &self.servers {
            s.close().await;
        }
    }

    /// A JSON description of the servers and their tools (what `power-loop mcp list --json`
    /// prints): `{"servers": [{name, transport, server_info, tools, skipped}], "failures": [...]}`.
    pub fn describe(&self) -> Value {
        let servers: Vec<Value> = self
            .servers
            .iter()
            .map(|s| {
                json!({
                    "name": s.name(),
                    "transport": transport_kind(&s.config().transport),
                    "server_info": s.server_info(),
                    "tools": s.tools(),
                    "skipped": s.skipped_tools().into_iter().map(|(n, why)| json!({"name": n, "reason": why})).collect::<Vec<_>>(),
                })
            })
            .collect();
        let failures: Vec<Value> = self
            .failures
            .iter()
            .map(|(n, why)| json!({"name": n, "error": why}))
            .collect();
        json!({"servers": servers, "failures": failures})
    }
}
