//! The `sessions` table: one row per session, with its kind, lifecycle and place in the
//! sub-agent tree — the row, the enums stored in it, the input of `create_session` and the
//! table's definition.

use serde::{Deserialize, Serialize};

use crate::codec::{JsonMap, stored_row, string_enum};
use crate::ddl::model::{ColumnType, Index, Table, col};

use ColumnType::{Int, Key, Label, Text};

string_enum! {
    /// Whether a session is a root conversation or a spawned sub-agent.
    SessionKind { /// A top-level session.
        Root => "root", /// A session spawned by another session's tool call.
        Subagent => "subagent" }
}

string_enum! {
    /// Session status (informational; archived sessions still accept writes).
    SessionStatus { /// Live session.
        Active => "active", /// Archived by `archive_session`.
        Archived => "archived" }
}

string_enum! {
    /// What happens to a child session when its parent is closed.
    SubagentLifecycle {
        /// Deleted with its parent (and closed after a completed run by the spawner).
        Ephemeral => "ephemeral",
        /// Kept after runs, deleted with its parent.
        Linked => "linked",
        /// Independent: survives its parent (its parent id is cleared).
        Detached => "detached",
    }
}

stored_row! {
    /// One session (table `sessions`).
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[non_exhaustive]
    pub struct SessionRow {
        /// Session id.
        pub session_id: String => text,
        /// Creation time, epoch ms.
        pub created_at: i64 => i64,
        /// Last write to the session, epoch ms.
        pub updated_at: i64 => i64,
        /// System prompt, if any.
        pub system_prompt: Option<String> => opt_text,
        /// Model name, if any.
        pub model: Option<String> => opt_text,
        /// Loop configuration (empty object when not given).
        pub config: JsonMap = "config_json" => map,
        /// Status.
        pub status: SessionStatus => label,
        /// Root or sub-agent.
        pub kind: SessionKind => label,
        /// Parent session of a sub-agent.
        pub parent_session_id: Option<String> => opt_text,
        /// Tool call that spawned this sub-agent.
        pub spawn_tool_call_id: Option<String> => opt_text,
        /// Nesting depth (0 for roots).
        pub spawn_depth: i64 => i64,
        /// Lifecycle relative to the parent.
        pub lifecycle: SubagentLifecycle => label,
        /// Free metadata (empty object when not given).
        pub metadata: JsonMap = "metadata_json" => map,
    }
}

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

/// The `sessions` table.
pub(crate) const TABLE: Table = Table::new(
    "sessions",
    &[
        col("session_id", Key),
        col("created_at", Int),
        col("updated_at", Int),
        col("system_prompt", Text).null(),
        col("model", Key).null(),
        col("config_json", Text).null(),
        col("status", Label).default_str("active"),
        col("kind", Label).default_str("root"),
        col("parent_session_id", Key).null(),
        col("spawn_tool_call_id", Key).null(),
        col("spawn_depth", Int).default_int(0),
        col("lifecycle", Label).default_str("ephemeral"),
        col("metadata_json", Text).null(),
    ],
    &["session_id"],
)
.with_indexes(&[Index::on("idx_sessions_parent", &["parent_session_id"])]);
