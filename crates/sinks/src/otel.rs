//! OpenTelemetry span bridge: agent events → OpenTelemetry API spans on a tracer, with the same
//! tree, names and attributes as [`crate::TracingSink`] (see [`crate::trace`]).
//!
//! Use it when the host drives OpenTelemetry directly; with a `tracing` setup prefer
//! [`crate::TracingSink`] plus [`crate::otlp`]. Every exit path of a send closes its round,
//! LLM-call and tool spans (degraded, cancelled and pending sends included).

use std::sync::Mutex;

use opentelemetry::global::BoxedTracer;
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, KeyValue};
use power_loop_contracts::{AgentEvent, Error, EventSink, Result};

use crate::trace::TraceOptions;
use crate::trace::tree::{Attrs, Backend, Kind, SpanTree, Val};

pub use crate::trace::semconv;

/// The OpenTelemetry-API backend of the span tree.
pub(crate) struct OtelBackend {
    tracer: BoxedTracer,
}

fn key_values(attrs: Attrs) -> Vec<KeyValue> {
    attrs
        .into_iter()
        .map(|(k, v)| match v {
            Val::Str(s) => KeyValue::new(k, s),
            Val::I64(i) => KeyValue::new(k, i),
            Val::F64(f) => KeyValue::new(k, f),
            Val::Bool(b) => KeyValue::new(k, b),
        })
        .collect()
}

impl Backend for OtelBackend {
    type Span = Context;

    fn start(&self, kind: Kind, name: String, parent: Option<&Context>, attrs: Attrs) -> Context {
        let parent = parent.cloned().unwrap_or_default();
        let span_kind = if kind == Kind::Chat {
            SpanKind::Client
        } else {
            SpanKind::Internal
        };
        let span = self
            .tracer
            .span_builder(name)
            .with_kind(span_kind)
            .with_attributes(key_values(attrs))
            .start_with_context(&self.tracer, &parent);
        parent.with_span(span)
    }

    fn set(&self, span: &Context, attrs: Attrs) {
        span.span().set_attributes(key_values(attrs));
    }

    fn fail(&self, span: &Context, description: &str) {
        span.span()
            .set_status(Status::error(description.to_owned()));
    }

    fn end(&self, span: Context) {
        span.span().end();
    }
}

/// Turns events into spans on a tracer (by default the global provider's `power_loop` tracer).
pub struct OtelBridge {
    tree: Mutex<SpanTree<OtelBackend>>,
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
    /// A bridge on this tracer with default [`TraceOptions`].
    pub fn new(tracer: BoxedTracer) -> Self {
        Self::with_options(tracer, TraceOptions::default())
    }

    /// A bridge on this tracer with these options.
    pub fn with_options(tracer: BoxedTracer, opts: TraceOptions) -> Self {
        OtelBridge {
            tree: Mutex::new(SpanTree::new(OtelBackend { tracer }, opts)),
        }
    }

    /// Ends every span still open (children before parents).
    pub fn close(&self) {
        if let Ok(mut t) = self.tree.lock() {
            t.close_all();
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

impl EventSink for OtelBridge {
    fn handle(&self, ev: &AgentEvent) -> Result<()> {
        let mut t = self
            .tree
            .lock()
            .map_err(|_| Error::internal("otel bridge lock poisoned"))?;
        t.handle(ev);
        Ok(())
    }

    /// Ends every open span: call it at shutdown, after the last send.
    fn flush(&self) -> Result<()> {
        self.close();
        Ok(())
    }
}
