//! [`SqliteDialect`]: SQLite SQL rendering (DDL of spec 6.1, upserts, no row-lock suffixes).

use std::borrow::Cow;

use power_loop_store::db::Dialect;

/// The SQLite dialect: `?` placeholders kept as they are, `ON CONFLICT … DO UPDATE` upserts, and
/// empty row-lock suffixes (writers are serialized by `BEGIN IMMEDIATE`).
#[derive(Debug, Clone, Copy, Default)]
pub struct SqliteDialect;

/// The one shared dialect value.
pub(crate) static DIALECT: SqliteDialect = SqliteDialect;

impl Dialect for SqliteDialect {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    fn translate<'a>(&self, sql: &'a str) -> Cow<'a, str> {
        Cow::Borrowed(sql)
    }

    fn ddl(&self, prefix: &str) -> Vec<String> {
        let p = prefix;
        vec![
            format!(
                "CREATE TABLE IF NOT EXISTS {p}sessions (\
                 session_id TEXT NOT NULL PRIMARY KEY, \
                 created_at INTEGER NOT NULL, \
                 updated_at INTEGER NOT NULL, \
                 system_prompt TEXT, \
                 model TEXT, \
                 config_json TEXT, \
                 status TEXT NOT NULL DEFAULT 'active', \
                 kind TEXT NOT NULL DEFAULT 'root', \
                 parent_session_id TEXT, \
                 spawn_tool_call_id TEXT, \
                 spawn_depth INTEGER NOT NULL DEFAULT 0, \
                 lifecycle TEXT NOT NULL DEFAULT 'ephemeral', \
                 metadata_json TEXT)"
            ),
            format!(
                "CREATE INDEX IF NOT EXISTS {p}idx_sessions_parent ON {p}sessions (parent_session_id)"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {p}messages (\
                 session_id TEXT NOT NULL, \
                 seq INTEGER NOT NULL, \
                 role TEXT NOT NULL, \
                 name TEXT, \
                 content TEXT, \
                 tool_calls_json TEXT, \
                 tool_call_id TEXT, \
                 round_index INTEGER, \
                 state TEXT NOT NULL DEFAULT 'active', \
                 meta_json TEXT, \
                 created_at INTEGER NOT NULL, \
                 PRIMARY KEY (session_id, seq))"
            ),
            format!(
                "CREATE INDEX IF NOT EXISTS {p}idx_messages_session_state ON {p}messages (session_id, state, seq)"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {p}compactions (\
                 session_id TEXT NOT NULL, \
                 compact_seq INTEGER NOT NULL, \
                 note_seq INTEGER NOT NULL, \
                 from_seq INTEGER NOT NULL, \
                 to_seq INTEGER NOT NULL, \
                 before_tokens INTEGER, \
                 after_tokens INTEGER, \
                 round_index INTEGER, \
                 created_at INTEGER NOT NULL, \
                 PRIMARY KEY (session_id, compact_seq))"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {p}usage_rounds (\
                 session_id TEXT NOT NULL, \
                 round_index INTEGER NOT NULL, \
                 prompt_tokens INTEGER, \
                 completion_tokens INTEGER, \
                 total_tokens INTEGER, \
                 model TEXT, \
                 created_at INTEGER NOT NULL, \
                 PRIMARY KEY (session_id, round_index))"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {p}session_state (\
                 session_id TEXT NOT NULL PRIMARY KEY, \
                 next_seq INTEGER NOT NULL DEFAULT 1, \
                 round_index INTEGER NOT NULL DEFAULT 0, \
                 last_compact_seq INTEGER NOT NULL DEFAULT 0, \
                 pending_json TEXT)"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {p}session_runtime_state (\
                 session_id TEXT NOT NULL, \
                 state_key TEXT NOT NULL, \
                 value_json TEXT, \
                 updated_at INTEGER NOT NULL, \
                 PRIMARY KEY (session_id, state_key))"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {p}shared_state (\
                 owner TEXT NOT NULL, \
                 state_key TEXT NOT NULL, \
                 value_json TEXT, \
                 updated_at INTEGER NOT NULL, \
                 PRIMARY KEY (owner, state_key))"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {p}background_tasks (\
                 session_id TEXT NOT NULL, \
                 task_id TEXT NOT NULL, \
                 command TEXT NOT NULL, \
                 status TEXT NOT NULL, \
                 return_code INTEGER, \
                 output_tail TEXT, \
                 output_path TEXT, \
                 last_seen_at INTEGER NOT NULL DEFAULT 0, \
                 created_at INTEGER NOT NULL, \
                 updated_at INTEGER NOT NULL, \
                 PRIMARY KEY (session_id, task_id))"
            ),
            format!(
                "CREATE INDEX IF NOT EXISTS {p}idx_background_tasks_session_status ON {p}background_tasks (session_id, status, updated_at)"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {p}session_stats (\
                 session_id TEXT NOT NULL PRIMARY KEY, \
                 sends INTEGER NOT NULL DEFAULT 0, \
                 rounds INTEGER NOT NULL DEFAULT 0, \
                 llm_calls INTEGER NOT NULL DEFAULT 0, \
                 tool_calls INTEGER NOT NULL DEFAULT 0, \
                 prompt_tokens INTEGER NOT NULL DEFAULT 0, \
                 completion_tokens INTEGER NOT NULL DEFAULT 0, \
                 total_tokens INTEGER NOT NULL DEFAULT 0, \
                 first_send_at INTEGER, \
                 last_send_at INTEGER, \
                 updated_at INTEGER NOT NULL)"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {p}timers (\
                 session_id TEXT NOT NULL, \
                 timer_id INTEGER NOT NULL, \
                 due_at INTEGER NOT NULL, \
                 note TEXT NOT NULL, \
                 status TEXT NOT NULL DEFAULT 'armed', \
                 interval_s INTEGER, \
                 fire_count INTEGER NOT NULL DEFAULT 0, \
                 last_fired_at INTEGER, \
                 created_at INTEGER NOT NULL, \
                 updated_at INTEGER NOT NULL, \
                 PRIMARY KEY (session_id, timer_id))"
            ),
            format!("CREATE INDEX IF NOT EXISTS {p}idx_timers_due ON {p}timers (status, due_at)"),
            format!(
                "CREATE TABLE IF NOT EXISTS {p}notes (\
                 session_id TEXT NOT NULL, \
                 note_id INTEGER NOT NULL, \
                 content TEXT NOT NULL, \
                 pinned INTEGER NOT NULL DEFAULT 0, \
                 created_at INTEGER NOT NULL, \
                 updated_at INTEGER NOT NULL, \
                 PRIMARY KEY (session_id, note_id))"
            ),
        ]
    }

    fn upsert(
        &self,
        table: &str,
        key_cols: &[&str],
        val_cols: &[&str],
        add_cols: &[&str],
        insert_only_cols: &[&str],
    ) -> String {
        let all: Vec<&str> = key_cols
            .iter()
            .chain(val_cols)
            .chain(add_cols)
            .chain(insert_only_cols)
            .copied()
            .collect();
        let placeholders = vec!["?"; all.len()].join(", ");
        let mut sets: Vec<String> = val_cols
            .iter()
            .map(|c| format!("{c} = excluded.{c}"))
            .collect();
        sets.extend(
            add_cols
                .iter()
                .map(|c| format!("{c} = {table}.{c} + excluded.{c}")),
        );
        let action = if sets.is_empty() {
            "DO NOTHING".to_owned()
        } else {
            format!("DO UPDATE SET {}", sets.join(", "))
        };
        format!(
            "INSERT INTO {table} ({}) VALUES ({placeholders}) ON CONFLICT ({}) {action}",
            all.join(", "),
            key_cols.join(", ")
        )
    }

    fn insert_ignore(&self, table: &str, cols: &[&str], key_cols: &[&str]) -> String {
        let placeholders = vec!["?"; cols.len()].join(", ");
        let target = if key_cols.is_empty() {
            String::new()
        } else {
            format!(" ({})", key_cols.join(", "))
        };
        format!(
            "INSERT INTO {table} ({}) VALUES ({placeholders}) ON CONFLICT{target} DO NOTHING",
            cols.join(", ")
        )
    }

    fn for_update(&self) -> &'static str {
        ""
    }

    fn for_update_skip_locked(&self) -> &'static str {
        ""
    }
}
