//! Shared helpers of the subprocess-executor tests: a parent loop on a SQLite store, a
//! scripted model keyed by the leaf's system prompt, and an executor over the `power-loop`
//! binary (its `worker` subcommand).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;

use power_loop::{
    LlmRequest, Role, ScriptedLlm, ScriptedStep, SessionStore, StatefulAgentLoop, StoreOptions,
    SubprocessExecutor, SubprocessExecutorBuilder, WorkflowEngine, WorkflowResult,
    WorkflowRunOptions, WorkflowRunOutcome, WorkflowRunStatus, WorkflowSpec,
};
use serde_json::Value;

/// The worker binary (this package's `power-loop`).
pub(crate) fn worker_bin() -> &'static str {
    env!("CARGO_BIN_EXE_power-loop")
}

/// A fresh SQLite store in `dir`.
pub(crate) async fn sqlite(dir: &Path) -> SessionStore {
    power_loop::open_store(
        dir.join("parent.db").to_str().unwrap(),
        StoreOptions::default(),
    )
    .await
    .unwrap()
}

/// The last tool result of a request, if the last message is one.
pub(crate) fn last_tool(req: &LlmRequest) -> Option<String> {
    req.messages
        .last()
        .filter(|m| m.role == Role::Tool)
        .map(|m| m.text())
}

/// A model answering `f(request)`, 10 prompt + 5 completion tokens a call.
pub(crate) fn model(
    f: impl Fn(&LlmRequest) -> ScriptedStep + Send + Sync + 'static,
) -> ScriptedLlm {
    ScriptedLlm::from_fn(move |req| f(req).with_tokens(10, 5))
}

/// A loop over `store` with `llm`.
pub(crate) fn parent_loop(llm: &ScriptedLlm, store: &SessionStore) -> StatefulAgentLoop {
    StatefulAgentLoop::builder(Arc::new(llm.clone()))
        .store(store.clone())
        .build()
        .unwrap()
}

/// An executor builder over the `power-loop worker` binary with its runs under `dir`.
pub(crate) fn executor(dir: &Path) -> SubprocessExecutorBuilder {
    SubprocessExecutor::builder(worker_bin()).runs_dir(dir.join("runs"))
}

/// Runs `spec` from the parent loop `lp` under `opts`.
pub(crate) async fn run_with(
    lp: &StatefulAgentLoop,
    opts: WorkflowRunOptions,
    spec: &WorkflowSpec,
) -> WorkflowRunOutcome {
    WorkflowEngine::new(lp.clone(), opts)
        .run(spec)
        .await
        .unwrap()
}

/// Runs `spec` from the parent loop `lp` with its leaves under `ex`, without a journal.
pub(crate) async fn run_without_journal(
    lp: StatefulAgentLoop,
    ex: SubprocessExecutor,
    spec: &WorkflowSpec,
) -> WorkflowRunOutcome {
    let opts = WorkflowRunOptions::new()
        .with_executor(Arc::new(ex))
        .with_journal(false);
    run_with(&lp, opts, spec).await
}

/// Asserts that a run completed, showing its errors when it did not.
pub(crate) fn assert_completed(r: &WorkflowResult) {
    assert_eq!(r.status, WorkflowRunStatus::Completed, "{:?}", r.errors);
}

/// Parses a spec.
pub(crate) fn spec(v: Value) -> WorkflowSpec {
    match WorkflowSpec::from_value(&v) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    }
}

/// An agent node.
pub(crate) fn leaf(id: &str, prompt: &str, input: &str) -> Value {
    serde_json::json!({"type": "agent", "id": id,
        "spec": {"name": id, "system_prompt": prompt}, "input": input})
}

/// An agent node granted `tools`.
pub(crate) fn tool_leaf(id: &str, prompt: &str, input: &str, tools: &[&str]) -> Value {
    serde_json::json!({"type": "agent", "id": id,
        "spec": {"name": id, "system_prompt": prompt, "tools": tools}, "input": input})
}

/// Whether a sandbox tool is installed; otherwise prints why the test skips, or panics when
/// `POWER_LOOP_REQUIRE_PEERS=1`.
pub(crate) fn have_peer(bin: &str) -> bool {
    let ok = std::process::Command::new("sh")
        .args(["-c", &format!("command -v {bin}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("POWER_LOOP_REQUIRE_PEERS").as_deref() != Ok("1"),
            "{bin} is not installed but POWER_LOOP_REQUIRE_PEERS=1 (run scripts/peers.sh up)"
        );
        eprintln!("skipped: {bin} is not installed (scripts/peers.sh up installs it)");
    }
    ok
}
