//! `--workload store`: the minimal durable turn through `SessionStore` versus the same SQL
//! writes done with raw rusqlite, plus a cold load of a large active window.
//!
//! The durable turn = user message + assistant message + round index + usage row + stats
//! counters, in ONE transaction (`SessionStore::commit_turn`). The raw variant issues exactly
//! the statements the store issues (`BEGIN IMMEDIATE`, state read, two inserts, state update,
//! session touch, usage upsert, stats upsert, `COMMIT`) through cached statements on one
//! connection with the same PRAGMAs. Rounds of both alternate so drift hits both equally.
//!
//! Options: `--turns N` per round (default 2000), `--rounds N` (default 5), `--window N`
//! messages for the cold load (default 20000), `--runtime current_thread|multi_thread`
//! (default multi_thread), `--dir PATH` for the scratch files.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use power_loop_store::db::{Database, Dialect};
use power_loop_store::{
    ConnectOptions, NewMessage, NewSession, SessionStore, StatsDelta, StoreOptions, TurnCommit,
    UsageRecord,
};
use power_loop_store_sqlite::{SqliteDatabase, SqliteDialect};
use rusqlite::{Connection, params};
use serde_json::json;

use super::ScratchDir;
use crate::args::Args;

const SESSION: &str = "bench-session";

fn user_text(i: usize) -> String {
    format!("turn {i}: please summarise the quarterly figures and list the three biggest risks. ")
        .repeat(3)
}

fn assistant_text(i: usize) -> String {
    format!("turn {i}: revenue grew, costs grew faster; risks are churn, pricing and supply. ")
        .repeat(6)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// Runs the workload and returns its JSON report.
pub(crate) fn run(args: &Args) -> Result<serde_json::Value, String> {
    let turns = args.usize_or("turns", 2000)?.max(1);
    let rounds = args.usize_or("rounds", 5)?.max(1);
    let window = args.usize_or("window", 20_000)?.max(1);
    let flavor = args.get("runtime").unwrap_or("multi_thread");
    let rt = match flavor {
        "current_thread" => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        "multi_thread" => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
        other => {
            return Err(format!(
                "--runtime must be current_thread or multi_thread, got `{other}`"
            ));
        }
    }
    .map_err(err)?;
    let scratch = ScratchDir::new(args, "store")?;

    let mut raw = RawTurns::open(&scratch.0.join("raw.db"))?;
    let store = rt.block_on(open_store(&scratch.0.join("store.db")))?;
    rt.block_on(store.create_session(NewSession::new().with_id(SESSION)))
        .map_err(err)?;

    // Warm both paths (statement caches, file growth) before timing.
    raw.run(0, 200)?;
    rt.block_on(store_turns(&store, 0, 200))?;
    let (mut raw_time, mut store_time) = (Duration::ZERO, Duration::ZERO);
    for r in 0..rounds {
        let start = 200 + r * turns;
        let t = Instant::now();
        raw.run(start, turns)?;
        raw_time += t.elapsed();
        let t = Instant::now();
        rt.block_on(store_turns(&store, start, turns))?;
        store_time += t.elapsed();
    }
    rt.block_on(store.close()).map_err(err)?;
    drop(raw);

    let total = (turns * rounds) as f64;
    let raw_tps = total / raw_time.as_secs_f64();
    let store_tps = total / store_time.as_secs_f64();
    let window_db = scratch.0.join("window.db");
    let (open_ms, load_ms) = rt.block_on(cold_load(&window_db, window))?;
    let raw_load_ms = raw_cold_load(&window_db, window)?;
    Ok(json!({
        "workload": "store",
        "store_turns_per_s": store_tps.round(),
        "raw_turns_per_s": raw_tps.round(),
        "ratio_vs_raw": (store_tps / raw_tps * 1000.0).round() / 1000.0,
        "cold_load_ms": (load_ms * 100.0).round() / 100.0,
        "cold_open_ms": (open_ms * 100.0).round() / 100.0,
        "raw_cold_load_ms": (raw_load_ms * 100.0).round() / 100.0,
        "turns_timed": turns * rounds,
        "window_messages": window,
        "sqlite_synchronous": "NORMAL",
        "runtime": flavor,
    }))
}

async fn open_store(path: &Path) -> Result<SessionStore, String> {
    let db = SqliteDatabase::open_file(path, &ConnectOptions::default())
        .await
        .map_err(err)?;
    let db: Arc<dyn Database> = Arc::new(db);
    SessionStore::open_database(db, &StoreOptions::new())
        .await
        .map_err(err)
}

fn turn(i: usize) -> TurnCommit {
    let round = i64::try_from(i).unwrap_or(i64::MAX);
    TurnCommit::new(vec![
        NewMessage::user(user_text(i)).with_round_index(round),
        NewMessage::assistant(assistant_text(i)).with_round_index(round),
    ])
    .with_round_index(round)
    .with_usage(UsageRecord::new(round, Some(120), Some(80), Some(200)).with_model("bench-model"))
    .with_stats(StatsDelta::new(1, 1, 0, 120, 80, 200))
}

async fn store_turns(store: &SessionStore, start: usize, n: usize) -> Result<(), String> {
    for i in start..start + n {
        store.commit_turn(SESSION, turn(i)).await.map_err(err)?;
    }
    Ok(())
}

/// Loads a `window`-message active window from a freshly opened store: (open ms, load ms).
async fn cold_load(path: &Path, window: usize) -> Result<(f64, f64), String> {
    {
        let store = open_store(path).await?;
        store
            .create_session(NewSession::new().with_id(SESSION))
            .await
            .map_err(err)?;
        let mut i = 0;
        while i < window {
            let batch: Vec<NewMessage> = (i..(i + 500).min(window))
                .map(|k| {
                    if k % 2 == 0 {
                        NewMessage::user(user_text(k))
                    } else {
                        NewMessage::assistant(assistant_text(k))
                    }
                })
                .collect();
            i += batch.len();
            store.append_messages(SESSION, batch).await.map_err(err)?;
        }
        store.close().await.map_err(err)?;
    }
    let t = Instant::now();
    let store = open_store(path).await?;
    let opened = t.elapsed();
    let t = Instant::now();
    let (_token, rows) = store.load_active_window(SESSION).await.map_err(err)?;
    let loaded = t.elapsed();
    if rows.len() != window {
        return Err(format!(
            "cold load returned {} rows, expected {window}",
            rows.len()
        ));
    }
    store.close().await.map_err(err)?;
    Ok((opened.as_secs_f64() * 1e3, loaded.as_secs_f64() * 1e3))
}

/// The same window read with raw rusqlite on a fresh connection (for scale): milliseconds.
fn raw_cold_load(path: &Path, window: usize) -> Result<f64, String> {
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
struct RawTurns {
    conn: Connection,
    upsert_usage: String,
    upsert_stats: String,
}

impl RawTurns {
    fn open(path: &Path) -> Result<Self, String> {
        let conn = Connection::open(path).map_err(err)?;
        conn.set_prepared_statement_cache_capacity(256);
        conn.busy_timeout(Duration::from_millis(5000))
            .map_err(err)?;
        conn.execute_batch(
            "PRAGMA auto_vacuum=INCREMENTAL; PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; \
             PRAGMA foreign_keys=ON;",
        )
        .map_err(err)?;
        let d = SqliteDialect;
        for stmt in d.ddl("pl_") {
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
        let upsert_usage = d.upsert(
            "pl_usage_rounds",
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
        );
        let upsert_stats = d.upsert(
            "pl_session_stats",
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
        );
        Ok(RawTurns {
            conn,
            upsert_usage,
            upsert_stats,
        })
    }

    fn run(&mut self, start: usize, n: usize) -> Result<(), String> {
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
        c.prepare_cached(&self.upsert_usage)?.execute(params![
            SESSION,
            round,
            120,
            80,
            200,
            "bench-model",
            now
        ])?;
        c.prepare_cached(&self.upsert_stats)?
            .execute(params![SESSION, now, now, 1, 1, 1, 0, 120, 80, 200, now])?;
        c.prepare_cached("COMMIT")?.execute([])?;
        Ok(())
    }
}
