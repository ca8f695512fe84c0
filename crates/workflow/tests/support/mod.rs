//! Shared helpers of the workflow integration tests: stores, a deterministic scripted model
//! whose answer depends on the leaf's prompt, and spec parsing.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use power_loop_agent::StatefulAgentLoop;
use power_loop_contracts::LlmRequest;
use power_loop_llm::{ScriptedLlm, Step};
use power_loop_store::SessionStore;
use power_loop_store::conformance::support::open_test_store;
/// The PostgreSQL test DSN, or `None` (skip) when unset; panics when servers are required.
#[allow(unused_imports)] // used by some of the test binaries only
pub(crate) use power_loop_store::conformance::support::pg_dsn;
use power_loop_workflow::WorkflowSpec;
use serde_json::Value;

/// A fresh SQLite store in a temp dir (kept alive by the returned guard).
pub(crate) async fn sqlite_store() -> (SessionStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wf.db");
    (sqlite_at(path.to_str().unwrap()).await, dir)
}

/// Opens the SQLite store at `path`.
pub(crate) async fn sqlite_at(path: &str) -> SessionStore {
    open_test_store(path, None, &[power_loop_store_sqlite::BACKEND]).await
}

/// Opens PostgreSQL with this table prefix.
pub(crate) async fn pg_at(dsn: &str, prefix: &str) -> SessionStore {
    open_test_store(dsn, Some(prefix), &[power_loop_store_postgres::BACKEND]).await
}

/// Opens a store by DSN (SQLite path or postgres:// URL with `prefix`).
pub(crate) async fn store_at(dsn: &str, prefix: &str) -> SessionStore {
    if dsn.starts_with("postgres") {
        pg_at(dsn, prefix).await
    } else {
        sqlite_at(dsn).await
    }
}

/// The last user message of a request.
pub(crate) fn last_user(req: &LlmRequest) -> String {
    req.messages
        .iter()
        .rev()
        .find(|m| m.role == power_loop_contracts::Role::User)
        .map(|m| m.text())
        .unwrap_or_default()
}

/// The system prompt of a request.
pub(crate) fn system(req: &LlmRequest) -> String {
    req.system_prompt.clone().unwrap_or_default()
}

/// A model answering by `f(system prompt, last user message)`, 10 prompt + 5 completion tokens
/// per call.
pub(crate) fn model(f: impl Fn(&str, &str) -> Step + Send + Sync + 'static) -> ScriptedLlm {
    ScriptedLlm::from_fn(move |req| f(&system(req), &last_user(req)).with_tokens(10, 5))
}

/// A text step after `ms` milliseconds.
pub(crate) fn slow_text(text: impl Into<String>, ms: u64) -> Step {
    Step::text(text).with_delay(Duration::from_millis(ms))
}

/// Runs `spec` on an engine with default options over `lp` and returns its result.
pub(crate) async fn run_default(
    lp: StatefulAgentLoop,
    spec: &WorkflowSpec,
) -> power_loop_workflow::WorkflowResult {
    power_loop_workflow::WorkflowEngine::builder(lp)
        .build()
        .run(spec)
        .await
        .unwrap()
        .result
}

/// A loop over `store` with `llm`.
pub(crate) fn agent_loop(llm: &ScriptedLlm, store: &SessionStore) -> StatefulAgentLoop {
    StatefulAgentLoop::builder(Arc::new(llm.clone()))
        .store(store.clone())
        .build()
        .unwrap()
}

/// Parses a spec (panics with the problems when invalid).
pub(crate) fn spec(v: Value) -> WorkflowSpec {
    match WorkflowSpec::from_value(&v) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    }
}

/// An agent node JSON with a system prompt and input template.
pub(crate) fn leaf(id: &str, prompt: &str, input: &str) -> Value {
    serde_json::json!({"type": "agent", "id": id,
        "spec": {"name": id, "system_prompt": prompt}, "input": input})
}

/// `to_value()` of a result without session ids (they differ between runs).
pub(crate) fn comparable(v: &Value) -> Value {
    let mut v = v.clone();
    strip(&mut v);
    v
}

fn strip(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for k in ["session_id", "finished_at_ms", "created_at_ms"] {
                if m.contains_key(k) {
                    m.insert(k.into(), Value::Null);
                }
            }
            m.values_mut().for_each(strip);
        }
        Value::Array(a) => a.iter_mut().for_each(strip),
        _ => {}
    }
}
