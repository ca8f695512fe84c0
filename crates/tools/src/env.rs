//! The runtime environment of tool calls: workspace root, home, skills, shell backend, policy.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use power_loop_contracts::{Error, ErrorCode, Result};

use crate::backend::NotesPolicy;
use crate::policy::CommandPolicy;
use crate::shell::{LocalShell, ShellBackend};

/// Where tools operate and with what. Build it once per loop and share it via `Arc`.
#[derive(Clone)]
pub struct RuntimeEnv {
    /// The workspace root; file tools are confined to it. Stored canonical.
    pub workspace_dir: Option<PathBuf>,
    /// The agent home (`@home/…`); only `.cache`, `logs` and the skills dir are reachable.
    pub home_dir: Option<PathBuf>,
    /// Directory of skills (`<name>/SKILL.md`).
    pub skills_dir: Option<PathBuf>,
    /// Directory for tool data (e.g. background task logs); optional.
    pub data_dir: Option<PathBuf>,
    /// Where `bash` and `background_run` execute.
    pub shell_backend: Arc<dyn ShellBackend>,
    /// Which shell commands are refused.
    pub command_policy: Arc<CommandPolicy>,
    /// The blackboard id the `board_*` tools use (`None` → no board configured).
    pub board_id: Option<String>,
    /// Timeout of `background_run` commands, in seconds (default 300).
    pub background_timeout_secs: u64,
    /// Limits of the note tools.
    pub notes_policy: NotesPolicy,
    /// How long a file tool waits for the file system, in seconds (default 60): past it the call
    /// fails with `tool.timeout` even if the blocking read or write never returns.
    pub file_timeout_secs: u64,
}

impl Default for RuntimeEnv {
    fn default() -> Self {
        RuntimeEnv {
            workspace_dir: None,
            home_dir: None,
            skills_dir: None,
            data_dir: None,
            shell_backend: Arc::new(LocalShell::new()),
            command_policy: Arc::new(CommandPolicy::default()),
            board_id: None,
            background_timeout_secs: 300,
            notes_policy: NotesPolicy::default(),
            file_timeout_secs: 60,
        }
    }
}

impl fmt::Debug for RuntimeEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RuntimeEnv")
            .field("workspace_dir", &self.workspace_dir)
            .field("home_dir", &self.home_dir)
            .field("skills_dir", &self.skills_dir)
            .field("data_dir", &self.data_dir)
            .field("shell_backend", &self.shell_backend.name())
            .field("command_policy_rules", &self.command_policy.rules.len())
            .field("board_id", &self.board_id)
            .field("file_timeout_secs", &self.file_timeout_secs)
            .finish()
    }
}

fn canonical_dir(p: &Path, what: &str) -> Result<PathBuf> {
    let expanded = expand_tilde(p);
    let canon = std::fs::canonicalize(&expanded).map_err(|e| {
        Error::new(
            ErrorCode::RuntimeEnvMissing,
            format!(
                "{what} {} cannot be resolved: {e}; create the directory or pass another path",
                expanded.display()
            ),
        )
        .with_source(e)
    })?;
    if !canon.is_dir() {
        return Err(Error::new(
            ErrorCode::RuntimeEnvMissing,
            format!("{what} {} is not a directory", canon.display()),
        ));
    }
    Ok(canon)
}

/// Expands a leading `~` with `$HOME`.
pub(crate) fn expand_tilde(p: &Path) -> PathBuf {
    let s = p.to_string_lossy();
    if (s == "~" || s.starts_with("~/"))
        && let Some(home) = std::env::var_os("HOME")
    {
        let mut out = PathBuf::from(home);
        if s.len() > 2 {
            out.push(&s[2..]);
        }
        return out;
    }
    p.to_path_buf()
}

impl RuntimeEnv {
    /// An environment with no directories, the local shell and the default command policy.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the workspace root (must exist; stored canonical).
    pub fn with_workspace(mut self, dir: impl AsRef<Path>) -> Result<Self> {
        self.workspace_dir = Some(canonical_dir(dir.as_ref(), "workspace")?);
        Ok(self)
    }

    /// Sets the agent home (must exist; stored canonical).
    pub fn with_home(mut self, dir: impl AsRef<Path>) -> Result<Self> {
        self.home_dir = Some(canonical_dir(dir.as_ref(), "home directory")?);
        Ok(self)
    }

    /// Sets the skills directory (must exist; stored canonical).
    pub fn with_skills_dir(mut self, dir: impl AsRef<Path>) -> Result<Self> {
        self.skills_dir = Some(canonical_dir(dir.as_ref(), "skills directory")?);
        Ok(self)
    }

    /// Sets the data directory (created when missing).
    pub fn with_data_dir(mut self, dir: impl AsRef<Path>) -> Result<Self> {
        std::fs::create_dir_all(dir.as_ref())?;
        self.data_dir = Some(canonical_dir(dir.as_ref(), "data directory")?);
        Ok(self)
    }

    /// Sets the shell backend.
    pub fn with_shell(mut self, backend: Arc<dyn ShellBackend>) -> Self {
        self.shell_backend = backend;
        self
    }

    /// Sets the command policy.
    pub fn with_command_policy(mut self, policy: CommandPolicy) -> Self {
        self.command_policy = Arc::new(policy);
        self
    }

    /// Sets the board id used by the `board_*` tools.
    pub fn with_board_id(mut self, id: impl Into<String>) -> Self {
        self.board_id = Some(id.into());
        self
    }

    /// The time limit of one blocking file-system step of a file tool
    /// ([`RuntimeEnv::file_timeout_secs`], at least 1 ms).
    pub(crate) fn file_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.file_timeout_secs)
            .max(std::time::Duration::from_millis(1))
    }

    /// Reads `POWER_LOOP_WORKSPACE`, `POWER_LOOP_HOME`, `POWER_LOOP_SKILLS_DIR` and
    /// `POWER_LOOP_DATA_DIR` (blank = unset; `~` expanded; each must exist).
    pub fn from_env() -> Result<Self> {
        let mut env = RuntimeEnv::new();
        let var = |k: &str| {
            std::env::var_os(k)
                .map(PathBuf::from)
                .filter(|p| !p.as_os_str().to_string_lossy().trim().is_empty())
        };
        if let Some(p) = var("POWER_LOOP_WORKSPACE") {
            env = env.with_workspace(p)?;
        }
        if let Some(p) = var("POWER_LOOP_HOME") {
            env = env.with_home(p)?;
        }
        if let Some(p) = var("POWER_LOOP_SKILLS_DIR") {
            env = env.with_skills_dir(p)?;
        }
        if let Some(p) = var("POWER_LOOP_DATA_DIR") {
            env = env.with_data_dir(p)?;
        }
        Ok(env)
    }

    /// The workspace root or a `runtime_env.missing` error telling how to set it.
    pub fn require_workspace(&self) -> Result<&Path> {
        self.workspace_dir.as_deref().ok_or_else(|| {
            Error::new(
                ErrorCode::RuntimeEnvMissing,
                "no workspace is configured: file, search, shell and background tools need one; \
                 pass RuntimeEnv::with_workspace(..) or set POWER_LOOP_WORKSPACE",
            )
        })
    }

    /// The skills directory or a `runtime_env.missing` error telling how to set it.
    pub fn require_skills_dir(&self) -> Result<&Path> {
        self.skills_dir.as_deref().ok_or_else(|| {
            Error::new(
                ErrorCode::RuntimeEnvMissing,
                "no skills directory is configured: pass RuntimeEnv::with_skills_dir(..) or set POWER_LOOP_SKILLS_DIR",
            )
        })
    }

    /// Directories under home that tools may use: `home/.cache`, `home/logs` and the skills dir.
    pub fn home_allowlist(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        if let Some(h) = &self.home_dir {
            out.push(h.join(".cache"));
            out.push(h.join("logs"));
        }
        if let Some(s) = &self.skills_dir {
            out.push(s.clone());
        }
        out
    }
}
