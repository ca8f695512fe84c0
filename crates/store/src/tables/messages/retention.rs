//! Retention of folded-out originals.

use power_loop_contracts::Result;
use power_loop_contracts::clock::now_ms;

use crate::db::Value;
use crate::db::sql::placeholders;
use crate::store::SessionStore;

impl SessionStore {
    /// Deletes `compacted_out` rows of a session, AND-filtered by age (`created_at < now -
    /// older_than_ms`; negative puts the cutoff in the future) and "not among the `keep_recent`
    /// highest folded seqs" (when > 0). Active rows (including compact notes) are never touched,
    /// so the active window is unchanged. Irreversible. Returns the count.
    pub async fn prune_compacted_messages(
        &self,
        session_id: &str,
        older_than_ms: Option<i64>,
        keep_recent: usize,
    ) -> Result<u64> {
        let sid = session_id.to_owned();
        self.write(move |inner, tx| {
            let mut sql = format!("DELETE FROM {} WHERE session_id = ? AND state = ?", inner.t.messages);
            let mut params = vec![Value::from(sid.as_str()), Value::from("compacted_out")];
            if let Some(age) = older_than_ms {
                sql.push_str(" AND created_at < ?");
                params.push(Value::Int(now_ms() - age));
            }
            if keep_recent > 0 {
                let q = format!(
                    "SELECT seq FROM {} WHERE session_id = ? AND state = ? ORDER BY seq DESC LIMIT {keep_recent}",
                    inner.t.messages
                );
                let kept: Vec<i64> = tx
                    .fetch_all(&q, &[Value::from(sid.as_str()), Value::from("compacted_out")])?
                    .iter()
                    .map(|r| r.i64("seq"))
                    .collect::<Result<_>>()?;
                if !kept.is_empty() {
                    sql.push_str(&format!(" AND seq NOT IN ({})", placeholders(kept.len())));
                    params.extend(kept.into_iter().map(Value::Int));
                }
            }
            tx.execute(&sql, &params)
        })
        .await
    }
}
