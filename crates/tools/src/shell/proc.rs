//! One-shot command runs (used by `background_run` and the sandbox probe).

use std::io::Read;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use power_loop_contracts::{CancellationToken, Error, ErrorCode, Result};
use tokio::io::AsyncWriteExt;

use super::{ShellBackend, cancelled, command_for, kill_group};

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
/// output; kills the whole process group on timeout or cancel.
pub async fn run_one_shot(
    backend: &dyn ShellBackend,
    workspace: &Path,
    command: &str,
    timeout: Duration,
    cancel: &CancellationToken,
) -> Result<CommandOutput> {
    backend.ensure_available(workspace).await?;
    let spec = backend.launch(workspace)?;
    let mut cmd = command_for(&spec)?;
    let (reader, writer) = std::io::pipe()?;
    cmd.stdin(Stdio::piped())
        .stdout(writer.try_clone()?)
        .stderr(writer);
    let mut child = cmd.spawn().map_err(|e| {
        Error::new(
            ErrorCode::ToolFailed,
            format!("cannot start the {} shell: {e}", backend.name()),
        )
        .with_source(e)
    })?;
    drop(cmd);
    let pgid = child.id().unwrap_or(0);
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
        () = tokio::time::sleep(timeout) => { kill_group(pgid); let _ = child.kill().await; (None, true, false) }
        () = cancelled(cancel) => { kill_group(pgid); let _ = child.kill().await; (None, false, true) }
    };
    // Grandchildren may keep the pipe open: if the reader does not see EOF soon, kill the group.
    let mut rx = rx;
    let bytes = match tokio::time::timeout(Duration::from_millis(300), &mut rx).await {
        Ok(r) => r.unwrap_or_default(),
        Err(_) => {
            kill_group(pgid);
            tokio::time::timeout(Duration::from_secs(5), rx)
                .await
                .ok()
                .and_then(|r| r.ok())
                .unwrap_or_default()
        }
    };
    let start = bytes.len().saturating_sub(ONE_SHOT_CAP);
    Ok(CommandOutput {
        exit_code,
        output: String::from_utf8_lossy(&bytes[start..]).into_owned(),
        timed_out,
        cancelled: was_cancelled,
    })
}
