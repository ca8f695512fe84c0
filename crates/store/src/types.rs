//! Typed rows and enums of the store (spec §6.2) and the inputs of the write operations.

use power_loop_contracts::{Error, ErrorCode, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::db::Row;
use crate::util::{decode_json, decode_map};

/// A JSON object (config, metadata, message meta).
pub type JsonMap = serde_json::Map<String, Json>;

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $( $(#[$vmeta:meta])* $variant:ident => $s:literal ),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $( $(#[$vmeta])* #[serde(rename = $s)] $variant, )*
        }

        impl $name {
            /// The stored string form.
            pub const fn as_str(self) -> &'static str {
                match self { $( $name::$variant => $s, )* }
            }

            /// Parses the stored string form; an unknown value is a `store.decode` error.
            pub fn parse(s: &str) -> Result<Self> {
                match s {
                    $( $s => Ok($name::$variant), )*
                    other => Err(Error::new(
                        ErrorCode::StoreDecode,
                        format!(concat!("unknown ", stringify!($name), " value `{}` in the store"), other),
                    )),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

pub(crate) use string_enum;

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

string_enum! {
    /// Whether a message is in the active window or folded out by a compaction.
    MessageState { /// In the active window.
        Active => "active", /// Folded out by a compaction (kept for recall and audit).
        CompactedOut => "compacted_out" }
}

/// Timer status strings (spec §8.6).
pub mod timer_status {
    /// Waiting for its due time.
    pub const ARMED: &str = "armed";
    /// Claimed by a runner and being delivered.
    pub const FIRING: &str = "firing";
    /// One-shot timer that fired.
    pub const FIRED: &str = "fired";
    /// Cancelled before it fired.
    pub const CANCELLED: &str = "cancelled";
}

fn enum_col<T>(row: &Row, col: &str, parse: fn(&str) -> Result<T>) -> Result<T> {
    parse(&row.text(col)?)
}

/// One session (table `sessions`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SessionRow {
    /// Session id.
    pub session_id: String,
    /// Creation time, epoch ms.
    pub created_at: i64,
    /// Last write to the session, epoch ms.
    pub updated_at: i64,
    /// System prompt, if any.
    pub system_prompt: Option<String>,
    /// Model name, if any.
    pub model: Option<String>,
    /// Loop configuration (empty object when not given).
    pub config: JsonMap,
    /// Status.
    pub status: SessionStatus,
    /// Root or sub-agent.
    pub kind: SessionKind,
    /// Parent session of a sub-agent.
    pub parent_session_id: Option<String>,
    /// Tool call that spawned this sub-agent.
    pub spawn_tool_call_id: Option<String>,
    /// Nesting depth (0 for roots).
    pub spawn_depth: i64,
    /// Lifecycle relative to the parent.
    pub lifecycle: SubagentLifecycle,
    /// Free metadata (empty object when not given).
    pub metadata: JsonMap,
}

impl SessionRow {
    pub(crate) const COLUMNS: &'static str = "session_id, created_at, updated_at, system_prompt, model, config_json, status, kind, parent_session_id, spawn_tool_call_id, spawn_depth, lifecycle, metadata_json";

    pub(crate) fn from_row(r: &Row) -> Result<Self> {
        Ok(SessionRow {
            session_id: r.text("session_id")?,
            created_at: r.i64("created_at")?,
            updated_at: r.i64("updated_at")?,
            system_prompt: r.opt_text("system_prompt")?,
            model: r.opt_text("model")?,
            config: decode_map("config_json", r.opt_text("config_json")?)?,
            status: enum_col(r, "status", SessionStatus::parse)?,
            kind: enum_col(r, "kind", SessionKind::parse)?,
            parent_session_id: r.opt_text("parent_session_id")?,
            spawn_tool_call_id: r.opt_text("spawn_tool_call_id")?,
            spawn_depth: r.i64("spawn_depth")?,
            lifecycle: enum_col(r, "lifecycle", SubagentLifecycle::parse)?,
            metadata: decode_map("metadata_json", r.opt_text("metadata_json")?)?,
        })
    }
}

/// One message (table `messages`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MessageRow {
    /// Session id.
    pub session_id: String,
    /// Per-session, 1-based, gap-free identity.
    pub seq: i64,
    /// Role (`user`, `assistant`, `tool`, `system`…); not validated.
    pub role: String,
    /// Name (tool name, `compact_note`, …).
    pub name: Option<String>,
    /// Text content.
    pub content: Option<String>,
    /// Tool calls of an assistant message (`None` when it has none).
    pub tool_calls: Option<Vec<Json>>,
    /// Tool call answered by a `tool` message.
    pub tool_call_id: Option<String>,
    /// Round of the send that wrote it.
    pub round_index: Option<i64>,
    /// Active or folded out.
    pub state: MessageState,
    /// Free metadata (empty object when not given).
    pub meta: JsonMap,
    /// Creation time, epoch ms.
    pub created_at: i64,
}

impl MessageRow {
    pub(crate) const COLUMNS: &'static str = "session_id, seq, role, name, content, tool_calls_json, tool_call_id, round_index, state, meta_json, created_at";

    pub(crate) fn from_row(r: &Row) -> Result<Self> {
        let tool_calls = match decode_json("tool_calls_json", r.opt_text("tool_calls_json")?)? {
            None | Some(Json::Null) => None,
            Some(Json::Array(items)) => Some(items),
            Some(other) => {
                return Err(Error::new(
                    ErrorCode::StoreDecode,
                    format!("column `tool_calls_json` holds `{other}` where an array was expected"),
                ));
            }
        };
        Ok(MessageRow {
            session_id: r.text("session_id")?,
            seq: r.i64("seq")?,
            role: r.text("role")?,
            name: r.opt_text("name")?,
            content: r.opt_text("content")?,
            tool_calls,
            tool_call_id: r.opt_text("tool_call_id")?,
            round_index: r.opt_i64("round_index")?,
            state: enum_col(r, "state", MessageState::parse)?,
            meta: decode_map("meta_json", r.opt_text("meta_json")?)?,
            created_at: r.i64("created_at")?,
        })
    }

    /// The logical-order key (spec §8.4): a compact note sorts at its `meta.ord`, others at `seq`.
    pub fn logical_ord(&self) -> i64 {
        if self.name.as_deref() == Some("compact_note")
            && let Some(ord) = self.meta.get("ord").and_then(json_as_i64)
        {
            return ord;
        }
        self.seq
    }
}

fn json_as_i64(v: &Json) -> Option<i64> {
    match v {
        Json::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Json::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Sorts rows into logical order (spec §8.4): key `(logical_ord, seq)`.
pub fn sort_logical(rows: &mut [MessageRow]) {
    rows.sort_by_key(|m| (m.logical_ord(), m.seq));
}

/// The mutable per-session counters (table `session_state`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SessionStateRow {
    /// Session id.
    pub session_id: String,
    /// The seq the next message gets.
    pub next_seq: i64,
    /// Round index of the current/last send.
    pub round_index: i64,
    /// Number of compactions recorded.
    pub last_compact_seq: i64,
    /// Unresolved tool calls (spec §10), `None` when clean.
    pub pending: Option<crate::pending::PendingState>,
}

impl SessionStateRow {
    pub(crate) const COLUMNS: &'static str =
        "session_id, next_seq, round_index, last_compact_seq, pending_json";

    pub(crate) fn from_row(r: &Row) -> Result<Self> {
        Ok(SessionStateRow {
            session_id: r.text("session_id")?,
            next_seq: r.i64("next_seq")?,
            round_index: r.i64("round_index")?,
            last_compact_seq: r.i64("last_compact_seq")?,
            pending: crate::pending::PendingState::decode(r.opt_text("pending_json")?)?,
        })
    }

    /// The active-window token of this state.
    pub fn window_token(&self) -> WindowToken {
        WindowToken {
            next_seq: self.next_seq,
            last_compact_seq: self.last_compact_seq,
        }
    }
}

/// The active-window cache token: changes on every append (`next_seq`) and every fold
/// (`last_compact_seq`). A cache whose token differs must extend (only `next_seq` moved) or reload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WindowToken {
    /// `session_state.next_seq`.
    pub next_seq: i64,
    /// `session_state.last_compact_seq`.
    pub last_compact_seq: i64,
}

/// One row of the compaction journal (table `compactions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CompactionRow {
    /// Session id.
    pub session_id: String,
    /// Per-session 1-based fold counter.
    pub compact_seq: i64,
    /// Seq of the `compact_note` message.
    pub note_seq: i64,
    /// Lowest folded seq.
    pub from_seq: i64,
    /// Highest folded seq.
    pub to_seq: i64,
    /// Tokens before the fold.
    pub before_tokens: Option<i64>,
    /// Tokens after the fold.
    pub after_tokens: Option<i64>,
    /// Round of the fold.
    pub round_index: Option<i64>,
    /// Creation time, epoch ms.
    pub created_at: i64,
}

impl CompactionRow {
    pub(crate) const COLUMNS: &'static str = "session_id, compact_seq, note_seq, from_seq, to_seq, before_tokens, after_tokens, round_index, created_at";

    pub(crate) fn from_row(r: &Row) -> Result<Self> {
        Ok(CompactionRow {
            session_id: r.text("session_id")?,
            compact_seq: r.i64("compact_seq")?,
            note_seq: r.i64("note_seq")?,
            from_seq: r.i64("from_seq")?,
            to_seq: r.i64("to_seq")?,
            before_tokens: r.opt_i64("before_tokens")?,
            after_tokens: r.opt_i64("after_tokens")?,
            round_index: r.opt_i64("round_index")?,
            created_at: r.i64("created_at")?,
        })
    }
}

/// One timer (table `timers`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TimerRow {
    /// Session id.
    pub session_id: String,
    /// Per-session 1-based id.
    pub timer_id: i64,
    /// Due time, epoch ms.
    pub due_at: i64,
    /// The note delivered when it fires.
    pub note: String,
    /// `armed`, `firing`, `fired` or `cancelled` (see [`timer_status`]).
    pub status: String,
    /// Recurrence interval in seconds (`None` = one-shot).
    pub interval_s: Option<i64>,
    /// How many times it fired.
    pub fire_count: i64,
    /// Last firing time, epoch ms.
    pub last_fired_at: Option<i64>,
    /// Creation time, epoch ms.
    pub created_at: i64,
    /// Last change (for `firing` rows: the claim/heartbeat time), epoch ms.
    pub updated_at: i64,
}

impl TimerRow {
    pub(crate) const COLUMNS: &'static str = "session_id, timer_id, due_at, note, status, interval_s, fire_count, last_fired_at, created_at, updated_at";

    pub(crate) fn from_row(r: &Row) -> Result<Self> {
        Ok(TimerRow {
            session_id: r.text("session_id")?,
            timer_id: r.i64("timer_id")?,
            due_at: r.i64("due_at")?,
            note: r.text("note")?,
            status: r.text("status")?,
            interval_s: r.opt_i64("interval_s")?,
            fire_count: r.i64("fire_count")?,
            last_fired_at: r.opt_i64("last_fired_at")?,
            created_at: r.i64("created_at")?,
            updated_at: r.i64("updated_at")?,
        })
    }
}

/// Cumulative accounting of a session (table `session_stats`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SessionStatsRow {
    /// Session id.
    pub session_id: String,
    /// Finished sends.
    pub sends: i64,
    /// Rounds.
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
    /// First send time, epoch ms.
    pub first_send_at: Option<i64>,
    /// Last send time, epoch ms.
    pub last_send_at: Option<i64>,
    /// Last update, epoch ms.
    pub updated_at: i64,
}

impl SessionStatsRow {
    pub(crate) const COLUMNS: &'static str = "session_id, sends, rounds, llm_calls, tool_calls, prompt_tokens, completion_tokens, total_tokens, first_send_at, last_send_at, updated_at";

    pub(crate) fn from_row(r: &Row) -> Result<Self> {
        Ok(SessionStatsRow {
            session_id: r.text("session_id")?,
            sends: r.i64("sends")?,
            rounds: r.i64("rounds")?,
            llm_calls: r.i64("llm_calls")?,
            tool_calls: r.i64("tool_calls")?,
            prompt_tokens: r.i64("prompt_tokens")?,
            completion_tokens: r.i64("completion_tokens")?,
            total_tokens: r.i64("total_tokens")?,
            first_send_at: r.opt_i64("first_send_at")?,
            last_send_at: r.opt_i64("last_send_at")?,
            updated_at: r.i64("updated_at")?,
        })
    }
}

/// A background task record (table `background_tasks`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BackgroundTaskRow {
    /// Session id.
    pub session_id: String,
    /// Task id.
    pub task_id: String,
    /// Command line.
    pub command: String,
    /// Free status string (`running`, `completed`, `failed(<rc>)`, …).
    pub status: String,
    /// Exit code.
    pub return_code: Option<i64>,
    /// Tail of the output.
    pub output_tail: Option<String>,
    /// Path of the full output.
    pub output_path: Option<String>,
    /// When the agent last saw it, epoch ms.
    pub last_seen_at: i64,
    /// Creation time, epoch ms.
    pub created_at: i64,
    /// Last update, epoch ms (`> last_seen_at` means unseen).
    pub updated_at: i64,
}

impl BackgroundTaskRow {
    pub(crate) const COLUMNS: &'static str = "session_id, task_id, command, status, return_code, output_tail, output_path, last_seen_at, created_at, updated_at";

    pub(crate) fn from_row(r: &Row) -> Result<Self> {
        Ok(BackgroundTaskRow {
            session_id: r.text("session_id")?,
            task_id: r.text("task_id")?,
            command: r.text("command")?,
            status: r.text("status")?,
            return_code: r.opt_i64("return_code")?,
            output_tail: r.opt_text("output_tail")?,
            output_path: r.opt_text("output_path")?,
            last_seen_at: r.i64("last_seen_at")?,
            created_at: r.i64("created_at")?,
            updated_at: r.i64("updated_at")?,
        })
    }
}

/// An agent-authored note (table `notes`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct NoteRow {
    /// Session id.
    pub session_id: String,
    /// Per-session 1-based id.
    pub note_id: i64,
    /// Text.
    pub content: String,
    /// Pinned notes are always injected and never evicted.
    pub pinned: bool,
    /// Creation time, epoch ms.
    pub created_at: i64,
    /// Last update, epoch ms.
    pub updated_at: i64,
}

impl NoteRow {
    pub(crate) const COLUMNS: &'static str =
        "session_id, note_id, content, pinned, created_at, updated_at";

    pub(crate) fn from_row(r: &Row) -> Result<Self> {
        Ok(NoteRow {
            session_id: r.text("session_id")?,
            note_id: r.i64("note_id")?,
            content: r.text("content")?,
            pinned: r.i64("pinned")? != 0,
            created_at: r.i64("created_at")?,
            updated_at: r.i64("updated_at")?,
        })
    }
}

/// One round's token usage (table `usage_rounds`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct UsageRoundRow {
    /// Session id.
    pub session_id: String,
    /// Round index (restarts at 0 every send).
    pub round_index: i64,
    /// Prompt tokens.
    pub prompt_tokens: Option<i64>,
    /// Completion tokens.
    pub completion_tokens: Option<i64>,
    /// Total tokens.
    pub total_tokens: Option<i64>,
    /// Model.
    pub model: Option<String>,
    /// Write time, epoch ms.
    pub created_at: i64,
}

impl UsageRoundRow {
    pub(crate) const COLUMNS: &'static str = "session_id, round_index, prompt_tokens, completion_tokens, total_tokens, model, created_at";

    pub(crate) fn from_row(r: &Row) -> Result<Self> {
        Ok(UsageRoundRow {
            session_id: r.text("session_id")?,
            round_index: r.i64("round_index")?,
            prompt_tokens: r.opt_i64("prompt_tokens")?,
            completion_tokens: r.opt_i64("completion_tokens")?,
            total_tokens: r.opt_i64("total_tokens")?,
            model: r.opt_text("model")?,
            created_at: r.i64("created_at")?,
        })
    }
}
