//! Fencing tokens (schema version 3): a monotonically increasing token per lease name in the
//! `lease_fences` table, and store handles whose every write transaction checks its tokens first.
//!
//! A backend lease (advisory lock, `GET_LOCK`, lock file) lives on its own connection or file,
//! apart from the connections that write. When it is lost (the lease connection is killed, the
//! lock file is replaced), another worker can take the session over while the first one still
//! runs. The token closes that gap: a new holder increments the name's token in its own
//! committed transaction before it writes, and a fenced handle (`SessionStore::fenced`) opens
//! every write transaction by reading its tokens with a locking read
//! (`SELECT token … FOR UPDATE` on PostgreSQL and MySQL; a plain read on SQLite, whose write
//! transactions are serialized by its write lock). A mismatch aborts the transaction with
//! `session.lease_lost` (or `timer.claim_lost`), so nothing of it becomes visible. The read also
//! holds the fence row (or the database's write lock) until the transaction ends, so an increment
//! by a new holder waits until the checked transaction has committed or rolled back: every write
//! of the old holder is ordered before the new holder's token exists.
//!
//! A store handle that took a lease back after releasing it itself may keep its token, when the
//! token in the table is still the one it released with (nobody took the lease in between): see
//! `SessionStore::try_acquire_session_lease`. What it released is revoked in memory
//! ([`Fence`] carries the flag), so a handle kept past its own release is still refused.
//!
//! Timer claims use the same table under a per-timer name ([`timer_fence_name`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use power_loop_contracts::{Error, ErrorCode, Result};

use crate::db::{Transaction, Value};
use crate::ddl::model::{ColumnType, Table, col};

/// The `lease_fences` table (schema version 3): one row per lease or timer-claim name.
pub(crate) const TABLE: Table = Table::new(
    "lease_fences",
    &[col("name", ColumnType::Key), col("token", ColumnType::Int)],
    &["name"],
)
.since(3);

/// What a [`Fence`] protects; decides the error a failed check reports.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FenceKind {
    /// A session's writer lease (`session.lease_lost` when lost).
    Session {
        /// The leased session.
        session_id: String,
    },
    /// A timer runner's claim on one firing (`timer.claim_lost` when lost).
    TimerClaim {
        /// The timer's session.
        session_id: String,
        /// The timer id within the session.
        timer_id: i64,
    },
}

/// A fencing token held for one lease name: what a fenced store handle checks in every write
/// transaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fence {
    kind: FenceKind,
    name: String,
    token: i64,
    revoked: Revocation,
}

/// The in-memory "released" flag of one lease grant, shared by every clone of its [`Fence`]. Not
/// part of a fence's identity: fences compare and hash by kind, name and token.
#[derive(Clone, Default)]
pub(crate) struct Revocation(Arc<AtomicBool>);

impl Revocation {
    /// Marks the grant released: every fence of it fails its next check.
    pub(crate) fn revoke(&self) {
        self.0.store(true, Ordering::Release);
    }

    fn is_revoked(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

impl PartialEq for Revocation {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Revocation {}

impl std::hash::Hash for Revocation {
    fn hash<H: std::hash::Hasher>(&self, _: &mut H) {}
}

impl std::fmt::Debug for Revocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_revoked() { "revoked" } else { "live" })
    }
}

impl Fence {
    /// A fence on `name` holding `token` (as returned by taking the lease or claim).
    pub fn new(kind: FenceKind, name: impl Into<String>, token: i64) -> Self {
        Fence {
            kind,
            name: name.into(),
            token,
            revoked: Revocation::default(),
        }
    }

    /// A fence of one lease grant whose revocation `revoked` controls.
    pub(crate) fn granted(
        kind: FenceKind,
        name: impl Into<String>,
        token: i64,
        revoked: Revocation,
    ) -> Self {
        Fence {
            kind,
            name: name.into(),
            token,
            revoked,
        }
    }

    /// What the fence protects.
    pub fn kind(&self) -> &FenceKind {
        &self.kind
    }

    /// The fence row's name (the lease name for sessions, [`timer_fence_name`] for timers).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The token this holder took.
    pub fn token(&self) -> i64 {
        self.token
    }

    /// The typed error of a check against a grant this process already released.
    fn released(&self) -> Error {
        self.error(
            "was already released",
            "a store handle kept past it cannot write",
        )
        .with_detail("released", true)
    }

    /// The typed error of a failed check (`current`: the token in the store, `None` if absent).
    pub(crate) fn lost(&self, current: Option<i64>) -> Error {
        let now = current.map_or_else(|| "none".to_owned(), |c| c.to_string());
        let by = match self.kind {
            FenceKind::Session { .. } => "another worker took the session over",
            FenceKind::TimerClaim { .. } => "another runner claimed it",
        };
        let e = self.error(
            &format!("was lost (current token {now})"),
            &format!("{by}; this write was refused"),
        );
        match current {
            Some(c) => e.with_detail("current_token", c),
            None => e,
        }
    }

    /// The typed error of this fence's kind: "the {lease} (held token {t}) {what}: {why}", with
    /// the details that name what was fenced.
    fn error(&self, what: &str, why: &str) -> Error {
        let (code, held, session_id) = match &self.kind {
            FenceKind::Session { session_id } => (
                ErrorCode::SessionLeaseLost,
                format!("the writer lease of session `{session_id}`"),
                session_id,
            ),
            FenceKind::TimerClaim {
                session_id,
                timer_id,
            } => (
                ErrorCode::TimerClaimLost,
                format!("the claim on timer {timer_id} of session `{session_id}`"),
                session_id,
            ),
        };
        let e = Error::new(
            code,
            format!("{held} (held token {}) {what}: {why}", self.token),
        )
        .with_detail("session_id", session_id.as_str())
        .with_detail("held_token", self.token);
        match &self.kind {
            FenceKind::TimerClaim { timer_id, .. } => e.with_detail("timer_id", *timer_id),
            FenceKind::Session { .. } => e,
        }
    }
}

/// How many released leases a store remembers; past it the memory starts over (forgetting one
/// only costs the next acquire of that session its token increment).
const RELEASED_LEASES_CAP: usize = 65_536;

/// The leases a store released cleanly: lease name → the token they held.
#[derive(Default)]
pub(crate) struct ReleasedLeases(Mutex<HashMap<String, i64>>);

impl ReleasedLeases {
    pub(crate) fn remember(&self, name: &str, token: i64) {
        let mut m = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if m.len() >= RELEASED_LEASES_CAP && !m.contains_key(name) {
            m.clear();
        }
        m.insert(name.to_owned(), token);
    }

    pub(crate) fn take(&self, name: &str) -> Option<i64> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(name)
    }
}

/// The fence-row name of a timer's claims: `{prefix}t{timer_id}_lease_{session}` (hashed like a
/// session lease name when long; always ≤ 64 characters plus the timer id).
pub fn timer_fence_name(prefix: &str, session_id: &str, timer_id: i64) -> String {
    session_lease_name(&format!("{prefix}t{timer_id}_"), session_id)
}

fn fnv1a(bytes: &[u8], seed: u64) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325_u64 ^ seed;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The backend lock name of a session's lease (also its fence-row name): `{prefix}lease_{id}`
/// when short and made of identifier characters, else `{prefix}lease_h{128-bit hash}`; always
/// ≤ 64 characters for a valid table prefix.
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

/// The current token of `name` in `table` (`None` before its first lease or claim).
pub(crate) fn current_token(
    tx: &mut dyn Transaction,
    table: &str,
    name: &str,
) -> Result<Option<i64>> {
    let sql = format!("SELECT token FROM {table} WHERE name = ?");
    match tx.fetch_optional(&sql, &[Value::from(name)])? {
        Some(r) => Ok(Some(r.i64("token")?)),
        None => Ok(None),
    }
}

/// Increments the token of `name` in `table` (creating it at 1) inside `tx` and returns the new
/// value.
pub(crate) fn bump_fence(tx: &mut dyn Transaction, table: &str, name: &str) -> Result<i64> {
    let upsert = tx.dialect().upsert(table, &["name"], &[], &["token"], &[]);
    tx.execute(&upsert, &[Value::from(name), Value::Int(1)])?;
    current_token(tx, table, name)?.ok_or_else(|| {
        Error::internal(format!(
            "the fence row `{name}` is missing right after it was written"
        ))
    })
}

/// Checks every fence inside `tx` with `check_sql` ([`fence_check_sql`] of the fence table): one
/// indexed locking read each, which holds the fence row (SQLite: the write lock) until the
/// transaction ends, then the grant's in-memory release flag. The typed error of the first fence
/// that no longer holds.
pub(crate) fn check_fences(
    tx: &mut dyn Transaction,
    check_sql: &str,
    fences: &[Fence],
) -> Result<()> {
    for f in fences {
        let current = locked_token(tx, check_sql, &f.name)?;
        // The flag is read only once the row is locked: a store that takes a released lease back
        // with the same token locks the row too, so a transaction that saw the flag unset
        // commits before that re-acquire completes.
        if f.revoked.is_revoked() {
            return Err(f.released());
        }
        if current != Some(f.token) {
            return Err(f.lost(current));
        }
    }
    Ok(())
}

/// The token of `name` read with `check_sql` ([`fence_check_sql`]), locking the row (SQLite: the
/// write transaction already holds the write lock) until the transaction ends.
pub(crate) fn locked_token(
    tx: &mut dyn Transaction,
    check_sql: &str,
    name: &str,
) -> Result<Option<i64>> {
    match tx.fetch_optional(check_sql, &[Value::from(name)])? {
        Some(r) => Ok(Some(r.i64("token")?)),
        None => Ok(None),
    }
}

/// The fence-check statement for the fence table `table`: a read of the row's token that locks
/// it against a concurrent increment (`for_update`: the dialect's locking clause, empty on
/// SQLite, whose write transactions already hold the database's write lock).
pub(crate) fn fence_check_sql(table: &str, for_update: &str) -> String {
    format!("SELECT token FROM {table} WHERE name = ?{for_update}")
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

    #[test]
    fn lost_errors_are_typed_and_carry_tokens() {
        let f = Fence::new(
            FenceKind::Session {
                session_id: "s1".into(),
            },
            "pl_lease_s1",
            3,
        );
        let e = f.lost(Some(4));
        assert_eq!(e.code(), ErrorCode::SessionLeaseLost);
        assert!(!e.code().is_retryable());
        assert_eq!(e.detail("held_token").and_then(|v| v.as_i64()), Some(3));
        assert_eq!(e.detail("current_token").and_then(|v| v.as_i64()), Some(4));
        let t = Fence::new(
            FenceKind::TimerClaim {
                session_id: "s1".into(),
                timer_id: 7,
            },
            timer_fence_name("pl_", "s1", 7),
            1,
        );
        let e = t.lost(None);
        assert_eq!(e.code(), ErrorCode::TimerClaimLost);
        assert_eq!(e.detail("timer_id").and_then(|v| v.as_i64()), Some(7));
        assert!(e.detail("current_token").is_none());
        assert_ne!(
            timer_fence_name("pl_", "s1", 7),
            timer_fence_name("pl_", "s1", 8)
        );
        assert!(timer_fence_name("pl_", &"x".repeat(300), i64::MAX).len() <= 90);
    }
}
