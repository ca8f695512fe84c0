//! Agent events: a typed payload per event type inside one envelope with a process-wide `seq`.
//!
//! Serialized form (JSONL, sinks): `{"type": "<event type>", "session_id", "round_index",
//! "stream_id", "source", "ts", "seq", "mono", "payload": {…}}`.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

static SEQ: AtomicU64 = AtomicU64::new(0);
static EPOCH: OnceLock<Instant> = OnceLock::new();

/// The next process-wide event sequence number (starts at 1, strictly increasing, thread-safe).
pub fn next_event_seq() -> u64 {
    SEQ.fetch_add(1, Ordering::Relaxed) + 1
}

/// Seconds on the process-wide monotonic clock (for durations and total ordering with `seq`).
pub fn monotonic_seconds() -> f64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_secs_f64()
}

/// Wall-clock seconds since the Unix epoch.
pub fn wall_seconds() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

macro_rules! payload {
    ($(#[$m:meta])* $name:ident { $( $(#[$fm:meta])* $field:ident : $ty:ty ),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        pub struct $name {
            $( $(#[$fm])* #[serde(default)] pub $field: $ty, )*
        }
    };
}

payload!(/// `session_started`.
SessionStartedPayload { /// `main` or `subagent`.
 scope: String });
payload!(/// `session_ended`.
SessionEndedPayload { /// Terminal status (`completed`, `cancelled`, `budget_exceeded`, …).
 reason: String });
payload!(/// `round_started`.
RoundStartedPayload { /// Round number within the send (0-based).
 round_index: u32 });
payload!(/// `round_completed`.
RoundCompletedPayload { /// Round number.
 round_index: u32, /// Whether the round ran tools.
 has_tools: bool, /// Whether the todo tool was used.
 used_todo: bool });
payload!(/// `round_tools_present`.
RoundToolsPresentPayload { /// Whether the answer asked for tools.
 has_tools: bool });
payload!(/// `llm_call_started` (one per attempt).
LlmCallStartedPayload { /// Id of the logical call (shared by its attempts).
 call_id: String, /// Round number.
 round_index: u32, /// 1-based attempt.
 attempt: u32, /// Model name.
 model: String });
payload!(/// `llm_call_completed` (one per attempt, success or failure).
LlmCallCompletedPayload { /// Id of the logical call.
 call_id: String, /// Round number.
 round_index: u32, /// 1-based attempt.
 attempt: u32, /// Model name.
 model: String, /// Attempt duration.
 duration_ms: f64, /// Whether the attempt succeeded.
 success: bool, /// Error code when it failed.
 error_type: String, /// Input tokens.
 prompt_tokens: Option<u64>, /// Output tokens.
 completion_tokens: Option<u64>, /// Total tokens.
 total_tokens: Option<u64> });
payload!(/// `llm_retry_attempted` (before each backoff sleep).
LlmRetryAttemptedPayload { /// 0-based index of the attempt that failed.
 attempt: u32, /// Attempt cap.
 max_attempts: u32, /// Error code.
 error_type: String, /// Error message (≤ 500 chars).
 error_message: String, /// Backoff before the next attempt.
 next_sleep_seconds: f64 });
payload!(/// `llm_degraded`: the call gave up (retry exhausted or timeout).
LlmDegradedPayload { /// `retry_exhausted` or `timeout`.
 reason: String, /// Attempts made.
 attempts: u32, /// Error code.
 error_type: String, /// Error message.
 error_message: String });
payload!(/// `loop_cancelled`.
LoopCancelledPayload { /// Why.
 reason: String, /// Round when cancelled.
 round_index: Option<u32> });
payload!(/// `memory_recalled`.
MemoryRecalledPayload { /// Items the provider returned.
 returned: u32, /// Items injected into the prompt.
 injected: u32, /// Token budget given to the provider.
 budget_tokens: u64 });
payload!(/// `memory_failed`.
MemoryFailedPayload { /// `recall` or `remember`.
 phase: String, /// Error code.
 error_type: String, /// Error message (≤ 500 chars).
 error_message: String });
payload!(/// `stream_started`.
StreamStartedPayload { /// Stream id (`main`).
 stream_id: String });
payload!(/// `stream_delta` and `stream_think_delta`.
StreamDeltaPayload { /// Stream id (`main`).
 stream_id: String, /// The delta text.
 text: String, /// Whether this is reasoning text.
 is_think: bool });
payload!(/// `stream_completed`.
StreamCompletedPayload { /// Stream id (`main`).
 stream_id: String });
payload!(/// `tool_call_started`.
ToolCallStartedPayload { /// Tool name.
 name: String, /// Decoded arguments.
 tool_input: serde_json::Value, /// Call id.
 tool_call_id: String });
payload!(/// `tool_call_completed` (terminal event of every executed call).
ToolCallCompletedPayload { /// Tool name.
 name: String, /// Result text.
 output: String, /// Decoded arguments.
 tool_input: serde_json::Value, /// Call id.
 tool_call_id: String, /// Whether the call failed.
 failed: bool });
payload!(/// `tool_call_failed` (before `tool_call_completed` when the call failed).
ToolCallFailedPayload { /// Tool name.
 name: String, /// Result text.
 output: String, /// Decoded arguments.
 tool_input: serde_json::Value, /// Call id.
 tool_call_id: String });
payload!(/// `usage_updated`: per-call normalized usage.
UsageUpdatedPayload { /// `prompt_tokens, completion_tokens, cache_read_tokens, reasoning_tokens, total_tokens` + aliases.
 usage: serde_json::Map<String, serde_json::Value> });
payload!(/// `timer_fired`.
TimerFiredPayload { /// Timer id (per session).
 timer_id: i64, /// The timer's note.
 note: String, /// Due time (epoch ms).
 due_at: i64, /// `delivered`, `skipped`, `cancelled`, `postponed`, `failed`.
 outcome: String });
payload!(/// `todo_updated`.
TodoUpdatedPayload { /// `todo_snapshot`.
 kind: String, /// Todo items.
 items: Vec<serde_json::Value>, /// Counts per status.
 counts: serde_json::Map<String, serde_json::Value>, /// Rendered list.
 rendered: String, /// Text summary.
 text: String });
payload!(/// `user_notification` (reserved for hosts).
UserNotificationPayload { /// Message.
 message: String });
payload!(/// `agent_error`.
AgentErrorPayload { /// Error message.
 error: String, /// Error code.
 error_type: String, /// Details.
 details: String });
payload!(/// `system_log`.
SystemLogPayload { /// Message.
 message: String, /// `debug`, `info`, `warning`, `error`.
 level: String });
payload!(/// `subagent_task_start`.
SubagentTaskStartPayload { /// The task given to the child.
 task: String, /// Tool preset of the child.
 preset: String, /// Child session id.
 sub_session_id: String, /// Child depth.
 depth: u32 });
payload!(/// `subagent_text`.
SubagentTextPayload { /// Child session id.
 sub_session_id: String, /// Child status.
 status: String, /// Child rounds.
 rounds: u32, /// Child final text.
 final_text: String });
payload!(/// `subagent_limit`.
SubagentLimitPayload { /// Child session id.
 sub_session_id: String, /// The round cap it hit.
 max_rounds: u32 });
payload!(/// `subagent_completed` (always last for a child).
SubagentCompletedPayload { /// Child session id.
 sub_session_id: String, /// Child status.
 status: String, /// Child rounds.
 rounds: u32, /// Child final text.
 final_text: String });
payload!(/// `workflow_run_started`: an attempt of a workflow run began.
WorkflowRunStartedPayload { /// The workflow's name.
 workflow: String, /// The run id (empty for a run without a journal).
 run_id: String, /// The attempt (1 for a first run).
 attempt: i64 });
payload!(/// `workflow_run_completed`: an attempt of a workflow run ended.
WorkflowRunCompletedPayload { /// The workflow's name.
 workflow: String, /// The run id (empty for a run without a journal).
 run_id: String, /// The attempt.
 attempt: i64, /// `completed`, `failed`, `cancelled` or `budget_exceeded`.
 status: String, /// Wall time of the attempt, in milliseconds.
 duration_ms: f64, /// Leaves the attempt ran (replayed steps not counted).
 leaves: u64 });
payload!(/// `workflow_leaf_completed`: an agent leaf of a workflow run settled after running.
WorkflowLeafCompletedPayload { /// The workflow's name.
 workflow: String, /// The run id (empty for a run without a journal).
 run_id: String, /// The step key (`research`, `fanout[3]/research`).
 step_key: String, /// The leaf's agent name.
 agent: String, /// The leaf's status (`completed`, `failed`, `cancelled`, …).
 status: String, /// Wall time of the leaf, in milliseconds.
 duration_ms: f64, /// Tokens the leaf spent.
 total_tokens: u64 });
payload!(/// `status_changed` kind `auto_compact`.
AutoCompactStatus { /// `started`, `completed`, `failed`, `skipped`.
 phase: String, /// Round number.
 round_index: u32, /// What triggered it.
 trigger: String, /// Estimated tokens before.
 before_tokens: u64, /// Estimated tokens after.
 after_tokens: u64 });
payload!(/// `status_changed` kind `round_usage`.
RoundUsageStatus { /// Local time, ISO-8601, seconds.
 time_iso: String, /// Round number (0-based).
 round_index: u32, /// Round number (1-based).
 round_number: u32, /// Round cap.
 max_rounds: u32, /// Input tokens.
 prompt_tokens: Option<u64>, /// Output tokens.
 completion_tokens: Option<u64>, /// Cached input tokens.
 cache_read_tokens: Option<u64>, /// Reasoning tokens.
 reasoning_tokens: Option<u64> });
payload!(/// `status_changed` kind `hit_round_limit`.
HitRoundLimitStatus { /// The cap.
 max_rounds: u32 });
payload!(/// `status_changed` kind `budget_exceeded`.
BudgetExceededStatus { /// The budget.
 budget_tokens: u64, /// Tokens spent.
 spent_tokens: u64, /// Rounds run.
 rounds: u32 });

/// The `status_changed` payload, discriminated by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StatusChanged {
    /// Compaction progress.
    AutoCompact(AutoCompactStatus),
    /// Usage of one round.
    RoundUsage(RoundUsageStatus),
    /// The round cap was hit.
    HitRoundLimit(HitRoundLimitStatus),
    /// The token budget was exceeded.
    BudgetExceeded(BudgetExceededStatus),
}

macro_rules! event_types {
    ($( $(#[$m:meta])* $variant:ident($payload:ty) => $s:literal, )*) => {
        /// An event with its typed payload. The variant is the event type.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "type", content = "payload")]
        #[non_exhaustive]
        pub enum EventPayload {
            $( $(#[$m])* #[serde(rename = $s)] $variant($payload), )*
        }

        /// The type of an event (its string form is contract).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum EventType {
            $( $(#[$m])* $variant, )*
        }

        impl EventType {
            /// Every event type.
            pub const ALL: &'static [EventType] = &[ $( EventType::$variant, )* ];

            /// The contract string, e.g. `"tool_call_completed"`.
            pub const fn as_str(self) -> &'static str {
                match self { $( EventType::$variant => $s, )* }
            }

            /// Parses the contract string.
            pub fn parse(s: &str) -> Option<EventType> {
                match s { $( $s => Some(EventType::$variant), )* _ => None }
            }
        }

        impl EventPayload {
            /// The type of this event.
            pub fn event_type(&self) -> EventType {
                match self { $( EventPayload::$variant(_) => EventType::$variant, )* }
            }
        }
    };
}

event_types! {
    /// A run started.
    SessionStarted(SessionStartedPayload) => "session_started",
    /// A run ended.
    SessionEnded(SessionEndedPayload) => "session_ended",
    /// A round started.
    RoundStarted(RoundStartedPayload) => "round_started",
    /// A round completed.
    RoundCompleted(RoundCompletedPayload) => "round_completed",
    /// Whether the answer asked for tools.
    RoundToolsPresent(RoundToolsPresentPayload) => "round_tools_present",
    /// An LLM attempt started.
    LlmCallStarted(LlmCallStartedPayload) => "llm_call_started",
    /// An LLM attempt ended.
    LlmCallCompleted(LlmCallCompletedPayload) => "llm_call_completed",
    /// An LLM attempt failed and will be retried.
    LlmRetryAttempted(LlmRetryAttemptedPayload) => "llm_retry_attempted",
    /// The LLM call gave up.
    LlmDegraded(LlmDegradedPayload) => "llm_degraded",
    /// The run was cancelled.
    LoopCancelled(LoopCancelledPayload) => "loop_cancelled",
    /// Memories were recalled.
    MemoryRecalled(MemoryRecalledPayload) => "memory_recalled",
    /// The memory provider failed.
    MemoryFailed(MemoryFailedPayload) => "memory_failed",
    /// A model stream started.
    StreamStarted(StreamStartedPayload) => "stream_started",
    /// Answer text arrived.
    StreamDelta(StreamDeltaPayload) => "stream_delta",
    /// Reasoning text arrived.
    StreamThinkDelta(StreamDeltaPayload) => "stream_think_delta",
    /// A model stream completed.
    StreamCompleted(StreamCompletedPayload) => "stream_completed",
    /// A tool call started.
    ToolCallStarted(ToolCallStartedPayload) => "tool_call_started",
    /// A tool call completed (terminal).
    ToolCallCompleted(ToolCallCompletedPayload) => "tool_call_completed",
    /// A tool call failed.
    ToolCallFailed(ToolCallFailedPayload) => "tool_call_failed",
    /// A status change (compaction, round usage, limits).
    StatusChanged(StatusChanged) => "status_changed",
    /// Usage of one LLM call.
    UsageUpdated(UsageUpdatedPayload) => "usage_updated",
    /// A durable timer fired.
    TimerFired(TimerFiredPayload) => "timer_fired",
    /// The todo list changed.
    TodoUpdated(TodoUpdatedPayload) => "todo_updated",
    /// A notification for the user (reserved for hosts).
    UserNotification(UserNotificationPayload) => "user_notification",
    /// The run failed.
    AgentError(AgentErrorPayload) => "agent_error",
    /// A log line (workflow runner).
    SystemLog(SystemLogPayload) => "system_log",
    /// A sub-agent task started.
    SubagentTaskStart(SubagentTaskStartPayload) => "subagent_task_start",
    /// A sub-agent produced its text.
    SubagentText(SubagentTextPayload) => "subagent_text",
    /// A sub-agent hit its round cap.
    SubagentLimit(SubagentLimitPayload) => "subagent_limit",
    /// A sub-agent completed (always last for a child).
    SubagentCompleted(SubagentCompletedPayload) => "subagent_completed",
    /// A workflow run attempt started.
    WorkflowRunStarted(WorkflowRunStartedPayload) => "workflow_run_started",
    /// A workflow run attempt ended.
    WorkflowRunCompleted(WorkflowRunCompletedPayload) => "workflow_run_completed",
    /// A workflow leaf settled after running.
    WorkflowLeafCompleted(WorkflowLeafCompletedPayload) => "workflow_leaf_completed",
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One event: envelope plus typed payload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentEvent {
    /// Process-wide sequence number (1, 2, …), shared by every bus.
    pub seq: u64,
    /// Wall clock, epoch seconds.
    pub ts: f64,
    /// Monotonic clock seconds.
    pub mono: f64,
    /// The run's session id.
    #[serde(default)]
    pub session_id: Option<String>,
    /// The round, for round-scoped events.
    #[serde(default)]
    pub round_index: Option<u32>,
    /// `main` for stream, LLM-call and retry events.
    #[serde(default)]
    pub stream_id: Option<String>,
    /// `subagent` for sub-agent lifecycle events.
    #[serde(default)]
    pub source: Option<String>,
    /// Type and payload.
    #[serde(flatten)]
    pub payload: EventPayload,
}

impl PartialEq for AgentEvent {
    /// Equality ignores `seq`, `ts` and `mono` (as the reference does).
    fn eq(&self, o: &Self) -> bool {
        self.session_id == o.session_id
            && self.round_index == o.round_index
            && self.stream_id == o.stream_id
            && self.source == o.source
            && self.payload == o.payload
    }
}

impl AgentEvent {
    /// A new event stamped with the next `seq` and both clocks.
    pub fn new(payload: EventPayload) -> Self {
        AgentEvent {
            seq: next_event_seq(),
            ts: wall_seconds(),
            mono: monotonic_seconds(),
            session_id: None,
            round_index: None,
            stream_id: None,
            source: None,
            payload,
        }
    }

    /// Sets the session id.
    pub fn with_session(mut self, session_id: impl Into<String>) -> Self {
        self.session_id = Some(session_id.into());
        self
    }

    /// Sets the round.
    pub fn with_round(mut self, round: u32) -> Self {
        self.round_index = Some(round);
        self
    }

    /// Sets the stream id.
    pub fn with_stream(mut self, stream_id: impl Into<String>) -> Self {
        self.stream_id = Some(stream_id.into());
        self
    }

    /// Sets the source.
    pub fn with_source(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// The event type.
    pub fn event_type(&self) -> EventType {
        self.payload.event_type()
    }
}

/// A consumer of agent events (JSONL file, log, metrics, traces, a host's own subscriber).
///
/// Object-safe; stored as `Arc<dyn EventSink>`. `handle` runs synchronously on the publisher's
/// path unless the bus is told to dispatch in the background, so it must be quick; a sink that
/// does I/O should buffer. An error is reported to the bus, which by default logs it and goes on.
pub trait EventSink: Send + Sync {
    /// Consumes one event.
    fn handle(&self, event: &AgentEvent) -> crate::Result<()>;

    /// Flushes buffered output (default: nothing to flush).
    fn flush(&self) -> crate::Result<()> {
        Ok(())
    }
}

impl<T: EventSink + ?Sized> EventSink for std::sync::Arc<T> {
    fn handle(&self, event: &AgentEvent) -> crate::Result<()> {
        (**self).handle(event)
    }
    fn flush(&self) -> crate::Result<()> {
        (**self).flush()
    }
}
