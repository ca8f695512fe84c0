//! Operator operations on sessions (the CLI's `sessions delete|prune` and `store stats`):
//! deleting one session by id, finding idle sessions, and counting the rows of every table.

use power_loop_contracts::{Error, Result};

use super::row::SessionRow;
use crate::codec::select_rows;
use crate::db::Value;
use crate::store::SessionStore;

/// The row count of each table of a store (for operators: `power-loop store stats`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct StoreStats {
    /// Backend name (`sqlite`, `postgres`, `mysql`).
    pub backend: String,
    /// The schema version stamped in the store.
    pub schema_version: i64,
    /// The table prefix.
    pub table_prefix: String,
    /// `(physical table name, rows)` for every table of the schema, in schema order.
    pub tables: Vec<(String, u64)>,
}

impl StoreStats {
    /// The row count of a table by its physical name (`None` when it is not in the schema).
    pub fn rows(&self, table: &str) -> Option<u64> {
        self.tables
            .iter()
            .find(|(t, _)| t == table)
            .map(|(_, n)| *n)
    }
}

impl SessionStore {
    /// Deletes a session, its rows in every table, its workflow runs and its linked and
    /// ephemeral sub-agent sessions (detached children survive, unparented), in one
    /// transaction. Returns every deleted session id, deepest first. An unknown id is
    /// `session.not_found` and deletes nothing.
    pub async fn delete_session(&self, session_id: &str) -> Result<Vec<String>> {
        let deleted = self.close_session_tree(session_id, true).await?;
        if deleted.is_empty() {
            return Err(Error::session_not_found(session_id));
        }
        Ok(deleted)
    }

    /// Root sessions whose last update is older than `cutoff_ms` (epoch milliseconds), oldest
    /// first, at most `limit` (the candidates of a retention prune).
    pub async fn list_sessions_updated_before(
        &self,
        cutoff_ms: i64,
        limit: usize,
    ) -> Result<Vec<SessionRow>> {
        let limit = limit.clamp(1, i64::MAX as usize);
        self.read(move |inner, tx| {
            select_rows::<SessionRow>(
                tx,
                &inner.t.sessions,
                &format!(
                    "WHERE updated_at < ? AND parent_session_id IS NULL ORDER BY updated_at, session_id LIMIT {limit}"
                ),
                &[Value::Int(cutoff_ms)],
            )
        })
        .await
    }

    /// Counts the rows of every table of the schema (a full count: meant for operators, not
    /// for hot paths).
    pub async fn stats(&self) -> Result<StoreStats> {
        let backend = self.backend_name().to_owned();
        let schema_version = self.schema_version();
        let table_prefix = self.table_prefix().to_owned();
        let tables = self
            .read(move |inner, tx| {
                let mut out = Vec::new();
                for table in inner.t.all() {
                    let row =
                        tx.fetch_optional(&format!("SELECT COUNT(*) AS n FROM {table}"), &[])?;
                    let n = match row {
                        Some(r) => r.i64("n")?,
                        None => 0,
                    };
                    out.push((table.to_owned(), u64::try_from(n).unwrap_or(0)));
                }
                Ok(out)
            })
            .await?;
        Ok(StoreStats {
            backend,
            schema_version,
            table_prefix,
            tables,
        })
    }
}
