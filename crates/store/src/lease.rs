//! The per-session writer lease (beyond the reference): at most one worker drives a session at a
//! time, across processes. Built on [`crate::db::Database::acquire_lease`] (PostgreSQL advisory
//! lock, MySQL `GET_LOCK`, SQLite lock file).

use power_loop_contracts::{Error, ErrorCode, Result};

use crate::db::Lease;
use crate::store::SessionStore;

/// A held session lease; released by [`SessionLease::release`] or (best effort) on drop.
pub struct SessionLease {
    session_id: String,
    lease: Option<Box<dyn Lease>>,
}

impl std::fmt::Debug for SessionLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionLease")
            .field("session_id", &self.session_id)
            .field("name", &self.lease.as_ref().map(|l| l.name().to_owned()))
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

    /// Releases the lease now.
    pub async fn release(mut self) -> Result<()> {
        match self.lease.take() {
            Some(l) => l.release().await,
            None => Ok(()),
        }
    }
}

fn fnv1a(bytes: &[u8], seed: u64) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325_u64 ^ seed;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The backend lock name of a session's lease: `{prefix}lease_{id}` when short and made of
/// identifier characters, else `{prefix}lease_h{128-bit hash}`; always ≤ 64 characters.
pub fn session_lease_name(prefix: &str, session_id: &str) -> String {
    let plain = format!("{prefix}lease_{session_id}");
    let safe = session_id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if safe && !session_id.is_empty() && plain.len() <= 64 {
        return plain;
    }
    let b = session_id.as_bytes();
    format!(
        "{prefix}lease_h{:016x}{:016x}",
        fnv1a(b, 0),
        fnv1a(b, 0x9e37_79b9_7f4a_7c15)
    )
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
    pub async fn try_acquire_session_lease(
        &self,
        session_id: &str,
    ) -> Result<Option<SessionLease>> {
        let name = session_lease_name(self.table_prefix(), session_id);
        Ok(self
            .inner
            .db
            .acquire_lease(&name)
            .await?
            .map(|lease| SessionLease {
                session_id: session_id.to_owned(),
                lease: Some(lease),
            }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_names_are_bounded_and_safe() {
        assert_eq!(session_lease_name("pl_", "sess_abc"), "pl_lease_sess_abc");
        let odd = session_lease_name("pl_", "a/b:c");
        assert!(odd.starts_with("pl_lease_h") && odd.len() <= 64, "{odd}");
        let long = session_lease_name(&"p".repeat(24), &"x".repeat(200));
        assert!(long.len() <= 64, "{long}");
        assert_ne!(
            session_lease_name("pl_", "a/b"),
            session_lease_name("pl_", "a/c")
        );
    }
}
