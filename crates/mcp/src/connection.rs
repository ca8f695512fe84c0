//! One live MCP session: the rmcp client service over a child process or Streamable HTTP,
//! initialized, with the calls it serves (list tools page by page, call a tool with a deadline
//! and cancellation).

use std::sync::Arc;
use std::time::Duration;

use power_loop_contracts::{CancellationToken, Error, ErrorCode, Result};
use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CancelledNotificationParam, ClientCapabilities,
    ClientConfig, ClientRequest, Implementation, PaginatedRequestParams, RequestId, ServerResult,
};
use rmcp::service::{
    NotificationContext, Peer, PeerRequestOptions, RoleClient, RunningService, ServiceError,
};
use rmcp::{ClientHandler, ServiceExt};
use serde_json::Value;

use crate::config::{HttpConfig, McpTransport};
use crate::process::{self, ServerProcess};

/// Called when the server says its tool list changed.
pub(crate) type ListChanged = Arc<dyn Fn() + Send + Sync>;

/// The client side of the session: identifies power-loop and reacts to list changes.
pub(crate) struct Handler {
    info: ClientConfig,
    on_list_changed: ListChanged,
}

impl ClientHandler for Handler {
    fn get_info(&self) -> ClientConfig {
        self.info.clone()
    }

    fn on_tool_list_changed(
        &self,
        _context: NotificationContext<RoleClient>,
    ) -> impl Future<Output = ()> + Send + '_ {
        (self.on_list_changed)();
        std::future::ready(())
    }
}

/// A connected, initialized server.
pub(crate) struct Connection {
    server: String,
    service: tokio::sync::Mutex<Option<RunningService<RoleClient, Handler>>>,
    peer: Peer<RoleClient>,
    process: Option<ServerProcess>,
    /// `serverInfo` and `protocolVersion` from the initialize answer (JSON).
    pub(crate) info: Value,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("server", &self.server)
            .field("pid", &self.pid())
            .finish_non_exhaustive()
    }
}

fn client_info() -> ClientConfig {
    ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("power-loop", env!("CARGO_PKG_VERSION")),
    )
}

/// `mcp.unavailable` for `server` with a message.
pub(crate) fn unavailable(server: &str, message: impl Into<String>) -> Error {
    Error::new(ErrorCode::McpUnavailable, message).with_detail("server", server)
}

impl Connection {
    /// Starts (stdio) or reaches (HTTP) the server and runs the initialize handshake.
    pub(crate) async fn open(
        server: &str,
        transport: &McpTransport,
        on_list_changed: ListChanged,
    ) -> Result<Connection> {
        let handler = Handler {
            info: client_info(),
            on_list_changed,
        };
        match transport {
            McpTransport::Stdio(cfg) => {
                let spawned = process::spawn(server, cfg).await?;
                let process = spawned.process;
                match handler.serve((spawned.stdout, spawned.stdin)).await {
                    Ok(service) => Ok(Self::from_service(server, service, Some(process))),
                    Err(e) => {
                        let status = wait_briefly_for_exit(&process).await;
                        if status.is_some() {
                            process.stderr.wait_eof(Duration::from_millis(500)).await;
                        }
                        let tail = process.stderr.text();
                        process.stop().await;
                        Err(unavailable(
                            server,
                            format!(
                                "MCP server `{server}` (`{}`) did not complete the initialize handshake: {e}{}{}",
                                cfg.command,
                                status.map(|s| format!("; it exited ({s})")).unwrap_or_default(),
                                stderr_note(&tail)
                            ),
                        )
                        .with_source(e))
                    }
                }
            }
            McpTransport::Http(cfg) => {
                let transport = http_transport(server, cfg)?;
                let service = handler.serve(transport).await.map_err(|e| {
                    unavailable(
                        server,
                        format!(
                            "MCP server `{server}` at {} did not complete the initialize handshake: {e}",
                            cfg.url
                        ),
                    )
                    .with_source(e)
                })?;
                Ok(Self::from_service(server, service, None))
            }
        }
    }

    fn from_service(
        server: &str,
        service: RunningService<RoleClient, Handler>,
        process: Option<ServerProcess>,
    ) -> Connection {
        let peer = service.peer().clone();
        let info = peer
            .peer_info()
            .and_then(|i| serde_json::to_value(&*i).ok())
            .unwrap_or(Value::Null);
        Connection {
            server: server.to_owned(),
            service: tokio::sync::Mutex::new(Some(service)),
            peer,
            process,
            info,
        }
    }

    /// The child's pid (stdio servers).
    pub(crate) fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(ServerProcess::pid)
    }

    /// Why the session is over (`None` while it is usable).
    pub(crate) fn death(&self) -> Option<String> {
        if let Some(p) = &self.process
            && let Some(status) = p.exit_status()
        {
            return Some(format!(
                "the server process exited ({status}){}",
                stderr_note(&p.stderr.text())
            ));
        }
        if self.peer.is_transport_closed() {
            let tail = self
                .process
                .as_ref()
                .map(|p| p.stderr.text())
                .unwrap_or_default();
            return Some(format!(
                "the connection to the server closed{}",
                stderr_note(&tail)
            ));
        }
        None
    }

    /// Lists every tool, following `nextCursor`; each page has `page_timeout`.
    pub(crate) async fn list_tools(&self, page_timeout: Duration) -> Result<Vec<Value>> {
        let mut tools = Vec::new();
        let mut cursor: Option<String> = None;
        for _page in 0..10_000 {
            let params = cursor
                .take()
                .map(|c| PaginatedRequestParams::default().with_cursor(Some(c)));
            let page = tokio::time::timeout(page_timeout, self.peer.list_tools(params))
                .await
                .map_err(|_| {
                    unavailable(
                        &self.server,
                        format!(
                            "MCP server `{}` did not answer tools/list within {} ms",
                            self.server,
                            page_timeout.as_millis()
                        ),
                    )
                })?
                .map_err(|e| self.service_error("tools/list", e))?;
            let page = serde_json::to_value(&page)?;
            if let Some(items) = page.get("tools").and_then(Value::as_array) {
                tools.extend(items.iter().cloned());
            }
            match page.get("nextCursor").and_then(Value::as_str) {
                Some(c) if !c.is_empty() => cursor = Some(c.to_owned()),
                _ => return Ok(tools),
            }
        }
        Err(Error::new(
            ErrorCode::McpFailed,
            format!(
                "MCP server `{}` returned more than 10000 pages of tools",
                self.server
            ),
        ))
    }

    /// Calls `tool` once. The deadline and `cancel` both abandon the call and send
    /// `notifications/cancelled` for it; a result comes back as its JSON form.
    pub(crate) async fn call_tool(
        &self,
        tool: &str,
        arguments: serde_json::Map<String, Value>,
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<Value> {
        let request = ClientRequest::CallToolRequest(CallToolRequest::new(
            CallToolRequestParams::new(tool.to_owned()).with_arguments(arguments),
        ));
        let handle = self
            .peer
            .send_cancellable_request(request, PeerRequestOptions::no_options())
            .await
            .map_err(|e| self.service_error("tools/call", e))?;
        let mut guard = CancelOnDrop {
            peer: Some(handle.peer.clone()),
            id: handle.id.clone(),
        };
        let reply = tokio::select! {
            r = handle.rx => r,
            () = tokio::time::sleep(timeout) => {
                guard.fire(format!("timed out after {} ms", timeout.as_millis()));
                return Err(Error::new(
                    ErrorCode::ToolTimeout,
                    format!(
                        "MCP tool `{tool}` on server `{}` did not finish within {} ms; the call was cancelled on the server",
                        self.server,
                        timeout.as_millis()
                    ),
                )
                .with_detail("server", self.server.as_str()));
            }
            () = cancel.cancelled() => {
                guard.fire("cancelled by the agent".to_owned());
                return Err(Error::cancelled(format!(
                    "MCP tool `{tool}` on server `{}` was cancelled; the server was told",
                    self.server
                )));
            }
        };
        guard.peer = None;
        let reply = match reply {
            Ok(r) => r.map_err(|e| self.service_error("tools/call", e))?,
            Err(_) => {
                return Err(self.service_error("tools/call", ServiceError::TransportClosed));
            }
        };
        match reply {
            ServerResult::CallToolResult(r) => Ok(serde_json::to_value(&r)?),
            other => Err(Error::new(
                ErrorCode::McpFailed,
                format!(
                    "MCP server `{}` answered tools/call with an unsupported result ({}); power-loop supports plain tool results",
                    self.server,
                    serde_json::to_value(&other)
                        .ok()
                        .and_then(|v| v
                            .get("resultType")
                            .and_then(Value::as_str)
                            .map(str::to_owned))
                        .unwrap_or_else(|| "not a CallToolResult".to_owned())
                ),
            )),
        }
    }

    /// Maps an rmcp error: a JSON-RPC error from the server is `mcp.failed`; a closed or broken
    /// transport is `mcp.unavailable` and says why the server is gone.
    pub(crate) fn service_error(&self, what: &str, e: ServiceError) -> Error {
        match e {
            ServiceError::McpError(data) => Error::new(
                ErrorCode::McpFailed,
                format!(
                    "MCP server `{}` rejected {what}: {} (JSON-RPC error {})",
                    self.server, data.message, data.code.0
                ),
            )
            .with_detail("server", self.server.as_str())
            .with_detail("rpc_code", data.code.0),
            ServiceError::Timeout { timeout } => Error::new(
                ErrorCode::ToolTimeout,
                format!(
                    "MCP server `{}` did not answer {what} within {timeout:?}",
                    self.server
                ),
            ),
            other => {
                let why = self.death().unwrap_or_else(|| other.to_string());
                unavailable(
                    &self.server,
                    format!(
                        "MCP server `{}` is unavailable during {what}: {why}. It is restarted on the next call",
                        self.server
                    ),
                )
                .with_source(other)
            }
        }
    }

    /// Ends the session and stops the process (graceful, then SIGTERM, then SIGKILL).
    pub(crate) async fn close(&self) {
        let service = self.service.lock().await.take();
        if let Some(service) = service {
            let _ = tokio::time::timeout(Duration::from_secs(3), service.cancel()).await;
        }
        if let Some(p) = &self.process {
            p.stop().await;
        }
    }
}

/// Sends `notifications/cancelled` for an in-flight request unless disarmed (also when the
/// call's future is dropped, e.g. by the registry on cancellation).
struct CancelOnDrop {
    peer: Option<Peer<RoleClient>>,
    id: RequestId,
}

impl CancelOnDrop {
    fn fire(&mut self, reason: String) {
        if let Some(peer) = self.peer.take() {
            let param = CancelledNotificationParam::new(Some(self.id.clone()), Some(reason));
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move {
                    let _ = peer.notify_cancelled(param).await;
                });
            }
        }
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.fire("the call was abandoned by the agent".to_owned());
    }
}

async fn wait_briefly_for_exit(p: &ServerProcess) -> Option<String> {
    for _ in 0..10 {
        if let Some(s) = p.exit_status() {
            return Some(s);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

fn stderr_note(tail: &str) -> String {
    if tail.trim().is_empty() {
        String::new()
    } else {
        format!("; its last stderr lines:\n{tail}")
    }
}

fn http_transport(
    server: &str,
    cfg: &HttpConfig,
) -> Result<rmcp::transport::StreamableHttpClientTransport<reqwest::Client>> {
    use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
    use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Another thread may win the race; either way a provider is installed afterwards.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    let mut headers = HeaderMap::new();
    for (k, v) in &cfg.headers {
        let name = HeaderName::from_bytes(k.as_bytes()).map_err(|e| {
            Error::config(format!(
                "MCP server `{server}`: invalid header name {k:?}: {e}"
            ))
        })?;
        let mut value = HeaderValue::from_str(v).map_err(|_| {
            Error::config(format!(
                "MCP server `{server}`: the value of header {k:?} is not valid header text"
            ))
        })?;
        value.set_sensitive(true);
        headers.insert(name, value);
    }
    let client = reqwest::Client::builder()
        .default_headers(headers)
        .pool_max_idle_per_host(0)
        .connect_timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| {
            Error::config(format!(
                "MCP server `{server}`: cannot build the HTTP client: {e}"
            ))
        })?;
    Ok(rmcp::transport::StreamableHttpClientTransport::with_client(
        client,
        StreamableHttpClientTransportConfig::with_uri(cfg.url.clone()),
    ))
}
