//! Export / import of one session as a JSON-serializable archive.
//!
//! Export reads every table in ONE read transaction (a consistent snapshot, unlike the
//! reference) and emits rows in primary-key order. Import validates the archive's shape and
//! internal consistency before writing, then inserts everything in one transaction.

use std::collections::BTreeMap;

use power_loop_contracts::{Error, Result};
use serde_json::Value as Json;

use super::check::{archive_error, validate_archive};
use super::document::SessionArchive;
use crate::codec::{JsonMap, StoredRow, encode_json};
use crate::db::Value;
use crate::db::sql::placeholders;
use crate::schema::CURRENT_SCHEMA_VERSION;
use crate::store::SessionStore;
use crate::tables::compactions::row::CompactionRow;
use crate::tables::messages::row::MessageRow;
use crate::tables::notes::row::NoteRow;
use crate::tables::session_state::row::SessionStateRow;
use crate::tables::sessions::id::{new_session_id, validate_session_id};
use crate::tables::sessions::ops::session_exists;
use crate::tables::sessions::row::SessionRow;
use crate::tables::timers::row::TimerRow;
use crate::tables::usage::row::{SessionStatsRow, UsageRoundRow};

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

fn to_json(v: &Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Int(i) => Json::from(*i),
        Value::Text(t) => Json::String(t.clone()),
    }
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

impl SessionStore {
    /// Exports a session (unknown → `session.not_found`). Excludes background tasks, shared
    /// state and child sessions.
    pub async fn export_session(&self, session_id: &str) -> Result<SessionArchive> {
        let sid = session_id.to_owned();
        self.read(move |inner, tx| {
            if !inner.sql.sessions.exists(tx, &sid)? {
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
    ///
    /// The whole archive is checked before anything is written: a schema version below 1 or
    /// newer than this build, a shape or sequence inconsistency, an unknown role, message
    /// state, session status, lifecycle or timer status, a `*_json` column that is not JSON,
    /// or a `tool_calls_json` that is not an array of OpenAI-shaped tool calls is
    /// `store.archive_invalid` naming the table, row and column.
    /// Errors: invalid archive → `store.archive_invalid`; a `new_session_id` breaking the id rule
    /// → `invalid_argument`; taken id → `session.exists`.
    pub async fn import_session(
        &self,
        archive: &SessionArchive,
        new_session_id: Option<&str>,
    ) -> Result<String> {
        self.import_archive(archive, new_session_id, None).await
    }

    /// Imports an archive as a `linked` sub-agent session of `parent_session_id` (one level
    /// below it): how a workflow leaf that ran in its own worker store joins the parent's
    /// store. Same checks as [`import_session`](Self::import_session); an unknown parent is
    /// `session.not_found`.
    pub async fn import_session_as_child(
        &self,
        archive: &SessionArchive,
        new_session_id: Option<&str>,
        parent_session_id: &str,
    ) -> Result<String> {
        let parent = self
            .get_session(parent_session_id)
            .await?
            .ok_or_else(|| Error::session_not_found(parent_session_id))?;
        let lineage = (parent_session_id.to_owned(), parent.spawn_depth + 1);
        self.import_archive(archive, new_session_id, Some(lineage))
            .await
    }

    async fn import_archive(
        &self,
        archive: &SessionArchive,
        new_session_id: Option<&str>,
        parent: Option<(String, i64)>,
    ) -> Result<String> {
        validate_archive(archive)?;
        if let Some(id) = new_session_id {
            validate_session_id(id)?;
        }
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
                    row.insert("spawn_tool_call_id".into(), Json::Null);
                    match &parent {
                        None => {
                            row.insert("parent_session_id".into(), Json::Null);
                            row.insert("spawn_depth".into(), Json::from(0));
                            row.insert("kind".into(), Json::String("root".into()));
                        }
                        Some((pid, depth)) => {
                            row.insert("parent_session_id".into(), Json::String(pid.clone()));
                            row.insert("spawn_depth".into(), Json::from(*depth));
                            row.insert("kind".into(), Json::String("subagent".into()));
                            row.insert("lifecycle".into(), Json::String("linked".into()));
                        }
                    }
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
            if inner.sql.sessions.exists(tx, &target)? {
                return Err(session_exists(&target));
            }
            for (logical, names, rows) in &plan {
                let table = inner.t.physical(logical).unwrap_or(logical);
                let sql = format!(
                    "INSERT INTO {table} ({}) VALUES ({})",
                    names.join(", "),
                    placeholders(names.len())
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
