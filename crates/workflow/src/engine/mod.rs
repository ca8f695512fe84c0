//! [`WorkflowEngine`]: runs a validated [`WorkflowSpec`] over a [`StatefulAgentLoop`]
//! (the departures listed in docs/workflows.md "Running").
//!
//! A run gets a driver session (the linked parent of its leaves), walks the node tree with
//! boxed futures (bounded concurrency by per-node semaphores), and, with a journal, records
//! every settled step as it finishes and the run's end in the store.

mod leaf;
mod nodes;
mod observe;
pub(crate) mod resume;
mod state;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use power_loop_agent::StatefulAgentLoop;
use power_loop_contracts::{Error, ErrorCode, Result};
use power_loop_store::{JsonMap, NewSession, NewWorkflowRun, SubagentLifecycle, now_ms};
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

pub use leaf::{BUDGET_EXHAUSTED, CANCELLED_BEFORE_START};

use crate::budget::SharedBudget;
use crate::executor::{InProcessExecutor, LeafExecutor};
use crate::journal::{Journal, new_owner, new_run_id};
use crate::result::{AgentResult, LeafStatus, ResultMap, RunStatus, WorkflowResult};
use crate::spec::{Node, WorkflowSpec};
use state::{RunCtx, RunState, Scope};

/// A progress callback: called after every settled step.
pub type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

/// One progress report: a step settled; `finished` of an expected `total` steps so far (the
/// total grows when a foreach learns its items and shrinks when a branch skips an arm).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Progress {
    /// The step key (`research`, `fanout[3]/research`, `fanout`).
    pub step_key: String,
    /// How it settled.
    pub status: LeafStatus,
    /// Steps settled so far (leaves, items' leaves, aggregates, replays included).
    pub finished: u64,
    /// Steps expected so far.
    pub total: u64,
}

impl Progress {
    /// A report.
    pub fn new(step_key: &str, status: LeafStatus, finished: u64, total: u64) -> Self {
        Progress {
            step_key: step_key.to_owned(),
            status,
            finished,
            total,
        }
    }
}

/// Settings of a run (shared by [`WorkflowEngine`], `resume_run` and the detached starters).
#[derive(Clone)]
#[non_exhaustive]
pub struct RunOptions {
    /// Runs the leaves (default [`InProcessExecutor`]).
    pub executor: Arc<dyn LeafExecutor>,
    /// A token pool shared by the leaves (default: one built from the spec's `budget`).
    pub budget: Option<Arc<SharedBudget>>,
    /// Cancels the run (leaves stop at their next checkpoint; new ones do not start).
    pub cancel: CancellationToken,
    /// Called after every settled step.
    pub progress: Option<ProgressFn>,
    /// Journal the run in the store (default true): it gets a run id and can be resumed.
    pub journal: bool,
    /// The session the run belongs to (its driver session becomes that session's child).
    pub parent_session_id: Option<String>,
    /// How often a journaled run refreshes its heartbeat (default 10 s).
    pub heartbeat_interval: Duration,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            executor: Arc::new(InProcessExecutor),
            budget: None,
            cancel: CancellationToken::new(),
            progress: None,
            journal: true,
            parent_session_id: None,
            heartbeat_interval: Duration::from_secs(10),
        }
    }
}

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("budget", &self.budget)
            .field("journal", &self.journal)
            .field("parent_session_id", &self.parent_session_id)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .finish_non_exhaustive()
    }
}

impl RunOptions {
    /// The defaults.
    pub fn new() -> Self {
        RunOptions::default()
    }
    /// Sets the executor.
    pub fn with_executor(mut self, e: Arc<dyn LeafExecutor>) -> Self {
        self.executor = e;
        self
    }
    /// Sets the shared budget.
    pub fn with_budget(mut self, b: Arc<SharedBudget>) -> Self {
        self.budget = Some(b);
        self
    }
    /// Sets the cancellation token.
    pub fn with_cancel(mut self, c: CancellationToken) -> Self {
        self.cancel = c;
        self
    }
    /// Sets the progress callback.
    pub fn with_progress(mut self, f: impl Fn(&Progress) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(f));
        self
    }
    /// Turns the journal on or off.
    pub fn with_journal(mut self, on: bool) -> Self {
        self.journal = on;
        self
    }
    /// Sets the parent session.
    pub fn with_parent_session(mut self, id: impl Into<String>) -> Self {
        self.parent_session_id = Some(id.into());
        self
    }
    /// Sets the heartbeat period (at least 10 ms).
    pub fn with_heartbeat_interval(mut self, d: Duration) -> Self {
        self.heartbeat_interval = d.max(Duration::from_millis(10));
        self
    }
}

/// What a run returns: its id (journaled runs), the attempt, and the result.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RunOutcome {
    /// The run id (`None` without a journal).
    pub run_id: Option<String>,
    /// The attempt that produced the result (1 for a first run).
    pub attempt: i64,
    /// The result.
    pub result: WorkflowResult,
    /// Steps replayed from the journal instead of run.
    pub replayed_steps: u64,
    /// Leaves sent to the executor by this attempt.
    pub executed_leaves: u64,
    /// The store accepted the finish (false: another attempt owned the run by then).
    pub finished_in_store: bool,
}

/// Runs workflows over one loop with one set of [`RunOptions`].
#[derive(Debug, Clone)]
pub struct WorkflowEngine {
    lp: StatefulAgentLoop,
    opts: RunOptions,
}

/// Builds a [`WorkflowEngine`].
#[derive(Debug)]
#[must_use = "a builder does nothing until `build()`"]
pub struct WorkflowEngineBuilder {
    lp: StatefulAgentLoop,
    opts: RunOptions,
}

impl WorkflowEngineBuilder {
    /// Sets the executor.
    pub fn executor(mut self, e: Arc<dyn LeafExecutor>) -> Self {
        self.opts.executor = e;
        self
    }
    /// Sets the shared budget.
    pub fn budget(mut self, b: Arc<SharedBudget>) -> Self {
        self.opts.budget = Some(b);
        self
    }
    /// Sets the cancellation token.
    pub fn cancel(mut self, c: CancellationToken) -> Self {
        self.opts.cancel = c;
        self
    }
    /// Sets the progress callback.
    pub fn progress(mut self, f: impl Fn(&Progress) + Send + Sync + 'static) -> Self {
        self.opts.progress = Some(Arc::new(f));
        self
    }
    /// Turns the journal on (default) or off.
    pub fn journal(mut self, on: bool) -> Self {
        self.opts.journal = on;
        self
    }
    /// Sets the parent session of the runs.
    pub fn parent_session(mut self, id: impl Into<String>) -> Self {
        self.opts.parent_session_id = Some(id.into());
        self
    }
    /// Replaces all options.
    pub fn options(mut self, opts: RunOptions) -> Self {
        self.opts = opts;
        self
    }
    /// The engine.
    pub fn build(self) -> WorkflowEngine {
        WorkflowEngine {
            lp: self.lp,
            opts: self.opts,
        }
    }
}

impl WorkflowEngine {
    /// A builder over `lp` with the default options.
    pub fn builder(lp: StatefulAgentLoop) -> WorkflowEngineBuilder {
        WorkflowEngineBuilder {
            lp,
            opts: RunOptions::default(),
        }
    }

    /// An engine over `lp` with `opts`.
    pub fn new(lp: StatefulAgentLoop, opts: RunOptions) -> Self {
        WorkflowEngine { lp, opts }
    }

    /// The options.
    pub fn options(&self) -> &RunOptions {
        &self.opts
    }

    /// Runs `spec` to its end. With the journal on, the run is created in the store first
    /// (a fresh run id, attempt 1) and finished there at the end. Node failures never escape:
    /// they are in the result's status and errors; `Err` is a store failure (or an unknown
    /// parent session).
    pub async fn run(&self, spec: &WorkflowSpec) -> Result<RunOutcome> {
        let journal = if self.opts.journal {
            Some(create_run(&self.lp, spec, &self.opts, false).await?)
        } else {
            None
        };
        let attempt = Attempt {
            journal,
            ..Attempt::default()
        };
        execute(&self.lp, &self.opts, spec, attempt).await
    }

    /// Resumes the run `run_id` with this engine's options (see [`crate::resume_run`]).
    pub async fn resume(&self, run_id: &str) -> Result<RunOutcome> {
        resume::resume_run(&self.lp, run_id, self.opts.clone()).await
    }
}

/// Creates the run row of a new journaled run (attempt 1, owned by this process).
pub(crate) async fn create_run(
    lp: &StatefulAgentLoop,
    spec: &WorkflowSpec,
    opts: &RunOptions,
    detached: bool,
) -> Result<Journal> {
    let store = lp.store().await?.clone();
    let run_id = new_run_id();
    let owner = new_owner();
    let mut new = NewWorkflowRun::new(
        &run_id,
        spec.name.clone(),
        spec.to_value(),
        spec.input.clone(),
    )
    .with_detached(detached)
    .with_owner(owner.clone());
    if let Some(p) = &opts.parent_session_id {
        new = new.with_parent(p.clone());
    }
    store.create_workflow_run(new).await?;
    Ok(Journal {
        store,
        run_id,
        attempt: 1,
        owner,
    })
}

/// Leaves a node is expected to run (foreach bodies count 0 until their items are known;
/// every branch arm counts until one is chosen).
pub(crate) fn leaf_estimate(node: &Node) -> u64 {
    match node {
        Node::Agent(_) => 1,
        Node::Foreach(f) => u64::from(f.id.is_some()),
        other => other.children().into_iter().map(leaf_estimate).sum(),
    }
}

/// The driver session of an attempt: `reuse` when it still exists, else a new session (a
/// linked child of the parent when there is one).
async fn driver_session(
    lp: &StatefulAgentLoop,
    spec: &WorkflowSpec,
    opts: &RunOptions,
    run_id: Option<&str>,
    reuse: Option<String>,
) -> Result<String> {
    let store = lp.store().await?;
    if let Some(d) = reuse
        && store.session_exists(&d).await?
    {
        return Ok(d);
    }
    let mut meta = JsonMap::new();
    meta.insert("kind".into(), "wf_driver".into());
    meta.insert("workflow".into(), spec.name.clone().into());
    if let Some(id) = run_id {
        meta.insert("workflow_run_id".into(), id.into());
    }
    if let Some(p) = &opts.parent_session_id {
        let linked = NewSession::new()
            .with_parent(p.clone())
            .with_lifecycle(SubagentLifecycle::Linked)
            .with_metadata(meta.clone());
        match store.create_session(linked).await {
            Ok(id) => return Ok(id),
            Err(e) if e.code() == ErrorCode::SessionNotFound => return Err(e),
            Err(e) => {
                tracing::debug!(error = %e, "driver session cannot be a child of the parent; using a root session")
            }
        }
    }
    store
        .create_session(NewSession::new().with_metadata(meta))
        .await
}

/// Keeps the run's heartbeat fresh until dropped.
struct Heartbeat(CancellationToken);

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

fn start_heartbeat(j: &Journal, every: Duration) -> Heartbeat {
    let stop = CancellationToken::new();
    let (j, s) = (j.clone(), stop.clone());
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = s.cancelled() => break,
                () = tokio::time::sleep(every) => {}
            }
            match j
                .store
                .heartbeat_workflow_run(&j.run_id, j.attempt, &j.owner, now_ms())
                .await
            {
                Ok(true) => {}
                Ok(false) => break,
                Err(e) => {
                    tracing::warn!(run_id = %j.run_id, error = %e, "workflow heartbeat failed")
                }
            }
        }
    });
    Heartbeat(stop)
}

/// What one attempt starts from and how it ends: its journal (`None`: a run without one), the
/// recorded leaf results it replays, the driver session it reuses, and whether its finish arms
/// the parent's wake.
#[derive(Default)]
pub(crate) struct Attempt {
    pub(crate) journal: Option<Journal>,
    pub(crate) replay: HashMap<String, AgentResult>,
    pub(crate) reuse_driver: Option<String>,
    pub(crate) wake: bool,
}

/// Runs one attempt: driver session, node tree, finish in the store (with the parent's wake
/// when `attempt.wake`). Store failures before the tree runs end the attempt as `failed` and are
/// returned. The attempt runs inside its `power_loop.workflow.run` span.
pub(crate) async fn execute(
    lp: &StatefulAgentLoop,
    opts: &RunOptions,
    spec: &WorkflowSpec,
    attempt: Attempt,
) -> Result<RunOutcome> {
    let journal = attempt.journal.as_ref();
    let span = observe::run_span(
        &spec.name,
        journal.map(|j| j.run_id.as_str()),
        journal.map_or(1, |j| j.attempt),
    );
    execute_attempt(lp, opts, spec, attempt)
        .instrument(span)
        .await
}

async fn execute_attempt(
    lp: &StatefulAgentLoop,
    opts: &RunOptions,
    spec: &WorkflowSpec,
    attempt: Attempt,
) -> Result<RunOutcome> {
    let Attempt {
        journal,
        replay,
        reuse_driver,
        wake,
    } = attempt;
    let started = Instant::now();
    let run_id = journal.as_ref().map(|j| j.run_id.clone());
    let attempt = journal.as_ref().map_or(1, |j| j.attempt);
    let driver = match driver_session(lp, spec, opts, run_id.as_deref(), reuse_driver).await {
        Ok(d) => d,
        Err(e) => {
            tracing::Span::current().record("power_loop.workflow.status", "failed");
            if let Some(j) = &journal {
                let mut r = WorkflowResult::new(spec.name.clone(), RunStatus::Failed);
                r.errors
                    .push(format!("could not create the driver session: {e}"));
                let _ = j.finish(&r, wake).await;
            }
            return Err(e);
        }
    };
    let _hb = journal
        .as_ref()
        .map(|j| start_heartbeat(j, opts.heartbeat_interval));
    if let Some(j) = &journal {
        j.store
            .set_workflow_driver_session(&j.run_id, j.attempt, &driver)
            .await?;
    }
    let budget = opts.budget.clone().or_else(|| {
        spec.budget
            .as_ref()
            .map(|b| Arc::new(SharedBudget::from_spec(b)))
    });
    let total = leaf_estimate(&spec.root);
    observe::run_started(lp, Some(&driver), &spec.name, run_id.as_deref(), attempt);
    let ctx = Arc::new(RunCtx {
        lp: lp.clone(),
        name: spec.name.clone(),
        executor: Arc::clone(&opts.executor),
        budget,
        cancel: opts.cancel.clone(),
        run_id: run_id.clone(),
        driver: Some(driver),
        journal: journal.clone(),
        replay,
        progress: opts.progress.clone(),
        state: Mutex::new(RunState {
            total,
            ..RunState::default()
        }),
    });
    let mut env = Map::new();
    env.insert("input".into(), Value::String(spec.input.clone()));
    let root = nodes::run_node(&ctx, &spec.root, Scope::root(env, opts.cancel.clone())).await;
    let result = {
        let mut st = ctx.lock();
        let failed = match root.as_ref() {
            Err(e) => {
                st.errors.push(e.0.clone());
                true
            }
            Ok(_) => !st.errors.is_empty(),
        };
        let status = if st.cancelled || ctx.run_cancelled() {
            RunStatus::Cancelled
        } else if st.budget_hit {
            RunStatus::BudgetExceeded
        } else if failed {
            RunStatus::Failed
        } else {
            RunStatus::Completed
        };
        let mut r = WorkflowResult::new(spec.name.clone(), status);
        r.results = st.ordered.values().cloned().collect::<ResultMap>();
        r.final_result = st.last_real.take().map(|(_, r)| r);
        r.usage = st.usage;
        r.errors = std::mem::take(&mut st.errors);
        r
    };
    let (replayed_steps, executed_leaves) = {
        let st = ctx.lock();
        (st.replayed, st.executed)
    };
    observe::run_completed(
        lp,
        ctx.driver.as_deref(),
        observe::RunEnd {
            name: &spec.name,
            run_id: run_id.as_deref(),
            attempt,
            status: result.status.as_str(),
            started,
            leaves: executed_leaves,
        },
    );
    let mut finished_in_store = journal.is_none();
    if let Some(j) = &journal {
        finished_in_store = j.finish(&result, wake).await?;
    }
    Ok(RunOutcome {
        run_id,
        attempt,
        result,
        replayed_steps,
        executed_leaves,
        finished_in_store,
    })
}

/// An error for a run that cannot be found or resumed.
pub(crate) fn run_error(msg: impl Into<String>) -> Error {
    Error::new(ErrorCode::WorkflowFailed, msg)
}
