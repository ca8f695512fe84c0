//! The raw-rusqlite floor of the `store` workload: the same SQL the store issues for a durable
//! turn and for an active-window load, on one plain connection, for scale. The only place the
//! bench reaches past the façade.

use std::path::Path;
use std::time::{Duration, Instant};

use power_loop::{Dialect, SqliteDialect};
use rusqlite::{Connection, params};

use super::{SESSION, assistant_text, err, now_ms, user_text};

/// The same window read with raw rusqlite on a fresh connection (for scale): milliseconds.
pub(super) fn raw_cold_load(path: &Path, window: usize) -> Result<f64, String> {
    let conn = Connection::open(path).map_err(err)?;
    let t = Instant::now();
    let mut stmt = conn
        .prepare(
            "SELECT session_id, seq, role, name, content, tool_calls_json, tool_call_id, round_index, state, meta_json, created_at \
             FROM pl_messages WHERE session_id = ? AND state = 'active' ORDER BY seq",
        )
        .map_err(err)?;
    type RawRow = (
        String,
        i64,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<i64>,
        String,
        Option<String>,
        i64,
    );
    let rows: Vec<RawRow> = stmt
        .query_map([SESSION], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
                r.get(7)?,
                r.get(8)?,
                r.get(9)?,
                r.get(10)?,
            ))
        })
        .map_err(err)?
        .collect::<rusqlite::Result<_>>()
        .map_err(err)?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    if rows.len() != window {
        return Err(format!(
            "raw load returned {} rows, expected {window}",
            rows.len()
        ));
    }
    Ok(ms)
}

/// The same writes as `commit_turn`, with raw rusqlite on one connection.
pub(super) struct RawTurns {
    conn: Connection,
}

/// One round's usage, overwritten on a repeated round.
const UPSERT_USAGE: &str = "INSERT INTO pl_usage_rounds \
     (session_id, round_index, prompt_tokens, completion_tokens, total_tokens, model, created_at) \
     VALUES (?, ?, ?, ?, ?, ?, ?) \
     ON CONFLICT (session_id, round_index) DO UPDATE SET \
     prompt_tokens = excluded.prompt_tokens, completion_tokens = excluded.completion_tokens, \
     total_tokens = excluded.total_tokens, model = excluded.model, created_at = excluded.created_at";

/// The session's running totals: timestamps overwritten, counters added, `first_send_at` only
/// written by the first insert.
const UPSERT_STATS: &str = "INSERT INTO pl_session_stats \
     (session_id, last_send_at, updated_at, sends, rounds, llm_calls, tool_calls, \
     prompt_tokens, completion_tokens, total_tokens, first_send_at) \
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
     ON CONFLICT (session_id) DO UPDATE SET \
     last_send_at = excluded.last_send_at, updated_at = excluded.updated_at, \
     sends = pl_session_stats.sends + excluded.sends, \
     rounds = pl_session_stats.rounds + excluded.rounds, \
     llm_calls = pl_session_stats.llm_calls + excluded.llm_calls, \
     tool_calls = pl_session_stats.tool_calls + excluded.tool_calls, \
     prompt_tokens = pl_session_stats.prompt_tokens + excluded.prompt_tokens, \
     completion_tokens = pl_session_stats.completion_tokens + excluded.completion_tokens, \
     total_tokens = pl_session_stats.total_tokens + excluded.total_tokens";

impl RawTurns {
    pub(super) fn open(path: &Path) -> Result<Self, String> {
        let conn = Connection::open(path).map_err(err)?;
        conn.set_prepared_statement_cache_capacity(256);
        conn.busy_timeout(Duration::from_millis(5000))
            .map_err(err)?;
        conn.execute_batch(
            "PRAGMA auto_vacuum=INCREMENTAL; PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; \
             PRAGMA foreign_keys=ON;",
        )
        .map_err(err)?;
        for stmt in SqliteDialect.ddl("pl_") {
            conn.execute_batch(&stmt).map_err(err)?;
        }
        let now = now_ms();
        conn.execute(
            "INSERT INTO pl_sessions (session_id, created_at, updated_at, config_json, metadata_json) VALUES (?, ?, ?, '{}', '{}')",
            params![SESSION, now, now],
        )
        .map_err(err)?;
        conn.execute(
            "INSERT INTO pl_session_state (session_id) VALUES (?)",
            params![SESSION],
        )
        .map_err(err)?;
        Ok(RawTurns { conn })
    }

    pub(super) fn run(&mut self, start: usize, n: usize) -> Result<(), String> {
        for i in start..start + n {
            self.turn(i).map_err(err)?;
        }
        Ok(())
    }

    fn turn(&mut self, i: usize) -> rusqlite::Result<()> {
        let c = &self.conn;
        let round = i64::try_from(i).unwrap_or(i64::MAX);
        let now = now_ms();
        c.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
        let (mut next_seq, _round, last_compact, pending): (i64, i64, i64, Option<String>) = c
            .prepare_cached(
                "SELECT next_seq, round_index, last_compact_seq, pending_json FROM pl_session_state WHERE session_id = ?",
            )?
            .query_row([SESSION], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
        let mut insert = c.prepare_cached(
            "INSERT INTO pl_messages (session_id, seq, role, name, content, tool_calls_json, tool_call_id, round_index, state, meta_json, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )?;
        for (role, text) in [("user", user_text(i)), ("assistant", assistant_text(i))] {
            insert.execute(params![
                SESSION,
                next_seq,
                role,
                None::<String>,
                text,
                None::<String>,
                None::<String>,
                round,
                "active",
                "{}",
                now
            ])?;
            next_seq += 1;
        }
        c.prepare_cached(
            "UPDATE pl_session_state SET next_seq = ?, round_index = ?, last_compact_seq = ?, pending_json = ? WHERE session_id = ?",
        )?
        .execute(params![next_seq, round, last_compact, pending, SESSION])?;
        c.prepare_cached("UPDATE pl_sessions SET updated_at = ? WHERE session_id = ?")?
            .execute(params![now, SESSION])?;
        c.prepare_cached(UPSERT_USAGE)?.execute(params![
            SESSION,
            round,
            120,
            80,
            200,
            "bench-model",
            now
        ])?;
        c.prepare_cached(UPSERT_STATS)?
            .execute(params![SESSION, now, now, 1, 1, 1, 0, 120, 80, 200, now])?;
        c.prepare_cached("COMMIT")?.execute([])?;
        Ok(())
    }
}
