//! Maintenance forwarding: checkpoint / vacuum / backup go to the backend's
//! [`crate::db::Maintenance`] capability when it has one (SQLite) and are no-ops otherwise.

use power_loop_contracts::{Error, Result};

use crate::store::SessionStore;

/// Valid `checkpoint` modes.
pub const CHECKPOINT_MODES: [&str; 4] = ["PASSIVE", "FULL", "RESTART", "TRUNCATE"];

impl SessionStore {
    /// Checkpoints the WAL (`mode` ∈ PASSIVE, FULL, RESTART, TRUNCATE, case-insensitive; anything
    /// else is `invalid_argument` on every backend). Returns whether the backend did anything.
    pub async fn checkpoint(&self, mode: &str) -> Result<bool> {
        let upper = mode.to_ascii_uppercase();
        if !CHECKPOINT_MODES.contains(&upper.as_str()) {
            return Err(Error::invalid_argument(format!(
                "invalid checkpoint mode `{mode}`; use PASSIVE, FULL, RESTART or TRUNCATE"
            )));
        }
        match self.inner.db.maintenance() {
            Some(m) => m.checkpoint(&upper).await.map(|()| true),
            None => Ok(false),
        }
    }

    /// Reclaims free pages (incremental) or rewrites the file (full). Returns whether the backend
    /// did anything.
    pub async fn vacuum(&self, incremental: bool) -> Result<bool> {
        match self.inner.db.maintenance() {
            Some(m) => m.vacuum(incremental).await.map(|()| true),
            None => Ok(false),
        }
    }

    /// Copies the whole database to `dest_path` (SQLite online backup). Returns whether the
    /// backend did anything.
    pub async fn backup(&self, dest_path: &std::path::Path) -> Result<bool> {
        match self.inner.db.maintenance() {
            Some(m) => m.backup(dest_path).await.map(|()| true),
            None => Ok(false),
        }
    }
}
