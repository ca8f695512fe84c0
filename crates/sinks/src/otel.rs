//! OpenTelemetry span bridge: agent events → a span tree per send.
//!
//! `power_loop.session` → `power_loop.round` (one per round) → `power_loop.llm_call` (one per
//! attempt; retries are siblings) and `power_loop.tool_call`. Spans carry the reference's
//! attributes plus the OpenTelemetry GenAI semantic-convention attributes of [`semconv`].

use std::collections::HashMap;
use std::sync::Mutex;

use opentelemetry::global::BoxedTracer;
use opentelemetry::trace::{Span, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};
use power_loop_contracts::{AgentEvent, Error, EventPayload, EventSink, Result};

/// GenAI semantic-convention attribute names (the one place they are spelled).
pub mod semconv {
    /// `gen_ai.operation.name`.
    pub const OPERATION_NAME: &str = "gen_ai.operation.name";
    /// `gen_ai.request.model`.
    pub const REQUEST_MODEL: &str = "gen_ai.request.model";
    /// `gen_ai.usage.input_tokens`.
    pub const USAGE_INPUT_TOKENS: &str = "gen_ai.usage.input_tokens";
    /// `gen_ai.usage.output_tokens`.
    pub const USAGE_OUTPUT_TOKENS: &str = "gen_ai.usage.output_tokens";
    /// `gen_ai.tool.name`.
    pub const TOOL_NAME: &str = "gen_ai.tool.name";
    /// `gen_ai.tool.call.id`.
    pub const TOOL_CALL_ID: &str = "gen_ai.tool.call.id";
    /// `gen_ai.conversation.id`.
    pub const CONVERSATION_ID: &str = "gen_ai.conversation.id";
}

#[derive(Default)]
struct Open {
    sessions: HashMap<String, Context>,
    rounds: HashMap<(String, u32), Context>,
    llm_calls: HashMap<(String, String), Context>,
    tools: HashMap<(String, String), Context>,
}

/// Turns events into spans on a tracer (by default the global provider's `power_loop` tracer).
pub struct OtelBridge {
    tracer: BoxedTracer,
    open: Mutex<Open>,
}

impl std::fmt::Debug for OtelBridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtelBridge").finish_non_exhaustive()
    }
}

impl Default for OtelBridge {
    fn default() -> Self {
        Self::new(opentelemetry::global::tracer("power_loop"))
    }
}

impl OtelBridge {
    /// A bridge on this tracer.
    pub fn new(tracer: BoxedTracer) -> Self {
        OtelBridge {
            tracer,
            open: Mutex::new(Open::default()),
        }
    }

    fn start(&self, name: &'static str, parent: Option<&Context>, attrs: Vec<KeyValue>) -> Context {
        let parent = parent.cloned().unwrap_or_else(Context::current);
        let mut span = self.tracer.start_with_context(name, &parent);
        span.set_attributes(attrs);
        parent.with_span(span)
    }

    /// Ends every span still open (LLM calls, tools, rounds, sessions).
    pub fn close(&self) {
        if let Ok(mut open) = self.open.lock() {
            for (_, cx) in open.llm_calls.drain() {
                cx.span().end();
            }
            for (_, cx) in open.tools.drain() {
                cx.span().end();
            }
            for (_, cx) in open.rounds.drain() {
                cx.span().end();
            }
            for (_, cx) in open.sessions.drain() {
                cx.span().end();
            }
        }
    }
}

impl EventSink for OtelBridge {
    fn handle(&self, ev: &AgentEvent) -> Result<()> {
        let sid = ev.session_id.clone().unwrap_or_default();
        let mut open = self
            .open
            .lock()
            .map_err(|_| Error::internal("otel bridge lock poisoned"))?;
        match &ev.payload {
            EventPayload::SessionStarted(p) => {
                let cx = self.start(
                    "power_loop.session",
                    None,
                    vec![
                        KeyValue::new("session_id", sid.clone()),
                        KeyValue::new("scope", p.scope.clone()),
                        KeyValue::new(semconv::CONVERSATION_ID, sid.clone()),
                    ],
                );
                if let Some(old) = open.sessions.insert(sid, cx) {
                    old.span().end();
                }
            }
            EventPayload::SessionEnded(_) => {
                if let Some(cx) = open.sessions.remove(&sid) {
                    cx.span().end();
                }
            }
            EventPayload::RoundStarted(p) => {
                let parent = open.sessions.get(&sid).cloned();
                let cx = self.start(
                    "power_loop.round",
                    parent.as_ref(),
                    vec![KeyValue::new("round_index", i64::from(p.round_index))],
                );
                open.rounds.insert((sid, p.round_index), cx);
            }
            EventPayload::RoundCompleted(p) => {
                if let Some(cx) = open.rounds.remove(&(sid, p.round_index)) {
                    cx.span().end();
                }
            }
            EventPayload::LlmCallStarted(p) => {
                let parent = open
                    .rounds
                    .get(&(sid.clone(), p.round_index))
                    .or_else(|| open.sessions.get(&sid))
                    .cloned();
                let cx = self.start(
                    "power_loop.llm_call",
                    parent.as_ref(),
                    vec![
                        KeyValue::new("model", p.model.clone()),
                        KeyValue::new("attempt", i64::from(p.attempt.max(1))),
                        KeyValue::new(semconv::OPERATION_NAME, "chat"),
                        KeyValue::new(semconv::REQUEST_MODEL, p.model.clone()),
                    ],
                );
                open.llm_calls
                    .insert((sid, format!("{}#{}", p.call_id, p.attempt)), cx);
            }
            EventPayload::LlmCallCompleted(p) => {
                if let Some(cx) = open
                    .llm_calls
                    .remove(&(sid, format!("{}#{}", p.call_id, p.attempt)))
                {
                    let span = cx.span();
                    span.set_attribute(KeyValue::new("duration_ms", p.duration_ms));
                    span.set_attribute(KeyValue::new("success", p.success));
                    if let Some(t) = p.prompt_tokens {
                        span.set_attribute(KeyValue::new(semconv::USAGE_INPUT_TOKENS, t as i64));
                    }
                    if let Some(t) = p.completion_tokens {
                        span.set_attribute(KeyValue::new(semconv::USAGE_OUTPUT_TOKENS, t as i64));
                    }
                    if !p.success {
                        let d = if p.error_type.is_empty() {
                            "llm_error".to_owned()
                        } else {
                            p.error_type.clone()
                        };
                        span.set_status(Status::error(d));
                    }
                    span.end();
                }
            }
            EventPayload::ToolCallStarted(p) => {
                let ri = ev.round_index.unwrap_or(0);
                let parent = open
                    .rounds
                    .get(&(sid.clone(), ri))
                    .or_else(|| open.sessions.get(&sid))
                    .cloned();
                let cx = self.start(
                    "power_loop.tool_call",
                    parent.as_ref(),
                    vec![
                        KeyValue::new("tool", p.name.clone()),
                        KeyValue::new(semconv::TOOL_NAME, p.name.clone()),
                        KeyValue::new(semconv::TOOL_CALL_ID, p.tool_call_id.clone()),
                    ],
                );
                open.tools.insert((sid, p.tool_call_id.clone()), cx);
            }
            EventPayload::ToolCallFailed(p) => {
                if let Some(cx) = open.tools.remove(&(sid, p.tool_call_id.clone())) {
                    cx.span().set_status(Status::error("tool_error"));
                    cx.span().end();
                }
            }
            EventPayload::ToolCallCompleted(p) => {
                if let Some(cx) = open.tools.remove(&(sid, p.tool_call_id.clone())) {
                    cx.span().end();
                }
            }
            _ => {}
        }
        Ok(())
    }
}
