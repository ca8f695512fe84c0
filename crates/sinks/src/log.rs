//! One `tracing` event per agent event (target `power_loop::events`).

use power_loop_contracts::{AgentEvent, EventSink, EventType, Result};
use serde_json::{Map, Value};

use crate::redact::Redactor;

/// Logs every (matching) agent event as one JSON message through `tracing` at INFO (or DEBUG).
/// Prompt and tool content is left out unless the [`Redactor`] opts in.
///
/// Nothing is serialized when the level is disabled, so an idle subscriber costs almost nothing.
#[derive(Debug, Clone)]
pub struct LogSink {
    events: Option<Vec<EventType>>,
    redactor: Redactor,
    debug: bool,
}

impl Default for LogSink {
    fn default() -> Self {
        LogSink {
            events: None,
            redactor: Redactor::new(500),
            debug: false,
        }
    }
}

impl LogSink {
    /// A sink logging every event at INFO with payload strings cut at 500 characters.
    pub fn new() -> Self {
        Self::default()
    }
    /// Only log these event types.
    pub fn events(mut self, types: Vec<EventType>) -> Self {
        self.events = Some(types);
        self
    }
    /// Log at DEBUG instead of INFO.
    pub fn at_debug(mut self) -> Self {
        self.debug = true;
        self
    }
    /// Sets the redaction rules.
    pub fn redactor(mut self, r: Redactor) -> Self {
        self.redactor = r;
        self
    }

    /// The log message for an event: `event`, `seq`, `ts`, `session_id`, then `round_index` and
    /// `source` when the event has them, then `payload`.
    pub fn message(&self, ev: &AgentEvent) -> Result<String> {
        let full = serde_json::to_value(ev)?;
        let mut m = Map::new();
        m.insert(
            "event".into(),
            Value::String(ev.event_type().as_str().into()),
        );
        m.insert("seq".into(), Value::from(ev.seq));
        m.insert("ts".into(), Value::from(ev.ts));
        m.insert(
            "session_id".into(),
            ev.session_id.clone().map_or(Value::Null, Value::String),
        );
        if let Some(r) = ev.round_index {
            m.insert("round_index".into(), Value::from(r));
        }
        if let Some(s) = ev.source.as_ref().filter(|s| !s.is_empty()) {
            m.insert("source".into(), Value::String(s.clone()));
        }
        m.insert(
            "payload".into(),
            self.redactor
                .sanitize_payload(ev.event_type(), full.get("payload").unwrap_or(&Value::Null)),
        );
        Ok(serde_json::to_string(&Value::Object(m))?)
    }
}

impl EventSink for LogSink {
    fn handle(&self, event: &AgentEvent) -> Result<()> {
        if !crate::wanted(&self.events, event) {
            return Ok(());
        }
        if self.debug {
            if tracing::enabled!(target: "power_loop::events", tracing::Level::DEBUG) {
                let msg = self.message(event)?;
                tracing::debug!(target: "power_loop::events", event = event.event_type().as_str(), "{msg}");
            }
        } else if tracing::enabled!(target: "power_loop::events", tracing::Level::INFO) {
            let msg = self.message(event)?;
            tracing::info!(target: "power_loop::events", event = event.event_type().as_str(), "{msg}");
        }
        Ok(())
    }
}
