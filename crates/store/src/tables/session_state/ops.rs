//! Operations on the session state: the round index and the pending-tool-call
//! record, read alone or with the session row.

use power_loop_contracts::Result;

use super::pending::PendingState;
use super::row::SessionStateRow;
use crate::db::Value;
use crate::store::SessionStore;
use crate::tables::sessions::ops::get_session_tx;
use crate::tables::sessions::row::SessionRow;

impl SessionStore {
    /// The session's state row, or `None`.
    pub async fn get_state(&self, session_id: &str) -> Result<Option<SessionStateRow>> {
        let sid = session_id.to_owned();
        self.read(move |inner, tx| inner.sql.state.read(tx, &sid))
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
                Some(_) => inner.sql.state.read(tx, &sid)?,
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
            let mut st = inner.sql.state.lock_required(tx, &sid)?;
            let cur = PendingState::decode(st.pending_json.take())?;
            let new = f(cur);
            st.pending_json = PendingState::encode(new.as_ref())?;
            inner.sql.state.write(tx, &sid, &st)?;
            PendingState::decode(st.pending_json.clone())
        })
        .await
    }
}
