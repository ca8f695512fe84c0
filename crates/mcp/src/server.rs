//! [`McpServer`]: one configured server, kept connected. It starts the server, lists its tools,
//! follows `notifications/tools/list_changed`, restarts a dead server on the next call (with
//! backoff when restarts keep failing) and stops it on [`McpServer::close`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::time::{Duration, Instant};

use power_loop_contracts::{CancellationToken, Result, ToolOutput};
use serde_json::Value;

use crate::config::{McpServerConfig, McpTransport};
use crate::connection::{Connection, ListChanged, unavailable};
use crate::content::map_call_result;
use crate::names::sanitize_tool_name;
use crate::table::{McpToolInfo, ToolTable};

/// First restart delay after a failed restart; it doubles per failure up to [`MAX_BACKOFF`].
const BASE_BACKOFF: Duration = Duration::from_millis(500);
/// Longest wait between restart attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// One MCP server kept connected. Cloning is cheap (shared state).
#[derive(Clone)]
pub struct McpServer {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for McpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpServer")
            .field("name", &self.inner.name)
            .field("tools", &self.tools().len())
            .finish()
    }
}

pub(crate) struct Inner {
    pub(crate) name: String,
    pub(crate) config: McpServerConfig,
    prefix: String,
    slot: tokio::sync::Mutex<Slot>,
    table: RwLock<Arc<ToolTable>>,
    /// Every local name this server ever handed out (to find its tools in a registry).
    pub(crate) issued: RwLock<std::collections::HashSet<String>>,
    generation: AtomicU64,
    info: RwLock<Value>,
}

#[derive(Default)]
struct Slot {
    conn: Option<Arc<Connection>>,
    failures: u32,
    retry_at: Option<Instant>,
    last_error: Option<String>,
}

fn backoff(failures: u32) -> Duration {
    let factor = 1u32 << failures.saturating_sub(1).min(10);
    BASE_BACKOFF.saturating_mul(factor).min(MAX_BACKOFF)
}

impl McpServer {
    /// Starts (or reaches) the server `name`, initializes it and lists its tools. Fails with
    /// `mcp.unavailable` (naming the server, with its last stderr lines) when it does not come
    /// up within the startup timeout.
    pub async fn connect(name: impl Into<String>, config: McpServerConfig) -> Result<McpServer> {
        Self::connect_avoiding(name.into(), config, Vec::new()).await
    }

    pub(crate) async fn connect_avoiding(
        name: String,
        config: McpServerConfig,
        taken: Vec<String>,
    ) -> Result<McpServer> {
        let prefix = match &config.prefix {
            Some(p) => p.clone(),
            None => format!("{}_", sanitize_tool_name(&name)),
        };
        let server = McpServer {
            inner: Arc::new(Inner {
                name,
                config,
                prefix,
                slot: tokio::sync::Mutex::new(Slot::default()),
                table: RwLock::new(Arc::new(ToolTable::default())),
                issued: RwLock::new(Default::default()),
                generation: AtomicU64::new(0),
                info: RwLock::new(Value::Null),
            }),
        };
        let conn = server.inner.open().await?;
        server.inner.slot.lock().await.conn = Some(Arc::clone(&conn));
        if let Err(e) = server.inner.relist(&conn, taken).await {
            conn.close().await;
            return Err(e);
        }
        Ok(server)
    }

    /// The server's name (its key in the configuration).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Its configuration.
    pub fn config(&self) -> &McpServerConfig {
        &self.inner.config
    }

    /// The tools offered right now, in server order.
    pub fn tools(&self) -> Vec<McpToolInfo> {
        self.inner
            .table()
            .entries
            .iter()
            .map(|e| e.info.clone())
            .collect()
    }

    /// Remote tools left out, with the reason (allow/deny lists, invalid schemas, duplicates).
    pub fn skipped_tools(&self) -> Vec<(String, String)> {
        self.inner.table().skipped.clone()
    }

    /// `serverInfo` (name, version) and `protocolVersion` from the last initialize, as JSON.
    pub fn server_info(&self) -> Value {
        self.inner
            .info
            .read()
            .map(|v| v.clone())
            .unwrap_or(Value::Null)
    }

    /// Bumped whenever the tool list changes (a refresh found different tools).
    pub fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Acquire)
    }

    /// The pid of the running stdio server (`None` for HTTP or while it is down).
    pub async fn pid(&self) -> Option<u32> {
        let slot = self.inner.slot.lock().await;
        slot.conn.as_ref().and_then(|c| c.pid())
    }

    /// Lists the tools again (as on `notifications/tools/list_changed`); returns whether the
    /// list changed. Starts the server if it is down.
    pub async fn refresh(&self) -> Result<bool> {
        let before = self.generation();
        let conn = self.inner.connection().await?;
        self.inner.relist(&conn, Vec::new()).await?;
        Ok(self.generation() != before)
    }

    /// Calls the remote tool `remote_name` with `arguments` (a JSON object), with the
    /// configured timeout, and maps the result (see [`map_call_result`]).
    pub async fn call(
        &self,
        remote_name: &str,
        arguments: serde_json::Map<String, Value>,
        cancel: &CancellationToken,
    ) -> Result<ToolOutput> {
        let conn = self.inner.connection().await?;
        let raw = conn
            .call_tool(
                remote_name,
                arguments,
                self.inner.config.call_timeout,
                cancel,
            )
            .await?;
        Ok(map_call_result(&raw))
    }

    /// Stops the server (stdin closed, then SIGTERM, then SIGKILL to its process group; the
    /// process is reaped). A later call starts it again.
    pub async fn close(&self) {
        let conn = self.inner.slot.lock().await.conn.take();
        if let Some(conn) = conn {
            conn.close().await;
        }
    }
}

impl Inner {
    pub(crate) fn table(&self) -> Arc<ToolTable> {
        self.table
            .read()
            .map(|t| Arc::clone(&t))
            .unwrap_or_else(|p| Arc::clone(&p.into_inner()))
    }

    fn list_changed_callback(self: &Arc<Self>) -> ListChanged {
        let weak: Weak<Inner> = Arc::downgrade(self);
        Arc::new(move || {
            let Some(inner) = weak.upgrade() else { return };
            tokio::spawn(async move {
                let conn = inner.slot.lock().await.conn.clone();
                if let Some(conn) = conn
                    && let Err(e) = inner.relist(&conn, Vec::new()).await
                {
                    tracing::warn!(target: "power_loop::mcp", server = %inner.name, error = %e, "refreshing the tool list failed");
                }
            });
        })
    }

    async fn open(self: &Arc<Self>) -> Result<Arc<Connection>> {
        let timeout = self.config.startup_timeout;
        let open = Connection::open(
            &self.name,
            &self.config.transport,
            self.list_changed_callback(),
        );
        let conn = tokio::time::timeout(timeout, open).await.map_err(|_| {
            unavailable(
                &self.name,
                format!(
                    "MCP server `{}` did not start and initialize within {} ms",
                    self.name,
                    timeout.as_millis()
                ),
            )
        })??;
        if let Ok(mut i) = self.info.write() {
            *i = conn.info.clone();
        }
        Ok(Arc::new(conn))
    }

    async fn relist(&self, conn: &Connection, taken: Vec<String>) -> Result<()> {
        let listed = conn.list_tools(self.config.startup_timeout).await?;
        let old = self.table();
        let table = ToolTable::build(
            &self.name,
            &self.prefix,
            &self.config,
            &listed,
            &old.local_names(),
            taken,
        );
        let changed = table.entries.len() != old.entries.len()
            || table.entries.iter().zip(old.entries.iter()).any(|(a, b)| {
                a.info.local_name != b.info.local_name
                    || a.info.input_schema != b.info.input_schema
                    || a.info.description != b.info.description
            });
        if let Ok(mut issued) = self.issued.write() {
            issued.extend(table.entries.iter().map(|e| e.info.local_name.clone()));
        }
        if let Ok(mut t) = self.table.write() {
            *t = Arc::new(table);
        }
        if changed {
            self.generation.fetch_add(1, Ordering::AcqRel);
            tracing::info!(target: "power_loop::mcp", server = %self.name, "the tool list changed");
        }
        Ok(())
    }

    /// The live connection; a dead one is replaced (immediately after a death, then with
    /// backoff while restarts fail).
    pub(crate) async fn connection(self: &Arc<Self>) -> Result<Arc<Connection>> {
        let mut slot = self.slot.lock().await;
        if let Some(conn) = &slot.conn {
            match conn.death() {
                None => return Ok(Arc::clone(conn)),
                Some(why) => {
                    tracing::warn!(target: "power_loop::mcp", server = %self.name, "server is down ({why}); restarting");
                    slot.last_error = Some(why);
                    if let Some(old) = slot.conn.take() {
                        old.close().await;
                    }
                }
            }
        }
        if let Some(at) = slot.retry_at
            && Instant::now() < at
        {
            let wait = at.saturating_duration_since(Instant::now());
            return Err(unavailable(
                &self.name,
                format!(
                    "MCP server `{}` is down and its last restart failed; the next attempt is in {} ms. Last error: {}",
                    self.name,
                    wait.as_millis(),
                    slot.last_error.as_deref().unwrap_or("unknown")
                ),
            ));
        }
        match self.open().await {
            Ok(conn) => {
                slot.failures = 0;
                slot.retry_at = None;
                slot.conn = Some(Arc::clone(&conn));
                drop(slot);
                // A restarted server may offer different tools.
                if let Err(e) = self.relist(&conn, Vec::new()).await {
                    tracing::warn!(target: "power_loop::mcp", server = %self.name, error = %e, "listing tools after a restart failed");
                }
                Ok(conn)
            }
            Err(e) => {
                slot.failures = slot.failures.saturating_add(1);
                slot.retry_at = Some(Instant::now() + backoff(slot.failures));
                slot.last_error = Some(e.message().to_owned());
                Err(e)
            }
        }
    }
}

/// The transport kind as a word (`stdio` / `http`), for listings.
pub(crate) fn transport_kind(t: &McpTransport) -> &'static str {
    match t {
        McpTransport::Stdio(_) => "stdio",
        McpTransport::Http(_) => "http",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(1), Duration::from_millis(500));
        assert_eq!(backoff(2), Duration::from_secs(1));
        assert_eq!(backoff(4), Duration::from_secs(4));
        assert_eq!(backoff(40), MAX_BACKOFF);
    }

    #[tokio::test]
    async fn a_missing_command_is_a_typed_unavailable_error() {
        let e = McpServer::connect(
            "ghost",
            McpServerConfig::stdio("/nonexistent/mcp-server-ghost", Vec::<String>::new()),
        )
        .await
        .unwrap_err();
        assert_eq!(e.code(), power_loop_contracts::ErrorCode::McpUnavailable);
        assert!(
            e.message().contains("`ghost` could not be started"),
            "{}",
            e.message()
        );
    }

    #[tokio::test]
    async fn a_server_that_exits_at_once_reports_its_stderr() {
        let e = McpServer::connect(
            "bad",
            McpServerConfig::stdio("sh", ["-c", "echo boom-from-server >&2; exit 3"]),
        )
        .await
        .unwrap_err();
        assert_eq!(e.code(), power_loop_contracts::ErrorCode::McpUnavailable);
        assert!(e.message().contains("boom-from-server"), "{}", e.message());
    }
}
