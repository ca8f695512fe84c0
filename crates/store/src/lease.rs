//! The per-session writer lease (beyond the reference): at most one worker drives a session at a
//! time, across processes. Built on [`crate::db::Database::acquire_lease`] (PostgreSQL advisory
//! lock, MySQL `GET_LOCK`, SQLite lock file), plus a fencing token (schema version 3): taking
//! the lease increments the session's token in the `lease_fences` table in its own committed
//! transaction, and a store handle fenced with [`SessionLease::fence`] refuses to write once a
//! later holder has taken a newer token (`session.lease_lost`).

use power_loop_contracts::{Error, ErrorCode, Result};

use crate::db::Lease;
use crate::store::SessionStore;
use crate::tables::fences::row::{Fence, FenceKind, session_lease_name};

/// A held session lease with its fencing token; released by [`SessionLease::release`] or (best
/// effort) on drop.
pub struct SessionLease {
    session_id: String,
    name: String,
    token: i64,
    lease: Option<Box<dyn Lease>>,
}

impl std::fmt::Debug for SessionLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionLease")
            .field("session_id", &self.session_id)
            .field("name", &self.name)
            .field("token", &self.token)
            .field("held", &self.lease.is_some())
            .finish()
    }
}

impl SessionLease {
    /// The leased session.
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// The backend lock name.
    pub fn lock_name(&self) -> Option<&str> {
        self.lease.as_ref().map(|l| l.name())
    }

    /// The fencing token taken with the lease: greater than every token an earlier holder of
    /// this session's lease took, in any process.
    pub fn token(&self) -> i64 {
        self.token
    }

    /// The fence a store handle checks for this lease (see [`SessionStore::fenced`]).
    pub fn fence(&self) -> Fence {
        Fence::new(
            FenceKind::Session {
                session_id: self.session_id.clone(),
            },
            self.name.clone(),
            self.token,
        )
    }

    /// Releases the lease now.
    pub async fn release(mut self) -> Result<()> {
        match self.lease.take() {
            Some(l) => l.release().await,
            None => Ok(()),
        }
    }
}

impl SessionStore {
    /// Takes the session's writer lease without waiting; `session.lease_held` if another worker
    /// (in this or another process) holds it. The session need not exist.
    pub async fn acquire_session_lease(&self, session_id: &str) -> Result<SessionLease> {
        match self.try_acquire_session_lease(session_id).await? {
            Some(l) => Ok(l),
            None => Err(Error::new(
                ErrorCode::SessionLeaseHeld,
                format!(
                    "session `{session_id}` is being driven by another worker (its lease is held); retry later"
                ),
            )
            .with_detail("session_id", session_id)),
        }
    }

    /// Like [`SessionStore::acquire_session_lease`] but `Ok(None)` when the lease is held.
    ///
    /// Once the backend lock is held, the session's fencing token is incremented in its own
    /// committed transaction (this waits for a write transaction of a previous holder that is
    /// still checking the old token); if that fails the lock is released again.
    pub async fn try_acquire_session_lease(
        &self,
        session_id: &str,
    ) -> Result<Option<SessionLease>> {
        let name = session_lease_name(self.table_prefix(), session_id);
        let Some(lease) = self.inner.db.acquire_lease(&name).await? else {
            return Ok(None);
        };
        match self.bump_fence(&name).await {
            Ok(token) => Ok(Some(SessionLease {
                session_id: session_id.to_owned(),
                name,
                token,
                lease: Some(lease),
            })),
            Err(e) => {
                // The token error is the one to report; a failed release leaves the lock to its
                // connection's end (or the lease's drop), as for any lost lease.
                let _ = lease.release().await;
                Err(e)
            }
        }
    }
}
