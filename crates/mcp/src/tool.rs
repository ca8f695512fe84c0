//! [`McpTool`]: one remote tool as a power-loop [`Tool`], and the registration of a server's tools
//! into a [`ToolRegistry`].

use std::sync::Arc;

use power_loop_contracts::{BoxFuture, Error, ErrorCode, Result, ToolDefinition, ToolOutput};
use power_loop_tools::{Tool, ToolContext, ToolRegistry};
use serde_json::Value;

use crate::schema::check;
use crate::server::McpServer;
use crate::table::McpToolInfo;

/// A tool of an MCP server, registered under its local name. Arguments are validated against
/// the server's input schema (by the registry, and again here if the server changed the
/// schema since registration); the call goes to the server with the configured timeout, and
/// the agent's cancellation sends `notifications/cancelled`.
pub struct McpTool {
    server: McpServer,
    remote_name: String,
    definition: ToolDefinition,
    read_only: bool,
}

impl std::fmt::Debug for McpTool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpTool")
            .field("server", &self.server.name())
            .field("remote_name", &self.remote_name)
            .field("name", &self.definition.name)
            .finish()
    }
}

impl McpTool {
    /// The tool for `info` of `server`.
    pub fn new(server: McpServer, info: &McpToolInfo) -> Self {
        McpTool {
            definition: ToolDefinition::new(
                info.local_name.clone(),
                info.description.clone(),
                info.input_schema.clone(),
            ),
            remote_name: info.remote_name.clone(),
            read_only: info.read_only(),
            server,
        }
    }

    /// Its name on the server.
    pub fn remote_name(&self) -> &str {
        &self.remote_name
    }

    /// The server it calls.
    pub fn server(&self) -> &McpServer {
        &self.server
    }

    async fn run(&self, ctx: ToolContext, args: Value) -> Result<ToolOutput> {
        let table = self.server.inner.table();
        let Some(entry) = table.by_remote(&self.remote_name) else {
            let now: Vec<&str> = table
                .entries
                .iter()
                .map(|e| e.info.local_name.as_str())
                .collect();
            return Err(Error::new(
                ErrorCode::McpFailed,
                format!(
                    "MCP server `{}` no longer offers `{}`; its tools now: {}",
                    self.server.name(),
                    self.remote_name,
                    if now.is_empty() {
                        "(none)".to_owned()
                    } else {
                        now.join(", ")
                    }
                ),
            ));
        };
        if entry.info.input_schema != self.definition.parameters
            && let Err(problems) = check(&entry.validator, &args)
        {
            return Err(Error::new(
                ErrorCode::ToolInvalidArgs,
                format!(
                    "invalid arguments for tool `{}` (its schema changed on the server); the tool was not run:\n{problems}",
                    self.definition.name
                ),
            ));
        }
        let arguments = match args {
            Value::Object(m) => m,
            Value::Null => serde_json::Map::new(),
            other => {
                return Err(Error::new(
                    ErrorCode::ToolInvalidArgs,
                    format!("the arguments must be a JSON object, got {other}"),
                ));
            }
        };
        self.server
            .call(&self.remote_name, arguments, &ctx.cancel)
            .await
    }
}

impl Tool for McpTool {
    fn definition(&self) -> &ToolDefinition {
        &self.definition
    }

    fn call<'a>(&'a self, ctx: ToolContext, args: Value) -> BoxFuture<'a, Result<ToolOutput>> {
        Box::pin(self.run(ctx, args))
    }

    fn concurrency_safe(&self) -> bool {
        self.read_only
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.server.close())
    }
}

impl McpServer {
    /// Registers every current tool into `registry` under its local name; returns the names.
    /// All or nothing: a name already taken by another tool fails before anything is added.
    pub fn register(&self, registry: &mut ToolRegistry) -> Result<Vec<String>> {
        let tools = self.tools();
        if let Some(clash) = tools.iter().find(|t| registry.has(&t.local_name)) {
            return Err(Error::invalid_argument(format!(
                "MCP server `{}`: tool name `{}` is already registered; give the server another `prefix`",
                self.name(),
                clash.local_name
            )));
        }
        let mut added: Vec<String> = Vec::new();
        for t in &tools {
            if let Err(e) = registry.register_arc(Arc::new(McpTool::new(self.clone(), t)), false) {
                for n in &added {
                    registry.unregister(n);
                }
                return Err(e);
            }
            added.push(t.local_name.clone());
        }
        Ok(added)
    }

    /// Brings `registry` up to date with the server's current tools (after
    /// `notifications/tools/list_changed` or a restart): removes tools it no longer offers,
    /// adds new ones, replaces changed ones. Returns whether the registry changed. A new name
    /// that another (non-MCP) tool already uses is skipped with a warning.
    pub fn sync_registry(&self, registry: &mut ToolRegistry) -> bool {
        let tools = self.tools();
        let issued = self
            .inner
            .issued
            .read()
            .map(|s| s.clone())
            .unwrap_or_default();
        let mut changed = false;
        for name in registry.names() {
            if issued.contains(&name) && !tools.iter().any(|t| t.local_name == name) {
                registry.unregister(&name);
                changed = true;
            }
        }
        for t in &tools {
            let same = registry.get(&t.local_name).is_some_and(|existing| {
                existing.definition().parameters == t.input_schema
                    && existing.definition().description == t.description
            });
            if same {
                continue;
            }
            if registry.has(&t.local_name) && !issued.contains(&t.local_name) {
                tracing::warn!(target: "power_loop::mcp", server = %self.name(), tool = %t.local_name, "a tool of that name is already registered; the MCP tool is skipped");
                continue;
            }
            match registry.register_arc(Arc::new(McpTool::new(self.clone(), t)), true) {
                Ok(()) => changed = true,
                Err(e) => {
                    tracing::warn!(target: "power_loop::mcp", server = %self.name(), tool = %t.local_name, error = %e, "the MCP tool could not be registered");
                }
            }
        }
        changed
    }
}
