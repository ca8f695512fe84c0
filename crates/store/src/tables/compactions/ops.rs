//! The compaction journal.

use power_loop_contracts::Result;
use serde_json::Value as Json;

use power_loop_contracts::clock::now_ms;

use super::row::{CompactionRequest, CompactionRow};
use crate::codec::{insert_row_sql, select_rows};
use crate::db::Value;
use crate::db::sql::placeholders;
use crate::store::SessionStore;
use crate::tables::messages::input::NewMessage;

impl SessionStore {
    /// Records a fold in ONE transaction: marks the folded rows `compacted_out`, appends the
    /// `compact_note` system message (seq = next_seq) and the journal row. Returns
    /// `(compact_seq, note_seq)`. Unknown session → `session.not_found`.
    pub async fn record_compaction(
        &self,
        session_id: &str,
        req: CompactionRequest,
    ) -> Result<(i64, i64)> {
        let sid = session_id.to_owned();
        self.write(move |inner, tx| {
            let mut st = inner.sql.state.lock_required(tx, &sid)?;
            let now = now_ms();
            let note_seq = st.next_seq;
            let compact_seq = st.last_compact_seq + 1;
            let (span_from, span_to) = match &req.fold_seqs {
                Some(seqs) => {
                    let mut uniq: Vec<i64> = Vec::with_capacity(seqs.len());
                    for s in seqs {
                        if !uniq.contains(s) {
                            uniq.push(*s);
                        }
                    }
                    if uniq.is_empty() {
                        (req.from_seq, req.to_seq)
                    } else {
                        for chunk in uniq.chunks(500) {
                            let sql = format!(
                                "UPDATE {} SET state = ? WHERE session_id = ? AND seq IN ({})",
                                inner.t.messages,
                                placeholders(chunk.len())
                            );
                            let mut params =
                                vec![Value::from("compacted_out"), Value::from(sid.as_str())];
                            params.extend(chunk.iter().map(|s| Value::Int(*s)));
                            tx.execute(&sql, &params)?;
                        }
                        let lo = uniq.iter().copied().min().unwrap_or(req.from_seq);
                        let hi = uniq.iter().copied().max().unwrap_or(req.to_seq);
                        (lo, hi)
                    }
                }
                None => {
                    let sql = format!(
                        "UPDATE {} SET state = ? WHERE session_id = ? AND seq >= ? AND seq <= ?",
                        inner.t.messages
                    );
                    tx.execute(
                        &sql,
                        &[
                            Value::from("compacted_out"),
                            Value::from(sid.as_str()),
                            Value::Int(req.from_seq),
                            Value::Int(req.to_seq),
                        ],
                    )?;
                    (req.from_seq, req.to_seq)
                }
            };
            let ord = req.order_key.unwrap_or(span_from);
            let mut meta = req.note_meta.clone().unwrap_or_default();
            meta.insert(
                "compacted_at_round".into(),
                req.round_index.map_or(Json::Null, Json::from),
            );
            meta.insert("from_seq".into(), Json::from(span_from));
            meta.insert("to_seq".into(), Json::from(span_to));
            meta.insert("ord".into(), Json::from(ord));
            meta.insert(
                "original_tokens".into(),
                req.before_tokens.map_or(Json::Null, Json::from),
            );
            meta.insert(
                "summary_tokens".into(),
                req.after_tokens.map_or(Json::Null, Json::from),
            );
            let mut note = NewMessage::new("system")
                .with_name("compact_note")
                .with_meta(meta);
            note.content = Some(req.note_content.clone());
            note.round_index = req.round_index;
            inner
                .sql
                .messages
                .insert_one(tx, &sid, note_seq, &note, "active", now)?;
            let sql = insert_row_sql::<CompactionRow>(&inner.t.compactions);
            tx.execute(
                &sql,
                &[
                    Value::from(sid.as_str()),
                    Value::Int(compact_seq),
                    Value::Int(note_seq),
                    Value::Int(span_from),
                    Value::Int(span_to),
                    Value::from(req.before_tokens),
                    Value::from(req.after_tokens),
                    Value::from(req.round_index),
                    Value::Int(now),
                ],
            )?;
            st.next_seq = note_seq + 1;
            st.last_compact_seq = compact_seq;
            inner.sql.state.write(tx, &sid, &st)?;
            inner.sql.sessions.touch(tx, &sid, now)?;
            Ok((compact_seq, note_seq))
        })
        .await
    }

    /// The journal of a session, by `compact_seq`.
    pub async fn list_compactions(&self, session_id: &str) -> Result<Vec<CompactionRow>> {
        let sid = session_id.to_owned();
        self.read(move |inner, tx| {
            select_rows::<CompactionRow>(
                tx,
                &inner.t.compactions,
                "WHERE session_id = ? ORDER BY compact_seq",
                &[Value::from(sid.as_str())],
            )
        })
        .await
    }
}
