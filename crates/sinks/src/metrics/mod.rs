//! Metrics from agent events, over a pluggable [`MetricsBackend`].
//!
//! | event | call | metric | labels |
//! |---|---|---|---|
//! | `llm_call_completed` | incr + observe(`duration_ms`) | `<p>_llm_calls`, `<p>_llm_call_duration_ms` | `model`, `success` |
//! | `llm_retry_attempted` | incr | `<p>_llm_retries` | |
//! | `tool_call_completed` (not failed) | incr | `<p>_tool_calls` | `tool`, `success="true"` |
//! | `tool_call_failed` | incr | `<p>_tool_calls` | `tool`, `success="false"` |
//! | `round_completed` | incr | `<p>_rounds` | |
//! | `agent_error` | incr | `<p>_errors` | `error_type` |
//! | `usage_updated` with `total_tokens` | observe | `<p>_usage_total_tokens` | |
//! | `workflow_run_started` | incr | `<p>_workflow_runs_started` | `workflow` |
//! | `workflow_run_completed` | incr + observe(`duration_ms`) | `<p>_workflow_runs`, `<p>_workflow_run_duration_ms` | `workflow`, `status` |
//! | `workflow_leaf_completed` | incr + observe(`duration_ms`) | `<p>_workflow_leaves`, `<p>_workflow_leaf_duration_ms` | `workflow`, `status` |
//! | (a [`crate::QueuedSink`] drop) | incr | `<p>_sink_dropped` | `sink` |

use std::sync::Arc;

use power_loop_contracts::{AgentEvent, EventPayload, EventSink, EventType, Result};

#[cfg(feature = "prometheus")]
mod prometheus;
#[cfg(feature = "statsd")]
mod statsd;

#[cfg(feature = "prometheus")]
pub use prometheus::PrometheusBackend;
#[cfg(feature = "statsd")]
pub use statsd::{StatsdBackend, StatsdLabels, StatsdOptions};

/// Where metric updates go. Labels are `(key, value)` pairs.
pub trait MetricsBackend: Send + Sync {
    /// Adds `value` to a counter.
    fn incr(&self, name: &str, value: u64, labels: &[(&str, &str)]) -> Result<()>;
    /// Records one observation in a histogram / timer.
    fn observe(&self, name: &str, value: f64, labels: &[(&str, &str)]) -> Result<()>;
    /// Sets a gauge.
    fn gauge(&self, name: &str, value: f64, labels: &[(&str, &str)]) -> Result<()>;
}

/// Turns agent events into metric updates on a backend.
#[derive(Clone)]
pub struct MetricsSink {
    backend: Arc<dyn MetricsBackend>,
    prefix: String,
    events: Option<Vec<EventType>>,
}

impl std::fmt::Debug for MetricsSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsSink")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl MetricsSink {
    /// A sink with the `power_loop` prefix.
    pub fn new(backend: Arc<dyn MetricsBackend>) -> Self {
        MetricsSink {
            backend,
            prefix: "power_loop".to_owned(),
            events: None,
        }
    }
    /// Sets the metric-name prefix.
    pub fn prefix(mut self, p: impl Into<String>) -> Self {
        self.prefix = p.into();
        self
    }
    /// Only process these event types.
    pub fn events(mut self, types: Vec<EventType>) -> Self {
        self.events = Some(types);
        self
    }
}

impl EventSink for MetricsSink {
    fn handle(&self, event: &AgentEvent) -> Result<()> {
        if !crate::wanted(&self.events, event) {
            return Ok(());
        }
        let p = &self.prefix;
        let b = &self.backend;
        match &event.payload {
            EventPayload::LlmCallCompleted(c) => {
                let success = if c.success { "true" } else { "false" };
                let labels = [("model", c.model.as_str()), ("success", success)];
                b.incr(&format!("{p}_llm_calls"), 1, &labels)?;
                b.observe(&format!("{p}_llm_call_duration_ms"), c.duration_ms, &labels)?;
            }
            EventPayload::LlmRetryAttempted(_) => b.incr(&format!("{p}_llm_retries"), 1, &[])?,
            EventPayload::ToolCallCompleted(c) if !c.failed => {
                b.incr(
                    &format!("{p}_tool_calls"),
                    1,
                    &[("tool", c.name.as_str()), ("success", "true")],
                )?;
            }
            EventPayload::ToolCallFailed(c) => {
                b.incr(
                    &format!("{p}_tool_calls"),
                    1,
                    &[("tool", c.name.as_str()), ("success", "false")],
                )?;
            }
            EventPayload::RoundCompleted(_) => b.incr(&format!("{p}_rounds"), 1, &[])?,
            EventPayload::AgentError(e) => b.incr(
                &format!("{p}_errors"),
                1,
                &[("error_type", e.error_type.as_str())],
            )?,
            EventPayload::UsageUpdated(u) => {
                if let Some(total) = u
                    .usage
                    .get("total_tokens")
                    .and_then(serde_json::Value::as_f64)
                {
                    b.observe(&format!("{p}_usage_total_tokens"), total, &[])?;
                }
            }
            EventPayload::WorkflowRunStarted(w) => b.incr(
                &format!("{p}_workflow_runs_started"),
                1,
                &[("workflow", w.workflow.as_str())],
            )?,
            EventPayload::WorkflowRunCompleted(w) => {
                let labels = [
                    ("workflow", w.workflow.as_str()),
                    ("status", w.status.as_str()),
                ];
                b.incr(&format!("{p}_workflow_runs"), 1, &labels)?;
                b.observe(
                    &format!("{p}_workflow_run_duration_ms"),
                    w.duration_ms,
                    &labels,
                )?;
            }
            EventPayload::WorkflowLeafCompleted(w) => {
                let labels = [
                    ("workflow", w.workflow.as_str()),
                    ("status", w.status.as_str()),
                ];
                b.incr(&format!("{p}_workflow_leaves"), 1, &labels)?;
                b.observe(
                    &format!("{p}_workflow_leaf_duration_ms"),
                    w.duration_ms,
                    &labels,
                )?;
            }
            _ => {}
        }
        Ok(())
    }
}
