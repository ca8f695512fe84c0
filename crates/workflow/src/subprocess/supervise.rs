//! Supervises one worker process: spawn it in its own process group, send the job, answer its
//! model calls, watch heartbeats, the wall-time limit and cancellation, and turn whatever
//! happens (a result, a failure frame, a crash, garbage, silence, a timeout) into a
//! [`LeafOutcome`]. The process group is killed on every path out, including when the engine
//! drops the leaf's future.

use std::collections::VecDeque;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use power_loop_agent::StatefulAgentLoop;
use power_loop_contracts::{Error, LlmService, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use super::config::{Config, LeafStoreMode, failed};
use super::launcher::{LaunchPlan, WorkerLauncher};
use super::protocol::{
    FrameReader, LeafStore, ParentFrame, ToolSetup, WorkerFrame, WorkerJob, WorkerLimits,
    WorkerReport, encode_frame,
};
use crate::executor::{LeafOutcome, LeafRequest};
use crate::result::LeafStatus;

/// How much of a worker's stderr is kept for the failure message.
const STDERR_TAIL: usize = 2000;

/// Kills a worker's whole process group when dropped (every exit path, task abort included).
struct GroupGuard(Option<i32>);

impl GroupGuard {
    fn kill(&mut self) {
        if let Some(pid) = self.0.take()
            && let Some(p) = rustix::process::Pid::from_raw(pid)
        {
            let _ = rustix::process::kill_process_group(p, rustix::process::Signal::KILL);
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// How the supervision loop ended.
enum Ended {
    Report(Box<WorkerReport>),
    Failure(String, String),
    Eof,
    Protocol(Error),
    NoHeartbeat,
    Timeout,
    CancelUnanswered,
}

pub(crate) async fn supervise(
    cfg: &Config,
    req: &LeafRequest,
    plan: LaunchPlan,
    launcher: &dyn WorkerLauncher,
) -> LeafOutcome {
    let sandboxed = launcher.is_sandbox();
    let workspace = plan.workspace_dir.clone();
    let leaf_dir = plan.leaf_dir.clone();
    let plan = match launcher.wrap(plan) {
        Ok(p) => p,
        Err(e) => {
            return failed(
                format!(
                    "worker launch failed ({}): {}",
                    launcher.name(),
                    e.message()
                ),
                None,
            );
        }
    };
    let store = match (&cfg.store, sandboxed) {
        (LeafStoreMode::ParentDsn { dsn, table_prefix }, false) => LeafStore::Dsn {
            dsn: dsn.clone(),
            table_prefix: table_prefix.clone(),
        },
        _ => LeafStore::Sqlite {
            path: leaf_dir.join("leaf.db").to_string_lossy().into_owned(),
        },
    };
    let own_store = matches!(store, LeafStore::Sqlite { .. });
    let job = WorkerJob {
        spec: req.spec.clone(),
        input: req.input.clone(),
        step_key: req.step_key.clone(),
        store,
        parent_session_id: req.driver_session_id.clone(),
        tools: match (&cfg.tool_preset, workspace) {
            (Some(p), Some(w)) => Some(ToolSetup {
                preset: p.clone(),
                workspace_dir: w.to_string_lossy().into_owned(),
            }),
            _ => None,
        },
        heartbeat_ms: u64::try_from(cfg.heartbeat_interval.as_millis()).unwrap_or(500),
        limits: WorkerLimits {
            memory_bytes: cfg.memory_bytes,
        },
    };
    let mut cmd = tokio::process::Command::new(&plan.program);
    cmd.args(&plan.args)
        .env_clear()
        .envs(plan.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&plan.cwd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return failed(
                format!(
                    "worker launch failed ({}): cannot start {}: {e}",
                    launcher.name(),
                    plan.program.display()
                ),
                None,
            );
        }
    };
    let pid = child.id();
    let mut guard = GroupGuard(pid.and_then(|p| i32::try_from(p).ok()));
    if let (Some(f), Some(p)) = (&cfg.on_spawn, pid) {
        f(&req.step_key, p);
    }
    let (Some(stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return failed("worker launch failed: the worker has no pipes".into(), None);
    };
    let tail = Arc::new(Mutex::new(VecDeque::<u8>::new()));
    let mut tasks = JoinSet::new();
    tasks.spawn(drain_stderr(stderr, tail.clone()));
    let (to_worker, mut outbox) = mpsc::unbounded_channel::<ParentFrame>();
    tasks.spawn(async move {
        let mut stdin = stdin;
        while let Some(f) = outbox.recv().await {
            let Ok(line) = encode_frame(&f) else { continue };
            if stdin.write_all(&line).await.is_err() || stdin.flush().await.is_err() {
                break;
            }
        }
    });
    let _ = to_worker.send(ParentFrame::Job { job: Box::new(job) });
    let (frames_tx, mut frames) = mpsc::unbounded_channel();
    let max = cfg.max_output_bytes;
    tasks.spawn(async move {
        let mut r = FrameReader::new(
            BufReader::new(stdout),
            usize::try_from(max).unwrap_or(usize::MAX),
            max,
        );
        loop {
            let f = r.next::<WorkerFrame>().await;
            let last = !matches!(f, Ok(Some(_)));
            if frames_tx.send(f).is_err() || last {
                break;
            }
        }
    });
    let llm_cancel = CancellationToken::new();
    let _llm_guard = llm_cancel.clone().drop_guard();
    let far = Instant::now() + Duration::from_secs(10 * 365 * 24 * 3600);
    let deadline = cfg.timeout.map_or(far, |t| Instant::now() + t);
    let mut heartbeat = Instant::now() + cfg.heartbeat_timeout;
    let mut cancel_deadline = far;
    let mut cancel_sent = false;
    let ended = loop {
        tokio::select! {
            f = frames.recv() => match f {
                Some(Ok(Some(frame))) => {
                    heartbeat = Instant::now() + cfg.heartbeat_timeout;
                    match frame {
                        WorkerFrame::Hello { .. } | WorkerFrame::Heartbeat => {}
                        WorkerFrame::LlmRequest { id, request } => {
                            let llm = Arc::clone(req.parent.llm());
                            tasks.spawn(answer(llm, id, *request, to_worker.clone(), llm_cancel.child_token()));
                        }
                        WorkerFrame::Result { report } => break Ended::Report(report),
                        WorkerFrame::Failure { code, error } => break Ended::Failure(code, error),
                    }
                }
                Some(Ok(None)) | None => break Ended::Eof,
                Some(Err(e)) => break Ended::Protocol(e),
            },
            () = sleep_until(heartbeat) => break Ended::NoHeartbeat,
            () = sleep_until(deadline) => break Ended::Timeout,
            () = req.cancel.cancelled(), if !cancel_sent => {
                cancel_sent = true;
                let _ = to_worker.send(ParentFrame::Cancel { reason: "cancelled by the workflow".into() });
                cancel_deadline = Instant::now() + cfg.term_grace;
            }
            () = sleep_until(cancel_deadline), if cancel_sent => break Ended::CancelUnanswered,
        }
    };
    llm_cancel.cancel();
    // A worker that reported gets the grace period to exit on its own; any other is killed.
    let status = match &ended {
        Ended::Report(_) | Ended::Failure(..) | Ended::Eof => {
            match tokio::time::timeout(cfg.term_grace, child.wait()).await {
                Ok(Ok(st)) => Some(st),
                _ => None,
            }
        }
        _ => None,
    };
    guard.kill();
    let status = match status {
        Some(s) => Some(s),
        None => tokio::time::timeout(cfg.term_grace, child.wait())
            .await
            .ok()
            .and_then(std::result::Result::ok),
    };
    // let the stderr drain finish briefly, then stop everything
    let _ = tokio::time::timeout(Duration::from_millis(200), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();
    let stderr = tail_text(&tail);
    outcome(cfg, req, ended, status, &stderr, own_store).await
}

async fn outcome(
    cfg: &Config,
    req: &LeafRequest,
    ended: Ended,
    status: Option<ExitStatus>,
    stderr: &str,
    own_store: bool,
) -> LeafOutcome {
    let with_tail = |reason: String| {
        let text = if stderr.is_empty() {
            format!("[{reason}]")
        } else {
            format!("[{reason}]\n{stderr}")
        };
        failed(reason, Some(text))
    };
    let secs = |d: Duration| d.as_secs_f64();
    match ended {
        Ended::Report(report) => match status {
            Some(st) if st.success() => merge(req, *report, own_store).await,
            other => with_tail(format!(
                "the worker reported a result but then {}",
                describe(other)
            )),
        },
        Ended::Failure(code, error) => with_tail(format!("worker error ({code}): {error}")),
        Ended::Eof => with_tail(format!("the worker {} without a result", describe(status))),
        Ended::Protocol(e) => with_tail(format!("worker protocol violation: {}", e.message())),
        Ended::NoHeartbeat => with_tail(format!(
            "no heartbeat from the worker for {:.1}s",
            secs(cfg.heartbeat_timeout)
        )),
        Ended::Timeout => with_tail(format!(
            "worker timeout after {:.1}s",
            secs(cfg.timeout.unwrap_or_default())
        )),
        Ended::CancelUnanswered => {
            let mut o = LeafOutcome::new(LeafStatus::Cancelled, "[cancelled by orchestrator]");
            o.error = Some("cancelled: the worker did not stop in time and was killed".into());
            o
        }
    }
}

/// How a worker ended, in words.
fn describe(status: Option<ExitStatus>) -> String {
    match status {
        None => "did not exit in time (killed)".into(),
        Some(st) => match (st.code(), st.signal()) {
            (Some(c), _) => format!("exited with code {c}"),
            (None, Some(9)) => "was killed by signal 9 (SIGKILL)".into(),
            (None, Some(s)) => format!("was killed by signal {s}"),
            (None, None) => format!("ended ({st})"),
        },
    }
}

/// Turns a worker's report into the leaf's outcome, importing its session into the parent's
/// store under the driver session.
async fn merge(req: &LeafRequest, report: WorkerReport, own_store: bool) -> LeafOutcome {
    let mut o = report.leaf.into_outcome(LeafOutcome::of_subagent);
    if own_store
        && let Some(archive) = report.archive
        && let Err(e) = import(
            &req.parent,
            req.driver_session_id.as_deref(),
            &archive,
            &report.descendants,
        )
        .await
    {
        o.status = LeafStatus::Failed;
        o.error = Some(format!(
            "the leaf's session could not be merged into the parent store: {} ({})",
            e.message(),
            e.code()
        ));
    }
    o
}

async fn import(
    parent: &StatefulAgentLoop,
    driver: Option<&str>,
    archive: &power_loop_store::SessionArchive,
    descendants: &[power_loop_store::SessionArchive],
) -> Result<()> {
    let store = parent.store().await?;
    let id = archive.session_id.as_str();
    match driver {
        Some(d) => store.import_session_as_child(archive, Some(id), d).await?,
        None => store.import_session(archive, Some(id)).await?,
    };
    // The leaf's sub-agents (parents come first): each under its own parent, same ids.
    for a in descendants {
        let Some(parent_id) = archived_parent(a) else {
            return Err(power_loop_contracts::Error::new(
                power_loop_contracts::ErrorCode::WorkerProtocol,
                format!(
                    "the worker shipped sub-agent session `{}` without its parent",
                    a.session_id
                ),
            ));
        };
        store
            .import_session_as_child(a, Some(a.session_id.as_str()), &parent_id)
            .await?;
    }
    Ok(())
}

/// The parent session recorded in an archived session row.
fn archived_parent(a: &power_loop_store::SessionArchive) -> Option<String> {
    a.tables
        .get("sessions")?
        .first()?
        .get("parent_session_id")?
        .as_str()
        .map(str::to_owned)
}

/// Answers one model call of the worker with the parent's model, chunk by chunk.
async fn answer(
    llm: Arc<dyn LlmService>,
    id: u64,
    mut request: power_loop_contracts::LlmRequest,
    out: mpsc::UnboundedSender<ParentFrame>,
    cancel: CancellationToken,
) {
    request.cancel = Some(cancel.clone());
    let err = |e: &Error| ParentFrame::LlmError {
        id,
        code: e.code().as_str().to_owned(),
        message: e.message().to_owned(),
    };
    let mut stream = match llm.stream(request).await {
        Ok(s) => s,
        Err(e) => {
            let _ = out.send(err(&e));
            return;
        }
    };
    loop {
        let next = tokio::select! {
            n = stream.next() => n,
            () = cancel.cancelled() => return,
        };
        match next {
            Some(Ok(chunk)) => {
                if out
                    .send(ParentFrame::LlmChunk {
                        id,
                        chunk: Box::new(chunk),
                    })
                    .is_err()
                {
                    return;
                }
            }
            Some(Err(e)) => {
                let _ = out.send(err(&e));
                return;
            }
            None => break,
        }
    }
    let _ = out.send(ParentFrame::LlmDone { id });
}

async fn drain_stderr(mut stderr: tokio::process::ChildStderr, tail: Arc<Mutex<VecDeque<u8>>>) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = stderr.read(&mut buf).await {
        if n == 0 {
            break;
        }
        let mut t = tail
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        t.extend(&buf[..n]);
        while t.len() > STDERR_TAIL * 4 {
            t.pop_front();
        }
    }
}

fn tail_text(tail: &Mutex<VecDeque<u8>>) -> String {
    let t = tail
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let bytes: Vec<u8> = t.iter().copied().collect();
    let s = String::from_utf8_lossy(&bytes);
    let s = s.trim();
    let n = s.chars().count();
    if n > STDERR_TAIL {
        s.chars().skip(n - STDERR_TAIL).collect()
    } else {
        s.to_owned()
    }
}
