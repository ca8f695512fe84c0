//! Event sinks: consumers of power-loop agent events.
//!
//! # Owns
//! [`JsonlSink`] (durable JSON-lines file with rotation) and [`replay`] / [`replay_report`],
//! [`LogSink`] (one `tracing` event per agent event), [`TracingSink`] (native `tracing` spans
//! session → send → round → LLM call / tool call / compaction, OpenTelemetry GenAI names; see
//! [`trace`]), [`MetricsSink`] over the [`MetricsBackend`] seam with Prometheus (`prometheus`
//! feature) and StatsD on cadence (`statsd` feature) backends, the OpenTelemetry API bridge and
//! OTLP export (`otel` feature), and [`QueuedSink`], which puts any sink behind its own bounded
//! queue so a slow sink never blocks the loop. Payloads are sanitized (secrets redacted, long
//! strings cut, prompt and tool content left out unless opted in) by [`redact`] before they leave
//! the process.
//!
//! # Must not import
//! The store, tools or agent crates. Sinks only see [`power_loop_contracts::AgentEvent`]s.
//!
//! # Seams
//! Every sink implements [`power_loop_contracts::EventSink`]; [`MetricsBackend`] lets a host plug
//! in its own metrics library.
//!
//! # Feature flags
//! `prometheus` (prometheus-client), `statsd` (cadence), `otel` (opentelemetry API + SDK,
//! opentelemetry-otlp over async reqwest with rustls/ring, tracing-opentelemetry).
//!
//! # Stability
//! Internal crate: reach it through the `power-loop` façade.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod jsonl;
mod log;
pub mod metrics;
#[cfg(feature = "otel")]
pub mod otel;
#[cfg(feature = "otel")]
pub mod otlp;
mod queue;
pub mod redact;
pub mod trace;

pub use jsonl::{BadLine, BadLineKind, JsonlOptions, JsonlSink, Replay, replay, replay_report};
pub use log::LogSink;
pub use metrics::{MetricsBackend, MetricsSink};
pub use queue::{QueueOptions, QueuedSink};
pub use trace::{TraceOptions, TracingSink};

/// Whether an event passes an optional type filter.
pub(crate) fn wanted(
    filter: &Option<Vec<power_loop_contracts::EventType>>,
    ev: &power_loop_contracts::AgentEvent,
) -> bool {
    filter
        .as_ref()
        .is_none_or(|types| types.contains(&ev.event_type()))
}
