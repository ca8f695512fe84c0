//! Agent-authored notes.

use power_loop_contracts::Result;
use power_loop_contracts::clock::now_ms;

use super::row::NoteRow;
use crate::codec::{insert_row_sql, select_rows};
use crate::db::Value;
use crate::store::SessionStore;

impl SessionStore {
    /// Adds a note; `note_id` is the session's next id (allocated under the session row lock,
    /// retried on a collision, so concurrent writers never clash). No session-existence check.
    pub async fn add_note(&self, session_id: &str, content: &str, pinned: bool) -> Result<NoteRow> {
        let sid = session_id.to_owned();
        let content = content.to_owned();
        self.write_retrying(move |inner, tx| {
            inner.sql.state.lock(tx, &sid)?;
            let sql = format!(
                "SELECT note_id FROM {} WHERE session_id = ? ORDER BY note_id DESC LIMIT 1{}",
                inner.t.notes,
                tx.dialect().for_update()
            );
            let next = match tx.fetch_optional(&sql, &[Value::from(sid.as_str())])? {
                Some(r) => r.i64("note_id")? + 1,
                None => 1,
            };
            let now = now_ms();
            let sql = insert_row_sql::<NoteRow>(&inner.t.notes);
            tx.execute(
                &sql,
                &[
                    Value::from(sid.as_str()),
                    Value::Int(next),
                    Value::from(content.as_str()),
                    Value::from(pinned),
                    Value::Int(now),
                    Value::Int(now),
                ],
            )?;
            Ok(NoteRow {
                session_id: sid.clone(),
                note_id: next,
                content: content.clone(),
                pinned,
                created_at: now,
                updated_at: now,
            })
        })
        .await
    }

    /// Updates a note's content and/or pin (always bumps `updated_at`); true iff it exists.
    pub async fn update_note(
        &self,
        session_id: &str,
        note_id: i64,
        content: Option<String>,
        pinned: Option<bool>,
    ) -> Result<bool> {
        let sid = session_id.to_owned();
        self.write(move |inner, tx| {
            let mut sets = vec!["updated_at = ?"];
            let mut params = vec![Value::Int(now_ms())];
            if let Some(c) = content {
                sets.push("content = ?");
                params.push(Value::Text(c));
            }
            if let Some(p) = pinned {
                sets.push("pinned = ?");
                params.push(Value::from(p));
            }
            params.push(Value::from(sid.as_str()));
            params.push(Value::Int(note_id));
            let sql = format!(
                "UPDATE {} SET {} WHERE session_id = ? AND note_id = ?",
                inner.t.notes,
                sets.join(", ")
            );
            Ok(tx.execute(&sql, &params)? > 0)
        })
        .await
    }

    /// Deletes a note; true iff it existed.
    pub async fn delete_note(&self, session_id: &str, note_id: i64) -> Result<bool> {
        let sid = session_id.to_owned();
        self.write(move |inner, tx| {
            let sql = format!(
                "DELETE FROM {} WHERE session_id = ? AND note_id = ?",
                inner.t.notes
            );
            Ok(tx.execute(&sql, &[Value::from(sid.as_str()), Value::Int(note_id)])? > 0)
        })
        .await
    }

    /// The session's notes by id.
    pub async fn list_notes(&self, session_id: &str) -> Result<Vec<NoteRow>> {
        let sid = session_id.to_owned();
        self.read(move |inner, tx| {
            select_rows::<NoteRow>(
                tx,
                &inner.t.notes,
                "WHERE session_id = ? ORDER BY note_id",
                &[Value::from(sid.as_str())],
            )
        })
        .await
    }

    /// How many notes the session has.
    pub async fn count_notes(&self, session_id: &str) -> Result<i64> {
        let sid = session_id.to_owned();
        self.read(move |inner, tx| {
            let sql = format!(
                "SELECT COUNT(*) AS n FROM {} WHERE session_id = ?",
                inner.t.notes
            );
            match tx.fetch_optional(&sql, &[Value::from(sid.as_str())])? {
                Some(r) => r.i64("n"),
                None => Ok(0),
            }
        })
        .await
    }
}
