//! Messages, the combined durable turn, and the active-window token.

use power_loop_contracts::clock::now_ms;
use power_loop_contracts::{Error, Result};

use super::input::{NewMessage, PendingChange, TurnCommit};
use super::row::{MessageRow, fetch_message_rows, sort_logical};
use crate::codec::{StoredRow, select_row};
use crate::db::{Transaction, Value};
use crate::store::{Inner, SessionStore};
use crate::tables::session_state::pending::PendingState;
use crate::tables::session_state::row::WindowToken;

impl SessionStore {
    /// Appends one message; returns its seq (1, 2, 3, … per session, gap-free across writers).
    /// Unknown session → `session.not_found`, nothing written.
    pub async fn append_message(&self, session_id: &str, message: NewMessage) -> Result<i64> {
        let seqs = self.append_messages(session_id, vec![message]).await?;
        seqs.first()
            .copied()
            .ok_or_else(|| Error::internal("append wrote no row"))
    }

    /// Appends several messages in one transaction; returns their seqs in order.
    pub async fn append_messages(
        &self,
        session_id: &str,
        messages: Vec<NewMessage>,
    ) -> Result<Vec<i64>> {
        self.commit_turn(session_id, TurnCommit::new(messages))
            .await
    }

    /// The minimal durable turn: appends the messages, sets the round index, rewrites the
    /// pending record, records usage and bumps the cumulative stats — all in ONE transaction
    /// under the session row lock. Returns the seqs of the appended messages.
    pub async fn commit_turn(&self, session_id: &str, turn: TurnCommit) -> Result<Vec<i64>> {
        let sid = session_id.to_owned();
        self.write(move |inner, tx| commit_turn_tx(inner, tx, &sid, turn))
            .await
    }

    /// Active messages in logical order; with `after_seq`, only `seq >= after_seq` (inclusive;
    /// an O(delta) tail read valid only when no fold happened since the caller's snapshot).
    pub async fn load_active_messages(
        &self,
        session_id: &str,
        after_seq: Option<i64>,
    ) -> Result<Vec<MessageRow>> {
        let sid = session_id.to_owned();
        self.read(move |inner, tx| load_active_tx(inner, tx, &sid, after_seq))
            .await
    }

    /// Every message (active and folded out), by seq.
    pub async fn load_all_messages(&self, session_id: &str) -> Result<Vec<MessageRow>> {
        let sid = session_id.to_owned();
        self.read(move |inner, tx| {
            let sql = format!(
                "SELECT {} FROM {} WHERE session_id = ? ORDER BY seq",
                MessageRow::COLUMNS,
                inner.t.messages
            );
            fetch_message_rows(tx, &sql, &[Value::from(sid.as_str())])
        })
        .await
    }

    /// One message, or `None`.
    pub async fn get_message(&self, session_id: &str, seq: i64) -> Result<Option<MessageRow>> {
        let sid = session_id.to_owned();
        self.read(move |inner, tx| {
            select_row::<MessageRow>(
                tx,
                &inner.t.messages,
                "WHERE session_id = ? AND seq = ?",
                &[Value::from(sid.as_str()), Value::Int(seq)],
            )
        })
        .await
    }

    /// The active-window token `(next_seq, last_compact_seq)`; unknown session →
    /// `session.not_found`.
    pub async fn active_window_token(&self, session_id: &str) -> Result<WindowToken> {
        let sid = session_id.to_owned();
        self.read(move |inner, tx| token_tx(inner, tx, &sid)).await
    }

    /// The token and the active window read in ONE read transaction (a consistent pair).
    pub async fn load_active_window(
        &self,
        session_id: &str,
    ) -> Result<(WindowToken, Vec<MessageRow>)> {
        let sid = session_id.to_owned();
        self.read(move |inner, tx| {
            let token = token_tx(inner, tx, &sid)?;
            let rows = load_active_tx(inner, tx, &sid, None)?;
            Ok((token, rows))
        })
        .await
    }
}

fn token_tx(inner: &Inner, tx: &mut dyn Transaction, sid: &str) -> Result<WindowToken> {
    let sql = format!(
        "SELECT next_seq, last_compact_seq FROM {} WHERE session_id = ?",
        inner.t.session_state
    );
    let row = tx
        .fetch_optional(&sql, &[Value::from(sid)])?
        .ok_or_else(|| Error::session_not_found(sid))?;
    Ok(WindowToken {
        next_seq: row.i64("next_seq")?,
        last_compact_seq: row.i64("last_compact_seq")?,
    })
}

pub(crate) fn load_active_tx(
    inner: &Inner,
    tx: &mut dyn Transaction,
    sid: &str,
    after_seq: Option<i64>,
) -> Result<Vec<MessageRow>> {
    let (sql, params) = match after_seq {
        Some(after) => (
            format!(
                "SELECT {} FROM {} WHERE session_id = ? AND state = ? AND seq >= ? ORDER BY seq",
                MessageRow::COLUMNS,
                inner.t.messages
            ),
            vec![Value::from(sid), Value::from("active"), Value::Int(after)],
        ),
        None => (
            format!(
                "SELECT {} FROM {} WHERE session_id = ? AND state = ? ORDER BY seq",
                MessageRow::COLUMNS,
                inner.t.messages
            ),
            vec![Value::from(sid), Value::from("active")],
        ),
    };
    let mut rows = fetch_message_rows(tx, &sql, &params)?;
    sort_logical(&mut rows);
    Ok(rows)
}

fn commit_turn_tx(
    inner: &Inner,
    tx: &mut dyn Transaction,
    sid: &str,
    turn: TurnCommit,
) -> Result<Vec<i64>> {
    let mut st = inner.sql.state.lock_required(tx, sid)?;
    let now = now_ms();
    // Seqs are allocated here, under the state row lock, and written back with the state below.
    let first = st.next_seq;
    let mut seqs = Vec::with_capacity(turn.messages.len());
    for _ in &turn.messages {
        seqs.push(st.next_seq);
        st.next_seq += 1;
    }
    // Every write of the turn is deferred: on PostgreSQL they all go out with `COMMIT`.
    inner
        .sql
        .messages
        .insert(tx, sid, first, &turn.messages, "active", now)?;
    if let Some(r) = turn.round_index {
        st.round_index = r;
    }
    match turn.pending {
        PendingChange::Keep => {}
        PendingChange::Clear => st.pending_json = None,
        PendingChange::Set(p) => st.pending_json = PendingState::encode(Some(&p))?,
        PendingChange::ResolveToolResults => {
            if let Some(mut p) = PendingState::decode(st.pending_json.take())? {
                for m in turn.messages.iter().filter(|m| m.role == "tool") {
                    if let Some(id) = &m.tool_call_id {
                        p.resolve(id, m.round_index);
                    }
                }
                st.pending_json = if p.has_unresolved() {
                    PendingState::encode(Some(&p))?
                } else {
                    None
                };
            }
        }
        PendingChange::Update(f) => {
            let cur = PendingState::decode(st.pending_json.take())?;
            st.pending_json = PendingState::encode(f(cur).as_ref())?;
        }
    }
    inner.sql.state.write(tx, sid, &st)?;
    inner.sql.sessions.touch(tx, sid, now)?;
    if let Some(u) = &turn.usage {
        inner.sql.usage.upsert_usage(tx, sid, u, now)?;
    }
    if let Some(d) = &turn.stats {
        inner.sql.usage.bump_stats(tx, sid, d, now)?;
    }
    Ok(seqs)
}
