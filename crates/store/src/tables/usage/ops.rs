//! Per-round usage and cumulative stats.

use power_loop_contracts::Result;
use power_loop_contracts::clock::now_ms;

use super::row::{SessionStatsRow, StatsDelta, UsageRecord, UsageRoundRow};
use crate::codec::{select_row, select_rows};
use crate::db::Value;
use crate::db::sql::placeholders;
use crate::store::SessionStore;

impl SessionStore {
    /// Upserts one round's usage (all non-key columns overwritten). No session check.
    pub async fn record_usage(&self, session_id: &str, usage: UsageRecord) -> Result<()> {
        let sid = session_id.to_owned();
        self.write(move |inner, tx| inner.sql.usage.upsert_usage(tx, &sid, &usage, now_ms()))
            .await
    }

    /// Adds one finished send to the cumulative stats (`sends += 1`, counters accumulated,
    /// `first_send_at` kept from the first call). No session check.
    pub async fn bump_session_stats(&self, session_id: &str, delta: StatsDelta) -> Result<()> {
        let sid = session_id.to_owned();
        self.write(move |inner, tx| inner.sql.usage.bump_stats(tx, &sid, &delta, now_ms()))
            .await
    }

    /// The session's cumulative stats, or `None` before its first finished send.
    pub async fn get_session_stats(&self, session_id: &str) -> Result<Option<SessionStatsRow>> {
        let sid = session_id.to_owned();
        self.read(move |inner, tx| {
            select_row::<SessionStatsRow>(
                tx,
                &inner.t.session_stats,
                "WHERE session_id = ?",
                &[Value::from(sid.as_str())],
            )
        })
        .await
    }

    /// Every stats row, most recently updated first.
    pub async fn list_session_stats(&self) -> Result<Vec<SessionStatsRow>> {
        self.read(move |inner, tx| {
            select_rows::<SessionStatsRow>(
                tx,
                &inner.t.session_stats,
                "ORDER BY updated_at DESC, session_id",
                &[],
            )
        })
        .await
    }

    /// The session's per-round usage rows, by round.
    pub async fn list_usage_rounds(&self, session_id: &str) -> Result<Vec<UsageRoundRow>> {
        let sid = session_id.to_owned();
        self.read(move |inner, tx| {
            select_rows::<UsageRoundRow>(
                tx,
                &inner.t.usage_rounds,
                "WHERE session_id = ? ORDER BY round_index",
                &[Value::from(sid.as_str())],
            )
        })
        .await
    }

    /// Deletes usage rows, AND-filtered by age (`created_at < now - older_than_ms`) and "not
    /// among the `keep_last` highest rounds" (when > 0). No filter → all rows. Works on MySQL
    /// (the keep set is read first, no self-referencing subquery).
    pub async fn prune_usage_rounds(
        &self,
        session_id: &str,
        keep_last: Option<usize>,
        older_than_ms: Option<i64>,
    ) -> Result<u64> {
        let sid = session_id.to_owned();
        self.write(move |inner, tx| {
            let mut sql = format!("DELETE FROM {} WHERE session_id = ?", inner.t.usage_rounds);
            let mut params = vec![Value::from(sid.as_str())];
            if let Some(age) = older_than_ms {
                sql.push_str(" AND created_at < ?");
                params.push(Value::Int(now_ms() - age));
            }
            if let Some(keep) = keep_last.filter(|k| *k > 0) {
                let q = format!(
                    "SELECT round_index FROM {} WHERE session_id = ? ORDER BY round_index DESC LIMIT {keep}",
                    inner.t.usage_rounds
                );
                let kept: Vec<i64> = tx
                    .fetch_all(&q, &[Value::from(sid.as_str())])?
                    .iter()
                    .map(|r| r.i64("round_index"))
                    .collect::<Result<_>>()?;
                if !kept.is_empty() {
                    sql.push_str(&format!(" AND round_index NOT IN ({})", placeholders(kept.len())));
                    params.extend(kept.into_iter().map(Value::Int));
                }
            }
            tx.execute(&sql, &params)
        })
        .await
    }
}
