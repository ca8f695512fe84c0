//! The session guard every entry point runs under: the session's in-process lock, then its
//! cross-process writer lease (when configured), then the body with a store handle fenced by the
//! lease's token, then the lease released (a failed release is logged, the same way for every
//! entry point). Also the loop's open/in-flight
//! bookkeeping that `close` waits on.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use power_loop_contracts::{Error, ErrorCode, Result};
use power_loop_store::{Fence, SessionLease, SessionStore};

use super::{Shared, StatefulAgentLoop};

/// Counts a run in flight until dropped (`close` waits for the count to reach zero).
pub(super) struct InFlight(Arc<Shared>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

impl StatefulAgentLoop {
    /// `loop.closed` once `close` was called.
    pub(super) fn check_open(&self) -> Result<()> {
        if self.shared.closing.load(Ordering::Acquire) {
            return Err(Error::new(
                ErrorCode::LoopClosed,
                "the agent loop is closing or closed; build a new loop to send more",
            ));
        }
        Ok(())
    }

    /// Marks a run in flight for as long as the returned value lives.
    pub(super) fn enter(&self) -> InFlight {
        self.shared.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(Arc::clone(&self.shared))
    }

    /// Runs `body` with the store under session `sid`'s guard: lock → lease → body → release.
    pub(super) async fn with_session<T, F, Fut>(&self, sid: &str, body: F) -> Result<T>
    where
        F: FnOnce(SessionStore) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        self.with_session_fenced(sid, None, body).await
    }

    /// [`with_session`](Self::with_session) with one more fence (a timer claim) on the store.
    ///
    /// The body receives a store handle fenced by the lease's token (when leases are on) and by
    /// `extra`: every write transaction of the run — turns, tool results, notes/todo/board
    /// writes of tools (they get the run's store), compaction — first checks the tokens, so once
    /// another worker took the session over (or another runner the timer claim) the run's
    /// writes fail with `session.lease_lost` / `timer.claim_lost` and none of them is visible.
    pub(super) async fn with_session_fenced<T, F, Fut>(
        &self,
        sid: &str,
        extra: Option<Fence>,
        body: F,
    ) -> Result<T>
    where
        F: FnOnce(SessionStore) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let store = self.store().await?.clone();
        let lock = self.shared.lock_for(sid);
        let _guard = lock.lock().await;
        let lease = self.lease(&store, sid).await?;
        let mut fenced = store;
        if let Some(l) = &lease {
            fenced = fenced.fenced(l.fence());
        }
        if let Some(f) = extra {
            fenced = fenced.fenced(f);
        }
        let out = body(fenced).await;
        if let Some(l) = lease
            && let Err(e) = l.release().await
        {
            tracing::warn!(target: "power_loop::agent", session = sid, error = %e, "releasing the session lease failed");
        }
        out
    }

    /// Takes the session's writer lease (when configured), polling with a growing pause until
    /// the loop's `lease_wait`, then waiting once more in the store.
    async fn lease(&self, store: &SessionStore, sid: &str) -> Result<Option<SessionLease>> {
        if !self.shared.run_ctx.config.use_session_lease {
            return Ok(None);
        }
        let deadline = Instant::now() + self.shared.lease_wait;
        let mut pause = Duration::from_millis(2);
        loop {
            if let Some(l) = store.try_acquire_session_lease(sid).await? {
                return Ok(Some(l));
            }
            if Instant::now() >= deadline {
                return store.acquire_session_lease(sid).await.map(Some);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }
}
