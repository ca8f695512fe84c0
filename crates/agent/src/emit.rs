//! Event emission helper: builds payloads only when someone listens.

use std::sync::Arc;

use power_loop_contracts::event::EventType;
use power_loop_contracts::{AgentEvent, EventPayload, Result};

use crate::bus::AgentEventBus;

/// Publishes events of one run (session id, round, stream id on the envelope).
#[derive(Clone)]
pub(crate) struct Emitter {
    pub(crate) bus: AgentEventBus,
    pub(crate) sid: Arc<str>,
}

impl Emitter {
    pub(crate) fn emit(
        &self,
        t: EventType,
        round: Option<u32>,
        stream: bool,
        payload: impl FnOnce() -> EventPayload,
    ) -> Result<()> {
        if !self.bus.has_subscribers(t) {
            return Ok(());
        }
        let mut ev = AgentEvent::new(payload()).with_session(&*self.sid);
        if let Some(r) = round {
            ev = ev.with_round(r);
        }
        if stream {
            ev = ev.with_stream("main");
        }
        self.bus.publish(ev)
    }
}
