//! The hot statements of the `sessions` table, rendered once per store.

use power_loop_contracts::Result;

use crate::db::{Transaction, Value};
use crate::schema::TableNames;

/// Statements on `sessions` that run inside most writes.
pub(crate) struct SessionSql {
    touch: String,
    exists: String,
}

impl SessionSql {
    /// Renders the statements for the store's table names.
    pub(crate) fn new(t: &TableNames) -> Self {
        SessionSql {
            touch: format!(
                "UPDATE {} SET updated_at = ? WHERE session_id = ?",
                t.sessions
            ),
            exists: format!("SELECT session_id FROM {} WHERE session_id = ?", t.sessions),
        }
    }

    /// Bumps the session's `updated_at` to `now` (a deferred write).
    pub(crate) fn touch(&self, tx: &mut dyn Transaction, session_id: &str, now: i64) -> Result<()> {
        tx.execute_deferred(&self.touch, &[Value::Int(now), Value::from(session_id)])
    }

    /// Whether the session row exists.
    pub(crate) fn exists(&self, tx: &mut dyn Transaction, session_id: &str) -> Result<bool> {
        Ok(tx
            .fetch_optional(&self.exists, &[Value::from(session_id)])?
            .is_some())
    }
}
