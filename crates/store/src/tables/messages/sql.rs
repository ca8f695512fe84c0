//! The hot statement of the `messages` table: the multi-row insert of a turn's messages.

use power_loop_contracts::Result;

use super::input::NewMessage;
use super::row::MessageRow;
use crate::codec::{StoredRow, encode_json, encode_map};
use crate::db::{Transaction, Value};
use crate::schema::TableNames;

/// The columns of one message row ([`MessageRow::COLUMNS`]).
const MESSAGE_COLUMN_COUNT: usize = 11;

/// The placeholders of one message row in an `INSERT … VALUES`.
const MESSAGE_ROW_PLACEHOLDERS: &str = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

/// Rows per multi-row message `INSERT` (64 × 11 = 704 parameters: far below every engine's
/// limit, SQLite's old 999 included).
pub(crate) const MESSAGE_ROWS_PER_INSERT: usize = 64;

/// Statements on `messages`.
pub(crate) struct MessageSql {
    insert: String,
}

impl MessageSql {
    /// Renders the statements for the store's table names.
    pub(crate) fn new(t: &TableNames) -> Self {
        MessageSql {
            insert: format!(
                "INSERT INTO {} ({}) VALUES {MESSAGE_ROW_PLACEHOLDERS}",
                t.messages,
                MessageRow::COLUMNS
            ),
        }
    }

    /// Inserts one message row at `seq` (a deferred write).
    pub(crate) fn insert_one(
        &self,
        tx: &mut dyn Transaction,
        session_id: &str,
        seq: i64,
        m: &NewMessage,
        state: &str,
        now: i64,
    ) -> Result<()> {
        self.insert(tx, session_id, seq, std::slice::from_ref(m), state, now)
    }

    /// Inserts `messages` at consecutive seqs from `first_seq`, as multi-row `INSERT`s of up to
    /// [`MESSAGE_ROWS_PER_INSERT`] rows (deferred writes: one statement per chunk, not per row).
    pub(crate) fn insert(
        &self,
        tx: &mut dyn Transaction,
        session_id: &str,
        first_seq: i64,
        messages: &[NewMessage],
        state: &str,
        now: i64,
    ) -> Result<()> {
        let mut seq = first_seq;
        for chunk in messages.chunks(MESSAGE_ROWS_PER_INSERT) {
            let mut params = Vec::with_capacity(chunk.len() * MESSAGE_COLUMN_COUNT);
            for m in chunk {
                push_message_params(&mut params, session_id, seq, m, state, now);
                seq += 1;
            }
            if chunk.len() == 1 {
                tx.execute_deferred(&self.insert, &params)?;
            } else {
                let mut sql = self.insert.clone();
                for _ in 1..chunk.len() {
                    sql.push_str(", ");
                    sql.push_str(MESSAGE_ROW_PLACEHOLDERS);
                }
                tx.execute_deferred(&sql, &params)?;
            }
        }
        Ok(())
    }
}

/// Appends one message row's parameters, in [`MessageRow::COLUMNS`] order.
fn push_message_params(
    params: &mut Vec<Value>,
    session_id: &str,
    seq: i64,
    m: &NewMessage,
    state: &str,
    now: i64,
) {
    let tool_calls = match &m.tool_calls {
        Some(calls) if !calls.is_empty() => {
            Value::Text(encode_json(&serde_json::Value::Array(calls.clone())))
        }
        _ => Value::Null,
    };
    let meta = match &m.meta {
        Some(map) => encode_map(Some(map)),
        None => Value::Text("{}".to_owned()),
    };
    params.extend([
        Value::from(session_id),
        Value::Int(seq),
        Value::from(m.role.as_str()),
        Value::from(m.name.clone()),
        Value::from(m.content.clone()),
        tool_calls,
        Value::from(m.tool_call_id.clone()),
        Value::from(m.round_index),
        Value::from(state),
        meta,
        Value::Int(now),
    ]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_placeholder_per_message_column() {
        assert_eq!(
            MessageRow::COLUMNS.split(", ").count(),
            MESSAGE_COLUMN_COUNT
        );
        assert_eq!(
            MESSAGE_ROW_PLACEHOLDERS.matches('?').count(),
            MESSAGE_COLUMN_COUNT
        );
    }
}
