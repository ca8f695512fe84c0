//! The persistent bash session: one long-lived shell per target, commands framed by a sentinel.

use std::collections::VecDeque;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use power_loop_contracts::{CancellationToken, Error, ErrorCode, Result};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::{ShellBackend, ShellProcess, SpawnedShell, cancelled, spawn_shell};
use crate::text::{RESULT_MAX_CHARS, strip_ansi};

const HEAD_LINES: usize = 30;
const TAIL_LINES: usize = 170;
/// A single output line longer than this is split (bounds memory on binary spew).
const MAX_LINE_BYTES: usize = RESULT_MAX_CHARS * 2;

enum Msg {
    Line(String),
    Eof,
}

/// Output lines kept as the first 30 and the last 170 (the rest only counted).
#[derive(Debug, Default)]
pub(crate) struct LineBuf {
    head: Vec<String>,
    tail: VecDeque<String>,
    total: usize,
}

impl LineBuf {
    fn push(&mut self, line: String) {
        self.total += 1;
        if self.head.len() < HEAD_LINES {
            self.head.push(line);
            return;
        }
        self.tail.push_back(line);
        if self.tail.len() > TAIL_LINES {
            self.tail.pop_front();
        }
    }

    /// The lines with a `... (N lines omitted) ...` marker when more than 200 were produced.
    pub(crate) fn render(&self) -> String {
        if self.total == 0 {
            return "(no output)".to_owned();
        }
        let omitted = self.total - self.head.len() - self.tail.len();
        let head = self.head.join("\n");
        let tail: Vec<&str> = self.tail.iter().map(String::as_str).collect();
        let tail = tail.join("\n");
        if omitted > 0 {
            format!("{head}\n\n... ({omitted} lines omitted) ...\n\n{tail}")
        } else if tail.is_empty() {
            head
        } else {
            format!("{head}\n{tail}")
        }
    }
}

/// What one execution produced.
#[derive(Debug)]
pub(crate) struct ExecResult {
    pub(crate) exit_code: Option<i32>,
    pub(crate) lines: LineBuf,
    pub(crate) timed_out: bool,
    pub(crate) cancelled: bool,
    /// The shell itself exited (e.g. `exit 3`); it is relaunched on the next call.
    pub(crate) shell_exited: bool,
}

struct Running {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    rx: mpsc::UnboundedReceiver<Msg>,
    shell: ShellProcess,
}

/// One persistent shell. Dropping it kills the shell and every process it started.
pub(crate) struct BashSession {
    backend: Arc<dyn ShellBackend>,
    workspace: PathBuf,
    running: Option<Running>,
}

impl Drop for BashSession {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Kills the shell's process tree if an execution is abandoned (its future dropped).
struct KillOnDrop {
    shell: ShellProcess,
    armed: bool,
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if self.armed {
            self.shell.kill_tree();
        }
    }
}

fn spawn_reader(reader: std::io::PipeReader, tx: mpsc::UnboundedSender<Msg>) {
    std::thread::spawn(move || {
        let mut reader = reader;
        let mut chunk = [0u8; 8192];
        let mut line: Vec<u8> = Vec::new();
        let flush = |line: &mut Vec<u8>, tx: &mpsc::UnboundedSender<Msg>| -> bool {
            if line.is_empty() {
                return true;
            }
            let text = strip_ansi(&String::from_utf8_lossy(line));
            line.clear();
            let text = text.trim_end_matches('\r').to_owned();
            if text.is_empty() {
                return true;
            }
            tx.send(Msg::Line(text)).is_ok()
        };
        loop {
            match reader.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    for &b in &chunk[..n] {
                        if b == b'\n' || b == b'\r' {
                            if !flush(&mut line, &tx) {
                                return;
                            }
                        } else {
                            line.push(b);
                            if line.len() >= MAX_LINE_BYTES && !flush(&mut line, &tx) {
                                return;
                            }
                        }
                    }
                }
            }
        }
        flush(&mut line, &tx);
        let _ = tx.send(Msg::Eof);
    });
}

impl BashSession {
    pub(crate) fn new(backend: Arc<dyn ShellBackend>, workspace: &Path) -> Self {
        BashSession {
            backend,
            workspace: workspace.to_path_buf(),
            running: None,
        }
    }

    /// Kills the shell and everything it started (also `setsid` and orphaned processes).
    pub(crate) fn stop(&mut self) {
        if let Some(mut r) = self.running.take() {
            r.shell.kill_tree();
            let _ = r.child.start_kill();
        }
    }

    async fn start(&mut self) -> Result<()> {
        self.stop();
        let SpawnedShell {
            mut child,
            shell,
            output: reader,
        } = spawn_shell(self.backend.as_ref(), &self.workspace).await?;
        let Some(stdin) = child.stdin.take() else {
            shell.kill_tree();
            return Err(Error::internal("the shell's stdin was not captured"));
        };
        let (tx, rx) = mpsc::unbounded_channel();
        spawn_reader(reader, tx);
        self.running = Some(Running {
            child,
            stdin,
            rx,
            shell,
        });
        Ok(())
    }

    /// Restarts the shell (fresh cwd/env).
    pub(crate) async fn restart(&mut self) -> Result<()> {
        self.start().await
    }

    /// Runs one command in the persistent shell.
    pub(crate) async fn exec(
        &mut self,
        command: &str,
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<ExecResult> {
        let alive = match self.running.as_mut() {
            Some(r) => matches!(r.child.try_wait(), Ok(None)),
            None => false,
        };
        if !alive {
            self.start().await?;
        }
        let Some(run) = self.running.as_mut() else {
            return Err(Error::internal("the shell is not running"));
        };
        while run.rx.try_recv().is_ok() {} // drop stale output of earlier background jobs
        let sentinel = format!("___POWER_LOOP_CMD_DONE_{}___", random_hex());
        // `{ …; } </dev/null` keeps the command from eating the sentinel line from our stdin,
        // while cwd/variable changes still persist (a brace group runs in the current shell).
        let script = format!("{{ {command}\n}} </dev/null\nprintf '\\n{sentinel} %s\\n' \"$?\"\n");
        if run.stdin.write_all(script.as_bytes()).await.is_err() || run.stdin.flush().await.is_err()
        {
            self.stop();
            return Err(Error::new(
                ErrorCode::ToolFailed,
                "the bash session crashed and was restarted; please retry the command",
            ));
        }
        let mut guard = KillOnDrop {
            shell: run.shell.clone(),
            armed: true,
        };
        let mut lines = LineBuf::default();
        let deadline = tokio::time::Instant::now() + timeout;
        let mut result = ExecResult {
            exit_code: None,
            lines: LineBuf::default(),
            timed_out: false,
            cancelled: false,
            shell_exited: false,
        };
        loop {
            tokio::select! {
                msg = run.rx.recv() => match msg {
                    Some(Msg::Line(l)) => {
                        if let Some(pos) = l.find(&sentinel) {
                            let before = l[..pos].trim_end();
                            if !before.is_empty() {
                                lines.push(before.to_owned());
                            }
                            result.exit_code = l[pos + sentinel.len()..].trim().parse().ok();
                            break;
                        }
                        lines.push(l);
                    }
                    Some(Msg::Eof) | None => {
                        // The shell exited (e.g. `exit 3`): report its status, relaunch next time.
                        let status = tokio::time::timeout(Duration::from_secs(2), run.child.wait()).await;
                        result.exit_code = status.ok().and_then(|s| s.ok()).and_then(|s| s.code());
                        result.shell_exited = true;
                        break;
                    }
                },
                () = tokio::time::sleep_until(deadline) => {
                    result.timed_out = true;
                    break;
                }
                () = cancelled(cancel) => {
                    result.cancelled = true;
                    break;
                }
            }
        }
        guard.armed = false;
        if result.timed_out || result.cancelled || result.shell_exited {
            self.stop();
        }
        result.lines = lines;
        Ok(result)
    }
}

fn random_hex() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..32)
        .map(|_| char::from_digit(rng.random_range(0..16), 16).unwrap_or('0'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linebuf_truncation_shape() {
        let mut b = LineBuf::default();
        for i in 0..250 {
            b.push(format!("l{i}"));
        }
        let r = b.render();
        assert!(r.starts_with("l0\n"));
        assert!(r.contains("l29\n\n... (50 lines omitted) ...\n\nl80\n"));
        assert!(r.ends_with("l249"));
        let mut small = LineBuf::default();
        for i in 0..200 {
            small.push(format!("l{i}"));
        }
        assert_eq!(small.render().lines().count(), 200);
        assert_eq!(LineBuf::default().render(), "(no output)");
    }
}
