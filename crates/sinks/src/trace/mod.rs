//! Span trees from the event stream: one state machine ([`tree`]) shared by the native
//! `tracing` sink ([`TracingSink`]) and the OpenTelemetry bridge (`otel` feature).
//!
//! Tree (names follow the OpenTelemetry GenAI semantic conventions where one exists):
//!
//! ```text
//! power_loop.session                  gen_ai.conversation.id          (one per session id)
//! └─ invoke_agent {agent}             gen_ai.operation.name=invoke_agent (one per send)
//!    └─ power_loop.round              power_loop.round_index
//!       ├─ chat {model}     (CLIENT)  gen_ai.operation.name=chat, gen_ai.request.model, usage
//!       ├─ execute_tool {name}        gen_ai.operation.name=execute_tool, gen_ai.tool.*
//!       └─ power_loop.compaction      power_loop.compaction.*
//! ```

mod tracing_sink;
pub(crate) mod tree;

pub use tracing_sink::TracingSink;

use crate::redact::Redactor;

/// Attribute and span names (the one place they are spelled).
pub mod semconv {
    /// `gen_ai.operation.name`: `invoke_agent`, `chat` or `execute_tool`.
    pub const OPERATION_NAME: &str = "gen_ai.operation.name";
    /// `gen_ai.agent.name` on the send span.
    pub const AGENT_NAME: &str = "gen_ai.agent.name";
    /// `gen_ai.provider.name` on chat spans (when configured).
    pub const PROVIDER_NAME: &str = "gen_ai.provider.name";
    /// `gen_ai.request.model`.
    pub const REQUEST_MODEL: &str = "gen_ai.request.model";
    /// `gen_ai.response.model`.
    pub const RESPONSE_MODEL: &str = "gen_ai.response.model";
    /// `gen_ai.usage.input_tokens`.
    pub const USAGE_INPUT_TOKENS: &str = "gen_ai.usage.input_tokens";
    /// `gen_ai.usage.output_tokens`.
    pub const USAGE_OUTPUT_TOKENS: &str = "gen_ai.usage.output_tokens";
    /// `gen_ai.tool.name`.
    pub const TOOL_NAME: &str = "gen_ai.tool.name";
    /// `gen_ai.tool.call.id`.
    pub const TOOL_CALL_ID: &str = "gen_ai.tool.call.id";
    /// `gen_ai.tool.type` (always `function`).
    pub const TOOL_TYPE: &str = "gen_ai.tool.type";
    /// `gen_ai.tool.call.arguments` (only with content opted in).
    pub const TOOL_CALL_ARGUMENTS: &str = "gen_ai.tool.call.arguments";
    /// `gen_ai.tool.call.result` (only with content opted in).
    pub const TOOL_CALL_RESULT: &str = "gen_ai.tool.call.result";
    /// `gen_ai.conversation.id` (the session id).
    pub const CONVERSATION_ID: &str = "gen_ai.conversation.id";
    /// `error.type` on failed spans.
    pub const ERROR_TYPE: &str = "error.type";
    /// `power_loop.session_id`.
    pub const SESSION_ID: &str = "power_loop.session_id";
    /// `power_loop.scope` (`main` / `subagent`) on the send span.
    pub const SCOPE: &str = "power_loop.scope";
    /// `power_loop.end_reason` on the send span (`completed`, `degraded`, `cancelled`,
    /// `pending_tools`, `error`, `hook_break`, …, or `abandoned` when the send stopped emitting).
    pub const END_REASON: &str = "power_loop.end_reason";
    /// `power_loop.round_index`.
    pub const ROUND_INDEX: &str = "power_loop.round_index";
    /// `power_loop.round.has_tools`.
    pub const HAS_TOOLS: &str = "power_loop.round.has_tools";
    /// `power_loop.llm.call_id`.
    pub const CALL_ID: &str = "power_loop.llm.call_id";
    /// `power_loop.llm.attempt` (1-based).
    pub const ATTEMPT: &str = "power_loop.llm.attempt";
    /// `power_loop.llm.duration_ms`.
    pub const DURATION_MS: &str = "power_loop.llm.duration_ms";
    /// `power_loop.compaction.trigger`.
    pub const COMPACTION_TRIGGER: &str = "power_loop.compaction.trigger";
    /// `power_loop.compaction.phase`.
    pub const COMPACTION_PHASE: &str = "power_loop.compaction.phase";
    /// `power_loop.compaction.before_tokens`.
    pub const COMPACTION_BEFORE: &str = "power_loop.compaction.before_tokens";
    /// `power_loop.compaction.after_tokens`.
    pub const COMPACTION_AFTER: &str = "power_loop.compaction.after_tokens";
    /// Name of the session span.
    pub const SESSION_SPAN: &str = "power_loop.session";
    /// Name of a round span.
    pub const ROUND_SPAN: &str = "power_loop.round";
    /// Name of a compaction span.
    pub const COMPACTION_SPAN: &str = "power_loop.compaction";
}

/// How the span sinks build their tree.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TraceOptions {
    /// `gen_ai.agent.name` and the send span's name `invoke_agent {agent_name}` (default
    /// `power_loop`).
    pub agent_name: String,
    /// `gen_ai.provider.name` on chat spans (e.g. `openai`); `None` leaves it out.
    pub provider_name: Option<String>,
    /// Open a `power_loop.session` span per session id as the parent of its sends (default
    /// `true`). It ends on [`end_session`](TracingSink::end_session), flush or drop, or when more
    /// than `max_open_sessions` are open (the least recently used idle one ends first). With
    /// `false` every send span is a root.
    pub session_span: bool,
    /// Most session spans kept open at once (default 1024).
    pub max_open_sessions: usize,
    /// Redaction rules; content (tool arguments and results) goes into spans only when the
    /// redactor opts in (`Redactor::include_content(true)`).
    pub redactor: Redactor,
}

impl Default for TraceOptions {
    fn default() -> Self {
        TraceOptions {
            agent_name: "power_loop".to_owned(),
            provider_name: None,
            session_span: true,
            max_open_sessions: 1024,
            redactor: Redactor::new(2000),
        }
    }
}

impl TraceOptions {
    /// Sets the agent name.
    pub fn agent_name(mut self, name: impl Into<String>) -> Self {
        self.agent_name = name.into();
        self
    }
    /// Sets `gen_ai.provider.name`.
    pub fn provider_name(mut self, name: impl Into<String>) -> Self {
        self.provider_name = Some(name.into());
        self
    }
    /// Whether sends hang off a per-session span.
    pub fn session_span(mut self, yes: bool) -> Self {
        self.session_span = yes;
        self
    }
    /// Sets the open-session cap (at least 1).
    pub fn max_open_sessions(mut self, n: usize) -> Self {
        self.max_open_sessions = n.max(1);
        self
    }
    /// Opts in to tool arguments and results on tool spans (still secret-redacted and cut).
    pub fn include_content(mut self, yes: bool) -> Self {
        self.redactor = self.redactor.include_content(yes);
        self
    }
    /// Sets the redaction rules.
    pub fn redactor(mut self, r: Redactor) -> Self {
        self.redactor = r;
        self
    }
}
