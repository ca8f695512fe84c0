//! Shell execution: the [`ShellBackend`] seam, the local and bubblewrap backends, the persistent
//! bash session and one-shot runs.

mod bwrap;
mod etc;
mod proc;
mod reap;
pub(crate) mod session;

use std::path::{Path, PathBuf};

use power_loop_contracts::{BoxFuture, CancellationToken, Result};

pub use bwrap::BubblewrapShell;
pub use proc::{CommandOutput, run_one_shot};

/// How to start a shell process for a workspace. The process must run a non-interactive bash
/// that reads commands from stdin; its stdout and stderr are captured together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchSpec {
    /// Program and arguments (e.g. `["/bin/bash", "--norc", "--noprofile"]`).
    pub argv: Vec<String>,
    /// Working directory of the launched process.
    pub cwd: Option<PathBuf>,
    /// Start from an empty environment instead of inheriting the host's.
    pub clear_env: bool,
    /// Variables to set.
    pub env: Vec<(String, String)>,
}

/// Where shell commands run. Implementations: [`LocalShell`], [`BubblewrapShell`], or a host's
/// (e.g. `docker exec -i … bash`).
pub trait ShellBackend: Send + Sync {
    /// Short name for logs and errors (e.g. `local`, `bubblewrap`).
    fn name(&self) -> &str;

    /// Identity of the execution target; persistent shells are cached per key.
    fn session_key(&self, workspace: &Path) -> String {
        format!("{}:{}", self.name(), workspace.display())
    }

    /// How to launch the shell for `workspace`.
    fn launch(&self, workspace: &Path) -> Result<LaunchSpec>;

    /// Checks that the backend can run commands at all; called before every launch. A sandbox
    /// backend returns `sandbox.unavailable` here and nothing runs (fail closed).
    fn ensure_available<'a>(&'a self, _workspace: &'a Path) -> BoxFuture<'a, Result<()>> {
        Box::pin(std::future::ready(Ok(())))
    }
}

/// The default backend: `/bin/bash --norc --noprofile` on the host, cwd = workspace, host env
/// plus `TERM=dumb`, `NO_COLOR=1`. Not a sandbox.
#[derive(Debug, Clone, Default)]
pub struct LocalShell {
    _private: (),
}

impl LocalShell {
    /// The local backend.
    pub fn new() -> Self {
        Self::default()
    }
}

impl ShellBackend for LocalShell {
    fn name(&self) -> &str {
        "local"
    }

    fn launch(&self, workspace: &Path) -> Result<LaunchSpec> {
        Ok(LaunchSpec {
            argv: vec![
                "/bin/bash".to_owned(),
                "--norc".to_owned(),
                "--noprofile".to_owned(),
            ],
            cwd: Some(workspace.to_path_buf()),
            clear_env: false,
            env: vec![
                ("TERM".to_owned(), "dumb".to_owned()),
                ("NO_COLOR".to_owned(), "1".to_owned()),
            ],
        })
    }
}

/// Builds a tokio command from a launch spec, in its own process group, tagged with `tag`
/// (see [`reap`]) so that everything it starts can be found and killed later.
pub(crate) fn command_for(spec: &LaunchSpec, tag: &str) -> Result<tokio::process::Command> {
    let Some((prog, args)) = spec.argv.split_first() else {
        return Err(power_loop_contracts::Error::new(
            power_loop_contracts::ErrorCode::ConfigInvalid,
            "the shell backend returned an empty argv",
        ));
    };
    let mut cmd = tokio::process::Command::new(prog);
    cmd.args(args);
    if let Some(cwd) = &spec.cwd {
        cmd.current_dir(cwd);
    }
    if spec.clear_env {
        cmd.env_clear();
    }
    for (k, v) in &spec.env {
        cmd.env(k, v);
    }
    cmd.env(reap::TAG_VAR, tag);
    cmd.process_group(0);
    cmd.kill_on_drop(true);
    Ok(cmd)
}

pub(crate) use reap::{ShellProcess, new_tag};

/// A shell started by [`spawn_shell`].
pub(crate) struct SpawnedShell {
    /// The shell process, stdin piped.
    pub(crate) child: tokio::process::Child,
    /// Its process tree (for killing everything it started).
    pub(crate) shell: ShellProcess,
    /// The read end of the one pipe that carries its stdout and stderr.
    pub(crate) output: std::io::PipeReader,
}

/// Starts `backend`'s shell for `workspace` (see [`command_for`]) with stdin piped and stdout
/// and stderr merged into one pipe; a failed start is `tool.failed` naming the backend and argv.
pub(crate) async fn spawn_shell(
    backend: &dyn ShellBackend,
    workspace: &Path,
) -> Result<SpawnedShell> {
    backend.ensure_available(workspace).await?;
    let spec = backend.launch(workspace)?;
    let tag = new_tag();
    let mut cmd = command_for(&spec, &tag)?;
    let (output, writer) = std::io::pipe()?;
    cmd.stdin(std::process::Stdio::piped())
        .stdout(writer.try_clone()?)
        .stderr(writer);
    let child = cmd.spawn().map_err(|e| {
        power_loop_contracts::Error::new(
            power_loop_contracts::ErrorCode::ToolFailed,
            format!(
                "cannot start the {} shell ({}): {e}",
                backend.name(),
                spec.argv.join(" ")
            ),
        )
        .with_source(e)
    })?;
    drop(cmd); // release our copies of the pipe's write end
    let shell = ShellProcess::new(child.id().unwrap_or(0), tag);
    Ok(SpawnedShell {
        child,
        shell,
        output,
    })
}

/// Waits for `token` (helper for `select!`).
pub(crate) async fn cancelled(token: &CancellationToken) {
    token.cancelled().await;
}
