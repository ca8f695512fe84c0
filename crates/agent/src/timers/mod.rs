//! Durable wake-up timers: the loop-level scheduling API,
//! the agent tools (`schedule_wakeup`, `list_wakeups`, `cancel_wakeup`, `current_time`) and the
//! [`TimerRunner`] that fires due timers by sending the timer's note into its session.
//!
//! The timer row in the store is the source of truth; the runner only accelerates it. Runners
//! claim due timers with the store's fleet claim (`FOR UPDATE SKIP LOCKED` on server backends,
//! plus a lease), so several runner processes can share one database and each due firing is
//! claimed by one of them; a claim whose runner died is taken over after the lease, and the
//! taker checks the session history first so a note already delivered is not delivered twice.

mod clock;
mod runner;
mod tools;

use power_loop_contracts::{Error, ErrorCode, Result};
use power_loop_store::{TimerRow, now_ms};

use crate::StatefulAgentLoop;

pub use clock::format_current_time;
pub(crate) use clock::utc_iso_now;
pub use runner::{FiringOutcome, TimerFiring, TimerRunner, TimerRunnerOptions};
pub use tools::{
    cancel_wakeup_tool, current_time_tool, list_wakeups_tool, register_timer_tools,
    schedule_wakeup_tool, timer_tools,
};

/// Shortest delay / period the wake-up tools accept, in seconds.
pub const MIN_WAKEUP_SECONDS: i64 = 5;
/// Longest delay / period the wake-up tools accept, in seconds (30 days).
pub const MAX_WAKEUP_SECONDS: i64 = 2_592_000;
/// At most this many armed timers per session through `schedule_wakeup`.
pub const MAX_ARMED_WAKEUPS: usize = 10;
/// The line between the `<timer id=N>` tag and the note of a delivered wake-up.
pub const TIMER_PREAMBLE: &str =
    "Your scheduled wake-up fired. This is the note you left for yourself:";

/// The user message a firing delivers: `<timer id=N>`, the preamble, the note, `</timer>`.
pub fn timer_message(timer_id: i64, note: &str) -> String {
    format!("<timer id={timer_id}>\n{TIMER_PREAMBLE}\n{note}\n</timer>")
}

/// When a timer first fires: after a delay or at an absolute time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerDue {
    /// This many seconds from now.
    InSeconds(i64),
    /// At this epoch-ms instant.
    AtMs(i64),
}

impl StatefulAgentLoop {
    /// Arms a durable timer in `session_id` (spec `schedule_timer`): the session must exist,
    /// the note must not be blank (stored trimmed), `interval_s` (recurring period) must be ≥ 1.
    pub async fn schedule_timer(
        &self,
        session_id: &str,
        due: TimerDue,
        note: &str,
        interval_s: Option<i64>,
    ) -> Result<TimerRow> {
        let note = note.trim();
        if note.is_empty() {
            return Err(Error::new(
                ErrorCode::TimerInvalid,
                "timer note must not be blank: write what the session should do when it fires",
            ));
        }
        if let Some(i) = interval_s
            && i < 1
        {
            return Err(Error::new(
                ErrorCode::TimerInvalid,
                format!("timer interval_s must be ≥ 1 second, got {i}"),
            ));
        }
        let due_at = match due {
            TimerDue::InSeconds(s) if s < 0 => {
                return Err(Error::new(
                    ErrorCode::TimerInvalid,
                    format!("timer delay must be ≥ 0 seconds, got {s}"),
                ));
            }
            TimerDue::InSeconds(s) => now_ms().saturating_add(s.saturating_mul(1000)),
            TimerDue::AtMs(ms) => ms,
        };
        let store = self.store().await?;
        if !store.session_exists(session_id).await? {
            return Err(Error::session_not_found(session_id));
        }
        store
            .create_timer(session_id, due_at, note, interval_s)
            .await
    }

    /// Cancels an armed timer (`armed → cancelled`); true iff it was armed.
    pub async fn cancel_timer(&self, session_id: &str, timer_id: i64) -> Result<bool> {
        self.store().await?.cancel_timer(session_id, timer_id).await
    }

    /// The session's live (armed or firing) timers, by due time.
    pub async fn list_timers(&self, session_id: &str) -> Result<Vec<TimerRow>> {
        self.store().await?.list_live_timers(session_id).await
    }
}
