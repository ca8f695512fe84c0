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

/// Asserts that `o` failed with `tool.denied` (`what` names the case in the failure message);
/// returns its message.
pub fn denied<'a>(o: &'a ToolOutcome, what: &str) -> &'a str {
    assert!(
        !o.output.ok,
        "{what}: expected a denial, got: {}",
        o.output.content
    );
    assert_eq!(
        o.error_code,
        Some(power_loop_contracts::ErrorCode::ToolDenied),
        "{what}: {}",
        o.output.content
    );
    &o.output.content
}

/// The test-only switch that makes the file tools resolve every path with the user-space
/// `O_NOFOLLOW` walker instead of `openat2` (read once per process by the library).
pub const WALKER_ENV: &str = "POWER_LOOP_TEST_FS_WALKER";

/// Whether this process runs with the fallback walker forced.
pub fn walker_forced() -> bool {
    std::env::var_os(WALKER_ENV).is_some_and(|v| v == "1")
}

/// Called first by every test that is also re-run through the fallback: when the walker is
/// forced, proves the library really uses it. The probe is a skill symlinked with an absolute
/// target that stays inside the skills directory: the walker follows it, `openat2`
/// (RESOLVE_BENEATH) refuses every absolute link, so only the walker loads it.
pub fn check_resolver() {
    if !walker_forced() {
        return;
    }
    let skills = tempfile::tempdir().unwrap();
    let dir = std::fs::canonicalize(skills.path()).unwrap();
    std::fs::create_dir(dir.join("good")).unwrap();
    std::fs::write(dir.join("good/SKILL.md"), "body").unwrap();
    std::os::unix::fs::symlink(dir.join("good"), dir.join("abs")).unwrap();
    let loader = power_loop_tools::SkillLoader::new(&dir).unwrap();
    assert_eq!(
        loader.names(),
        ["abs", "good"],
        "{WALKER_ENV}=1 is set but the file tools did not use the fallback walker"
    );
}

/// Re-runs `tests` (exact names) of the current test binary in a child process with the
/// fallback walker forced, and asserts that all of them ran and passed there.
pub fn rerun_through_walker(tests: &[&str]) {
    if walker_forced() {
        return; // already the child
    }
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args(["--exact", "--test-threads=1", "--nocapture"])
        .args(tests)
        .env(WALKER_ENV, "1")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let want = format!("test result: ok. {} passed", tests.len());
    assert!(
        out.status.success() && stdout.contains(&want),
        "through the fallback walker:\n{stdout}\n{stderr}"
    );
    // Show the child's own report lines (e.g. the race counts).
    for line in stderr.lines().filter(|l| l.contains("escapes")) {
        eprintln!("[walker] {line}");
    }
}
