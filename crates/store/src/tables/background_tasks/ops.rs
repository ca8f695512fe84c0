//! Background task records.

use power_loop_contracts::clock::now_ms;
use power_loop_contracts::{Error, Result};

use super::row::{BackgroundTaskRow, BackgroundTaskUpdate};
use crate::codec::{StoredRow, select_rows};
use crate::db::Value;
use crate::db::sql::placeholders;
use crate::store::SessionStore;

impl SessionStore {
    /// Inserts or updates a task record. The session must exist (`session.not_found`). An update
    /// keeps `created_at` and sets `updated_at = max(now, last_seen_at + 1)`, so it is always
    /// "unseen", even within the millisecond it was marked seen.
    pub async fn upsert_background_task(
        &self,
        session_id: &str,
        task: BackgroundTaskUpdate,
    ) -> Result<()> {
        let sid = session_id.to_owned();
        self.write(move |inner, tx| {
            if !inner.sql.sessions.exists(tx, &sid)? {
                return Err(Error::session_not_found(&sid));
            }
            let now = now_ms();
            let sql = format!(
                "SELECT last_seen_at FROM {} WHERE session_id = ? AND task_id = ?{}",
                inner.t.background_tasks,
                tx.dialect().for_update()
            );
            let updated_at = match tx.fetch_optional(
                &sql,
                &[
                    Value::from(sid.as_str()),
                    Value::from(task.task_id.as_str()),
                ],
            )? {
                Some(r) => now.max(r.i64("last_seen_at")? + 1),
                None => now,
            };
            let sql = tx.dialect().upsert(
                &inner.t.background_tasks,
                &["session_id", "task_id"],
                &[
                    "command",
                    "status",
                    "return_code",
                    "output_tail",
                    "output_path",
                    "updated_at",
                ],
                &[],
                &["last_seen_at", "created_at"],
            );
            tx.execute(
                &sql,
                &[
                    Value::from(sid.as_str()),
                    Value::from(task.task_id.as_str()),
                    Value::from(task.command.as_str()),
                    Value::from(task.status.as_str()),
                    Value::from(task.return_code),
                    Value::from(task.output_tail.clone()),
                    Value::from(task.output_path.clone()),
                    Value::Int(updated_at),
                    Value::Int(0),
                    Value::Int(now),
                ],
            )?;
            inner.sql.sessions.touch(tx, &sid, now)?;
            Ok(())
        })
        .await
    }

    /// One task record, or `None`.
    pub async fn get_background_task(
        &self,
        session_id: &str,
        task_id: &str,
    ) -> Result<Option<BackgroundTaskRow>> {
        let (sid, tid) = (session_id.to_owned(), task_id.to_owned());
        self.read(move |inner, tx| {
            let sql = format!(
                "SELECT {} FROM {} WHERE session_id = ? AND task_id = ?",
                BackgroundTaskRow::COLUMNS,
                inner.t.background_tasks
            );
            tx.fetch_optional(
                &sql,
                &[Value::from(sid.as_str()), Value::from(tid.as_str())],
            )?
            .map(|r| BackgroundTaskRow::from_row(&r))
            .transpose()
        })
        .await
    }

    /// The session's tasks, oldest first.
    pub async fn list_background_tasks(&self, session_id: &str) -> Result<Vec<BackgroundTaskRow>> {
        let sid = session_id.to_owned();
        self.read(move |inner, tx| {
            select_rows::<BackgroundTaskRow>(
                tx,
                &inner.t.background_tasks,
                "WHERE session_id = ? ORDER BY created_at, task_id",
                &[Value::from(sid.as_str())],
            )
        })
        .await
    }

    /// Tasks updated since the agent last saw them, by update time.
    pub async fn list_unseen_background_updates(
        &self,
        session_id: &str,
    ) -> Result<Vec<BackgroundTaskRow>> {
        let sid = session_id.to_owned();
        self.read(move |inner, tx| {
            select_rows::<BackgroundTaskRow>(
                tx,
                &inner.t.background_tasks,
                "WHERE session_id = ? AND updated_at > last_seen_at ORDER BY updated_at, task_id",
                &[Value::from(sid.as_str())],
            )
        })
        .await
    }

    /// Marks tasks seen (`last_seen_at = now`, never below their `updated_at`); empty list → no-op.
    pub async fn mark_background_seen(&self, session_id: &str, task_ids: &[String]) -> Result<u64> {
        if task_ids.is_empty() {
            return Ok(0);
        }
        let sid = session_id.to_owned();
        let ids = task_ids.to_vec();
        self.write(move |inner, tx| {
            let now = now_ms();
            let sql = format!(
                "UPDATE {} SET last_seen_at = CASE WHEN updated_at > ? THEN updated_at ELSE ? END WHERE session_id = ? AND task_id IN ({})",
                inner.t.background_tasks,
                placeholders(ids.len())
            );
            let mut params = vec![Value::Int(now), Value::Int(now), Value::from(sid.as_str())];
            params.extend(ids.iter().map(|s| Value::from(s.as_str())));
            tx.execute(&sql, &params)
        })
        .await
    }
}
