//! [`CompactionContext`]: what the pipeline gives a compactor beyond the history: the session,
//! the loop's memory provider, the stored messages behind a fold, and a way to make the
//! compactor's own model calls visible like the loop's.

use std::sync::Arc;

use power_loop_contracts::{LlmService, Result};
use power_loop_store::{MessageRow, SessionStore};

use crate::memory::MemoryProvider;

/// Wraps a model so its calls emit the loop's `llm_call_*` events.
pub(crate) type Instrument = Arc<dyn Fn(Arc<dyn LlmService>) -> Arc<dyn LlmService> + Send + Sync>;

/// The pipeline's context for a compactor (in [`CompactRequest::context`](super::CompactRequest)).
/// A custom compactor can stash must-keep details into [`memory`](Self::memory) before a fold,
/// reading the originals with [`fetch_messages`](Self::fetch_messages).
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct CompactionContext {
    /// The session being compacted (`None` outside a loop).
    pub session_id: Option<String>,
    /// The loop's memory provider (`AgentLoopConfig::memory`), if any.
    pub memory: Option<Arc<dyn MemoryProvider>>,
    /// The round about to run.
    pub round_index: u32,
    store: Option<SessionStore>,
    instrument: Option<Instrument>,
}

impl std::fmt::Debug for CompactionContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompactionContext")
            .field("session_id", &self.session_id)
            .field("memory", &self.memory.is_some())
            .field("round_index", &self.round_index)
            .field("can_fetch", &self.can_fetch())
            .finish()
    }
}

impl CompactionContext {
    /// An empty context (no session, no memory, no store): what a compactor gets outside a loop.
    pub fn new() -> Self {
        Self::default()
    }

    /// A context over `store` for session `session_id` (what the pipeline builds; also for
    /// testing a compactor against a real store).
    pub fn for_session(store: SessionStore, session_id: impl Into<String>) -> Self {
        CompactionContext {
            session_id: Some(session_id.into()),
            store: Some(store),
            ..Self::default()
        }
    }

    /// Sets the memory provider.
    pub fn with_memory(mut self, memory: Option<Arc<dyn MemoryProvider>>) -> Self {
        self.memory = memory;
        self
    }

    /// Sets the round.
    pub fn with_round_index(mut self, round_index: u32) -> Self {
        self.round_index = round_index;
        self
    }

    pub(crate) fn with_instrument(mut self, instrument: Instrument) -> Self {
        self.instrument = Some(instrument);
        self
    }

    /// Whether [`fetch_messages`](Self::fetch_messages) can read (a store and a session are
    /// attached).
    pub fn can_fetch(&self) -> bool {
        self.store.is_some() && self.session_id.is_some()
    }

    /// Every stored message of the session with `from_seq <= seq <= to_seq`, active or already
    /// folded out, in seq order; `Ok(None)` when no store or session is attached. Use the seqs of
    /// [`CompactRequest::seqs`](super::CompactRequest) to fetch exactly the rows a plan folds.
    pub async fn fetch_messages(
        &self,
        from_seq: i64,
        to_seq: i64,
    ) -> Result<Option<Vec<MessageRow>>> {
        let (Some(store), Some(sid)) = (&self.store, &self.session_id) else {
            return Ok(None);
        };
        let rows = store.load_all_messages(sid).await?;
        Ok(Some(
            rows.into_iter()
                .filter(|r| r.seq >= from_seq && r.seq <= to_seq)
                .collect(),
        ))
    }

    /// `llm` wrapped so that its calls emit the loop's `llm_call_started` / `llm_call_completed`
    /// (call id `r<round>.compact.a<attempt>`) and `llm_retry_attempted` events, like the
    /// request's [`llm`](super::CompactRequest::llm) does. Use it for a compactor's own summary
    /// model; outside a loop it returns `llm` unchanged.
    pub fn instrument(&self, llm: Arc<dyn LlmService>) -> Arc<dyn LlmService> {
        match &self.instrument {
            Some(f) => f(llm),
            None => llm,
        }
    }
}
