//! Event sinks: consumers of power-loop agent events.
//!
//! # Owns
//! [`JsonlSink`] (durable JSON-lines file with rotation) and [`replay`], [`LogSink`] (one
//! `tracing` event per agent event), [`MetricsSink`] over the [`MetricsBackend`] seam with
//! Prometheus (`prometheus` feature) and StatsD (`statsd` feature) backends, and an OpenTelemetry
//! span bridge (`otel` feature). Payloads are sanitized (secrets redacted, long strings cut) by
//! [`redact`] before they leave the process.
//!
//! # Must not import
//! The store, tools or agent crates. Sinks only see [`power_loop_contracts::AgentEvent`]s.
//!
//! # Seams
//! Every sink implements [`power_loop_contracts::EventSink`]; [`MetricsBackend`] lets a host plug
//! in its own metrics library.
//!
//! # Feature flags
//! `prometheus` (prometheus-client), `statsd` (cadence), `otel` (opentelemetry API).
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
