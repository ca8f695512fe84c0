//! The compaction seam: a [`Compactor`] decides, before each round's LLM call, whether to fold
//! part of the history into one summary note. No compactor is installed by default.

use std::sync::Arc;

use power_loop_contracts::{BoxFuture, LlmService, Message, Result};

/// What a compactor sees.
#[non_exhaustive]
pub struct CompactRequest<'a> {
    /// The working history.
    pub history: &'a [Message],
    /// The store seq of each history message (`None` for messages that are not persisted,
    /// e.g. recalled memories); a plan may only fold persisted messages.
    pub seqs: &'a [Option<i64>],
    /// The loop's model, for summarizing.
    pub llm: Arc<dyn LlmService>,
    /// The context budget (the loop's `max_tokens`).
    pub max_tokens: u32,
    /// Round number.
    pub round_index: u32,
}

/// A fold decided by a compactor.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CompactionPlan {
    /// Indices (into the history) of the messages to fold; the note takes the first one's place.
    pub fold_indices: Vec<usize>,
    /// The summary text of the note.
    pub summary: String,
    /// Estimated tokens before the fold.
    pub before_tokens: u64,
    /// Estimated tokens after the fold.
    pub after_tokens: u64,
    /// What triggered it (event `trigger`).
    pub trigger: String,
}

impl CompactionPlan {
    /// A plan folding `fold_indices` into `summary`.
    pub fn new(fold_indices: Vec<usize>, summary: impl Into<String>) -> Self {
        CompactionPlan {
            fold_indices,
            summary: summary.into(),
            before_tokens: 0,
            after_tokens: 0,
            trigger: "compactor_plan_emitted".to_owned(),
        }
    }

    /// Sets the token estimates.
    pub fn with_tokens(mut self, before: u64, after: u64) -> Self {
        self.before_tokens = before;
        self.after_tokens = after;
        self
    }
}

/// Decides whether to compact. Object-safe (stored as `Arc<dyn Compactor>`).
pub trait Compactor: Send + Sync {
    /// Returns a plan to fold part of the history, or `None`.
    fn maybe_compact<'a>(
        &'a self,
        request: CompactRequest<'a>,
    ) -> BoxFuture<'a, Result<Option<CompactionPlan>>>;
}
