//! Inputs and results of the loop's entry points.

use power_loop_contracts::{CancellationToken, Content, ContentPart, Message, ToolCall};
use power_loop_store::PendingInteraction;
use power_loop_tools::ToolRegistry;
use serde::Serialize;

use crate::budget::RunUsage;
use crate::cancel::CancelHandle;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// A final answer (or a hook break).
    Completed,
    /// Tool calls were requested but no registry is configured; the session stays pending.
    PendingTools,
    /// A tool asked for human input; answer it with `submit_input`.
    WaitingForInput,
    /// The cancellation token fired.
    Cancelled,
    /// The round cap was reached (a summary reply was requested and persisted).
    HitRoundLimit,
    /// The per-run token budget was spent.
    BudgetExceeded,
    /// The model call gave up (retry exhausted / timeout); a marker reply was persisted.
    Degraded,
}

impl RunStatus {
    /// The contract string (`completed`, `pending_tools`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            RunStatus::Completed => "completed",
            RunStatus::PendingTools => "pending_tools",
            RunStatus::WaitingForInput => "waiting_for_input",
            RunStatus::Cancelled => "cancelled",
            RunStatus::HitRoundLimit => "hit_round_limit",
            RunStatus::BudgetExceeded => "budget_exceeded",
            RunStatus::Degraded => "degraded",
        }
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What `send`, `resume`, `submit_input` and `follow_up` return.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct StatefulResult {
    /// The session.
    pub session_id: String,
    /// How the run ended.
    pub status: RunStatus,
    /// The final text (markers such as `[cancelled by user]` for non-answers).
    pub final_text: String,
    /// Rounds run.
    pub rounds: u32,
    /// Tool calls left for the caller (`pending_tools`, `waiting_for_input`).
    pub pending_tool_calls: Vec<ToolCall>,
    /// Open human-input requests.
    pub pending_interactions: Vec<PendingInteraction>,
    /// Cumulative usage of every main-loop LLM call of the run.
    pub usage: RunUsage,
    /// Tool handlers executed by the run.
    pub tool_calls: u32,
    /// The validated structured answer (when structured output is configured).
    pub structured: Option<serde_json::Value>,
    /// Why the structured answer is missing (it never validated).
    pub structured_error: Option<String>,
    /// Why the run was cancelled (status `cancelled` only): the reason given to
    /// [`CancelHandle::cancel_with_reason`](crate::CancelHandle::cancel_with_reason), else
    /// `cancelled`.
    pub cancel_reason: Option<String>,
}

impl StatefulResult {
    pub(crate) fn new(session_id: &str, status: RunStatus) -> Self {
        StatefulResult {
            session_id: session_id.to_owned(),
            status,
            final_text: String::new(),
            rounds: 0,
            pending_tool_calls: Vec::new(),
            pending_interactions: Vec::new(),
            usage: RunUsage::default(),
            tool_calls: 0,
            structured: None,
            structured_error: None,
            cancel_reason: None,
        }
    }
}

/// `follow_up` accepted the input into the session's queue (a run is in progress).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FollowUpQueued {
    /// The session.
    pub session_id: String,
    /// Queue length after the append.
    pub queue_depth: usize,
}

/// What `follow_up` returns.
#[derive(Debug, Clone)]
pub enum FollowUpOutcome {
    /// No run was in progress: the input ran like a `send`.
    Ran(Box<StatefulResult>),
    /// A run is in progress: the input was queued for its next round.
    Queued(FollowUpQueued),
}

/// A user input: text, multimodal parts, or a whole message (role defaults to `user`).
#[derive(Debug, Clone, PartialEq)]
pub struct UserInput(pub(crate) Message);

impl UserInput {
    /// The message that will be persisted.
    pub fn message(&self) -> &Message {
        &self.0
    }
}

impl From<&str> for UserInput {
    fn from(s: &str) -> Self {
        UserInput(Message::user(s))
    }
}
impl From<String> for UserInput {
    fn from(s: String) -> Self {
        UserInput(Message::user(s))
    }
}
impl From<Vec<ContentPart>> for UserInput {
    fn from(p: Vec<ContentPart>) -> Self {
        UserInput(Message::user(Content::Parts(p)))
    }
}
impl From<Message> for UserInput {
    fn from(m: Message) -> Self {
        UserInput(m)
    }
}

impl UserInput {
    /// The text used when follow-ups are merged.
    pub(crate) fn merge_text(&self) -> String {
        self.0.text().trim().to_owned()
    }
}

/// Options of one `send`.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct SendOptions {
    /// Cancels the run (mid-stream, mid-batch, at round starts).
    pub cancel: Option<CancellationToken>,
    /// Cancels the run and says why (set by [`with_cancel_handle`](Self::with_cancel_handle),
    /// which also sets `cancel` to its token).
    pub cancel_handle: Option<CancelHandle>,
    /// Tool allowlist from the loop's registry (unknown names ignored).
    pub tools: Option<Vec<String>>,
    /// A registry used as-is for this run (wins over `tools`).
    pub tool_registry: Option<ToolRegistry>,
    /// Per-call system prompt (per-call > session > config).
    pub system_prompt: Option<String>,
    /// Abort stale tool calls (`<aborted: auto-healed …>`) instead of failing with `session.pending`.
    pub heal_pending: bool,
    /// Commit the input message before the model is called (one more commit per send). By
    /// default it is committed with the run's first durable write (the answer, or the tool-call
    /// record before any tool runs), or alone before the send returns: an acknowledged send is
    /// durable either way; this only matters to callers that look for the input in the store
    /// while the send is still running (e.g. the timer runner's crash deduplication).
    pub persist_input_first: bool,
    /// One more fencing token every write of this send checks (besides the session lease's):
    /// the timer runner passes its claim, so a runner that lost the claim delivers nothing
    /// (`timer.claim_lost`).
    pub fence: Option<power_loop_store::Fence>,
}

impl SendOptions {
    /// Default options.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the cancellation token.
    pub fn with_cancel(mut self, token: CancellationToken) -> Self {
        self.cancel = Some(token);
        self
    }
    /// Sets a cancellation handle: its token cancels the run, and the reason it was cancelled
    /// with reaches [`StatefulResult::cancel_reason`] and the `loop_cancelled` event.
    pub fn with_cancel_handle(mut self, handle: CancelHandle) -> Self {
        self.cancel = Some(handle.token());
        self.cancel_handle = Some(handle);
        self
    }
    /// Sets the tool allowlist.
    pub fn with_tools<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.tools = Some(names.into_iter().map(Into::into).collect());
        self
    }
    /// Uses this registry for the run.
    pub fn with_tool_registry(mut self, registry: ToolRegistry) -> Self {
        self.tool_registry = Some(registry);
        self
    }
    /// Sets the per-call system prompt.
    pub fn with_system_prompt(mut self, prompt: impl Into<String>) -> Self {
        self.system_prompt = Some(prompt.into());
        self
    }
    /// Heals a pending session instead of failing.
    pub fn with_heal_pending(mut self, yes: bool) -> Self {
        self.heal_pending = yes;
        self
    }
    /// Commits the input message before the model is called (see the field).
    pub fn with_persist_input_first(mut self, yes: bool) -> Self {
        self.persist_input_first = yes;
        self
    }
    /// Makes every write of this send check `fence` too (see the field).
    pub fn with_fence(mut self, fence: power_loop_store::Fence) -> Self {
        self.fence = Some(fence);
        self
    }
}
