//! The worker entry point ([`serve_worker`]): runs one leaf's job in this process and answers
//! over the worker protocol. The `power-loop worker` command calls it; a host binary can call
//! it too (with a [`WorkerHost`] that opens its stores) and serve as its own worker.
//!
//! The worker holds no provider credentials: every model call goes to the parent as an
//! `llm_request` frame ([`ProxyLlm`]) and comes back as chunks. Its store is the job's
//! ([`LeafStore`]): its own SQLite file (exported back to the parent at the end) or the
//! parent's server store.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use power_loop_agent::{StatefulAgentLoop, register_subagent_tools, run_agent_spec};
use power_loop_contracts::{
    Error, ErrorCode, LlmRequest, LlmService, LlmStream, Result, StreamChunk,
};
use power_loop_store::SessionStore;
use power_loop_tools::{RuntimeEnv, ToolSelection, default_registry};
use tokio::io::{AsyncBufRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::executor::LeafReport;

use super::protocol::{
    FrameReader, LeafStore, ParentFrame, WorkerFrame, WorkerJob, WorkerReport, encode_frame,
};

/// Opens a store for the worker: `(dsn, table_prefix)` → store. Injected by the binary that
/// serves as the worker (the workflow crate knows no concrete backend).
pub type StoreOpener =
    Arc<dyn Fn(String, String) -> BoxFuture<'static, Result<SessionStore>> + Send + Sync>;

/// What the hosting binary gives the worker: how to open a store by DSN.
#[derive(Clone)]
pub struct WorkerHost {
    open_store: StoreOpener,
}

impl std::fmt::Debug for WorkerHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerHost").finish_non_exhaustive()
    }
}

impl WorkerHost {
    /// A host whose stores come from `open_store(dsn, table_prefix)`.
    pub fn new(
        open_store: impl Fn(String, String) -> BoxFuture<'static, Result<SessionStore>>
        + Send
        + Sync
        + 'static,
    ) -> Self {
        WorkerHost {
            open_store: Arc::new(open_store),
        }
    }
}

/// The largest frame the worker accepts from the parent (a model answer chunk or the job).
const MAX_PARENT_FRAME: usize = 64 * 1024 * 1024;

type Pending = Arc<Mutex<HashMap<u64, mpsc::UnboundedSender<Result<StreamChunk>>>>>;

/// The leaf's model: each call is an `llm_request` frame to the parent, answered by chunks.
struct ProxyLlm {
    out: mpsc::UnboundedSender<WorkerFrame>,
    pending: Pending,
    next_id: AtomicU64,
}

impl LlmService for ProxyLlm {
    fn stream(&self, request: LlmRequest) -> BoxFuture<'_, Result<LlmStream>> {
        Box::pin(async move {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let (tx, rx) = mpsc::unbounded_channel();
            lock(&self.pending).insert(id, tx);
            let sent = self.out.send(WorkerFrame::LlmRequest {
                id,
                request: Box::new(request),
            });
            if sent.is_err() {
                lock(&self.pending).remove(&id);
                return Err(Error::new(
                    ErrorCode::LlmConnection,
                    "the worker's link to its parent is closed",
                ));
            }
            let s = futures_util::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|item| (item, rx))
            });
            Ok(Box::pin(s) as LlmStream)
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Serves one job: reads the `job` frame from `input`, runs the leaf, writes `hello`,
/// heartbeats, model requests and the final `result` (or `failure`) frame to `output`.
/// Returns the process exit code: 0 when a result was reported, 1 otherwise.
pub async fn serve_worker<R, W>(host: WorkerHost, input: R, output: W) -> i32
where
    R: AsyncBufRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<WorkerFrame>();
    let writer = tokio::spawn(async move {
        let mut output = output;
        while let Some(frame) = out_rx.recv().await {
            let Ok(line) = encode_frame(&frame) else {
                continue;
            };
            if output.write_all(&line).await.is_err() || output.flush().await.is_err() {
                break;
            }
            if matches!(
                frame,
                WorkerFrame::Result { .. } | WorkerFrame::Failure { .. }
            ) {
                break; // the last frame
            }
        }
    });
    let _ = out_tx.send(WorkerFrame::Hello {
        pid: std::process::id(),
    });
    let mut reader = FrameReader::new(input, MAX_PARENT_FRAME, u64::MAX);
    let code = match read_job(&mut reader).await {
        Ok(job) => run_job(host, job, reader, out_tx.clone()).await,
        Err(e) => {
            let _ = out_tx.send(failure(&e));
            1
        }
    };
    drop(out_tx);
    let _ = writer.await;
    code
}

async fn read_job<R: AsyncBufRead + Unpin>(reader: &mut FrameReader<R>) -> Result<WorkerJob> {
    match reader.next::<ParentFrame>().await? {
        Some(ParentFrame::Job { job }) => Ok(*job),
        Some(_) => Err(Error::new(
            ErrorCode::WorkerProtocol,
            "the first frame from the parent is not a job",
        )),
        None => Err(Error::new(
            ErrorCode::WorkerProtocol,
            "the parent closed stdin before sending a job",
        )),
    }
}

async fn run_job<R>(
    host: WorkerHost,
    job: WorkerJob,
    mut reader: FrameReader<R>,
    out: mpsc::UnboundedSender<WorkerFrame>,
) -> i32
where
    R: AsyncBufRead + Unpin + Send + 'static,
{
    if let Some(bytes) = job.limits.memory_bytes
        && let Err(e) = set_memory_limit(bytes)
    {
        let _ = out.send(failure(&e));
        return 1;
    }
    let cancel = CancellationToken::new();
    let heartbeat = {
        let out = out.clone();
        let every = Duration::from_millis(job.heartbeat_ms.max(10));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if out.send(WorkerFrame::Heartbeat).is_err() {
                    break;
                }
            }
        })
    };
    let pending: Pending = Arc::new(Mutex::new(HashMap::new()));
    let router = {
        let pending = pending.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            loop {
                match reader.next::<ParentFrame>().await {
                    Ok(Some(ParentFrame::LlmChunk { id, chunk })) => {
                        if let Some(tx) = lock(&pending).get(&id) {
                            let _ = tx.send(Ok(*chunk));
                        }
                    }
                    Ok(Some(ParentFrame::LlmDone { id })) => {
                        lock(&pending).remove(&id);
                    }
                    Ok(Some(ParentFrame::LlmError { id, code, message })) => {
                        if let Some(tx) = lock(&pending).remove(&id) {
                            let code =
                                ErrorCode::from_code_str(&code).unwrap_or(ErrorCode::LlmProvider);
                            let _ = tx.send(Err(Error::new(code, message)));
                        }
                    }
                    Ok(Some(ParentFrame::Cancel { .. })) => cancel.cancel(),
                    Ok(Some(ParentFrame::Job { .. })) => {}
                    Ok(None) | Err(_) => {
                        // the parent is gone (or talks nonsense): stop the leaf
                        cancel.cancel();
                        for (_, tx) in lock(&pending).drain() {
                            let _ = tx.send(Err(Error::cancelled(
                                "the worker lost its parent during a model call",
                            )));
                        }
                        break;
                    }
                }
            }
        })
    };
    let r = run_leaf(&host, &job, &out, &pending, cancel).await;
    heartbeat.abort();
    router.abort();
    match r {
        Ok(report) => {
            let _ = out.send(WorkerFrame::Result {
                report: Box::new(report),
            });
            0
        }
        Err(e) => {
            let _ = out.send(failure(&e));
            1
        }
    }
}

fn failure(e: &Error) -> WorkerFrame {
    WorkerFrame::Failure {
        code: e.code().as_str().to_owned(),
        error: e.message().to_owned(),
    }
}

async fn run_leaf(
    host: &WorkerHost,
    job: &WorkerJob,
    out: &mpsc::UnboundedSender<WorkerFrame>,
    pending: &Pending,
    cancel: CancellationToken,
) -> Result<WorkerReport> {
    let (dsn, prefix, own) = match &job.store {
        LeafStore::Sqlite { path } => (format!("sqlite://{path}"), "pl_".to_owned(), true),
        LeafStore::Dsn { dsn, table_prefix } => (dsn.clone(), table_prefix.clone(), false),
    };
    let store = (host.open_store)(dsn, prefix).await?;
    let r = run_on_store(job, out, pending, cancel, &store, own).await;
    let closed = store.close().await;
    let report = r?;
    closed?;
    Ok(report)
}

async fn run_on_store(
    job: &WorkerJob,
    out: &mpsc::UnboundedSender<WorkerFrame>,
    pending: &Pending,
    cancel: CancellationToken,
    store: &SessionStore,
    own: bool,
) -> Result<WorkerReport> {
    let llm: Arc<dyn LlmService> = Arc::new(ProxyLlm {
        out: out.clone(),
        pending: pending.clone(),
        next_id: AtomicU64::new(1),
    });
    let mut b = StatefulAgentLoop::builder(llm).store(store.clone());
    if let Some(t) = &job.tools {
        let env = RuntimeEnv::new().with_workspace(&t.workspace_dir)?;
        let mut reg = default_registry(&env, &ToolSelection::preset(t.preset.clone()))?;
        // A leaf may delegate (its spec's whitelist decides); its sub-agents are shipped back.
        register_subagent_tools(&mut reg, true)?;
        b = b.tools(reg).runtime_env(Arc::new(env));
    }
    let lp = b.build()?;
    let parent = if own {
        None
    } else {
        job.parent_session_id.as_deref()
    };
    let r = run_agent_spec(&lp, parent, &job.spec, &job.input, None, Some(cancel)).await;
    let _ = lp.close(Duration::from_secs(5)).await;
    let r = r?;
    let (archive, descendants) = match (&r.session_id, own) {
        (Some(sid), true) => (
            Some(store.export_session(sid).await?),
            export_descendants(store, sid).await?,
        ),
        _ => (None, Vec::new()),
    };
    Ok(WorkerReport {
        leaf: LeafReport::from_subagent(r),
        archive,
        descendants,
    })
}

/// Exports every session below `root` in the worker's own store, parents before children.
async fn export_descendants(
    store: &SessionStore,
    root: &str,
) -> Result<Vec<power_loop_store::SessionArchive>> {
    let mut out = Vec::new();
    let mut queue = std::collections::VecDeque::from([root.to_owned()]);
    while let Some(parent) = queue.pop_front() {
        for child in store.list_children(&parent).await? {
            out.push(store.export_session(&child.session_id).await?);
            queue.push_back(child.session_id);
        }
    }
    Ok(out)
}

/// Caps this process's address space (and that of everything it starts).
fn set_memory_limit(bytes: u64) -> Result<()> {
    use rustix::process::{Resource, Rlimit, setrlimit};
    setrlimit(
        Resource::As,
        Rlimit {
            current: Some(bytes),
            maximum: Some(bytes),
        },
    )
    .map_err(|e| {
        Error::new(
            ErrorCode::WorkerBootstrap,
            format!("cannot set the memory limit of {bytes} bytes: {e}"),
        )
    })
}
