//! Export / import of one session as a JSON-serializable archive (spec §8.13).
//!
//! Export reads every table in ONE read transaction (a consistent snapshot, unlike the
//! reference) and emits rows in primary-key order. Import validates the archive's shape and
//! internal consistency before writing, then inserts everything in one transaction.

use std::collections::BTreeMap;

use power_loop_contracts::{Error, ErrorCode, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::db::Value;
use crate::schema::CURRENT_SCHEMA_VERSION;
use crate::sessions::session_exists;
use crate::store::SessionStore;
use crate::types::{
    CompactionRow, JsonMap, MessageRow, NoteRow, SessionRow, SessionStateRow, SessionStatsRow,
    TimerRow, UsageRoundRow,
};
use crate::util::{encode_json, new_session_id};

/// The exported tables: logical name, column list, primary-key order.
const EXPORT_TABLES: [(&str, &str, &str); 9] = [
    ("sessions", SessionRow::COLUMNS, "session_id"),
    ("session_state", SessionStateRow::COLUMNS, "session_id"),
    ("messages", MessageRow::COLUMNS, "seq"),
    ("compactions", CompactionRow::COLUMNS, "compact_seq"),
    ("usage_rounds", UsageRoundRow::COLUMNS, "round_index"),
    (
        "session_runtime_state",
        "session_id, state_key, value_json, updated_at",
        "state_key",
    ),
    ("timers", TimerRow::COLUMNS, "timer_id"),
    ("notes", NoteRow::COLUMNS, "note_id"),
    ("session_stats", SessionStatsRow::COLUMNS, "session_id"),
];

/// A session archive: raw column values per logical table (JSON columns stay JSON text,
/// `pinned` is 0/1, enums are strings, timestamps integers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SessionArchive {
    /// Schema version of the exporting build.
    pub schema_version: i64,
    /// Source session id.
    pub session_id: String,
    /// Logical table name → rows (all nine keys present on export).
    pub tables: BTreeMap<String, Vec<JsonMap>>,
}

fn to_json(v: &Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Int(i) => Json::from(*i),
        Value::Text(t) => Json::String(t.clone()),
    }
}

fn archive_error(msg: String) -> Error {
    Error::new(ErrorCode::StoreArchiveInvalid, msg)
}

fn to_sql(table: &str, col: &str, v: &Json) -> Result<Value> {
    Ok(match v {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::from(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => {
                return Err(archive_error(format!(
                    "archive table `{table}` column `{col}` holds the non-integer number {n}"
                )));
            }
        },
        Json::String(s) => Value::Text(s.clone()),
        other => Value::Text(encode_json(other)),
    })
}

fn int_field(row: &JsonMap, col: &str) -> Option<i64> {
    row.get(col).and_then(Json::as_i64)
}

impl SessionStore {
    /// Exports a session (unknown → `session.not_found`). Excludes background tasks, shared
    /// state and child sessions.
    pub async fn export_session(&self, session_id: &str) -> Result<SessionArchive> {
        let sid = session_id.to_owned();
        self.read(move |inner, tx| {
            if !inner.session_exists(tx, &sid)? {
                return Err(Error::session_not_found(&sid));
            }
            let mut tables = BTreeMap::new();
            for (logical, cols, order) in EXPORT_TABLES {
                let table = inner.t.physical(logical).unwrap_or(logical);
                let sql =
                    format!("SELECT {cols} FROM {table} WHERE session_id = ? ORDER BY {order}");
                let rows = tx.fetch_all(&sql, &[Value::from(sid.as_str())])?;
                let out: Vec<JsonMap> = rows
                    .iter()
                    .map(|r| {
                        r.columns()
                            .iter()
                            .zip(r.values())
                            .map(|(c, v)| (c.to_ascii_lowercase(), to_json(v)))
                            .collect()
                    })
                    .collect();
                tables.insert(logical.to_owned(), out);
            }
            Ok(SessionArchive {
                schema_version: CURRENT_SCHEMA_VERSION,
                session_id: sid.clone(),
                tables,
            })
        })
        .await
    }

    /// Imports an archive as `new_session_id` (or a generated id) in one transaction; returns
    /// the id. Lineage is reset (root, no parent); everything else is preserved verbatim.
    /// Errors: newer or malformed archive → `store.archive_invalid`; taken id → `session.exists`.
    pub async fn import_session(
        &self,
        archive: &SessionArchive,
        new_session_id: Option<&str>,
    ) -> Result<String> {
        validate_archive(archive)?;
        let target = new_session_id.map_or_else(new_session_id_gen, str::to_owned);
        let out = target.clone();
        let mut plan: Vec<(String, Vec<String>, Vec<Vec<Value>>)> = Vec::new();
        for (logical, cols, _) in EXPORT_TABLES {
            let known: Vec<&str> = cols.split(", ").collect();
            let Some(rows) = archive.tables.get(logical) else {
                continue;
            };
            for row in rows {
                let mut row = row.clone();
                row.insert("session_id".into(), Json::String(target.clone()));
                if logical == "sessions" {
                    row.insert("parent_session_id".into(), Json::Null);
                    row.insert("spawn_tool_call_id".into(), Json::Null);
                    row.insert("spawn_depth".into(), Json::from(0));
                    row.insert("kind".into(), Json::String("root".into()));
                }
                let mut names = Vec::new();
                let mut vals = Vec::new();
                for col in &known {
                    if let Some(v) = row.get(*col) {
                        names.push((*col).to_owned());
                        vals.push(to_sql(logical, col, v)?);
                    }
                }
                match plan.last_mut() {
                    Some((t, n, vs)) if t == logical && *n == names => vs.push(vals),
                    _ => plan.push((logical.to_owned(), names, vec![vals])),
                }
            }
        }
        self.write(move |inner, tx| {
            if inner.session_exists(tx, &target)? {
                return Err(session_exists(&target));
            }
            for (logical, names, rows) in &plan {
                let table = inner.t.physical(logical).unwrap_or(logical);
                let sql = format!(
                    "INSERT INTO {table} ({}) VALUES ({})",
                    names.join(", "),
                    crate::util::placeholders(names.len())
                );
                for vals in rows {
                    tx.execute(&sql, vals)?;
                }
            }
            Ok(())
        })
        .await?;
        Ok(out)
    }
}

fn new_session_id_gen() -> String {
    new_session_id()
}

fn validate_archive(a: &SessionArchive) -> Result<()> {
    if a.schema_version > CURRENT_SCHEMA_VERSION {
        return Err(archive_error(format!(
            "export schema_version {} is newer than this power_loop build supports (max {CURRENT_SCHEMA_VERSION})",
            a.schema_version
        )));
    }
    let count = |t: &str| a.tables.get(t).map_or(0, Vec::len);
    if count("sessions") != 1 {
        return Err(archive_error(format!(
            "the archive must hold exactly one `sessions` row, found {}",
            count("sessions")
        )));
    }
    if count("session_state") != 1 {
        return Err(archive_error(format!(
            "the archive must hold exactly one `session_state` row, found {}",
            count("session_state")
        )));
    }
    let state = &a.tables["session_state"][0];
    let next_seq = int_field(state, "next_seq").ok_or_else(|| {
        archive_error("`session_state.next_seq` is missing or not an integer".into())
    })?;
    let last_compact = int_field(state, "last_compact_seq").unwrap_or(0);
    let mut seen = std::collections::HashSet::new();
    for m in a.tables.get("messages").map(Vec::as_slice).unwrap_or(&[]) {
        let seq = int_field(m, "seq")
            .ok_or_else(|| archive_error("a message row has no integer `seq`".into()))?;
        if seq < 1 || seq >= next_seq {
            return Err(archive_error(format!(
                "message seq {seq} is outside 1..next_seq ({next_seq}); the archive is inconsistent"
            )));
        }
        if !seen.insert(seq) {
            return Err(archive_error(format!(
                "message seq {seq} appears twice in the archive"
            )));
        }
    }
    for c in a
        .tables
        .get("compactions")
        .map(Vec::as_slice)
        .unwrap_or(&[])
    {
        let cs = int_field(c, "compact_seq")
            .ok_or_else(|| archive_error("a compaction row has no integer `compact_seq`".into()))?;
        if cs > last_compact {
            return Err(archive_error(format!(
                "compaction {cs} is beyond last_compact_seq {last_compact}; the archive is inconsistent"
            )));
        }
    }
    Ok(())
}
