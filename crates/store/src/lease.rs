//! The per-session writer lease (beyond the reference): at most one worker drives a session at a
//! time, across processes. Built on [`crate::db::Database::acquire_lease`] (PostgreSQL advisory
//! lock, MySQL `GET_LOCK`, SQLite lock file), plus a fencing token (schema version 3): taking
//! the lease increments the session's token in the `lease_fences` table in its own committed
//! transaction, and a store handle fenced with [`SessionLease::fence`] refuses to write once a
//! later holder has taken a newer token (`session.lease_lost`).
//!
//! One exception keeps a store that drives the same sessions again and again from paying a write
//! transaction per lease: when this store released the lease cleanly itself and the token in the
//! table is still the one it released with, no other holder took the lease in between (every
//! holder increments it), so the store takes the lease back with the same token, after one
//! locking read (a transaction that changes nothing).
//! The grant it released is revoked in memory at release, so a fenced handle kept past its own
//! release is refused all the same (`session.lease_lost`), and a lease that is lost rather than
//! released (its connection killed, its lock file replaced, the lease dropped) is never
//! remembered: the next acquire increments.

use power_loop_contracts::{Error, ErrorCode, Result};

use crate::db::Lease;
use crate::store::{Inner, SessionStore};
use crate::tables::fences::row::{Fence, FenceKind, Revocation, session_lease_name};

/// A held session lease with its fencing token; released by [`SessionLease::release`] or (best
/// effort) on drop.
pub struct SessionLease {
    session_id: String,
    name: String,
    token: i64,
    revoked: Revocation,
    lease: Option<Box<dyn Lease>>,
    /// The store that took the lease (to remember a clean release).
    store: std::sync::Arc<Inner>,
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
    ///
    /// Every fence of this lease is revoked when the lease is released or dropped: a handle
    /// fenced with it can no longer write, even if this store takes the lease back later.
    pub fn fence(&self) -> Fence {
        Fence::granted(
            FenceKind::Session {
                session_id: self.session_id.clone(),
            },
            self.name.clone(),
            self.token,
            self.revoked.clone(),
        )
    }

    /// Releases the lease now. Its fences are revoked first; when the backend lock is released
    /// cleanly, the store remembers the token so that it may take the lease back with it.
    pub async fn release(mut self) -> Result<()> {
        self.revoked.revoke();
        match self.lease.take() {
            Some(l) => {
                l.release().await?;
                self.store.released_leases.remember(&self.name, self.token);
                Ok(())
            }
            None => Ok(()),
        }
    }
}

#[cfg(feature = "conformance")]
impl SessionLease {
    /// Lets the backend lock go behind the holder's back, as a killed lease connection or a
    /// replaced lock file does: the grant is neither revoked nor remembered, so its fenced
    /// handles keep their token until another holder takes a newer one (conformance only).
    pub(crate) async fn lose(mut self) -> Result<()> {
        self.revoked = Revocation::default();
        match self.lease.take() {
            Some(l) => l.release().await,
            None => Ok(()),
        }
    }
}

impl Drop for SessionLease {
    fn drop(&mut self) {
        // A lease dropped without `release` is let go by the backend lease's own drop; its
        // fences are revoked, and nothing is remembered (the next acquire increments).
        self.revoked.revoke();
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
    /// still checking the old token); if that fails the lock is released again. When this store
    /// released the lease itself and the table still holds the token it released with, the
    /// token is kept instead (one read; see the module docs).
    pub async fn try_acquire_session_lease(
        &self,
        session_id: &str,
    ) -> Result<Option<SessionLease>> {
        let name = session_lease_name(self.table_prefix(), session_id);
        let Some(lease) = self.inner.db.acquire_lease(&name).await? else {
            return Ok(None);
        };
        match self.lease_token(&name).await {
            Ok(token) => Ok(Some(SessionLease {
                session_id: session_id.to_owned(),
                name,
                token,
                revoked: Revocation::default(),
                lease: Some(lease),
                store: std::sync::Arc::clone(&self.inner),
            })),
            Err(e) => {
                // The token error is the one to report; a failed release leaves the lock to its
                // connection's end (or the lease's drop), as for any lost lease.
                let _ = lease.release().await;
                Err(e)
            }
        }
    }

    /// The token of a lease just taken on `name`: the one this store released with when the
    /// table still holds it, else a fresh increment.
    async fn lease_token(&self, name: &str) -> Result<i64> {
        if let Some(released) = self.inner.released_leases.take(name)
            && self.locked_fence_token(name).await? == Some(released)
        {
            return Ok(released);
        }
        self.bump_fence(name).await
    }
}
