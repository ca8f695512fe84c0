//! Operations on sessions and the sub-agent tree: create, read, list, archive,
//! metadata merge, and the closing of a session with its descendants.

use power_loop_contracts::clock::now_ms;
use power_loop_contracts::{Error, ErrorCode, Result};

use super::id::{new_session_id, validate_session_id};
use super::row::{NewSession, SessionKind, SessionRow, SubagentLifecycle};
use crate::codec::{JsonMap, decode_map, insert_row_sql, map_text, select_row, select_rows};
use crate::db::{Transaction, Value};
use crate::store::{Inner, SessionStore};
use crate::tables::workflows::ops::delete_parented_runs;

impl SessionStore {
    /// Creates a session (and its state row) in one transaction; returns its id.
    ///
    /// With a parent: the parent must exist (`session.not_found`), the child is one level deeper
    /// and `kind` is forced to `Subagent`; deeper than `max_spawn_depth` is
    /// `subagent.depth_exceeded`. A taken id is `session.exists`. A caller-chosen id must follow
    /// [`validate_session_id`](crate::validate_session_id) (`invalid_argument`, nothing written).
    pub async fn create_session(&self, new: NewSession) -> Result<String> {
        if let Some(id) = &new.session_id {
            validate_session_id(id)?;
        }
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
                if inner.sql.sessions.exists(tx, &id)? {
                    return Err(session_exists(&id));
                }
                let now = now_ms();
                let sql = insert_row_sql::<SessionRow>(&inner.t.sessions);
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
        self.read(move |inner, tx| inner.sql.sessions.exists(tx, &sid))
            .await
    }

    /// Direct children of a session, oldest first.
    pub async fn list_children(&self, parent_session_id: &str) -> Result<Vec<SessionRow>> {
        let sid = parent_session_id.to_owned();
        self.read(move |inner, tx| {
            select_rows::<SessionRow>(
                tx,
                &inner.t.sessions,
                "WHERE parent_session_id = ? ORDER BY created_at, session_id",
                &[Value::from(sid.as_str())],
            )
        })
        .await
    }

    /// Every session, newest update first (for operators; `limit` bounds the result).
    pub async fn list_sessions(&self, limit: usize) -> Result<Vec<SessionRow>> {
        self.read(move |inner, tx| {
            select_rows::<SessionRow>(
                tx,
                &inner.t.sessions,
                &format!(
                    "ORDER BY updated_at DESC, session_id LIMIT {}",
                    limit.max(1)
                ),
                &[],
            )
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
        patch: JsonMap,
    ) -> Result<JsonMap> {
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
            let mut meta = decode_map("metadata_json", row.opt_text("metadata_json")?)?;
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
    select_row::<SessionRow>(
        tx,
        &inner.t.sessions,
        "WHERE session_id = ?",
        &[Value::from(sid)],
    )
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
    delete_parented_runs(inner, tx, sid)?;
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
