//! `SessionStore`: the one backend-neutral store (cheap to clone; an `Arc` inside).
//!
//! Every operation is expressed as SQL with `?` placeholders over the [`Database`] port and runs
//! in one transaction through [`run_tx`]. The operations live in sibling modules (`sessions`,
//! `messages`, `compaction`, `timers`, …) as further `impl SessionStore` blocks.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use power_loop_contracts::{ErrorCode, Result};

use crate::db::{Database, Row, Transaction, TxMode, Value};
use crate::inputs::{NewMessage, StatsDelta, UsageRecord};
use crate::open::{StoreOptions, validate_spawn_depth};
use crate::schema::{CURRENT_SCHEMA_VERSION, TableNames};
use crate::types::JsonMap;
use crate::util::{encode_json, encode_map, run_tx};

/// The durable session store (spec §8). Clone it freely: clones share one database handle.
#[derive(Clone)]
pub struct SessionStore {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for SessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionStore")
            .field("backend", &self.inner.db.dialect().name())
            .field("table_prefix", &self.inner.t.prefix)
            .field("max_spawn_depth", &self.max_spawn_depth())
            .finish()
    }
}

/// Statements of the hot path, rendered once per store.
pub(crate) struct HotSql {
    pub(crate) lock_state: String,
    pub(crate) read_state: String,
    pub(crate) insert_message: String,
    pub(crate) update_state: String,
    pub(crate) touch_session: String,
    pub(crate) upsert_stats: String,
    pub(crate) upsert_usage: String,
}

pub(crate) struct Inner {
    pub(crate) db: Arc<dyn Database>,
    pub(crate) t: TableNames,
    pub(crate) max_spawn_depth: AtomicU32,
    pub(crate) sql: HotSql,
}

/// The `session_state` row as read (and, on server engines, locked) inside a write transaction.
pub(crate) struct LockedState {
    pub(crate) next_seq: i64,
    pub(crate) round_index: i64,
    pub(crate) last_compact_seq: i64,
    pub(crate) pending_json: Option<String>,
}

impl LockedState {
    fn from_row(r: &Row) -> Result<Self> {
        Ok(LockedState {
            next_seq: r.i64("next_seq")?,
            round_index: r.i64("round_index")?,
            last_compact_seq: r.i64("last_compact_seq")?,
            pending_json: r.opt_text("pending_json")?,
        })
    }
}

impl SessionStore {
    /// Wraps an open database without touching the schema (use [`SessionStore::open_database`]
    /// or `open_store` to apply a schema policy). Validates the options.
    pub fn new(db: Arc<dyn Database>, options: &StoreOptions) -> Result<Self> {
        options.validate()?;
        let t = TableNames::new(&options.table_prefix)?;
        let d = db.dialect();
        let sql = HotSql {
            lock_state: format!(
                "SELECT next_seq, round_index, last_compact_seq, pending_json FROM {} WHERE session_id = ?{}",
                t.session_state,
                d.for_update()
            ),
            read_state: format!(
                "SELECT session_id, next_seq, round_index, last_compact_seq, pending_json FROM {} WHERE session_id = ?",
                t.session_state
            ),
            insert_message: format!(
                "INSERT INTO {} ({}) VALUES {MESSAGE_ROW_PLACEHOLDERS}",
                t.messages,
                crate::types::MessageRow::COLUMNS
            ),
            update_state: format!(
                "UPDATE {} SET next_seq = ?, round_index = ?, last_compact_seq = ?, pending_json = ? WHERE session_id = ?",
                t.session_state
            ),
            touch_session: format!(
                "UPDATE {} SET updated_at = ? WHERE session_id = ?",
                t.sessions
            ),
            upsert_stats: d.upsert(
                &t.session_stats,
                &["session_id"],
                &["last_send_at", "updated_at"],
                &[
                    "sends",
                    "rounds",
                    "llm_calls",
                    "tool_calls",
                    "prompt_tokens",
                    "completion_tokens",
                    "total_tokens",
                ],
                &["first_send_at"],
            ),
            upsert_usage: d.upsert(
                &t.usage_rounds,
                &["session_id", "round_index"],
                &[
                    "prompt_tokens",
                    "completion_tokens",
                    "total_tokens",
                    "model",
                    "created_at",
                ],
                &[],
                &[],
            ),
        };
        Ok(SessionStore {
            inner: Arc::new(Inner {
                db,
                t,
                max_spawn_depth: AtomicU32::new(options.max_spawn_depth),
                sql,
            }),
        })
    }

    /// The underlying database handle.
    pub fn database(&self) -> &Arc<dyn Database> {
        &self.inner.db
    }

    /// The backend name (`sqlite`, `postgres`, `mysql`).
    pub fn backend_name(&self) -> &'static str {
        self.inner.db.dialect().name()
    }

    /// The sub-agent nesting ceiling of this handle.
    pub fn max_spawn_depth(&self) -> u32 {
        self.inner.max_spawn_depth.load(Ordering::Relaxed)
    }

    /// Changes the nesting ceiling (≥ 1, else `invalid_argument`); shared by clones, not persisted.
    pub fn set_max_spawn_depth(&self, depth: u32) -> Result<()> {
        validate_spawn_depth(depth)?;
        self.inner.max_spawn_depth.store(depth, Ordering::Relaxed);
        Ok(())
    }

    /// The schema version of this build ([`CURRENT_SCHEMA_VERSION`]).
    pub fn schema_version(&self) -> i64 {
        CURRENT_SCHEMA_VERSION
    }

    /// The table prefix.
    pub fn table_prefix(&self) -> &str {
        &self.inner.t.prefix
    }

    /// The resolved physical table names.
    pub fn tables(&self) -> &TableNames {
        &self.inner.t
    }

    /// Closes the database (idempotent). Later operations fail with `store.closed`.
    pub async fn close(&self) -> Result<()> {
        self.inner.db.close().await
    }

    /// Runs `f` in one write transaction with access to the store internals.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Inner, &mut dyn Transaction) -> Result<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        run_tx(&*self.inner.db, TxMode::Write, move |tx| f(&inner, tx)).await
    }

    /// Runs `f` in one read transaction (a consistent snapshot where the backend offers one).
    pub(crate) async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Inner, &mut dyn Transaction) -> Result<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        run_tx(&*self.inner.db, TxMode::Read, move |tx| f(&inner, tx)).await
    }

    /// Like [`SessionStore::write`], retried a few times on a uniqueness violation or a
    /// transient conflict (the backstop of id allocation under concurrent writers).
    pub(crate) async fn write_retrying<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: Fn(&Inner, &mut dyn Transaction) -> Result<T> + Send + Sync + Clone + 'static,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let g = f.clone();
            match self.write(move |i, tx| g(i, tx)).await {
                Err(e)
                    if attempt < 8
                        && matches!(
                            e.code(),
                            ErrorCode::StoreConstraint | ErrorCode::StoreConflict
                        ) =>
                {
                    continue;
                }
                other => return other,
            }
        }
    }
}

impl Inner {
    /// Reads the session's state row, locking it for the rest of the transaction on server
    /// engines (the serialization point of seq / compact_seq / id allocation).
    pub(crate) fn lock_state(
        &self,
        tx: &mut dyn Transaction,
        session_id: &str,
    ) -> Result<Option<LockedState>> {
        tx.fetch_optional(&self.sql.lock_state, &[Value::from(session_id)])?
            .map(|r| LockedState::from_row(&r))
            .transpose()
    }

    /// Like [`Inner::lock_state`] but `session.not_found` when absent.
    pub(crate) fn lock_state_required(
        &self,
        tx: &mut dyn Transaction,
        session_id: &str,
    ) -> Result<LockedState> {
        self.lock_state(tx, session_id)?
            .ok_or_else(|| power_loop_contracts::Error::session_not_found(session_id))
    }

    pub(crate) fn write_state(
        &self,
        tx: &mut dyn Transaction,
        session_id: &str,
        st: &LockedState,
    ) -> Result<()> {
        tx.execute_deferred(
            &self.sql.update_state,
            &[
                Value::Int(st.next_seq),
                Value::Int(st.round_index),
                Value::Int(st.last_compact_seq),
                Value::from(st.pending_json.clone()),
                Value::from(session_id),
            ],
        )
    }

    pub(crate) fn touch_session(
        &self,
        tx: &mut dyn Transaction,
        session_id: &str,
        now: i64,
    ) -> Result<()> {
        tx.execute_deferred(
            &self.sql.touch_session,
            &[Value::Int(now), Value::from(session_id)],
        )
    }

    pub(crate) fn session_exists(
        &self,
        tx: &mut dyn Transaction,
        session_id: &str,
    ) -> Result<bool> {
        let sql = format!(
            "SELECT session_id FROM {} WHERE session_id = ?",
            self.t.sessions
        );
        Ok(tx
            .fetch_optional(&sql, &[Value::from(session_id)])?
            .is_some())
    }

    /// Inserts one message row at `seq` (a deferred write).
    pub(crate) fn insert_message(
        &self,
        tx: &mut dyn Transaction,
        session_id: &str,
        seq: i64,
        m: &NewMessage,
        state: &str,
        now: i64,
    ) -> Result<()> {
        self.insert_messages(tx, session_id, seq, std::slice::from_ref(m), state, now)
    }

    /// Inserts `messages` at consecutive seqs from `first_seq`, as multi-row `INSERT`s of up to
    /// [`MESSAGE_ROWS_PER_INSERT`] rows (deferred writes: one statement per chunk, not per row).
    pub(crate) fn insert_messages(
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
                tx.execute_deferred(&self.sql.insert_message, &params)?;
            } else {
                let mut sql = self.sql.insert_message.clone();
                for _ in 1..chunk.len() {
                    sql.push_str(", ");
                    sql.push_str(MESSAGE_ROW_PLACEHOLDERS);
                }
                tx.execute_deferred(&sql, &params)?;
            }
        }
        Ok(())
    }

    pub(crate) fn upsert_usage(
        &self,
        tx: &mut dyn Transaction,
        session_id: &str,
        u: &UsageRecord,
        now: i64,
    ) -> Result<()> {
        tx.execute_deferred(
            &self.sql.upsert_usage,
            &[
                Value::from(session_id),
                Value::Int(u.round_index),
                Value::from(u.prompt_tokens),
                Value::from(u.completion_tokens),
                Value::from(u.total_tokens),
                Value::from(u.model.clone()),
                Value::Int(now),
            ],
        )
    }

    pub(crate) fn bump_stats(
        &self,
        tx: &mut dyn Transaction,
        session_id: &str,
        d: &StatsDelta,
        now: i64,
    ) -> Result<()> {
        tx.execute_deferred(
            &self.sql.upsert_stats,
            &[
                Value::from(session_id),
                Value::Int(now),
                Value::Int(now),
                Value::Int(1),
                Value::Int(d.rounds),
                Value::Int(d.llm_calls),
                Value::Int(d.tool_calls),
                Value::Int(d.prompt_tokens),
                Value::Int(d.completion_tokens),
                Value::Int(d.total_tokens),
                Value::Int(now),
            ],
        )
    }
}

/// The columns of one message row ([`crate::types::MessageRow::COLUMNS`]).
const MESSAGE_COLUMN_COUNT: usize = 11;

/// The placeholders of one message row in an `INSERT … VALUES`.
const MESSAGE_ROW_PLACEHOLDERS: &str = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

/// Rows per multi-row message `INSERT` (64 × 11 = 704 parameters: far below every engine's
/// limit, SQLite's old 999 included).
pub(crate) const MESSAGE_ROWS_PER_INSERT: usize = 64;

/// Appends one message row's parameters, in [`crate::types::MessageRow::COLUMNS`] order.
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

/// Compact JSON text of a map (for callers building rows).
pub(crate) fn map_text(m: &JsonMap) -> String {
    encode_json(&serde_json::Value::Object(m.clone()))
}
