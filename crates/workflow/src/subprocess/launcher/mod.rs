//! Launchers: how a leaf's worker process is started ([`WorkerLauncher`]), and which launcher
//! a leaf gets ([`LauncherChoice`], from the tools it is granted).
//!
//! [`PlainLauncher`] starts the worker as it is (a trusted leaf). [`BubblewrapLauncher`] and
//! [`FirejailLauncher`] wrap it in a sandbox: no network, no capabilities, the host's files
//! hidden or read-only except the leaf's directory and workspace. Both fail closed: when their
//! tool is missing or refuses to sandbox, `wrap` fails and the leaf fails with the reason — a
//! leaf meant for a sandbox never runs without one.

mod bwrap;
mod firejail;

use std::path::PathBuf;
use std::sync::Arc;

use power_loop_agent::AgentSpec;
use power_loop_contracts::Result;

pub use bwrap::BubblewrapLauncher;
pub use firejail::FirejailLauncher;

/// The command that starts one leaf's worker, before and after a launcher wraps it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LaunchPlan {
    /// The program.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// The whole environment of the process (nothing else is inherited).
    pub env: Vec<(String, String)>,
    /// The working directory.
    pub cwd: PathBuf,
    /// The leaf's directory (its store file lives here): writable inside a sandbox.
    pub leaf_dir: PathBuf,
    /// The leaf's workspace (its tools work here): writable inside a sandbox.
    pub workspace_dir: Option<PathBuf>,
    /// Host paths the worker needs to read (the worker binary): read-only inside a sandbox.
    pub read_only: Vec<PathBuf>,
}

impl LaunchPlan {
    /// A plan running `program args…` in `leaf_dir` with the given environment.
    pub fn new(
        program: impl Into<PathBuf>,
        args: Vec<String>,
        env: Vec<(String, String)>,
        leaf_dir: impl Into<PathBuf>,
    ) -> Self {
        let leaf_dir = leaf_dir.into();
        let program = program.into();
        LaunchPlan {
            read_only: vec![program.clone()],
            program,
            args,
            env,
            cwd: leaf_dir.clone(),
            leaf_dir,
            workspace_dir: None,
        }
    }

    /// Sets the workspace.
    pub fn with_workspace(mut self, dir: impl Into<PathBuf>) -> Self {
        self.workspace_dir = Some(dir.into());
        self
    }
}

/// Wraps a leaf's worker command (a sandbox runner, a container, …). Called once per leaf.
///
/// An `Err` (the sandbox tool is missing, its probe failed) makes the leaf fail with
/// `worker launch failed: …`; the executor never falls back to another launcher.
pub trait WorkerLauncher: Send + Sync + std::fmt::Debug {
    /// A short name (`plain`, `bubblewrap`, `firejail`), reported with launch failures.
    fn name(&self) -> &str;
    /// Whether the wrapped worker is sandboxed (no network, host files out of reach). A
    /// sandboxed worker always keeps its session in its own SQLite file.
    fn is_sandbox(&self) -> bool;
    /// The command to spawn for `plan`.
    fn wrap(&self, plan: LaunchPlan) -> Result<LaunchPlan>;
}

/// Starts the worker unwrapped: for trusted leaves (no tools that touch the host).
#[derive(Debug, Clone, Copy, Default)]
pub struct PlainLauncher;

impl WorkerLauncher for PlainLauncher {
    fn name(&self) -> &str {
        "plain"
    }
    fn is_sandbox(&self) -> bool {
        false
    }
    fn wrap(&self, plan: LaunchPlan) -> Result<LaunchPlan> {
        Ok(plan)
    }
}

/// The default tools that reach the host (files, shell, background processes): a leaf granted
/// any of them runs under the sandbox launcher of a [`LauncherChoice::ByTools`].
pub const HOST_TOOLS: &[&str] = power_loop_tools::HOST_TOOL_NAMES;

/// Which launcher a leaf gets.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum LauncherChoice {
    /// Every leaf uses this launcher.
    Always(Arc<dyn WorkerLauncher>),
    /// A leaf granted any of `sandboxed_tools` uses `sandbox`; the others use `plain`.
    ByTools {
        /// The sandbox launcher.
        sandbox: Arc<dyn WorkerLauncher>,
        /// The launcher of leaves without host tools.
        plain: Arc<dyn WorkerLauncher>,
        /// The tools that require the sandbox.
        sandboxed_tools: Vec<String>,
    },
}

impl Default for LauncherChoice {
    fn default() -> Self {
        LauncherChoice::Always(Arc::new(PlainLauncher))
    }
}

impl LauncherChoice {
    /// Leaves granted a [`HOST_TOOLS`] tool run under `sandbox`, the others unwrapped.
    pub fn sandbox_host_tools(sandbox: Arc<dyn WorkerLauncher>) -> Self {
        LauncherChoice::ByTools {
            sandbox,
            plain: Arc::new(PlainLauncher),
            sandboxed_tools: HOST_TOOLS.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    /// The launcher of a leaf whose worker offers `available` tools (before the spec's
    /// whitelist). A spec without a whitelist is granted every available tool.
    pub fn for_leaf(&self, spec: &AgentSpec, available: &[String]) -> Arc<dyn WorkerLauncher> {
        match self {
            LauncherChoice::Always(l) => l.clone(),
            LauncherChoice::ByTools {
                sandbox,
                plain,
                sandboxed_tools,
            } => {
                let granted: Vec<&String> = match &spec.tools {
                    Some(list) => available.iter().filter(|t| list.contains(t)).collect(),
                    None => available.iter().collect(),
                };
                if granted.iter().any(|t| sandboxed_tools.contains(t)) {
                    sandbox.clone()
                } else {
                    plain.clone()
                }
            }
        }
    }
}

/// The host's system directories a sandboxed worker may read (besides a minimal `/etc`).
pub(crate) const SYSTEM_DIRS: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
];

/// The `/etc` entries a sandboxed worker sees (the dynamic loader, time zone, certificates):
/// no `shadow`, `sudoers`, private keys or host configuration.
pub(crate) const ETC_ENTRIES: &[&str] = &[
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "alternatives",
    "localtime",
    "nsswitch.conf",
    "passwd",
    "group",
    "ssl/certs",
];

/// Runs a probe command synchronously; `Err` carries its stderr.
pub(crate) fn probe(program: &std::path::Path, args: &[String]) -> std::result::Result<(), String> {
    let out = std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    if out.status.success() {
        Ok(())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        let err = err.trim();
        Err(format!(
            "{} exited with {} ({})",
            program.display(),
            out.status,
            if err.is_empty() { "no stderr" } else { err }
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Named(&'static str);
    impl WorkerLauncher for Named {
        fn name(&self) -> &str {
            self.0
        }
        fn is_sandbox(&self) -> bool {
            true
        }
        fn wrap(&self, plan: LaunchPlan) -> Result<LaunchPlan> {
            Ok(plan)
        }
    }

    #[test]
    fn by_tools_picks_the_sandbox_for_granted_host_tools() {
        let c = LauncherChoice::sandbox_host_tools(Arc::new(Named("box")));
        let avail: Vec<String> = ["bash", "todo"].iter().map(|s| (*s).to_owned()).collect();
        let mut spec = AgentSpec::new("a", "p");
        assert_eq!(c.for_leaf(&spec, &avail).name(), "box"); // no whitelist: all tools
        spec.tools = Some(vec!["todo".into()]);
        assert_eq!(c.for_leaf(&spec, &avail).name(), "plain");
        spec.tools = Some(vec!["bash".into()]);
        assert_eq!(c.for_leaf(&spec, &avail).name(), "box");
        assert_eq!(c.for_leaf(&spec, &[]).name(), "plain"); // not offered: not granted
    }
}
