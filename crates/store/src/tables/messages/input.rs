//! Inputs of the message writes: one message to append, and the durable turn that appends
//! messages and rewrites the session's state in one transaction.

use serde_json::Value as Json;

use crate::codec::JsonMap;
use crate::tables::session_state::pending::PendingState;
use crate::tables::usage::row::{StatsDelta, UsageRecord};

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
    /// Remove the `tool_call_id`s of the turn's `tool` messages from the unresolved set,
    /// clearing it when nothing remains.
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
