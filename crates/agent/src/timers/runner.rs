//! [`TimerRunner`]: fires due durable timers by sending their note into their session.
//!
//! Each poll claims due timers with [`SessionStore::claim_due_timers`] (one transaction,
//! `FOR UPDATE SKIP LOCKED` on PostgreSQL/MySQL, the single writer on SQLite), so runners in
//! several processes never claim the same firing twice. Each claim carries a token; the firing's
//! writes (heartbeats, completion, the delivery marker and the delivered send itself) check it in
//! their own transactions, so a runner whose claim was taken over cannot deliver or complete it
//! (`timer.claim_lost`). A claim is kept alive by heartbeats while
//! the note is delivered; a claim whose runner died goes stale after the lease and is claimed
//! again. Before delivering, the taker looks for the timer's message in the session history
//! written since the timer last fired: if the dead runner had already delivered it, the firing is
//! only completed, so a crash between delivery and completion neither loses nor doubles it.
//!
//! Per firing: session gone → `cancelled`; `timer.fire` hook `Cancel` → `cancelled`, `Skip` →
//! completed as `skipped`, `postpone_s > 0` → re-armed later (`postponed`); otherwise the message
//! is sent with [`StatefulAgentLoop::send`] (waits for a run in progress on the session) and the
//! firing completed (`delivered`): a one-shot timer becomes `fired`, a recurring one is re-armed
//! at completion time + period (missed periods collapse into this one firing). A failed delivery
//! re-arms the timer after [`TimerRunnerOptions::retry_delay`] (`failed`). Every firing publishes
//! `timer_fired`.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::StreamExt;
use power_loop_contracts::event::TimerFiredPayload;
use power_loop_contracts::hook::{TimerFireCtx, TimerFireDirective};
use power_loop_contracts::{AgentEvent, Error, ErrorCode, EventPayload, EventType, Result};
use power_loop_store::{Fence, SessionStore, TimerClaim, TimerRow, now_ms, timer_status};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::timer_message;
use crate::StatefulAgentLoop;

/// Settings of a [`TimerRunner`].
#[derive(Debug, Clone)]
pub struct TimerRunnerOptions {
    /// How often the background task looks for due timers (default 2 s).
    pub poll_interval: Duration,
    /// A claim not refreshed for this long is taken over by another runner (default 120 s).
    pub lease: Duration,
    /// Heartbeat period while delivering (default `max(1 s, lease / 4)`).
    pub heartbeat_interval: Option<Duration>,
    /// At most this many timers claimed per poll (default 50).
    pub batch_limit: usize,
    /// At most this many firings delivered at once (default 4).
    pub concurrency: usize,
    /// A failed delivery is retried this much later (default 30 s).
    pub retry_delay: Duration,
}

impl Default for TimerRunnerOptions {
    fn default() -> Self {
        TimerRunnerOptions {
            poll_interval: Duration::from_secs(2),
            lease: Duration::from_secs(120),
            heartbeat_interval: None,
            batch_limit: 50,
            concurrency: 4,
            retry_delay: Duration::from_secs(30),
        }
    }
}

impl TimerRunnerOptions {
    /// Sets the poll interval.
    pub fn with_poll_interval(mut self, d: Duration) -> Self {
        self.poll_interval = d;
        self
    }

    /// Sets the claim lease.
    pub fn with_lease(mut self, d: Duration) -> Self {
        self.lease = d;
        self
    }

    /// Sets the per-poll claim limit.
    pub fn with_batch_limit(mut self, n: usize) -> Self {
        self.batch_limit = n;
        self
    }

    /// Sets how many firings run at once.
    pub fn with_concurrency(mut self, n: usize) -> Self {
        self.concurrency = n;
        self
    }

    /// Sets the retry delay after a failed delivery.
    pub fn with_retry_delay(mut self, d: Duration) -> Self {
        self.retry_delay = d;
        self
    }

    fn heartbeat(&self) -> Duration {
        self.heartbeat_interval
            .unwrap_or_else(|| (self.lease / 4).max(Duration::from_secs(1)))
            .max(Duration::from_millis(10))
    }
}

/// What happened to one firing (the `outcome` of `timer_fired`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FiringOutcome {
    /// The note was sent into the session (or had already been, see [`TimerFiring::deduplicated`]).
    Delivered,
    /// A `timer.fire` hook skipped it; the firing counts as done.
    Skipped,
    /// Cancelled by a hook, or the session no longer exists.
    Cancelled,
    /// A hook postponed it (`postpone_s`); re-armed later.
    Postponed,
    /// Delivery failed; re-armed after the retry delay.
    Failed,
}

impl FiringOutcome {
    /// The contract string (`delivered`, `skipped`, `cancelled`, `postponed`, `failed`).
    pub fn as_str(self) -> &'static str {
        match self {
            FiringOutcome::Delivered => "delivered",
            FiringOutcome::Skipped => "skipped",
            FiringOutcome::Cancelled => "cancelled",
            FiringOutcome::Postponed => "postponed",
            FiringOutcome::Failed => "failed",
        }
    }
}

/// The report of one firing handled by [`TimerRunner::run_once`].
#[derive(Debug, Clone)]
pub struct TimerFiring {
    /// Session of the timer.
    pub session_id: String,
    /// Timer id within the session.
    pub timer_id: i64,
    /// What happened.
    pub outcome: FiringOutcome,
    /// The message was already in the session (a crashed runner delivered it); only completed.
    pub deduplicated: bool,
    /// Why a delivery failed.
    pub error: Option<String>,
}

/// Fires due durable timers of one store through one agent loop (see the module docs).
pub struct TimerRunner {
    lp: StatefulAgentLoop,
    opts: TimerRunnerOptions,
    task: Mutex<Option<(CancellationToken, JoinHandle<()>)>>,
}

impl std::fmt::Debug for TimerRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimerRunner")
            .field("opts", &self.opts)
            .finish_non_exhaustive()
    }
}

impl TimerRunner {
    /// A runner over `lp` (its store, hooks and event bus). Nothing runs until
    /// [`start`](Self::start) or [`run_once`](Self::run_once).
    pub fn new(lp: StatefulAgentLoop, opts: TimerRunnerOptions) -> Arc<Self> {
        Arc::new(TimerRunner {
            lp,
            opts,
            task: Mutex::new(None),
        })
    }

    /// The runner's settings.
    pub fn options(&self) -> &TimerRunnerOptions {
        &self.opts
    }

    /// Starts the background poll task on the current tokio runtime (a no-op when running).
    /// Poll errors are logged and retried at the next poll.
    pub fn start(self: &Arc<Self>) -> Result<()> {
        let mut guard = self.task.lock().unwrap_or_else(PoisonError::into_inner);
        if guard.is_some() {
            return Ok(());
        }
        let rt = tokio::runtime::Handle::try_current().map_err(|e| {
            Error::new(
                ErrorCode::InvalidArgument,
                "TimerRunner::start needs a tokio runtime: call it from async code",
            )
            .with_source(e)
        })?;
        let cancel = CancellationToken::new();
        let me = Arc::clone(self);
        let c = cancel.clone();
        let handle = rt.spawn(async move {
            loop {
                if let Err(e) = me.run_once(now_ms()).await {
                    tracing::warn!(error = %e, "timer runner poll failed; retrying next poll");
                }
                tokio::select! {
                    () = c.cancelled() => break,
                    () = tokio::time::sleep(me.opts.poll_interval) => {}
                }
            }
        });
        *guard = Some((cancel, handle));
        Ok(())
    }

    /// Whether the background task runs.
    pub fn is_running(&self) -> bool {
        self.task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    /// Stops the background task after the firings in progress complete.
    pub async fn shutdown(&self) {
        let taken = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some((cancel, handle)) = taken {
            cancel.cancel();
            if let Err(e) = handle.await {
                tracing::warn!(error = %e, "timer runner task ended abnormally");
            }
        }
    }

    /// One poll at `now` (epoch ms): claims the timers due at `now` (and stale claims older than
    /// the lease) and fires them. Returns one report per claimed timer.
    pub async fn run_once(&self, now: i64) -> Result<Vec<TimerFiring>> {
        let store = self.lp.store().await?.clone();
        let lease_ms = i64::try_from(self.opts.lease.as_millis()).unwrap_or(i64::MAX);
        let claimed = store
            .claim_due_timers(now, self.opts.batch_limit.max(1), lease_ms)
            .await?;
        let store = &store;
        let out = futures_util::stream::iter(claimed)
            .map(|c| async move { self.fire(store, c).await })
            .buffer_unordered(self.opts.concurrency.max(1))
            .collect::<Vec<_>>()
            .await;
        Ok(out)
    }

    /// Fires one claim. Every write goes through a store handle fenced by the claim token, and
    /// the delivery's send carries the same fence: a runner whose claim was taken over meanwhile
    /// delivers nothing and completes nothing (`timer.claim_lost`; the new holder fires it).
    async fn fire(&self, store: &SessionStore, claim: TimerClaim) -> TimerFiring {
        let store = &store.fenced(claim.fence());
        let fence = claim.fence();
        let t = claim.timer;
        let mut report = TimerFiring {
            session_id: t.session_id.clone(),
            timer_id: t.timer_id,
            outcome: FiringOutcome::Failed,
            deduplicated: false,
            error: None,
        };
        match self.fire_inner(store, &t, fence, &mut report).await {
            Ok(outcome) => report.outcome = outcome,
            Err(e) if e.code() == ErrorCode::TimerClaimLost => {
                tracing::warn!(session_id = %t.session_id, timer_id = t.timer_id, error = %e,
                    "timer claim was taken over; leaving the firing to its new holder");
                report.error = Some(e.to_string());
                report.outcome = FiringOutcome::Failed;
            }
            Err(e) => {
                tracing::warn!(session_id = %t.session_id, timer_id = t.timer_id, error = %e,
                    "timer firing failed; re-arming after the retry delay");
                report.error = Some(e.to_string());
                report.outcome = FiringOutcome::Failed;
                let retry = i64::try_from(self.opts.retry_delay.as_millis()).unwrap_or(30_000);
                if let Err(e) = store
                    .rearm_timer(&t.session_id, t.timer_id, now_ms().saturating_add(retry))
                    .await
                {
                    tracing::warn!(error = %e, "could not re-arm a failed timer; the lease will");
                }
            }
        }
        self.publish(&t, report.outcome);
        report
    }

    async fn fire_inner(
        &self,
        store: &SessionStore,
        t: &TimerRow,
        fence: Fence,
        report: &mut TimerFiring,
    ) -> Result<FiringOutcome> {
        let (sid, id) = (t.session_id.as_str(), t.timer_id);
        if !store.session_exists(sid).await? {
            store
                .transition_timer(sid, id, timer_status::FIRING, timer_status::CANCELLED, None)
                .await?;
            return Ok(FiringOutcome::Cancelled);
        }
        let mut ctx = TimerFireCtx {
            session_id: sid.to_owned(),
            timer_id: id,
            note: t.note.clone(),
            due_at: t.due_at,
            message: timer_message(id, &t.note),
            postpone_s: 0.0,
            directive: TimerFireDirective::default(),
        };
        self.lp.hooks().run_timer_fire(&mut ctx).await?;
        match ctx.directive {
            TimerFireDirective::Cancel => {
                store
                    .transition_timer(sid, id, timer_status::FIRING, timer_status::CANCELLED, None)
                    .await?;
                return Ok(FiringOutcome::Cancelled);
            }
            TimerFireDirective::Skip => {
                store.finish_firing_timer(sid, id).await?;
                return Ok(FiringOutcome::Skipped);
            }
            _ => {}
        }
        if ctx.postpone_s > 0.0 && ctx.postpone_s.is_finite() {
            #[allow(clippy::cast_possible_truncation)]
            let ms = (ctx.postpone_s * 1000.0).min(i64::MAX as f64) as i64;
            store
                .rearm_timer(sid, id, now_ms().saturating_add(ms))
                .await?;
            return Ok(FiringOutcome::Postponed);
        }
        if already_delivered(store, t, &ctx.message).await? {
            report.deduplicated = true;
        } else {
            self.deliver(store, t, fence, ctx.message).await?;
        }
        if store.finish_firing_timer(sid, id).await? {
            if let Err(e) = store.delete_runtime_state(sid, &marker_key(id)).await {
                tracing::debug!(error = %e, "could not drop the timer delivery marker");
            }
        } else {
            tracing::warn!(
                session_id = sid,
                timer_id = id,
                "timer claim was taken over during delivery; the new holder will see the message"
            );
        }
        Ok(FiringOutcome::Delivered)
    }

    /// Sends the message (every write of the send fenced by the claim), heartbeating the claim
    /// until the send returns.
    async fn deliver(
        &self,
        store: &SessionStore,
        t: &TimerRow,
        fence: Fence,
        message: String,
    ) -> Result<()> {
        let send = self.lp.send_with(
            &t.session_id,
            message.as_str(),
            crate::SendOptions::new()
                .with_persist_input_first(true)
                .with_fence(fence),
        );
        tokio::pin!(send);
        let mut tick = tokio::time::interval(self.opts.heartbeat());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tokio::select! {
                r = &mut send => return r.map(|_| ()),
                _ = tick.tick() => {
                    match store.heartbeat_firing_timer(&t.session_id, t.timer_id).await {
                        Ok(true) => {}
                        Ok(false) => tracing::warn!(session_id = %t.session_id,
                            timer_id = t.timer_id, "timer claim lost while delivering"),
                        Err(e) => tracing::warn!(error = %e, "timer heartbeat failed"),
                    }
                }
            }
        }
    }

    fn publish(&self, t: &TimerRow, outcome: FiringOutcome) {
        let bus = self.lp.event_bus();
        if !bus.has_subscribers(EventType::TimerFired) {
            return;
        }
        let ev = AgentEvent::new(EventPayload::TimerFired(TimerFiredPayload {
            timer_id: t.timer_id,
            note: t.note.clone(),
            due_at: t.due_at,
            outcome: outcome.as_str().to_owned(),
        }))
        .with_session(t.session_id.as_str());
        if let Err(e) = bus.publish(ev) {
            tracing::warn!(error = %e, "timer_fired subscriber failed");
        }
    }
}

fn marker_key(timer_id: i64) -> String {
    format!("timer_delivery:{timer_id}")
}

/// Whether this firing's message is already in the session. Before a delivery the runner writes
/// a marker (session runtime state `timer_delivery:{id}`: the timer's `created_at`, its
/// `fire_count` and the session's next message seq). No marker for this firing → it was never
/// attempted: write the marker, answer no. A marker → a runner that held this claim started
/// delivering and died: look for a user message from that seq on that is the message or starts
/// with the `<timer id=N>` tag.
async fn already_delivered(store: &SessionStore, t: &TimerRow, message: &str) -> Result<bool> {
    let key = marker_key(t.timer_id);
    let this = |v: &serde_json::Value| {
        v["created_at"].as_i64() == Some(t.created_at)
            && v["fire_count"].as_i64() == Some(t.fire_count)
    };
    if let Some(from_seq) = store
        .get_runtime_state(&t.session_id, &key)
        .await?
        .filter(this)
        .and_then(|v| v["from_seq"].as_i64())
    {
        let tag = format!("<timer id={}>", t.timer_id);
        let rows = store.load_all_messages(&t.session_id).await?;
        return Ok(rows.iter().filter(|r| r.seq >= from_seq).any(|r| {
            r.role == "user"
                && r.content
                    .as_deref()
                    .is_some_and(|c| c == message || c.starts_with(&tag))
        }));
    }
    let next_seq = store.active_window_token(&t.session_id).await?.next_seq;
    store
        .set_runtime_state(
            &t.session_id,
            &key,
            serde_json::json!({
                "created_at": t.created_at,
                "fire_count": t.fire_count,
                "from_seq": next_seq,
            }),
        )
        .await?;
    Ok(false)
}
