//! The mutable state of one run, shared by every node task, and the per-node scope.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use power_loop_agent::{RunUsage, StatefulAgentLoop};
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use super::{Progress, ProgressFn};
use crate::budget::SharedBudget;
use crate::executor::LeafExecutor;
use crate::journal::Journal;
use crate::result::{AgentResult, ResultMap};

/// Where a result sits in document / item order: child indices and foreach item indices from
/// the root. A foreach aggregate sorts after its items.
pub(crate) type OrderKey = Vec<u32>;

/// A node error travelling up to the nearest `continue` container (or the run).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NodeError(pub(crate) String);

/// What a node returns: the last leaf (document / item order) that really ran or was replayed.
pub(crate) type NodeResult = Result<Option<AgentResult>, NodeError>;

/// Everything a run shares (one per attempt).
pub(crate) struct RunCtx {
    pub(crate) lp: StatefulAgentLoop,
    /// The workflow's name (for spans and events).
    pub(crate) name: String,
    pub(crate) executor: Arc<dyn LeafExecutor>,
    pub(crate) budget: Option<Arc<SharedBudget>>,
    /// The run-wide cancellation (the caller's token).
    pub(crate) cancel: CancellationToken,
    pub(crate) run_id: Option<String>,
    pub(crate) driver: Option<String>,
    pub(crate) journal: Option<Journal>,
    /// Completed steps of earlier attempts, by step key.
    pub(crate) replay: HashMap<String, AgentResult>,
    pub(crate) progress: Option<ProgressFn>,
    pub(crate) state: Mutex<RunState>,
}

/// The results so far and the run-level flags.
#[derive(Default)]
pub(crate) struct RunState {
    /// Results of referenceable nodes (top-level leaves and aggregates), by node id.
    pub(crate) live: ResultMap,
    /// Every result, in document / item order.
    pub(crate) ordered: BTreeMap<OrderKey, AgentResult>,
    pub(crate) errors: Vec<String>,
    pub(crate) usage: RunUsage,
    pub(crate) cancelled: bool,
    pub(crate) budget_hit: bool,
    pub(crate) finished: u64,
    pub(crate) total: u64,
    /// Step keys that were replayed from the journal in this attempt.
    pub(crate) replayed: u64,
    /// Leaves this attempt sent to the executor.
    pub(crate) executed: u64,
    /// The last leaf in document / item order that really ran or was replayed (the run's
    /// `final`).
    pub(crate) last_real: Option<(OrderKey, AgentResult)>,
}

impl RunCtx {
    pub(crate) fn lock(&self) -> MutexGuard<'_, RunState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the run as a whole was cancelled.
    pub(crate) fn run_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Whether new work must not start: cancelled, or the budget refused a leaf.
    pub(crate) fn stop_requested(&self) -> bool {
        if self.run_cancelled() {
            return true;
        }
        self.lock().budget_hit
    }

    pub(crate) fn push_error(&self, e: String) {
        self.lock().errors.push(e);
    }

    /// Adds `n` to the expected number of steps.
    pub(crate) fn grow_total(&self, n: u64) {
        let mut st = self.lock();
        st.total = st.total.saturating_add(n);
    }

    /// Removes `n` from the expected number of steps (a branch arm not taken).
    pub(crate) fn shrink_total(&self, n: u64) {
        let mut st = self.lock();
        st.total = st.total.saturating_sub(n).max(st.finished);
    }

    /// Stores a settled result: in order, under its id when referenceable, with its usage
    /// counted (unless `count_usage` is false: aggregates carry their leaves' sum), then reports
    /// progress. `real` marks a leaf that ran or was replayed (a candidate for `final`).
    pub(crate) fn settle(
        &self,
        pos: OrderKey,
        result: &AgentResult,
        referenceable: bool,
        count_usage: bool,
        real: bool,
    ) {
        let progress = {
            let mut st = self.lock();
            if real && st.last_real.as_ref().is_none_or(|(k, _)| *k < pos) {
                st.last_real = Some((pos.clone(), result.clone()));
            }
            if count_usage {
                add_usage(&mut st.usage, &result.usage);
            }
            if referenceable {
                st.live.insert(result.clone());
            }
            st.ordered.insert(pos, result.clone());
            st.finished += 1;
            st.total = st.total.max(st.finished);
            Progress::new(&result.node_id, result.status, st.finished, st.total)
        };
        if let Some(cb) = &self.progress {
            cb(&progress);
        }
    }

    /// Sum of the usage of every result stored under `pos` (a foreach's items).
    pub(crate) fn usage_under(&self, pos: &OrderKey) -> RunUsage {
        let st = self.lock();
        let mut u = RunUsage::default();
        for (_, r) in st
            .ordered
            .range(pos.clone()..)
            .take_while(|(k, _)| k.starts_with(pos))
        {
            add_usage(&mut u, &r.usage);
        }
        u
    }
}

/// Adds `b` to `a` (all six counters, saturating).
pub(crate) fn add_usage(a: &mut RunUsage, b: &RunUsage) {
    a.calls = a.calls.saturating_add(b.calls);
    a.prompt_tokens = a.prompt_tokens.saturating_add(b.prompt_tokens);
    a.completion_tokens = a.completion_tokens.saturating_add(b.completion_tokens);
    a.cache_read_tokens = a.cache_read_tokens.saturating_add(b.cache_read_tokens);
    a.reasoning_tokens = a.reasoning_tokens.saturating_add(b.reasoning_tokens);
    a.total_tokens = a.total_tokens.saturating_add(b.total_tokens);
}

/// Where a node runs: its key prefix, order position, template variables and cancellation.
#[derive(Clone)]
pub(crate) struct Scope {
    /// Step-key prefix: empty at top level, `fanout[3]/` inside item 3 of `fanout`.
    pub(crate) prefix: String,
    pub(crate) pos: OrderKey,
    pub(crate) env: Map<String, Value>,
    /// Cancelled by the run or by a halting ancestor.
    pub(crate) cancel: CancellationToken,
    /// The enclosing foreach step key and item index.
    pub(crate) item: Option<(String, i64)>,
}

impl Scope {
    pub(crate) fn root(env: Map<String, Value>, cancel: CancellationToken) -> Self {
        Scope {
            prefix: String::new(),
            pos: Vec::new(),
            env,
            cancel,
            item: None,
        }
    }

    /// The scope of child `i` (same prefix and variables).
    pub(crate) fn child(&self, i: usize, cancel: &CancellationToken) -> Self {
        let mut s = self.clone();
        s.pos.push(u32::try_from(i).unwrap_or(u32::MAX - 1));
        s.cancel = cancel.clone();
        s
    }

    /// Whether results here are referenceable (outside every foreach body).
    pub(crate) fn top_level(&self) -> bool {
        self.item.is_none()
    }
}
