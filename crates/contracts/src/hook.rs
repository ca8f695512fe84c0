//! Hook points, their context types and the directive each point honours.
//!
//! A [`Hook`] has one method per [`HookPoint`]; each receives that point's context, may modify its
//! public fields (modify), and may set its `directive` (veto / skip / break). A point's directive
//! type only has the variants that point honours, so an unsupported combination does not compile.
//! Every handler registered for a point runs, in ascending order; the directive left after the last
//! handler is what the pipeline acts on. A handler error aborts the run through the error path.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::llm::{BoxFuture, LlmResponse};
use crate::message::{Message, ToolCall};
use crate::tool::ToolDefinition;

mod site;
pub use site::ToolCallSite;

/// A lifecycle point (string values are contract).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[non_exhaustive]
pub enum HookPoint {
    /// `session.start`: once per run, before `session_started`.
    #[serde(rename = "session.start")]
    SessionStart,
    /// `session.end`: once per run, before `session_ended`.
    #[serde(rename = "session.end")]
    SessionEnd,
    /// `round.start`: start of each round.
    #[serde(rename = "round.start")]
    RoundStart,
    /// `round.end`: after `round_completed`.
    #[serde(rename = "round.end")]
    RoundEnd,
    /// `llm.before`: before each main LLM call.
    #[serde(rename = "llm.before")]
    LlmBefore,
    /// `llm.after`: after a real LLM call.
    #[serde(rename = "llm.after")]
    LlmAfter,
    /// `round.decide`: the answer has tool calls, before running them.
    #[serde(rename = "round.decide")]
    RoundDecide,
    /// `tools.batch.before`: before a tool batch.
    #[serde(rename = "tools.batch.before")]
    ToolsBatchBefore,
    /// `tools.batch.after`: after a tool batch.
    #[serde(rename = "tools.batch.after")]
    ToolsBatchAfter,
    /// `tool.before`: before each call.
    #[serde(rename = "tool.before")]
    ToolBefore,
    /// `tool.after`: after each executed call.
    #[serde(rename = "tool.after")]
    ToolAfter,
    /// `tool.error`: a tool handler failed.
    #[serde(rename = "tool.error")]
    ToolError,
    /// `compact.before`: each round when a compactor is set.
    #[serde(rename = "compact.before")]
    CompactBefore,
    /// `compact.after`: after a fold.
    #[serde(rename = "compact.after")]
    CompactAfter,
    /// `message.append`: every pipeline append.
    #[serde(rename = "message.append")]
    MessageAppend,
    /// `memory.recalled`: after the memory provider's recall.
    #[serde(rename = "memory.recalled")]
    MemoryRecalled,
    /// `timer.fire`: before a due timer is delivered.
    #[serde(rename = "timer.fire")]
    TimerFire,
}

impl HookPoint {
    /// Every hook point.
    pub const ALL: &'static [HookPoint] = &[
        HookPoint::SessionStart,
        HookPoint::SessionEnd,
        HookPoint::RoundStart,
        HookPoint::RoundEnd,
        HookPoint::LlmBefore,
        HookPoint::LlmAfter,
        HookPoint::RoundDecide,
        HookPoint::ToolsBatchBefore,
        HookPoint::ToolsBatchAfter,
        HookPoint::ToolBefore,
        HookPoint::ToolAfter,
        HookPoint::ToolError,
        HookPoint::CompactBefore,
        HookPoint::CompactAfter,
        HookPoint::MessageAppend,
        HookPoint::MemoryRecalled,
        HookPoint::TimerFire,
    ];

    /// The contract string, e.g. `"llm.before"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            HookPoint::SessionStart => "session.start",
            HookPoint::SessionEnd => "session.end",
            HookPoint::RoundStart => "round.start",
            HookPoint::RoundEnd => "round.end",
            HookPoint::LlmBefore => "llm.before",
            HookPoint::LlmAfter => "llm.after",
            HookPoint::RoundDecide => "round.decide",
            HookPoint::ToolsBatchBefore => "tools.batch.before",
            HookPoint::ToolsBatchAfter => "tools.batch.after",
            HookPoint::ToolBefore => "tool.before",
            HookPoint::ToolAfter => "tool.after",
            HookPoint::ToolError => "tool.error",
            HookPoint::CompactBefore => "compact.before",
            HookPoint::CompactAfter => "compact.after",
            HookPoint::MessageAppend => "message.append",
            HookPoint::MemoryRecalled => "memory.recalled",
            HookPoint::TimerFire => "timer.fire",
        }
    }

    /// Parses the contract string (the enum and the string name the same point).
    pub fn parse(s: &str) -> Option<HookPoint> {
        HookPoint::ALL.iter().copied().find(|p| p.as_str() == s)
    }
}

impl std::fmt::Display for HookPoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! directive {
    ($(#[$m:meta])* $name:ident { $( $(#[$vm:meta])* $v:ident ),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            /// Go on normally.
            #[default]
            Continue,
            $( $(#[$vm])* $v, )*
        }
    };
}

directive!(/// Directive of `round.start`.
RoundStartDirective { /// Skip this round.
 Skip, /// End the run (with the ctx `reason`).
 Break });
directive!(/// Directive of `llm.before`.
LlmBeforeDirective { /// Do not call the model; use the ctx `output` as its answer.
 ShortCircuit, /// End the run.
 Break });
directive!(/// Directive of `llm.after`.
LlmAfterDirective { /// End the run after this answer.
 Break });
directive!(/// Directive of `round.decide`.
RoundDecideDirective { /// Do not run the tools; answer every call with the ctx `output`.
 Skip, /// End the run.
 Break });
directive!(/// Directive of `tools.batch.before`.
ToolsBatchDirective { /// Do not run the batch; answer every call with the ctx `output`.
 Skip });
directive!(/// Directive of `tool.before` (veto).
ToolBeforeDirective { /// Do not run this call; answer it with the ctx `output`.
 Skip });
directive!(/// Directive of `tool.after`.
ToolAfterDirective { /// Stop the rest of the batch (remaining calls get a skipped result).
 Break });
directive!(/// Directive of `tool.error`.
ToolErrorDirective { /// Use the ctx `output` as the result.
 Skip, /// Run the handler once more.
 Retry });
directive!(/// Directive of `compact.before`.
CompactBeforeDirective { /// Skip compaction this round.
 Skip });
directive!(/// Directive of `memory.recalled`.
MemoryRecalledDirective { /// Inject nothing.
 Skip });
directive!(/// Directive of `timer.fire`.
TimerFireDirective { /// Do not deliver; mark the firing skipped.
 Skip, /// Cancel the timer.
 Cancel });

/// Context of `session.start` (modify `messages` to replace the history).
#[derive(Debug, Clone, Default)]
pub struct SessionStartCtx {
    /// Session id.
    pub session_id: String,
    /// `main` or `subagent`.
    pub scope: String,
    /// The history the run starts from.
    pub messages: Vec<Message>,
}

/// Context of `session.end` (observe).
#[derive(Debug, Clone, Default)]
pub struct SessionEndCtx {
    /// Session id.
    pub session_id: String,
    /// `main` or `subagent`.
    pub scope: String,
    /// Terminal status.
    pub reason: String,
    /// Final history.
    pub messages: Vec<Message>,
    /// Final text, if any.
    pub final_text: Option<String>,
}

/// Context of `round.start`.
#[derive(Debug, Clone, Default)]
pub struct RoundStartCtx {
    /// Session id.
    pub session_id: String,
    /// Round number.
    pub round_index: u32,
    /// The live history (edits are kept).
    pub messages: Vec<Message>,
    /// Why the run ends, with `Break`.
    pub reason: String,
    /// Directive.
    pub directive: RoundStartDirective,
}

/// Context of `round.end` (observe).
#[derive(Debug, Clone, Default)]
pub struct RoundEndCtx {
    /// Session id.
    pub session_id: String,
    /// Round number.
    pub round_index: u32,
    /// The history.
    pub messages: Vec<Message>,
    /// Whether the round ran tools.
    pub has_tools: bool,
    /// The answer text.
    pub response_text: String,
    /// Whether the todo tool was used.
    pub used_todo: bool,
}

/// Context of `llm.before` (modify the prompt, or short-circuit with `output`).
#[derive(Debug, Clone, Default)]
pub struct LlmBeforeCtx {
    /// Session id.
    pub session_id: String,
    /// Round number.
    pub round_index: u32,
    /// The messages about to be sent (a copy: edits change this request only).
    pub messages: Vec<Message>,
    /// The system prompt about to be sent.
    pub system_prompt: String,
    /// The tools offered.
    pub tools: Vec<ToolDefinition>,
    /// Reply token cap.
    pub max_tokens: u32,
    /// Temperature.
    pub temperature: f64,
    /// The answer to use with `ShortCircuit`.
    pub output: Option<LlmResponse>,
    /// Directive.
    pub directive: LlmBeforeDirective,
}

/// Context of `llm.after` (replace `output` to change the answer).
#[derive(Debug, Clone, Default)]
pub struct LlmAfterCtx {
    /// Session id.
    pub session_id: String,
    /// Round number.
    pub round_index: u32,
    /// The history.
    pub messages: Vec<Message>,
    /// The answer.
    pub output: LlmResponse,
    /// Directive.
    pub directive: LlmAfterDirective,
}

/// Context of `round.decide`.
#[derive(Debug, Clone, Default)]
pub struct RoundDecideCtx {
    /// Session id.
    pub session_id: String,
    /// Round number.
    pub round_index: u32,
    /// The history.
    pub messages: Vec<Message>,
    /// The requested calls.
    pub tool_calls: Vec<ToolCall>,
    /// The answer text.
    pub assistant_text: String,
    /// Result text for every call with `Skip`.
    pub output: String,
    /// Directive.
    pub directive: RoundDecideDirective,
}

/// Context of `tools.batch.before`.
#[derive(Debug, Clone, Default)]
pub struct ToolsBatchBeforeCtx {
    /// Session id.
    pub session_id: String,
    /// Round number.
    pub round_index: u32,
    /// The history.
    pub messages: Vec<Message>,
    /// The calls of the batch.
    pub tool_calls: Vec<ToolCall>,
    /// Result text for every call with `Skip`.
    pub output: String,
    /// Directive.
    pub directive: ToolsBatchDirective,
}

/// Context of `tools.batch.after` (observe).
#[derive(Debug, Clone, Default)]
pub struct ToolsBatchAfterCtx {
    /// Session id.
    pub session_id: String,
    /// Round number.
    pub round_index: u32,
    /// The history.
    pub messages: Vec<Message>,
    /// Whether the todo tool was used.
    pub used_todo: bool,
}

/// Context of `tool.before` (modify name/args, or veto with `Skip`).
#[derive(Debug, Clone, Default)]
pub struct ToolBeforeCtx {
    /// Session id.
    pub session_id: String,
    /// Round number.
    pub round_index: u32,
    /// The call as the model sent it.
    pub tool_call: Option<ToolCall>,
    /// Tool to run.
    pub tool_name: String,
    /// Arguments to run it with.
    pub tool_args: serde_json::Value,
    /// Result text with `Skip`.
    pub output: String,
    /// Directive.
    pub directive: ToolBeforeDirective,
}

/// Context of `tool.after` (modify `output`/`failed`).
#[derive(Debug, Clone, Default)]
pub struct ToolAfterCtx {
    /// Session id.
    pub session_id: String,
    /// Round number.
    pub round_index: u32,
    /// The call.
    pub tool_call: Option<ToolCall>,
    /// Tool name.
    pub tool_name: String,
    /// Arguments.
    pub tool_args: serde_json::Value,
    /// Result text.
    pub output: String,
    /// Whether the call failed.
    pub failed: bool,
    /// Directive.
    pub directive: ToolAfterDirective,
}

/// Context of `tool.error`.
#[derive(Debug, Clone, Default)]
pub struct ToolErrorCtx {
    /// Session id.
    pub session_id: String,
    /// Round number.
    pub round_index: u32,
    /// The call.
    pub tool_call: Option<ToolCall>,
    /// Tool name.
    pub tool_name: String,
    /// Arguments.
    pub tool_args: serde_json::Value,
    /// Error code of the failure.
    pub error_code: String,
    /// Error message of the failure.
    pub error_message: String,
    /// Result text with `Skip`.
    pub output: String,
    /// Directive.
    pub directive: ToolErrorDirective,
}

/// Context of `compact.before`.
#[derive(Debug, Clone, Default)]
pub struct CompactBeforeCtx {
    /// Session id.
    pub session_id: String,
    /// Round number.
    pub round_index: u32,
    /// The history.
    pub messages: Vec<Message>,
    /// Directive.
    pub directive: CompactBeforeDirective,
}

/// Context of `compact.after` (observe).
#[derive(Debug, Clone, Default)]
pub struct CompactAfterCtx {
    /// Session id.
    pub session_id: String,
    /// Round number.
    pub round_index: u32,
    /// The history after the fold.
    pub messages: Vec<Message>,
    /// Messages before the fold.
    pub messages_before_count: usize,
    /// Messages after the fold.
    pub messages_after_count: usize,
}

/// Context of `message.append` (the rewritten message is stored and persisted).
#[derive(Debug, Clone, Default)]
pub struct MessageAppendCtx {
    /// Session id.
    pub session_id: String,
    /// Round number.
    pub round_index: u32,
    /// The message about to be appended.
    pub message: Option<Message>,
}

/// Context of `memory.recalled` (modify `recalled`, or `Skip` to inject nothing).
#[derive(Debug, Clone, Default)]
pub struct MemoryRecalledCtx {
    /// Session id.
    pub session_id: String,
    /// The recalled messages.
    pub recalled: Vec<Message>,
    /// Budget given to the provider.
    pub budget_tokens: u64,
    /// Directive.
    pub directive: MemoryRecalledDirective,
}

/// Context of `timer.fire` (modify `message`; `postpone_s > 0` with `Continue` re-arms later).
#[derive(Debug, Clone, Default)]
pub struct TimerFireCtx {
    /// Session id.
    pub session_id: String,
    /// Timer id.
    pub timer_id: i64,
    /// The timer's note.
    pub note: String,
    /// Due time (epoch ms).
    pub due_at: i64,
    /// The text that will be sent into the session.
    pub message: String,
    /// Re-arm this many seconds later instead of delivering.
    pub postpone_s: f64,
    /// Directive.
    pub directive: TimerFireDirective,
}

/// The future a hook method returns.
pub type HookFuture<'a> = BoxFuture<'a, Result<()>>;

fn noop<'a>() -> HookFuture<'a> {
    Box::pin(std::future::ready(Ok(())))
}

/// A lifecycle hook: override the methods of the points you care about.
///
/// Object-safe (stored as `Arc<dyn Hook>`). Every method defaults to doing nothing.
#[allow(unused_variables)]
pub trait Hook: Send + Sync {
    /// `session.start`.
    fn session_start<'a>(&'a self, ctx: &'a mut SessionStartCtx) -> HookFuture<'a> {
        noop()
    }
    /// `session.end`.
    fn session_end<'a>(&'a self, ctx: &'a mut SessionEndCtx) -> HookFuture<'a> {
        noop()
    }
    /// `round.start`.
    fn round_start<'a>(&'a self, ctx: &'a mut RoundStartCtx) -> HookFuture<'a> {
        noop()
    }
    /// `round.end`.
    fn round_end<'a>(&'a self, ctx: &'a mut RoundEndCtx) -> HookFuture<'a> {
        noop()
    }
    /// `llm.before`.
    fn llm_before<'a>(&'a self, ctx: &'a mut LlmBeforeCtx) -> HookFuture<'a> {
        noop()
    }
    /// `llm.after`.
    fn llm_after<'a>(&'a self, ctx: &'a mut LlmAfterCtx) -> HookFuture<'a> {
        noop()
    }
    /// `round.decide`.
    fn round_decide<'a>(&'a self, ctx: &'a mut RoundDecideCtx) -> HookFuture<'a> {
        noop()
    }
    /// `tools.batch.before`.
    fn tools_batch_before<'a>(&'a self, ctx: &'a mut ToolsBatchBeforeCtx) -> HookFuture<'a> {
        noop()
    }
    /// `tools.batch.after`.
    fn tools_batch_after<'a>(&'a self, ctx: &'a mut ToolsBatchAfterCtx) -> HookFuture<'a> {
        noop()
    }
    /// `tool.before`.
    fn tool_before<'a>(&'a self, ctx: &'a mut ToolBeforeCtx) -> HookFuture<'a> {
        noop()
    }
    /// `tool.after`.
    fn tool_after<'a>(&'a self, ctx: &'a mut ToolAfterCtx) -> HookFuture<'a> {
        noop()
    }
    /// `tool.error`.
    fn tool_error<'a>(&'a self, ctx: &'a mut ToolErrorCtx) -> HookFuture<'a> {
        noop()
    }
    /// `compact.before`.
    fn compact_before<'a>(&'a self, ctx: &'a mut CompactBeforeCtx) -> HookFuture<'a> {
        noop()
    }
    /// `compact.after`.
    fn compact_after<'a>(&'a self, ctx: &'a mut CompactAfterCtx) -> HookFuture<'a> {
        noop()
    }
    /// `message.append`.
    fn message_append<'a>(&'a self, ctx: &'a mut MessageAppendCtx) -> HookFuture<'a> {
        noop()
    }
    /// `memory.recalled`.
    fn memory_recalled<'a>(&'a self, ctx: &'a mut MemoryRecalledCtx) -> HookFuture<'a> {
        noop()
    }
    /// `timer.fire`.
    fn timer_fire<'a>(&'a self, ctx: &'a mut TimerFireCtx) -> HookFuture<'a> {
        noop()
    }
}
