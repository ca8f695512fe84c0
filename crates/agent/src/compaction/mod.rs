//! The compaction seam: a [`Compactor`] decides, before each round's LLM call, whether to fold
//! part of the history into one summary note. No compactor is installed by default;
//! [`DefaultCompactor`] is the spec's summarizing compactor. [`microcompact`] spills large tool
//! outputs every round, and [`recall_compacted_tool`] lets the model read folded originals back.

use std::sync::Arc;

use power_loop_contracts::{BoxFuture, CancellationToken, LlmService, Message, Result, TokenUsage};

mod context;
mod default;
mod micro;
mod recall;
mod span;

pub use context::CompactionContext;
pub(crate) use context::Instrument;
pub use default::{COMPACT_THRESHOLD_ENV, DefaultCompactor, context_window_for_model};
pub(crate) use micro::would_rewrite;
pub use micro::{MicroConfig, microcompact};
pub use recall::{
    RECALL_COMPACTED_CONTENT_CHARS, RECALL_COMPACTED_MAX_LIMIT, RecallQuery, format_recall,
    recall_compacted_definition, recall_compacted_tool,
};
pub use span::{FoldSpan, is_compact_note, select_span};

/// What a compactor sees.
#[non_exhaustive]
pub struct CompactRequest<'a> {
    /// The working history.
    pub history: &'a [Message],
    /// The store seq of each history message (`None` for messages that are not persisted,
    /// e.g. recalled memories); a plan may only fold persisted messages.
    pub seqs: &'a [Option<i64>],
    /// The loop's model, for summarizing: the provider the loop was built with (so behind the
    /// same retry layer as the main calls), wrapped so that each call emits `llm_call_started` /
    /// `llm_call_completed` (call id `r<round>.compact.a<attempt>`) and `llm_retry_attempted`.
    pub llm: Arc<dyn LlmService>,
    /// The context budget (the loop's `max_tokens`).
    pub max_tokens: u32,
    /// Round number.
    pub round_index: u32,
    /// The loop's model override (`AgentLoopConfig::model`), used to pick a context window.
    pub model: Option<&'a str>,
    /// The run's cancellation token. A compactor that calls a model passes it on (as
    /// `LlmRequest::cancel`) and returns an error with code `cancelled` once it fires; the
    /// pipeline then records nothing and ends the send as cancelled.
    pub cancel: CancellationToken,
    /// The session, the loop's memory provider and the stored messages (see
    /// [`CompactionContext`]).
    pub context: CompactionContext,
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
    /// Token usage of the summary call, added to the run's usage by the pipeline.
    pub usage: Option<TokenUsage>,
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
            usage: None,
        }
    }

    /// Sets the token estimates.
    pub fn with_tokens(mut self, before: u64, after: u64) -> Self {
        self.before_tokens = before;
        self.after_tokens = after;
        self
    }
}

impl CompactionPlan {
    /// Sets the summary call's usage.
    pub fn with_usage(mut self, usage: TokenUsage) -> Self {
        self.usage = Some(usage);
        self
    }
}

/// Decides whether to compact. An `Err` with code `compaction.failed` is a soft failure: the
/// pipeline emits `status_changed{kind:auto_compact, phase:failed}` and the run goes on. An `Err`
/// with code `cancelled` while the run's token ([`CompactRequest::cancel`]) has fired ends the
/// send as cancelled (`loop_cancelled`), like a cancel during the round's model call; any other
/// `Err` fails the send. Nothing is recorded in the store unless a plan is returned.
/// Object-safe (stored as `Arc<dyn Compactor>`).
pub trait Compactor: Send + Sync {
    /// Returns a plan to fold part of the history, or `None`.
    fn maybe_compact<'a>(
        &'a self,
        request: CompactRequest<'a>,
    ) -> BoxFuture<'a, Result<Option<CompactionPlan>>>;
}
