//! One-shot command runs (used by `background_run` and the sandbox probe).

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use power_loop_contracts::{CancellationToken, Result};
use tokio::io::AsyncWriteExt;

use super::{ShellBackend, ShellProcess, SpawnedShell, cancelled, spawn_shell};

/// Result of a one-shot command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutput {
    /// Exit code (`None` when killed or timed out).
    pub exit_code: Option<i32>,
    /// stdout and stderr interleaved (lossy UTF-8, capped at the last `cap` bytes).
    pub output: String,
    /// Whether the time limit was hit (the process group was killed).
    pub timed_out: bool,
    /// Whether the cancellation token fired (the process group was killed).
    pub cancelled: bool,
}

const ONE_SHOT_CAP: usize = 1 << 20;

/// Runs `command` once through the backend's shell (command on stdin), capturing combined
/// output. On timeout or cancel, and when the returned future is dropped, the shell and every
/// process it started (also `setsid`/orphaned ones) are killed; when the shell exits by itself,
/// whatever it left running is killed too, so a run never outlives its result.
pub async fn run_one_shot(
    backend: &dyn ShellBackend,
    workspace: &Path,
    command: &str,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<CommandOutput> {
    let SpawnedShell {
        mut child,
        shell,
        output: reader,
    } = spawn_shell(backend, workspace).await?;
    let mut guard = TreeGuard { shell, armed: true };
    let (tx, rx) = tokio::sync::oneshot::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut reader = reader;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            match reader.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    if buf.len() > 2 * ONE_SHOT_CAP {
                        let cut = buf.len() - ONE_SHOT_CAP;
                        buf.drain(..cut);
                    }
                }
            }
        }
        let _ = tx.send(buf);
    });
    if let Some(mut stdin) = child.stdin.take() {
        let script = format!("{command}\n");
        let _ = stdin.write_all(script.as_bytes()).await;
        drop(stdin);
    }
    let (exit_code, timed_out, was_cancelled) = tokio::select! {
        st = child.wait() => (st.ok().and_then(|s| s.code()), false, false),
        () = tokio::time::sleep(timeout) => (None, true, false),
        () = cancelled(cancel) => (None, false, true),
    };
    // Kill what is left (everything on timeout/cancel; leftovers such as `setsid` daemons after a
    // normal exit), so the output pipe closes and nothing outlives the run.
    guard.kill().await;
    let _ = child.kill().await;
    let bytes = tokio::time::timeout(Duration::from_secs(5), rx)
        .await
        .ok()
        .and_then(|r| r.ok())
        .unwrap_or_default();
    let start = bytes.len().saturating_sub(ONE_SHOT_CAP);
    Ok(CommandOutput {
        exit_code,
        output: String::from_utf8_lossy(&bytes[start..]).into_owned(),
        timed_out,
        cancelled: was_cancelled,
    })
}

/// Kills a shell's whole process tree when dropped while armed (an abandoned run).
struct TreeGuard {
    shell: ShellProcess,
    armed: bool,
}

impl TreeGuard {
    /// Kills the tree now (off the async workers) and disarms the guard.
    async fn kill(&mut self) {
        self.armed = false;
        let shell = self.shell.clone();
        if tokio::task::spawn_blocking(move || shell.kill_tree())
            .await
            .is_err()
        {
            self.shell.kill_tree();
        }
    }
}

impl Drop for TreeGuard {
    fn drop(&mut self) {
        if self.armed {
            self.shell.kill_tree();
        }
    }
}
