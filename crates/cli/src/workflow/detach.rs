//! `workflow run --detach`: the run goes on in a background process and the command prints its
//! run id at once.
//!
//! The foreground half re-executes this binary with a hidden flag (`--internal-detached`),
//! stdin closed, stderr to a private log file, stdout a pipe on which the background half
//! writes the run id as soon as the run row exists; then the foreground half exits. The
//! background half leaves the terminal's session (`setsid`), runs the spec with
//! [`power_loop::start_detached`] — whose finish arms the parent session's durable wake timer
//! in the same store transaction — writes the summary to its log, and exits.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use power_loop::{Error, ErrorCode, Result, WorkflowRunOptions, WorkflowSpec, start_detached};

use crate::commands::{build_loop, open};
use crate::{Cli, provider};

/// The foreground half: starts the background process, prints the run id it reports.
pub(crate) fn spawn(
    cli: &Cli,
    file: &Path,
    input: Option<&str>,
    parent: &str,
    json: bool,
) -> Result<bool> {
    let file = std::fs::canonicalize(file).map_err(|e| {
        Error::new(
            ErrorCode::Io,
            format!("cannot resolve `{}`: {e}", file.display()),
        )
    })?;
    let log_path = log_file()?;
    let log = std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .mode(0o600)
        .open(&log_path)?;
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new(exe);
    cmd.arg("--dsn")
        .arg(&cli.dsn)
        .arg("--table-prefix")
        .arg(&cli.table_prefix);
    if cli.offline {
        cmd.arg("--offline");
    }
    cmd.args(["workflow", "run"])
        .arg(&file)
        .arg("--session")
        .arg(parent)
        .arg("--internal-detached");
    if let Some(i) = input {
        cmd.arg("--input").arg(i);
    }
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .map_err(|e| {
            Error::new(
                ErrorCode::Io,
                format!("cannot start the background run: {e}"),
            )
        })?;
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        BufReader::new(out).read_line(&mut line)?;
    }
    let run_id = line.trim();
    if run_id.is_empty() {
        // The background half failed before the run existed: its log says why.
        let status = child.wait()?;
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        let _ = std::fs::remove_file(&log_path);
        return Err(Error::new(
            ErrorCode::WorkflowFailed,
            format!(
                "the background run did not start ({status}): {}",
                log.trim()
            ),
        ));
    }
    if json {
        let v = serde_json::json!({
            "run_id": run_id, "status": "running", "detached": true,
            "log": log_path.display().to_string(),
        });
        crate::output::line(serde_json::to_string(&v)?)?;
    } else {
        crate::output::line(run_id)?;
        eprintln!(
            "power-loop: workflow run {run_id} goes on in the background (log: {}); \
             `power-loop workflow status {run_id}` shows its progress",
            log_path.display()
        );
    }
    Ok(true)
}

/// A fresh private log path: `$TMPDIR/power-loop-workflows/detached-<pid>-<nanos>.log` (the
/// directory is created owner-only).
fn log_file() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join("power-loop-workflows");
    std::fs::create_dir_all(&dir)?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    Ok(dir.join(format!("detached-{}-{nanos}.log", std::process::id())))
}

/// The background half: leaves the terminal's session, starts the run, reports its id on
/// stdout (nothing else is ever written there), waits for its end and logs the summary.
pub(crate) async fn child(cli: &Cli, spec: &WorkflowSpec, parent: &str) -> Result<bool> {
    if let Err(e) = rustix::process::setsid() {
        eprintln!("power-loop: setsid failed ({e}); the run stays in the caller's session");
    }
    let (llm, _offline) = provider::choose(cli.offline)?;
    let store = open(cli).await?;
    let lp = build_loop(llm, store, None)?;
    let handle = start_detached(&lp, parent, spec, WorkflowRunOptions::new()).await?;
    let run_id = handle.run_id.clone();
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{run_id}")?;
        out.flush()?;
    }
    eprintln!("power-loop: workflow run {run_id} started for session {parent}");
    let r = handle.wait().await;
    let closed = lp.close(std::time::Duration::from_secs(10)).await;
    let out = r?;
    closed?;
    eprintln!("{}", out.result.summary());
    eprintln!(
        "power-loop: workflow run {run_id} ended {}",
        out.result.status
    );
    Ok(out.result.ok())
}
