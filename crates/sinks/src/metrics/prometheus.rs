//! A Prometheus backend on `prometheus-client` (no global registry).

use std::collections::HashMap;
use std::sync::Mutex;

use power_loop_contracts::{Error, ErrorCode, Result};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use super::MetricsBackend;

type Labels = Vec<(String, String)>;
type HistFamily = Family<Labels, Histogram, fn() -> Histogram>;

fn new_histogram() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 20))
}

#[derive(Default)]
struct Inner {
    registry: Registry,
    counters: HashMap<String, Family<Labels, Counter>>,
    histograms: HashMap<String, HistFamily>,
    gauges: HashMap<String, Family<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>>,
}

/// Metrics kept in a private `prometheus-client` registry; [`PrometheusBackend::encode`] renders
/// the OpenMetrics text a `/metrics` handler returns. Counters appear as `<name>_total`.
#[derive(Default)]
pub struct PrometheusBackend {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for PrometheusBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrometheusBackend").finish_non_exhaustive()
    }
}

fn owned(labels: &[(&str, &str)]) -> Labels {
    let mut v: Labels = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    v.sort();
    v
}

/// Help text of a metric the sink emits (by its name without the prefix), else the name.
fn help_for(name: &str) -> String {
    const HELP: &[(&str, &str)] = &[
        ("_llm_calls", "LLM call attempts, by model and outcome"),
        (
            "_llm_call_duration_ms",
            "Duration of one LLM call attempt in milliseconds",
        ),
        ("_llm_retries", "LLM attempts that failed and were retried"),
        ("_tool_calls", "Tool calls, by tool and outcome"),
        ("_rounds", "Completed agent rounds"),
        ("_errors", "Runs that failed, by error code"),
        ("_usage_total_tokens", "Total tokens of one LLM call"),
        (
            "_sink_dropped",
            "Events an event sink dropped because its queue was full",
        ),
        ("_workflow_runs_started", "Workflow run attempts started"),
        (
            "_workflow_runs",
            "Workflow run attempts ended, by workflow and status",
        ),
        (
            "_workflow_run_duration_ms",
            "Wall time of one workflow run attempt in milliseconds",
        ),
        (
            "_workflow_leaves",
            "Workflow agent leaves that ran, by workflow and status",
        ),
        (
            "_workflow_leaf_duration_ms",
            "Wall time of one workflow agent leaf in milliseconds",
        ),
    ];
    HELP.iter()
        .find(|(suffix, _)| name.ends_with(suffix))
        .map_or_else(|| name.to_owned(), |(_, h)| (*h).to_owned())
}

/// OpenMetrics text → Prometheus text format 0.0.4: counter families are announced under their
/// `_total` sample name, `# UNIT` and `# EOF` lines are dropped.
fn to_text_format(open_metrics: &str) -> String {
    let mut counters = std::collections::HashSet::new();
    for line in open_metrics.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ")
            && let Some(name) = rest.strip_suffix(" counter")
        {
            counters.insert(name.to_owned());
        }
    }
    let mut out = String::with_capacity(open_metrics.len());
    for line in open_metrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let meta = line
            .strip_prefix("# HELP ")
            .map(|r| ("# HELP ", r))
            .or_else(|| line.strip_prefix("# TYPE ").map(|r| ("# TYPE ", r)));
        match meta {
            Some((tag, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                if counters.contains(name) {
                    out.push_str(&format!("{tag}{name}_total {tail}"));
                } else {
                    out.push_str(line);
                }
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

fn poisoned() -> Error {
    Error::internal("metrics registry lock poisoned")
}

impl PrometheusBackend {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The registry in Prometheus text format 0.0.4 (serve it as
    /// `text/plain; version=0.0.4`); what `promtool check metrics` reads.
    pub fn encode_text(&self) -> Result<String> {
        Ok(to_text_format(&self.encode()?))
    }

    /// The registry in OpenMetrics text format (serve it as
    /// `application/openmetrics-text; version=1.0.0`).
    pub fn encode(&self) -> Result<String> {
        let inner = self.inner.lock().map_err(|_| poisoned())?;
        let mut out = String::new();
        encode(&mut out, &inner.registry).map_err(|e| {
            Error::new(
                ErrorCode::Serialization,
                format!("cannot encode metrics: {e}"),
            )
        })?;
        Ok(out)
    }
}

impl MetricsBackend for PrometheusBackend {
    fn incr(&self, name: &str, value: u64, labels: &[(&str, &str)]) -> Result<()> {
        let mut inner = self.inner.lock().map_err(|_| poisoned())?;
        if !inner.counters.contains_key(name) {
            let fam = Family::<Labels, Counter>::default();
            inner.registry.register(name, help_for(name), fam.clone());
            inner.counters.insert(name.to_owned(), fam);
        }
        if let Some(f) = inner.counters.get(name) {
            f.get_or_create(&owned(labels)).inc_by(value);
        }
        Ok(())
    }

    fn observe(&self, name: &str, value: f64, labels: &[(&str, &str)]) -> Result<()> {
        let mut inner = self.inner.lock().map_err(|_| poisoned())?;
        if !inner.histograms.contains_key(name) {
            let fam: HistFamily = Family::new_with_constructor(new_histogram as fn() -> Histogram);
            inner.registry.register(name, help_for(name), fam.clone());
            inner.histograms.insert(name.to_owned(), fam);
        }
        if let Some(f) = inner.histograms.get(name) {
            f.get_or_create(&owned(labels)).observe(value);
        }
        Ok(())
    }

    fn gauge(&self, name: &str, value: f64, labels: &[(&str, &str)]) -> Result<()> {
        let mut inner = self.inner.lock().map_err(|_| poisoned())?;
        if !inner.gauges.contains_key(name) {
            let fam = Family::<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
            inner.registry.register(name, help_for(name), fam.clone());
            inner.gauges.insert(name.to_owned(), fam);
        }
        if let Some(f) = inner.gauges.get(name) {
            f.get_or_create(&owned(labels)).set(value);
        }
        Ok(())
    }
}
