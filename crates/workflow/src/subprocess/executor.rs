//! [`SubprocessExecutor`]: every leaf runs in its own worker process (with the
//! departures in docs/sandboxing.md): a fresh leaf directory, a launcher picked from the
//! leaf's tools, an allow-listed environment, the worker protocol with heartbeats and limits,
//! and the leaf's session merged into the parent's store at the end.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use power_loop_contracts::Result;

use super::config::{Config, DEFAULT_ENV_ALLOW, KeepLeafDirs, LeafStoreMode, failed};
use super::launcher::{LaunchPlan, LauncherChoice, WorkerLauncher};
use super::supervise::supervise;
use crate::executor::{LeafExecutor, LeafOutcome, LeafRequest};
use crate::result::LeafStatus;

/// Runs each leaf in a worker process (`power-loop worker`, or any binary calling
/// [`serve_worker`](super::serve_worker)). Build with [`SubprocessExecutor::builder`].
#[derive(Clone)]
pub struct SubprocessExecutor {
    pub(crate) cfg: Arc<Config>,
}

impl std::fmt::Debug for SubprocessExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubprocessExecutor")
            .field("program", &self.cfg.program)
            .field("runs_dir", &self.cfg.runs_dir)
            .field("launcher", &self.cfg.launcher)
            .finish_non_exhaustive()
    }
}

/// Builds a [`SubprocessExecutor`].
pub struct SubprocessExecutorBuilder {
    cfg: Config,
}

impl std::fmt::Debug for SubprocessExecutorBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubprocessExecutorBuilder")
            .field("program", &self.cfg.program)
            .finish_non_exhaustive()
    }
}

impl SubprocessExecutor {
    /// A builder for workers started as `program worker` (e.g. the `power-loop` binary, or
    /// `std::env::current_exe()` when the host binary serves as its own worker).
    pub fn builder(program: impl Into<PathBuf>) -> SubprocessExecutorBuilder {
        SubprocessExecutorBuilder {
            cfg: Config {
                program: program.into(),
                args: vec!["worker".into()],
                runs_dir: std::env::temp_dir().join("power_loop_wf_runs"),
                launcher: LauncherChoice::default(),
                tool_preset: None,
                available_tools: Vec::new(),
                workspace: None,
                store: LeafStoreMode::OwnSqlite,
                env_allow: DEFAULT_ENV_ALLOW.iter().map(|s| (*s).to_owned()).collect(),
                env_set: Vec::new(),
                timeout: None,
                memory_bytes: None,
                max_output_bytes: 64 * 1024 * 1024,
                heartbeat_interval: Duration::from_millis(500),
                heartbeat_timeout: Duration::from_secs(15),
                term_grace: Duration::from_secs(3),
                keep: KeepLeafDirs::Never,
                on_spawn: None,
            },
        }
    }

    /// The directory holding the run directories.
    pub fn runs_dir(&self) -> &Path {
        &self.cfg.runs_dir
    }
}

impl SubprocessExecutorBuilder {
    /// The worker's arguments (default `["worker"]`).
    pub fn args(mut self, args: Vec<String>) -> Self {
        self.cfg.args = args;
        self
    }
    /// Where leaf directories are made (default `<temp>/power_loop_wf_runs`); one directory
    /// per run, one per leaf inside it.
    pub fn runs_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cfg.runs_dir = dir.into();
        self
    }
    /// How each leaf's launcher is chosen (default: always [`PlainLauncher`](super::PlainLauncher)).
    pub fn launcher(mut self, choice: LauncherChoice) -> Self {
        self.cfg.launcher = choice;
        self
    }
    /// Every leaf uses this launcher.
    pub fn always(self, launcher: Arc<dyn WorkerLauncher>) -> Self {
        self.launcher(LauncherChoice::Always(launcher))
    }
    /// The default-tool preset the workers build (`core`, `explore`, `full`; default: no
    /// tools). Each leaf's spec whitelist filters it.
    pub fn tool_preset(mut self, preset: impl Into<String>) -> Result<Self> {
        let preset = preset.into();
        self.cfg.available_tools =
            power_loop_tools::ToolSelection::preset(preset.clone()).names()?;
        self.cfg.tool_preset = Some(preset);
        Ok(self)
    }
    /// A workspace shared by all leaves (default: a fresh `workspace/` in each leaf dir).
    pub fn workspace(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cfg.workspace = Some(dir.into());
        self
    }
    /// Where leaves keep their sessions while they run (default [`LeafStoreMode::OwnSqlite`]).
    pub fn store_mode(mut self, mode: LeafStoreMode) -> Self {
        self.cfg.store = mode;
        self
    }
    /// Adds a variable name the workers inherit from this process (see [`DEFAULT_ENV_ALLOW`]).
    pub fn allow_env(mut self, name: impl Into<String>) -> Self {
        self.cfg.env_allow.push(name.into());
        self
    }
    /// Sets a variable in the workers' environment.
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.cfg.env_set.push((name.into(), value.into()));
        self
    }
    /// Wall-time limit per leaf (default none): past it the worker's process group is killed
    /// and the leaf fails with `worker timeout`.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.cfg.timeout = Some(t);
        self
    }
    /// Address-space limit per worker in bytes (`RLIMIT_AS`; default none).
    pub fn memory_limit(mut self, bytes: u64) -> Self {
        self.cfg.memory_bytes = Some(bytes);
        self
    }
    /// The most a worker may write to stdout in all (default 64 MiB); more fails the leaf.
    pub fn max_output_bytes(mut self, n: u64) -> Self {
        self.cfg.max_output_bytes = n;
        self
    }
    /// How often workers send heartbeats (default 500 ms).
    pub fn heartbeat_interval(mut self, d: Duration) -> Self {
        self.cfg.heartbeat_interval = d;
        self
    }
    /// How long without any frame from a worker before its leaf fails (default 15 s).
    pub fn heartbeat_timeout(mut self, d: Duration) -> Self {
        self.cfg.heartbeat_timeout = d;
        self
    }
    /// How long a cancelled or finished worker gets to exit before it is killed (default 3 s).
    pub fn term_grace(mut self, d: Duration) -> Self {
        self.cfg.term_grace = d;
        self
    }
    /// Keeps leaf directories (default [`KeepLeafDirs::Never`]).
    pub fn keep_leaf_dirs(mut self, keep: KeepLeafDirs) -> Self {
        self.cfg.keep = keep;
        self
    }
    /// Called with `(step_key, pid)` when a worker starts (monitoring, tests).
    pub fn on_spawn(mut self, f: impl Fn(&str, u32) + Send + Sync + 'static) -> Self {
        self.cfg.on_spawn = Some(Arc::new(f));
        self
    }
    /// The executor.
    pub fn build(self) -> SubprocessExecutor {
        SubprocessExecutor {
            cfg: Arc::new(self.cfg),
        }
    }
}

/// The safe leaf name: characters other than alphanumerics and `-_.` become `_`, cut to 64.
pub(crate) fn safe(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if out.is_empty() || out == "." || out == ".." {
        "x".to_owned()
    } else {
        out
    }
}

impl SubprocessExecutor {
    /// Makes the leaf's directory (and its workspace) and the base launch plan.
    fn prepare(&self, req: &LeafRequest) -> std::io::Result<LaunchPlan> {
        let c = &self.cfg;
        let run = req
            .spec
            .metadata
            .get("workflow_run_id")
            .and_then(|v| v.as_str())
            .unwrap_or("adhoc");
        let leaf = c.runs_dir.join(safe(run)).join(format!(
            "{}__{:08x}",
            safe(&req.step_key),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&leaf)?;
        let leaf = std::fs::canonicalize(&leaf)?;
        let mut env: Vec<(String, String)> = c
            .env_allow
            .iter()
            .filter_map(|k| std::env::var(k).ok().map(|v| (k.clone(), v)))
            .collect();
        env.push(("HOME".into(), leaf.to_string_lossy().into_owned()));
        env.extend(c.env_set.iter().cloned());
        let mut plan = LaunchPlan::new(c.program.clone(), c.args.clone(), env, leaf.clone());
        if c.tool_preset.is_some() {
            let ws = match &c.workspace {
                Some(w) => std::fs::canonicalize(w)?,
                None => {
                    let w = leaf.join("workspace");
                    std::fs::create_dir_all(&w)?;
                    w
                }
            };
            plan.cwd = ws.clone();
            plan = plan.with_workspace(ws);
        }
        Ok(plan)
    }
}

impl LeafExecutor for SubprocessExecutor {
    fn run_leaf(&self, request: LeafRequest) -> BoxFuture<'_, Result<LeafOutcome>> {
        Box::pin(async move {
            let plan = match self.prepare(&request) {
                Ok(p) => p,
                Err(e) => {
                    return Ok(failed(
                        format!("worker launch failed: cannot make the leaf directory: {e}"),
                        None,
                    ));
                }
            };
            let leaf_dir = plan.leaf_dir.clone();
            let launcher = self
                .cfg
                .launcher
                .for_leaf(&request.spec, &self.cfg.available_tools);
            let outcome = supervise(&self.cfg, &request, plan, launcher.as_ref()).await;
            let keep = match self.cfg.keep {
                KeepLeafDirs::Never => false,
                KeepLeafDirs::Always => true,
                KeepLeafDirs::OnFailure => outcome.status != LeafStatus::Completed,
            };
            let mut outcome = outcome;
            if keep {
                outcome.db_path = Some(leaf_dir.join("leaf.db").to_string_lossy().into_owned());
            } else {
                let _ = std::fs::remove_dir_all(&leaf_dir);
                outcome.db_path = None;
            }
            Ok(outcome)
        })
    }
}
