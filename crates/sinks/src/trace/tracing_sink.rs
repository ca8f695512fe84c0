//! Native `tracing` spans from the event stream (target `power_loop::trace`, level INFO).
//!
//! Span names are static in `tracing`; the OpenTelemetry names (`chat gpt-4o`,
//! `execute_tool bash`, …) travel in the `otel.name` field, and kinds in `otel.kind`, which
//! `tracing-opentelemetry` turns into the exported span's name and kind.

use std::sync::Mutex;

use power_loop_contracts::{AgentEvent, Error, EventSink, Result};
use tracing::Span;
use tracing::field::Empty;

use super::TraceOptions;
use super::tree::{Attrs, Backend, Kind, SpanTree, Val};

/// The `tracing` backend of the span tree.
pub(crate) struct TracingBackend;

fn record(span: &Span, attrs: Attrs) {
    for (key, v) in attrs {
        match v {
            Val::Str(s) => span.record(key, s.as_str()),
            Val::I64(i) => span.record(key, i),
            Val::F64(f) => span.record(key, f),
            Val::Bool(b) => span.record(key, b),
        };
    }
}

impl Backend for TracingBackend {
    type Span = Span;

    fn start(&self, kind: Kind, name: String, parent: Option<&Span>, attrs: Attrs) -> Span {
        let parent = parent.and_then(Span::id);
        let span = match kind {
            Kind::Session => tracing::info_span!(target: "power_loop::trace", parent: parent,
                "power_loop.session", otel.name = %name, otel.kind = "internal",
                otel.status_code = Empty, otel.status_description = Empty, error.type = Empty,
                gen_ai.conversation.id = Empty, power_loop.session_id = Empty),
            Kind::Send => tracing::info_span!(target: "power_loop::trace", parent: parent,
                "invoke_agent", otel.name = %name, otel.kind = "internal",
                otel.status_code = Empty, otel.status_description = Empty, error.type = Empty,
                gen_ai.operation.name = Empty, gen_ai.agent.name = Empty,
                gen_ai.conversation.id = Empty, power_loop.scope = Empty,
                power_loop.end_reason = Empty),
            Kind::Round => tracing::info_span!(target: "power_loop::trace", parent: parent,
                "power_loop.round", otel.name = %name, otel.kind = "internal",
                otel.status_code = Empty, otel.status_description = Empty, error.type = Empty,
                power_loop.round_index = Empty, power_loop.round.has_tools = Empty),
            Kind::Chat => tracing::info_span!(target: "power_loop::trace", parent: parent,
                "chat", otel.name = %name, otel.kind = "client",
                otel.status_code = Empty, otel.status_description = Empty, error.type = Empty,
                gen_ai.operation.name = Empty, gen_ai.provider.name = Empty,
                gen_ai.request.model = Empty, gen_ai.response.model = Empty,
                gen_ai.usage.input_tokens = Empty, gen_ai.usage.output_tokens = Empty,
                gen_ai.conversation.id = Empty, power_loop.llm.call_id = Empty,
                power_loop.llm.attempt = Empty, power_loop.round_index = Empty,
                power_loop.llm.duration_ms = Empty),
            Kind::Tool => tracing::info_span!(target: "power_loop::trace", parent: parent,
                "execute_tool", otel.name = %name, otel.kind = "internal",
                otel.status_code = Empty, otel.status_description = Empty, error.type = Empty,
                gen_ai.operation.name = Empty, gen_ai.tool.name = Empty,
                gen_ai.tool.call.id = Empty, gen_ai.tool.type = Empty,
                gen_ai.tool.call.arguments = Empty, gen_ai.tool.call.result = Empty,
                gen_ai.conversation.id = Empty),
            Kind::Compaction => tracing::info_span!(target: "power_loop::trace", parent: parent,
                "power_loop.compaction", otel.name = %name, otel.kind = "internal",
                otel.status_code = Empty, otel.status_description = Empty, error.type = Empty,
                power_loop.compaction.phase = Empty, power_loop.compaction.trigger = Empty,
                power_loop.compaction.before_tokens = Empty,
                power_loop.compaction.after_tokens = Empty, power_loop.round_index = Empty),
        };
        record(&span, attrs);
        span
    }

    fn set(&self, span: &Span, attrs: Attrs) {
        record(span, attrs);
    }

    fn fail(&self, span: &Span, description: &str) {
        span.record("otel.status_code", "error");
        span.record("otel.status_description", description);
    }

    fn end(&self, span: Span) {
        drop(span);
    }
}

/// An [`EventSink`] that turns the event stream into native `tracing` spans (see the module
/// tree in [`crate::trace`]). Any subscriber sees them: a `fmt` layer, or the OpenTelemetry
/// layer of [`crate::otlp`] for OTLP export. Spans close on every exit path of a send; what is
/// still open is closed by [`flush`](EventSink::flush) and on drop.
pub struct TracingSink {
    tree: Mutex<SpanTree<TracingBackend>>,
}

impl std::fmt::Debug for TracingSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TracingSink").finish_non_exhaustive()
    }
}

impl Default for TracingSink {
    fn default() -> Self {
        Self::new(TraceOptions::default())
    }
}

impl TracingSink {
    /// A sink with these options.
    pub fn new(opts: TraceOptions) -> Self {
        TracingSink {
            tree: Mutex::new(SpanTree::new(TracingBackend, opts)),
        }
    }

    /// Ends the session span of `session_id` (and a send still open under it, as `abandoned`).
    pub fn end_session(&self, session_id: &str) {
        if let Ok(mut t) = self.tree.lock() {
            t.end_session(session_id);
        }
    }

    /// How many spans are open right now.
    pub fn open_spans(&self) -> usize {
        self.tree.lock().map_or(0, |t| t.open_spans())
    }
}

impl EventSink for TracingSink {
    fn handle(&self, event: &AgentEvent) -> Result<()> {
        let mut t = self
            .tree
            .lock()
            .map_err(|_| Error::internal("trace sink lock poisoned"))?;
        t.handle(event);
        Ok(())
    }

    /// Ends every open span (sessions included): call it at shutdown, after the last send.
    fn flush(&self) -> Result<()> {
        let mut t = self
            .tree
            .lock()
            .map_err(|_| Error::internal("trace sink lock poisoned"))?;
        t.close_all();
        Ok(())
    }
}
