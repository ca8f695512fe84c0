//! Shared helpers of the agent integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use power_loop_agent::{AgentEventBus, EventFilter, MemoryProvider, MemorySnapshot};
use power_loop_contracts::{
    AgentEvent, BoxFuture, EventPayload, Message, Result, ToolDefinition, ToolOutput,
};
use power_loop_store::SessionStore;
use power_loop_store::conformance::support::open_test_store;
use power_loop_tools::{ToolRegistry, tool_fn};
use serde_json::json;

/// A fresh SQLite store in a temp dir (kept alive by the returned guard).
pub(crate) async fn sqlite_store() -> (SessionStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    (sqlite_at(path.to_str().unwrap()).await, dir)
}

/// Opens the SQLite store at `path`.
pub(crate) async fn sqlite_at(path: &str) -> SessionStore {
    open_test_store(path, None, &[power_loop_store_sqlite::BACKEND]).await
}

/// A PostgreSQL store with this table prefix, when `POWER_LOOP_TEST_PG_DSN` is set (`None` skips;
/// with `POWER_LOOP_REQUIRE_SERVERS=1` an unset variable fails instead).
pub(crate) async fn pg_store(prefix: &str) -> Option<SessionStore> {
    let dsn = power_loop_store::conformance::support::pg_dsn()?;
    Some(pg_at(&dsn, prefix).await)
}

/// Opens PostgreSQL with this prefix.
pub(crate) async fn pg_at(dsn: &str, prefix: &str) -> SessionStore {
    open_test_store(dsn, Some(prefix), &[power_loop_store_postgres::BACKEND]).await
}

/// A unique, valid table prefix (see `power_loop_store::conformance::support::unique_prefix`).
pub(crate) fn unique_prefix(tag: &str) -> String {
    power_loop_store::conformance::support::unique_prefix(tag)
}

/// `echo` (concurrency-safe), `slow_echo` (safe, sleeps `ms`), `write_note` (not safe) and
/// `sleep_forever` (blocks until cancelled).
pub(crate) fn registry() -> ToolRegistry {
    let mut r = ToolRegistry::new();
    let obj = |props: serde_json::Value, req: &[&str]| json!({"type": "object", "properties": props, "required": req});
    r.register(
        tool_fn(
            ToolDefinition::new(
                "echo",
                "Echo the text",
                obj(json!({"text": {"type": "string"}}), &["text"]),
            ),
            |_ctx, args| async move {
                Ok(ToolOutput::ok(
                    args["text"].as_str().unwrap_or_default().to_owned(),
                ))
            },
        )
        .concurrent(true),
    )
    .unwrap();
    r.register(
        tool_fn(
            ToolDefinition::new(
                "slow_echo",
                "Echo after a delay",
                obj(
                    json!({"text": {"type": "string"}, "ms": {"type": "integer"}}),
                    &["text"],
                ),
            ),
            |_ctx, args| async move {
                let ms = args["ms"].as_u64().unwrap_or(50);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Ok(ToolOutput::ok(
                    args["text"].as_str().unwrap_or_default().to_owned(),
                ))
            },
        )
        .concurrent(true),
    )
    .unwrap();
    r.register(tool_fn(
        ToolDefinition::new(
            "write_note",
            "Write a note",
            obj(json!({"text": {"type": "string"}}), &["text"]),
        ),
        |_ctx, args| async move {
            Ok(ToolOutput::ok(format!(
                "noted: {}",
                args["text"].as_str().unwrap_or_default()
            )))
        },
    ))
    .unwrap();
    r.register(tool_fn(
        ToolDefinition::new("sleep_forever", "Blocks", obj(json!({}), &[])),
        |ctx, _args| async move {
            if let Ok(path) = std::env::var("PL_TEST_MARKER") {
                std::fs::write(path, b"in tool").unwrap();
            }
            ctx.cancel.cancelled().await;
            Ok(ToolOutput::ok("woke"))
        },
    ))
    .unwrap();
    r
}

/// Records every event of a bus.
pub(crate) fn record(bus: &AgentEventBus) -> Arc<Mutex<Vec<AgentEvent>>> {
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = Arc::clone(&log);
    bus.subscribe(EventFilter::All, move |e| {
        l.lock().unwrap().push(e.clone());
        Ok(())
    });
    log
}

/// The event names ([`names`]) a send starts with: the session and its first round begin.
pub(crate) const SEND_START: [&str; 2] = ["session_started", "round_started"];

/// The event names ([`names`]) of one model call on the main stream, which succeeds (`ok`) or
/// fails.
pub(crate) fn model_call(ok: bool) -> [&'static str; 4] {
    let completed = if ok {
        "llm_call_completed(true)"
    } else {
        "llm_call_completed(false)"
    };
    [
        "stream_started",
        "llm_call_started",
        completed,
        "stream_completed",
    ]
}

/// Event type names, with a short discriminator for a few types.
pub(crate) fn names(log: &Arc<Mutex<Vec<AgentEvent>>>) -> Vec<String> {
    log.lock()
        .unwrap()
        .iter()
        .filter(|e| !matches!(e.payload, EventPayload::StreamDelta(_)))
        .map(|e| match &e.payload {
            EventPayload::StatusChanged(s) => {
                let v = serde_json::to_value(s).unwrap();
                format!("status_changed({})", v["kind"].as_str().unwrap())
            }
            EventPayload::SessionEnded(p) => format!("session_ended({})", p.reason),
            EventPayload::RoundToolsPresent(p) => format!("round_tools_present({})", p.has_tools),
            EventPayload::RoundCompleted(p) => format!("round_completed({})", p.has_tools),
            EventPayload::ToolCallStarted(p) => format!("tool_call_started({})", p.tool_call_id),
            EventPayload::ToolCallCompleted(p) => {
                format!("tool_call_completed({})", p.tool_call_id)
            }
            EventPayload::LlmCallCompleted(p) => format!("llm_call_completed({})", p.success),
            other => other.event_type().as_str().to_owned(),
        })
        .collect()
}

/// A memory provider: recalls `recalled` on every run and keeps every snapshot it is asked to
/// remember, in order.
#[derive(Default)]
pub(crate) struct TestMemory {
    /// What every recall returns.
    pub(crate) recalled: Vec<Message>,
    /// Every remembered snapshot.
    pub(crate) remembered: Mutex<Vec<MemorySnapshot>>,
}

impl MemoryProvider for TestMemory {
    fn recall<'a>(
        &'a self,
        _session_id: &'a str,
        _messages: &'a [Message],
        _budget_tokens: u64,
    ) -> BoxFuture<'a, Result<Vec<Message>>> {
        Box::pin(async { Ok(self.recalled.clone()) })
    }

    fn remember<'a>(&'a self, snapshot: MemorySnapshot) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            self.remembered.lock().unwrap().push(snapshot);
            Ok(())
        })
    }
}
