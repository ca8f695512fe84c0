//! The hot statements of the `session_state` table: the row lock every ordered write takes,
//! the state read of every send, and the write-back. Rendered once per store.

use power_loop_contracts::{Error, Result};

use super::row::SessionStateRow;
use crate::codec::{StoredRow, stored_row};
use crate::db::{Dialect, Transaction, Value};
use crate::schema::TableNames;

stored_row! {
    /// The `session_state` row as read (and, on server engines, locked) inside a write
    /// transaction.
    pub(crate) struct LockedState {
        pub(crate) next_seq: i64 => i64,
        pub(crate) round_index: i64 => i64,
        pub(crate) last_compact_seq: i64 => i64,
        pub(crate) pending_json: Option<String> => opt_text,
    }
}

/// Statements on `session_state`.
pub(crate) struct StateSql {
    lock: String,
    read: String,
    update: String,
}

impl StateSql {
    /// Renders the statements for the store's table names and dialect.
    pub(crate) fn new(t: &TableNames, d: &dyn Dialect) -> Self {
        StateSql {
            lock: format!(
                "SELECT {} FROM {} WHERE session_id = ?{}",
                LockedState::COLUMNS,
                t.session_state,
                d.for_update()
            ),
            read: format!(
                "SELECT {} FROM {} WHERE session_id = ?",
                SessionStateRow::COLUMNS,
                t.session_state
            ),
            update: format!(
                "UPDATE {} SET next_seq = ?, round_index = ?, last_compact_seq = ?, pending_json = ? WHERE session_id = ?",
                t.session_state
            ),
        }
    }

    /// Reads the session's state row, locking it for the rest of the transaction on server
    /// engines (the serialization point of seq / compact_seq / id allocation).
    pub(crate) fn lock(
        &self,
        tx: &mut dyn Transaction,
        session_id: &str,
    ) -> Result<Option<LockedState>> {
        tx.fetch_optional(&self.lock, &[Value::from(session_id)])?
            .map(|r| LockedState::from_row(&r))
            .transpose()
    }

    /// Like [`StateSql::lock`] but `session.not_found` when absent.
    pub(crate) fn lock_required(
        &self,
        tx: &mut dyn Transaction,
        session_id: &str,
    ) -> Result<LockedState> {
        self.lock(tx, session_id)?
            .ok_or_else(|| Error::session_not_found(session_id))
    }

    /// The session's state row, unlocked.
    pub(crate) fn read(
        &self,
        tx: &mut dyn Transaction,
        session_id: &str,
    ) -> Result<Option<SessionStateRow>> {
        tx.fetch_optional(&self.read, &[Value::from(session_id)])?
            .map(|r| SessionStateRow::from_row(&r))
            .transpose()
    }

    /// Writes a locked state back (a deferred write).
    pub(crate) fn write(
        &self,
        tx: &mut dyn Transaction,
        session_id: &str,
        st: &LockedState,
    ) -> Result<()> {
        tx.execute_deferred(
            &self.update,
            &[
                Value::Int(st.next_seq),
                Value::Int(st.round_index),
                Value::Int(st.last_compact_seq),
                Value::from(st.pending_json.clone()),
                Value::from(session_id),
            ],
        )
    }
}
