//! Fenced store handles: [`SessionStore::fenced`] and the token reads and increments.

use std::sync::Arc;

use power_loop_contracts::Result;

use super::row::{Fence, bump_fence, current_token, locked_token};
use crate::db::TxMode;
use crate::db::run::run_tx;
use crate::store::SessionStore;

impl SessionStore {
    /// A handle on the same database whose every write transaction first checks `fence` (and
    /// the fences this handle already carries, one with the same name replaced) inside the same
    /// transaction: once another holder has taken the lease or claim, each write fails with
    /// `session.lease_lost` / `timer.claim_lost` and nothing of it is visible. Reads are not
    /// checked.
    pub fn fenced(&self, fence: Fence) -> SessionStore {
        let mut all: Vec<Fence> = self.fences().to_vec();
        all.retain(|f| f.name() != fence.name());
        all.push(fence);
        SessionStore {
            inner: Arc::clone(&self.inner),
            fences: Some(Arc::from(all)),
        }
    }

    /// The fences every write of this handle checks (empty for an unfenced handle).
    pub fn fences(&self) -> &[Fence] {
        self.fences.as_deref().unwrap_or(&[])
    }

    /// The same database without fences.
    pub fn unfenced(&self) -> SessionStore {
        SessionStore {
            inner: Arc::clone(&self.inner),
            fences: None,
        }
    }

    /// The current token of a fence name (`None` before its first lease or claim).
    pub async fn fence_token(&self, name: &str) -> Result<Option<i64>> {
        let name = name.to_owned();
        let inner = Arc::clone(&self.inner);
        run_tx(&*self.inner.db, TxMode::Read, move |tx| {
            current_token(tx, &inner.t.lease_fences, &name)
        })
        .await
    }

    /// Increments a fence name's token in its own committed transaction (never fenced) and
    /// returns the new value.
    pub(crate) async fn bump_fence(&self, name: &str) -> Result<i64> {
        let name = name.to_owned();
        let inner = Arc::clone(&self.inner);
        run_tx(&*self.inner.db, TxMode::Write, move |tx| {
            bump_fence(tx, &inner.t.lease_fences, &name)
        })
        .await
    }

    /// The current token of a fence name read in a write transaction with the fence check's
    /// locking read: it waits for every write transaction still holding the row, so whatever a
    /// revoked grant of this store commits is ordered before the caller goes on.
    pub(crate) async fn locked_fence_token(&self, name: &str) -> Result<Option<i64>> {
        let name = name.to_owned();
        let inner = Arc::clone(&self.inner);
        run_tx(&*self.inner.db, TxMode::Write, move |tx| {
            locked_token(tx, &inner.sql.fence_check, &name)
        })
        .await
    }
}
