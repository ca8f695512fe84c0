#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use power_loop_contracts::ToolCall;
use power_loop_tools::{
    RuntimeEnv, ToolContext, ToolOutcome, ToolRegistry, ToolSelection, default_registry,
};

pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub env: Arc<RuntimeEnv>,
    pub reg: ToolRegistry,
}

impl Fixture {
    pub fn new() -> Self {
        Self::with_env(|e| e)
    }

    pub fn with_env(f: impl FnOnce(RuntimeEnv) -> RuntimeEnv) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let env = f(RuntimeEnv::new().with_workspace(dir.path()).unwrap());
        let reg = default_registry(&env, &ToolSelection::default()).unwrap();
        Fixture {
            dir,
            env: Arc::new(env),
            reg,
        }
    }

    pub fn ws(&self) -> std::path::PathBuf {
        self.env.workspace_dir.clone().unwrap()
    }

    pub fn ctx(&self) -> ToolContext {
        ToolContext::new(self.env.clone())
            .with_session("s1")
            .with_tool_call_id("call_1")
    }

    pub async fn call(&self, name: &str, args: serde_json::Value) -> ToolOutcome {
        self.call_ctx(self.ctx(), name, args).await
    }

    pub async fn call_ctx(
        &self,
        ctx: ToolContext,
        name: &str,
        args: serde_json::Value,
    ) -> ToolOutcome {
        let call = ToolCall::new("call_1", name, args.to_string());
        self.reg.invoke(ctx, &call).await
    }

    pub fn write(&self, rel: &str, content: &[u8]) {
        let p = self.ws().join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(p, content).unwrap();
    }

    pub fn read(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.ws().join(rel)).unwrap()
    }
}

pub fn ok(o: &ToolOutcome) -> &str {
    assert!(o.output.ok, "expected success, got: {}", o.output.content);
    &o.output.content
}

pub fn failed(o: &ToolOutcome) -> &str {
    assert!(!o.output.ok, "expected failure, got: {}", o.output.content);
    assert!(o.error_code.is_some(), "failed outcome without code");
    &o.output.content
}
