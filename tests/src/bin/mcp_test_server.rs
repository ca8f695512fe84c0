//! A small MCP server on rmcp's server side, for the MCP client tests (stdio):
//! - 25 tools `tool_00` … `tool_24`, listed 10 per page (`nextCursor` "10", "20");
//! - `slow` sleeps `ms` milliseconds unless the client cancels it (it counts cancellations);
//! - `cancellations` returns how many `slow` calls were cancelled by the client;
//! - `add_tool` adds `extra_<n>` and sends `notifications/tools/list_changed`;
//! - `dotted.name` and `env` (the server's environment as JSON) for names and environments.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ErrorData, ListToolsResult,
    PaginatedRequestParams, ServerConfig,
};
use rmcp::service::{RequestContext, RoleServer};
use rmcp::{ServerHandler, ServiceExt};
use serde_json::{Value, json};

const PAGE: usize = 10;
const NUMBERED: usize = 25;

#[derive(Clone, Default)]
struct Pager {
    cancelled: Arc<AtomicUsize>,
    extras: Arc<AtomicUsize>,
}

fn tool(name: &str, description: &str, schema: Value) -> Value {
    json!({"name": name, "description": description, "inputSchema": schema})
}

impl Pager {
    fn all_tools(&self) -> Vec<Value> {
        let mut tools: Vec<Value> = (0..NUMBERED)
            .map(|i| {
                tool(
                    &format!("tool_{i:02}"),
                    &format!("Numbered tool {i}"),
                    json!({"type": "object", "properties": {"x": {"type": "integer"}}}),
                )
            })
            .collect();
        tools.push(tool(
            "slow",
            "Sleeps ms milliseconds",
            json!({"type": "object", "properties": {"ms": {"type": "integer", "minimum": 0}}, "required": ["ms"]}),
        ));
        tools.push(tool(
            "cancellations",
            "How many slow calls were cancelled",
            json!({"type": "object"}),
        ));
        tools.push(tool(
            "add_tool",
            "Adds a tool and notifies the client",
            json!({"type": "object"}),
        ));
        tools.push(tool("dotted.name", "A name with a dot", json!({})));
        tools.push(tool(
            "env",
            "The server's environment",
            json!({"type": "object"}),
        ));
        for i in 0..self.extras.load(Ordering::SeqCst) {
            tools.push(tool(
                &format!("extra_{i}"),
                "Added at run time",
                json!({"type": "object"}),
            ));
        }
        tools
    }
}

fn text(t: impl Into<String>) -> Result<CallToolResponse, ErrorData> {
    let r: CallToolResult =
        serde_json::from_value(json!({"content": [{"type": "text", "text": t.into()}]})).unwrap();
    Ok(r.into())
}

impl ServerHandler for Pager {
    fn get_info(&self) -> ServerConfig {
        serde_json::from_value(json!({
            "protocolVersion": "2025-06-18",
            "capabilities": {"tools": {"listChanged": true}},
            "serverInfo": {"name": "power-loop-mcp-test-server", "version": "1.0.0"}
        }))
        .unwrap()
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let all = self.all_tools();
        let start: usize = request
            .and_then(|r| r.cursor)
            .map(|c| {
                c.parse()
                    .map_err(|_| ErrorData::invalid_params("bad cursor", None))
            })
            .transpose()?
            .unwrap_or(0);
        let end = (start + PAGE).min(all.len());
        let mut page = json!({"tools": all[start.min(end)..end]});
        if end < all.len() {
            page["nextCursor"] = json!(end.to_string());
        }
        Ok(serde_json::from_value(page).unwrap())
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let args = request.arguments.unwrap_or_default();
        match request.name.as_ref() {
            "slow" => {
                let ms = args.get("ms").and_then(Value::as_u64).unwrap_or(0);
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(ms)) => text(format!("slept {ms} ms")),
                    () = context.ct.cancelled() => {
                        self.cancelled.fetch_add(1, Ordering::SeqCst);
                        Err(ErrorData::internal_error("cancelled", None))
                    }
                }
            }
            "cancellations" => text(format!(
                "cancelled={}",
                self.cancelled.load(Ordering::SeqCst)
            )),
            "add_tool" => {
                let n = self.extras.fetch_add(1, Ordering::SeqCst);
                let _ = context.peer.notify_tool_list_changed().await;
                text(format!("added extra_{n}"))
            }
            "env" => text(
                serde_json::to_string(
                    &std::env::vars().collect::<std::collections::BTreeMap<_, _>>(),
                )
                .unwrap(),
            ),
            "dotted.name" => text("dotted"),
            name if name.starts_with("extra_") => text(format!("{name} ran")),
            name if name.starts_with("tool_") => text(format!(
                "{name} x={}",
                args.get("x").cloned().unwrap_or(Value::Null)
            )),
            other => Err(ErrorData::invalid_params(
                format!("unknown tool {other}"),
                None,
            )),
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let service = Pager::default()
        .serve((tokio::io::stdin(), tokio::io::stdout()))
        .await
        .expect("the test server could not start");
    let _ = service.waiting().await;
}
