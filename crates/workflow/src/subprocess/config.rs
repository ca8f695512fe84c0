//! The settings of a [`SubprocessExecutor`](super::SubprocessExecutor) and the failed-leaf
//! outcome its supervisor and executor both build.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::launcher::LauncherChoice;
use crate::executor::LeafOutcome;
use crate::result::LeafStatus;

/// Environment variables a worker gets from the parent by default (nothing else crosses).
pub const DEFAULT_ENV_ALLOW: &[&str] = &["PATH", "LANG", "LC_ALL", "TZ", "RUST_BACKTRACE"];

/// When leaf directories are kept after the leaf ends (for debugging).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeepLeafDirs {
    /// Always removed (the default).
    #[default]
    Never,
    /// Kept when the leaf did not complete.
    OnFailure,
    /// Always kept.
    Always,
}

/// Where a leaf's session is written while it runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum LeafStoreMode {
    /// A SQLite file in the leaf's directory, imported into the parent's store at the end
    /// (the default; always used under a sandbox).
    #[default]
    OwnSqlite,
    /// The parent's server store, written by the worker directly (unsandboxed leaves only).
    ParentDsn {
        /// The DSN.
        dsn: String,
        /// The table prefix.
        table_prefix: String,
    },
}

/// Called with `(step_key, pid)` when a leaf's worker process starts.
pub type SpawnObserver = Arc<dyn Fn(&str, u32) + Send + Sync>;

/// What a [`SubprocessExecutor`](super::SubprocessExecutor) was built with.
pub(crate) struct Config {
    pub(crate) program: PathBuf,
    pub(crate) args: Vec<String>,
    pub(crate) runs_dir: PathBuf,
    pub(crate) launcher: LauncherChoice,
    pub(crate) tool_preset: Option<String>,
    pub(crate) available_tools: Vec<String>,
    pub(crate) workspace: Option<PathBuf>,
    pub(crate) store: LeafStoreMode,
    pub(crate) env_allow: Vec<String>,
    pub(crate) env_set: Vec<(String, String)>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) memory_bytes: Option<u64>,
    pub(crate) max_output_bytes: u64,
    pub(crate) heartbeat_interval: Duration,
    pub(crate) heartbeat_timeout: Duration,
    pub(crate) term_grace: Duration,
    pub(crate) keep: KeepLeafDirs,
    pub(crate) on_spawn: Option<SpawnObserver>,
}

/// A failed outcome with this reason (text and error).
pub(crate) fn failed(reason: String, text: Option<String>) -> LeafOutcome {
    let mut o = LeafOutcome::new(
        LeafStatus::Failed,
        text.unwrap_or_else(|| format!("[{reason}]")),
    );
    o.error = Some(reason);
    o
}
