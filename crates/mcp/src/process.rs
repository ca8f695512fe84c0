//! Starting a stdio server as a child process: a clean environment, an optional sandbox
//! launcher, its own process group, a captured stderr tail, and a stop that leaves no zombies.

use std::collections::VecDeque;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use power_loop_contracts::{Error, ErrorCode, Result};
use rustix::process::{Pid, Signal};
use tokio::io::AsyncBufReadExt;
use tokio::process::{Child, ChildStdin, ChildStdout};

use crate::config::{DEFAULT_INHERITED_ENV, StdioConfig};

/// Lines of the server's stderr kept for error messages.
const TAIL_LINES: usize = 20;
/// Longest stderr line kept (characters).
const TAIL_LINE_CHARS: usize = 400;
/// How long a server gets to exit after its stdin closes, and again after SIGTERM.
const EXIT_GRACE: Duration = Duration::from_millis(1500);

/// The last lines a server wrote to stderr (it is also logged at debug level).
#[derive(Debug, Default)]
pub(crate) struct StderrTail {
    lines: Mutex<VecDeque<String>>,
    eof: std::sync::atomic::AtomicBool,
    eof_notify: tokio::sync::Notify,
}

impl StderrTail {
    fn mark_eof(&self) {
        self.eof.store(true, std::sync::atomic::Ordering::Release);
        self.eof_notify.notify_waiters();
    }

    /// Waits (at most `limit`) until the server's stderr is closed, so the tail is complete.
    pub(crate) async fn wait_eof(&self, limit: Duration) {
        let _ = tokio::time::timeout(limit, async {
            loop {
                let notified = self.eof_notify.notified();
                if self.eof.load(std::sync::atomic::Ordering::Acquire) {
                    return;
                }
                notified.await;
            }
        })
        .await;
    }

    fn push(&self, line: String) {
        let mut l = self
            .lines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if l.len() == TAIL_LINES {
            l.pop_front();
        }
        l.push_back(line.chars().take(TAIL_LINE_CHARS).collect());
    }

    /// The kept lines, joined; empty when the server wrote nothing.
    pub(crate) fn text(&self) -> String {
        let l = self
            .lines
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        l.iter().cloned().collect::<Vec<_>>().join("\n")
    }
}

/// A started server process (the leader of its own process group).
#[derive(Debug)]
pub(crate) struct ServerProcess {
    pid: u32,
    child: Mutex<Option<Child>>,
    pub(crate) stderr: Arc<StderrTail>,
}

/// The process plus its stdio pipes (handed to the MCP transport).
pub(crate) struct Spawned {
    pub(crate) process: ServerProcess,
    pub(crate) stdout: ChildStdout,
    pub(crate) stdin: ChildStdin,
}

/// Starts `cfg` for the server `name`. The child gets an empty environment plus
/// [`DEFAULT_INHERITED_ENV`] and `inherit_env` from the host (or, under a launcher, the
/// launcher's environment), then `env`.
pub(crate) async fn spawn(name: &str, cfg: &StdioConfig) -> Result<Spawned> {
    let mut cmd = match &cfg.launcher {
        None => {
            let mut c = tokio::process::Command::new(&cfg.command);
            c.args(&cfg.args).env_clear();
            for key in DEFAULT_INHERITED_ENV {
                if let Ok(v) = std::env::var(key) {
                    c.env(key, v);
                }
            }
            if let Some(dir) = &cfg.cwd {
                c.current_dir(dir);
            }
            c
        }
        Some(launcher) => {
            let Some(workspace) = cfg.cwd.as_deref() else {
                return Err(Error::config(format!(
                    "MCP server `{name}`: a sandboxed server needs `cwd` (the sandbox's workspace)"
                )));
            };
            launcher.ensure_available(workspace).await?;
            let spec = launcher.launch(workspace)?;
            let Some((prog, rest)) = spec.argv.split_first() else {
                return Err(Error::config(format!(
                    "MCP server `{name}`: the `{}` launcher returned an empty command",
                    launcher.name()
                )));
            };
            let mut c = tokio::process::Command::new(prog);
            // The launcher starts bash; bash replaces itself with the server.
            c.args(rest)
                .arg("-c")
                .arg("exec \"$@\"")
                .arg("mcp-server")
                .arg(&cfg.command)
                .args(&cfg.args)
                .env_clear()
                .envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            c.current_dir(spec.cwd.as_deref().unwrap_or(workspace));
            c
        }
    };
    for key in &cfg.inherit_env {
        if let Ok(v) = std::env::var(key) {
            cmd.env(key, v);
        }
    }
    cmd.envs(cfg.env.iter())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .map_err(|e| spawn_error(name, &cfg.command, cfg.cwd.as_deref(), e))?;
    let pid = child.id().unwrap_or(0);
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(Error::internal("the server's stdio pipes were not created"));
    };
    let stderr = Arc::new(StderrTail::default());
    if let Some(err) = child.stderr.take() {
        let tail = Arc::clone(&stderr);
        let server = name.to_owned();
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(err).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::debug!(target: "power_loop::mcp", server = %server, "stderr: {line}");
                tail.push(line);
            }
            tail.mark_eof();
        });
    }
    Ok(Spawned {
        process: ServerProcess {
            pid,
            child: Mutex::new(Some(child)),
            stderr,
        },
        stdout,
        stdin,
    })
}

fn spawn_error(name: &str, command: &str, cwd: Option<&Path>, e: std::io::Error) -> Error {
    let hint = match e.kind() {
        std::io::ErrorKind::NotFound => match cwd {
            Some(d) if !d.exists() => {
                format!("the working directory {} does not exist", d.display())
            }
            _ => format!("`{command}` was not found on the PATH given to the server"),
        },
        std::io::ErrorKind::PermissionDenied => format!("`{command}` is not executable"),
        _ => e.to_string(),
    };
    Error::new(
        ErrorCode::McpUnavailable,
        format!("MCP server `{name}` could not be started: {hint}"),
    )
    .with_detail("server", name)
    .with_source(e)
}

impl ServerProcess {
    /// The process id (also the process group id).
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// The exit status once the process has ended (`None` while it runs).
    pub(crate) fn exit_status(&self) -> Option<String> {
        let mut g = self
            .child
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match g.as_mut() {
            None => Some("stopped".to_owned()),
            Some(c) => match c.try_wait() {
                Ok(Some(status)) => Some(status.to_string()),
                Ok(None) => None,
                Err(e) => Some(format!("unknown ({e})")),
            },
        }
    }

    fn signal_group(&self, sig: Signal) {
        if let Some(pid) = i32::try_from(self.pid).ok().and_then(Pid::from_raw) {
            // ESRCH (already gone) is the expected outcome of a clean exit.
            let _ = rustix::process::kill_process_group(pid, sig);
        }
    }

    /// Stops the server: waits for it to exit after its stdin closed (the caller closes the
    /// transport first), then SIGTERM to the process group, then SIGKILL; reaps the leader and
    /// kills whatever is left in its group.
    pub(crate) async fn stop(&self) {
        let child = self
            .child
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let Some(mut child) = child else {
            return;
        };
        let mut exited = tokio::time::timeout(EXIT_GRACE, child.wait()).await.is_ok();
        if !exited {
            self.signal_group(Signal::TERM);
            exited = tokio::time::timeout(EXIT_GRACE, child.wait()).await.is_ok();
        }
        self.signal_group(Signal::KILL);
        if !exited {
            let _ = child.wait().await;
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let child = self
            .child
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        if let Some(mut child) = child {
            self.signal_group(Signal::KILL);
            // Reap now if it is already gone; otherwise tokio's orphan reaper does it
            // (kill_on_drop) once the SIGKILL lands.
            if !matches!(child.try_wait(), Ok(Some(_)))
                && let Ok(rt) = tokio::runtime::Handle::try_current()
            {
                rt.spawn(async move {
                    let _ = child.wait().await;
                });
            }
        }
    }
}
