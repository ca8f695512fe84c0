//! Inputs of the write operations: extensible builder structs (`#[non_exhaustive]` + `Default`).

use serde_json::Value as Json;

use crate::pending::PendingState;
use crate::types::{JsonMap, SessionKind, SubagentLifecycle};

/// What `create_session` writes.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct NewSession {
    /// Use this id instead of a generated `sess_…` id.
    pub session_id: Option<String>,
    /// System prompt.
    pub system_prompt: Option<String>,
    /// Model name.
    pub model: Option<String>,
    /// Loop configuration (stored as `{}` when `None`).
    pub config: Option<JsonMap>,
    /// Parent session (makes this a sub-agent one level deeper).
    pub parent_session_id: Option<String>,
    /// Tool call that spawned it.
    pub spawn_tool_call_id: Option<String>,
    /// Kind (forced to `Subagent` when a parent is given).
    pub kind: Option<SessionKind>,
    /// Lifecycle relative to the parent (default `Ephemeral`).
    pub lifecycle: Option<SubagentLifecycle>,
    /// Free metadata (stored as `{}` when `None`).
    pub metadata: Option<JsonMap>,
}

impl NewSession {
    /// A root session with defaults.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the session id.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.session_id = Some(id.into());
        self
    }
    /// Sets the system prompt.
    pub fn with_system_prompt(mut self, p: impl Into<String>) -> Self {
        self.system_prompt = Some(p.into());
        self
    }
    /// Sets the model.
    pub fn with_model(mut self, m: impl Into<String>) -> Self {
        self.model = Some(m.into());
        self
    }
    /// Sets the config object.
    pub fn with_config(mut self, c: JsonMap) -> Self {
        self.config = Some(c);
        self
    }
    /// Makes it a child of `parent`.
    pub fn with_parent(mut self, parent: impl Into<String>) -> Self {
        self.parent_session_id = Some(parent.into());
        self
    }
    /// Sets the spawning tool call id.
    pub fn with_spawn_tool_call_id(mut self, id: impl Into<String>) -> Self {
        self.spawn_tool_call_id = Some(id.into());
        self
    }
    /// Sets the kind.
    pub fn with_kind(mut self, k: SessionKind) -> Self {
        self.kind = Some(k);
        self
    }
    /// Sets the lifecycle.
    pub fn with_lifecycle(mut self, l: SubagentLifecycle) -> Self {
        self.lifecycle = Some(l);
        self
    }
    /// Sets the metadata object.
    pub fn with_metadata(mut self, m: JsonMap) -> Self {
        self.metadata = Some(m);
        self
    }
}

/// One message to append.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct NewMessage {
    /// Role (not validated).
    pub role: String,
    /// Text content.
    pub content: Option<String>,
    /// Tool calls (stored only when non-empty).
    pub tool_calls: Option<Vec<Json>>,
    /// Answered tool call id.
    pub tool_call_id: Option<String>,
    /// Name.
    pub name: Option<String>,
    /// Round index.
    pub round_index: Option<i64>,
    /// Metadata (stored as `{}` when `None`).
    pub meta: Option<JsonMap>,
}

impl NewMessage {
    /// A message with this role and nothing else.
    pub fn new(role: impl Into<String>) -> Self {
        NewMessage {
            role: role.into(),
            content: None,
            tool_calls: None,
            tool_call_id: None,
            name: None,
            round_index: None,
            meta: None,
        }
    }
    /// A `user` message with text.
    pub fn user(text: impl Into<String>) -> Self {
        Self::new("user").with_content(text)
    }
    /// An `assistant` message with text.
    pub fn assistant(text: impl Into<String>) -> Self {
        Self::new("assistant").with_content(text)
    }
    /// A `tool` result answering `tool_call_id`.
    pub fn tool(tool_call_id: impl Into<String>, text: impl Into<String>) -> Self {
        Self::new("tool")
            .with_tool_call_id(tool_call_id)
            .with_content(text)
    }
    /// Sets the content.
    pub fn with_content(mut self, c: impl Into<String>) -> Self {
        self.content = Some(c.into());
        self
    }
    /// Sets the tool calls.
    pub fn with_tool_calls(mut self, calls: Vec<Json>) -> Self {
        self.tool_calls = Some(calls);
        self
    }
    /// Sets the answered tool call id.
    pub fn with_tool_call_id(mut self, id: impl Into<String>) -> Self {
        self.tool_call_id = Some(id.into());
        self
    }
    /// Sets the name.
    pub fn with_name(mut self, n: impl Into<String>) -> Self {
        self.name = Some(n.into());
        self
    }
    /// Sets the round index.
    pub fn with_round_index(mut self, r: i64) -> Self {
        self.round_index = Some(r);
        self
    }
    /// Sets the metadata.
    pub fn with_meta(mut self, m: JsonMap) -> Self {
        self.meta = Some(m);
        self
    }
}

/// A fold to record (spec §8.5).
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct CompactionRequest {
    /// Lowest folded seq (range mode, and the span when `fold_seqs` is empty).
    pub from_seq: i64,
    /// Highest folded seq.
    pub to_seq: i64,
    /// Summary text of the note.
    pub note_content: String,
    /// Tokens before.
    pub before_tokens: Option<i64>,
    /// Tokens after.
    pub after_tokens: Option<i64>,
    /// Round.
    pub round_index: Option<i64>,
    /// Extra note metadata (the fold keys overwrite it).
    pub note_meta: Option<JsonMap>,
    /// Exact seqs to fold (`None` = legacy inclusive range mode).
    pub fold_seqs: Option<Vec<i64>>,
    /// Logical position of the note (`None` = span start).
    pub order_key: Option<i64>,
}

impl CompactionRequest {
    /// Folds exactly `seqs` (span = min/max) into a note with `content`.
    pub fn fold(seqs: Vec<i64>, content: impl Into<String>) -> Self {
        let from = seqs.iter().copied().min().unwrap_or(0);
        let to = seqs.iter().copied().max().unwrap_or(0);
        CompactionRequest {
            from_seq: from,
            to_seq: to,
            note_content: content.into(),
            fold_seqs: Some(seqs),
            ..Default::default()
        }
    }
    /// Folds the inclusive seq range (legacy mode).
    pub fn range(from_seq: i64, to_seq: i64, content: impl Into<String>) -> Self {
        CompactionRequest {
            from_seq,
            to_seq,
            note_content: content.into(),
            ..Default::default()
        }
    }
    /// Sets before/after token counts.
    pub fn with_tokens(mut self, before: Option<i64>, after: Option<i64>) -> Self {
        self.before_tokens = before;
        self.after_tokens = after;
        self
    }
    /// Sets the round.
    pub fn with_round_index(mut self, r: i64) -> Self {
        self.round_index = Some(r);
        self
    }
    /// Sets the note metadata.
    pub fn with_note_meta(mut self, m: JsonMap) -> Self {
        self.note_meta = Some(m);
        self
    }
    /// Sets the logical order key.
    pub fn with_order_key(mut self, k: i64) -> Self {
        self.order_key = Some(k);
        self
    }
}

/// Usage of one round (`record_usage`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct UsageRecord {
    /// Round index (the key with the session id).
    pub round_index: i64,
    /// Prompt tokens.
    pub prompt_tokens: Option<i64>,
    /// Completion tokens.
    pub completion_tokens: Option<i64>,
    /// Total tokens.
    pub total_tokens: Option<i64>,
    /// Model.
    pub model: Option<String>,
}

impl UsageRecord {
    /// Usage for `round_index`.
    pub fn new(
        round_index: i64,
        prompt_tokens: Option<i64>,
        completion_tokens: Option<i64>,
        total_tokens: Option<i64>,
    ) -> Self {
        UsageRecord {
            round_index,
            prompt_tokens,
            completion_tokens,
            total_tokens,
            model: None,
        }
    }
    /// Sets the model.
    pub fn with_model(mut self, m: impl Into<String>) -> Self {
        self.model = Some(m.into());
        self
    }
}

/// Counters added by `bump_session_stats` (one finished send).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatsDelta {
    /// Rounds of the send.
    pub rounds: i64,
    /// LLM calls.
    pub llm_calls: i64,
    /// Tool calls.
    pub tool_calls: i64,
    /// Prompt tokens.
    pub prompt_tokens: i64,
    /// Completion tokens.
    pub completion_tokens: i64,
    /// Total tokens.
    pub total_tokens: i64,
}

impl StatsDelta {
    /// A delta with every counter set.
    pub fn new(
        rounds: i64,
        llm_calls: i64,
        tool_calls: i64,
        prompt_tokens: i64,
        completion_tokens: i64,
        total_tokens: i64,
    ) -> Self {
        StatsDelta {
            rounds,
            llm_calls,
            tool_calls,
            prompt_tokens,
            completion_tokens,
            total_tokens,
        }
    }
}

/// A background task write (`upsert_background_task`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BackgroundTaskUpdate {
    /// Task id.
    pub task_id: String,
    /// Command line.
    pub command: String,
    /// Status string.
    pub status: String,
    /// Exit code.
    pub return_code: Option<i64>,
    /// Output tail.
    pub output_tail: Option<String>,
    /// Output path.
    pub output_path: Option<String>,
}

impl BackgroundTaskUpdate {
    /// A task update.
    pub fn new(
        task_id: impl Into<String>,
        command: impl Into<String>,
        status: impl Into<String>,
    ) -> Self {
        BackgroundTaskUpdate {
            task_id: task_id.into(),
            command: command.into(),
            status: status.into(),
            ..Default::default()
        }
    }
    /// Sets the exit code.
    pub fn with_return_code(mut self, rc: i64) -> Self {
        self.return_code = Some(rc);
        self
    }
    /// Sets the output tail.
    pub fn with_output_tail(mut self, t: impl Into<String>) -> Self {
        self.output_tail = Some(t.into());
        self
    }
    /// Sets the output path.
    pub fn with_output_path(mut self, p: impl Into<String>) -> Self {
        self.output_path = Some(p.into());
        self
    }
}

/// A pending-state rewrite computed inside a turn's transaction from the current value.
pub type PendingUpdateFn =
    Box<dyn FnOnce(Option<PendingState>) -> Option<PendingState> + Send + 'static>;

/// What a turn does to `session_state.pending_json`.
#[derive(Default)]
#[non_exhaustive]
pub enum PendingChange {
    /// Leave it alone.
    #[default]
    Keep,
    /// Replace it (an empty record is stored as NULL).
    Set(PendingState),
    /// Clear it.
    Clear,
    /// Remove the `tool_call_id`s of the turn's `tool` messages from the unresolved set (spec
    /// §10.2), clearing it when nothing remains.
    ResolveToolResults,
    /// Rewrite it with a function of the current value (runs under the session row lock).
    Update(PendingUpdateFn),
}

impl std::fmt::Debug for PendingChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PendingChange::Keep => f.write_str("Keep"),
            PendingChange::Set(p) => f.debug_tuple("Set").field(p).finish(),
            PendingChange::Clear => f.write_str("Clear"),
            PendingChange::ResolveToolResults => f.write_str("ResolveToolResults"),
            PendingChange::Update(_) => f.write_str("Update(..)"),
        }
    }
}

/// The minimal durable turn: messages, round index, pending rewrite, usage and stats in ONE
/// transaction (`SessionStore::commit_turn`).
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct TurnCommit {
    /// Messages to append, in order (seqs allocated gap-free).
    pub messages: Vec<NewMessage>,
    /// New `session_state.round_index`, if any.
    pub round_index: Option<i64>,
    /// Pending-state change.
    pub pending: PendingChange,
    /// Per-round usage to record.
    pub usage: Option<UsageRecord>,
    /// Cumulative counters to add (counts as one finished send).
    pub stats: Option<StatsDelta>,
}

impl TurnCommit {
    /// A turn appending `messages`.
    pub fn new(messages: Vec<NewMessage>) -> Self {
        TurnCommit {
            messages,
            ..Default::default()
        }
    }
    /// Sets the round index.
    pub fn with_round_index(mut self, r: i64) -> Self {
        self.round_index = Some(r);
        self
    }
    /// Sets the pending change.
    pub fn with_pending(mut self, p: PendingChange) -> Self {
        self.pending = p;
        self
    }
    /// Records usage.
    pub fn with_usage(mut self, u: UsageRecord) -> Self {
        self.usage = Some(u);
        self
    }
    /// Adds stats.
    pub fn with_stats(mut self, s: StatsDelta) -> Self {
        self.stats = Some(s);
        self
    }
}
