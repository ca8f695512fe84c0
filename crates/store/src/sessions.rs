//! Sessions and the sub-agent tree (spec §8.2) and session state (spec §8.3).

use power_loop_contracts::{Error, ErrorCode, Result};

use crate::db::{Transaction, Value};
use crate::inputs::NewSession;
use crate::pending::PendingState;
use crate::store::{Inner, SessionStore, map_text};
use crate::types::{SessionKind, SessionRow, SessionStateRow, SubagentLifecycle};
use crate::util::{new_session_id, now_ms};

impl SessionStore {
    /// Creates a session (and its state row) in one transaction; returns its id.
    ///
    /// With a parent: the parent must exist (`session.not_found`), the child is one level deeper
    /// and `kind` is forced to `Subagent`; deeper than `max_spawn_depth` is
    /// `subagent.depth_exceeded`. A taken id is `session.exists`.
    pub async fn create_session(&self, new: NewSession) -> Result<String> {
        let max_depth = i64::from(self.max_spawn_depth());
        let id = new.session_id.clone().unwrap_or_else(new_session_id);
        let out = id.clone();
        let res = self
            .write(move |inner, tx| {
                let (depth, kind) = match &new.parent_session_id {
                    Some(parent) => {
                        let sql = format!(
                            "SELECT spawn_depth FROM {} WHERE session_id = ?{}",
                            inner.t.sessions,
                            tx.dialect().for_update()
                        );
                        let row = tx.fetch_optional(&sql, &[Value::from(parent.as_str())])?;
                        let Some(row) = row else {
                            return Err(Error::new(
                                ErrorCode::SessionNotFound,
                                format!("parent session not found: `{parent}`; create the parent first"),
                            )
                            .with_detail("session_id", parent.as_str()));
                        };
                        let depth = row.i64("spawn_depth")? + 1;
                        if depth > max_depth {
                            return Err(Error::new(
                                ErrorCode::SubagentDepthExceeded,
                                format!("spawn depth {depth} exceeds max {max_depth}; raise max_spawn_depth or spawn from a shallower session"),
                            )
                            .with_detail("depth", depth)
                            .with_detail("max_spawn_depth", max_depth));
                        }
                        (depth, SessionKind::Subagent)
                    }
                    None => (0, new.kind.unwrap_or(SessionKind::Root)),
                };
                if inner.session_exists(tx, &id)? {
                    return Err(session_exists(&id));
                }
                let now = now_ms();
                let sql = format!(
                    "INSERT INTO {} ({}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    inner.t.sessions,
                    SessionRow::COLUMNS
                );
                tx.execute(
                    &sql,
                    &[
                        Value::from(id.as_str()),
                        Value::Int(now),
                        Value::Int(now),
                        Value::from(new.system_prompt.clone()),
                        Value::from(new.model.clone()),
                        Value::Text(new.config.as_ref().map_or_else(|| "{}".to_owned(), map_text)),
                        Value::from("active"),
                        Value::from(kind.as_str()),
                        Value::from(new.parent_session_id.clone()),
                        Value::from(new.spawn_tool_call_id.clone()),
                        Value::Int(depth),
                        Value::from(new.lifecycle.unwrap_or(SubagentLifecycle::Ephemeral).as_str()),
                        Value::Text(new.metadata.as_ref().map_or_else(|| "{}".to_owned(), map_text)),
                    ],
                )?;
                let sql = format!(
                    "INSERT INTO {} (session_id, next_seq, round_index, last_compact_seq, pending_json) VALUES (?, ?, ?, ?, ?)",
                    inner.t.session_state
                );
                tx.execute(
                    &sql,
                    &[Value::from(id.as_str()), Value::Int(1), Value::Int(0), Value::Int(0), Value::Null],
                )?;
                Ok(())
            })
            .await;
        match res {
            Ok(()) => Ok(out),
            Err(e) if e.code() == ErrorCode::StoreConstraint => {
                Err(session_exists(&out).with_source(e))
            }
            Err(e) => Err(e),
        }
    }

    /// The session, or `None`.
    pub async fn get_session(&self, session_id: &str) -> Result<Option<SessionRow>> {
        let sid = session_id.to_owned();
        self.read(move |inner, tx| get_session_tx(inner, tx, &sid))
            .await
    }

    /// Whether the session exists.
    pub async fn session_exists(&self, session_id: &str) -> Result<bool> {
        let sid = session_id.to_owned();
        self.read(move |inner, tx| inner.session_exists(tx, &sid))
            .await
    }

    /// Direct children of a session, oldest first.
    pub async fn list_children(&self, parent_session_id: &str) -> Result<Vec<SessionRow>> {
        let sid = parent_session_id.to_owned();
        self.read(move |inner, tx| {
            let sql = format!(
                "SELECT {} FROM {} WHERE parent_session_id = ? ORDER BY created_at, session_id",
                SessionRow::COLUMNS,
                inner.t.sessions
            );
            tx.fetch_all(&sql, &[Value::from(sid.as_str())])?
                .iter()
                .map(SessionRow::from_row)
                .collect()
        })
        .await
    }

    /// Every session, newest update first (for operators; `limit` bounds the result).
    pub async fn list_sessions(&self, limit: usize) -> Result<Vec<SessionRow>> {
        self.read(move |inner, tx| {
            let sql = format!(
                "SELECT {} FROM {} ORDER BY updated_at DESC, session_id LIMIT {}",
                SessionRow::COLUMNS,
                inner.t.sessions,
                limit.max(1)
            );
            tx.fetch_all(&sql, &[])?
                .iter()
                .map(SessionRow::from_row)
                .collect()
        })
        .await
    }

    /// Marks a session archived; returns whether it exists (unknown ids are a no-op).
    pub async fn archive_session(&self, session_id: &str) -> Result<bool> {
        let sid = session_id.to_owned();
        self.write(move |inner, tx| {
            let sql = format!(
                "UPDATE {} SET status = ?, updated_at = ? WHERE session_id = ?",
                inner.t.sessions
            );
            Ok(tx.execute(
                &sql,
                &[
                    Value::from("archived"),
                    Value::Int(now_ms()),
                    Value::from(sid.as_str()),
                ],
            )? > 0)
        })
        .await
    }

    /// Sets (or clears) the system prompt; returns whether the session exists.
    pub async fn update_session_prompt(
        &self,
        session_id: &str,
        system_prompt: Option<String>,
    ) -> Result<bool> {
        let sid = session_id.to_owned();
        self.write(move |inner, tx| {
            let sql = format!(
                "UPDATE {} SET system_prompt = ?, updated_at = ? WHERE session_id = ?",
                inner.t.sessions
            );
            Ok(tx.execute(
                &sql,
                &[
                    Value::from(system_prompt),
                    Value::Int(now_ms()),
                    Value::from(sid.as_str()),
                ],
            )? > 0)
        })
        .await
    }

    /// Merges `patch` into the session metadata (keys overwritten; `null` values remove keys)
    /// atomically; returns the new metadata, or `session.not_found`.
    pub async fn merge_session_metadata(
        &self,
        session_id: &str,
        patch: crate::types::JsonMap,
    ) -> Result<crate::types::JsonMap> {
        let sid = session_id.to_owned();
        self.write(move |inner, tx| {
            let sql = format!(
                "SELECT metadata_json FROM {} WHERE session_id = ?{}",
                inner.t.sessions,
                tx.dialect().for_update()
            );
            let row = tx
                .fetch_optional(&sql, &[Value::from(sid.as_str())])?
                .ok_or_else(|| Error::session_not_found(&sid))?;
            let mut meta =
                crate::util::decode_map("metadata_json", row.opt_text("metadata_json")?)?;
            for (k, v) in patch {
                if v.is_null() {
                    meta.remove(&k);
                } else {
                    meta.insert(k, v);
                }
            }
            let sql = format!(
                "UPDATE {} SET metadata_json = ?, updated_at = ? WHERE session_id = ?",
                inner.t.sessions
            );
            tx.execute(
                &sql,
                &[
                    Value::Text(map_text(&meta)),
                    Value::Int(now_ms()),
                    Value::from(sid.as_str()),
                ],
            )?;
            Ok(meta)
        })
        .await
    }

    /// Deletes a session (and, with `cascade`, its linked and ephemeral descendants) in one
    /// transaction; returns the number of sessions deleted (0 for an unknown id).
    ///
    /// Detached children survive with `parent_session_id` cleared; with `cascade = false` every
    /// child survives that way (no dangling parent ids). `shared_state` is never touched. The
    /// workflow runs a deleted session parents are deleted with it, steps included.
    pub async fn close_session(&self, session_id: &str, cascade: bool) -> Result<u64> {
        Ok(self.close_session_tree(session_id, cascade).await?.len() as u64)
    }

    /// Like [`SessionStore::close_session`] but returns every deleted session id (deepest first).
    pub async fn close_session_tree(&self, session_id: &str, cascade: bool) -> Result<Vec<String>> {
        let sid = session_id.to_owned();
        self.write(move |inner, tx| {
            let mut deleted = Vec::new();
            let mut visiting = std::collections::HashSet::new();
            delete_tree(inner, tx, &sid, cascade, &mut deleted, &mut visiting)?;
            Ok(deleted)
        })
        .await
    }

    /// The session's state row, or `None`.
    pub async fn get_state(&self, session_id: &str) -> Result<Option<SessionStateRow>> {
        let sid = session_id.to_owned();
        self.read(move |inner, tx| get_state_tx(inner, tx, &sid))
            .await
    }

    /// The session row and its state row, read in one read body.
    ///
    /// Same result as [`get_session`](Self::get_session) followed by
    /// [`get_state`](Self::get_state), but one trip to the database thread / one pooled
    /// connection instead of two: the agent loop calls this at the start of every send.
    pub async fn get_session_and_state(
        &self,
        session_id: &str,
    ) -> Result<(Option<SessionRow>, Option<SessionStateRow>)> {
        let sid = session_id.to_owned();
        self.read(move |inner, tx| {
            let session = get_session_tx(inner, tx, &sid)?;
            let state = match session {
                Some(_) => get_state_tx(inner, tx, &sid)?,
                None => None,
            };
            Ok((session, state))
        })
        .await
    }

    /// Sets the round index; returns whether the session exists.
    pub async fn set_round_index(&self, session_id: &str, round_index: i64) -> Result<bool> {
        let sid = session_id.to_owned();
        self.write(move |inner, tx| {
            let sql = format!(
                "UPDATE {} SET round_index = ? WHERE session_id = ?",
                inner.t.session_state
            );
            Ok(tx.execute(&sql, &[Value::Int(round_index), Value::from(sid.as_str())])? > 0)
        })
        .await
    }

    /// Replaces the pending record (`None` or an empty record clears it, stored as NULL);
    /// returns whether the session exists.
    pub async fn set_pending(
        &self,
        session_id: &str,
        pending: Option<PendingState>,
    ) -> Result<bool> {
        let sid = session_id.to_owned();
        let text = PendingState::encode(pending.as_ref())?;
        self.write(move |inner, tx| {
            let sql = format!(
                "UPDATE {} SET pending_json = ? WHERE session_id = ?",
                inner.t.session_state
            );
            Ok(tx.execute(&sql, &[Value::from(text), Value::from(sid.as_str())])? > 0)
        })
        .await
    }

    /// The pending record, or `None` (also for unknown sessions).
    pub async fn get_pending(&self, session_id: &str) -> Result<Option<PendingState>> {
        Ok(self.get_state(session_id).await?.and_then(|s| s.pending))
    }

    /// Atomically rewrites the pending record with `f(current)` under the session row lock;
    /// returns the new value. Unknown session → `session.not_found`.
    pub async fn update_pending<F>(&self, session_id: &str, f: F) -> Result<Option<PendingState>>
    where
        F: FnOnce(Option<PendingState>) -> Option<PendingState> + Send + 'static,
    {
        let sid = session_id.to_owned();
        self.write(move |inner, tx| {
            let mut st = inner.lock_state_required(tx, &sid)?;
            let cur = PendingState::decode(st.pending_json.take())?;
            let new = f(cur);
            st.pending_json = PendingState::encode(new.as_ref())?;
            inner.write_state(tx, &sid, &st)?;
            PendingState::decode(st.pending_json.clone())
        })
        .await
    }
}

pub(crate) fn session_exists(id: &str) -> Error {
    Error::new(
        ErrorCode::SessionExists,
        format!(
            "session already exists: `{id}`; pick another id or close the existing session first"
        ),
    )
    .with_detail("session_id", id)
}

pub(crate) fn get_session_tx(
    inner: &Inner,
    tx: &mut dyn Transaction,
    sid: &str,
) -> Result<Option<SessionRow>> {
    let sql = format!(
        "SELECT {} FROM {} WHERE session_id = ?",
        SessionRow::COLUMNS,
        inner.t.sessions
    );
    tx.fetch_optional(&sql, &[Value::from(sid)])?
        .map(|r| SessionRow::from_row(&r))
        .transpose()
}

pub(crate) fn get_state_tx(
    inner: &Inner,
    tx: &mut dyn Transaction,
    sid: &str,
) -> Result<Option<SessionStateRow>> {
    tx.fetch_optional(&inner.sql.read_state, &[Value::from(sid)])?
        .map(|r| SessionStateRow::from_row(&r))
        .transpose()
}

/// Tables holding per-session rows, deleted by `close_session` (sessions last).
const SESSION_TABLES: [&str; 10] = [
    "messages",
    "compactions",
    "usage_rounds",
    "session_stats",
    "timers",
    "session_runtime_state",
    "background_tasks",
    "notes",
    "session_state",
    "sessions",
];

fn delete_tree(
    inner: &Inner,
    tx: &mut dyn Transaction,
    sid: &str,
    cascade: bool,
    deleted: &mut Vec<String>,
    visiting: &mut std::collections::HashSet<String>,
) -> Result<()> {
    if !visiting.insert(sid.to_owned()) {
        return Ok(());
    }
    let sql = format!(
        "SELECT session_id, lifecycle FROM {} WHERE parent_session_id = ?",
        inner.t.sessions
    );
    let children = tx.fetch_all(&sql, &[Value::from(sid)])?;
    for child in children {
        let cid = child.text("session_id")?;
        let lifecycle = child.text("lifecycle")?;
        if cascade && lifecycle != SubagentLifecycle::Detached.as_str() {
            delete_tree(inner, tx, &cid, cascade, deleted, visiting)?;
        } else {
            let sql = format!(
                "UPDATE {} SET parent_session_id = NULL WHERE session_id = ?",
                inner.t.sessions
            );
            tx.execute(&sql, &[Value::from(cid.as_str())])?;
        }
    }
    crate::workflows::delete_parented_runs(inner, tx, sid)?;
    let mut n = 0;
    for logical in SESSION_TABLES {
        let table = inner.t.physical(logical).unwrap_or(logical);
        n = tx.execute(
            &format!("DELETE FROM {table} WHERE session_id = ?"),
            &[Value::from(sid)],
        )?;
    }
    if n > 0 {
        deleted.push(sid.to_owned());
    }
    Ok(())
}
