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

use power_loop::{
    ConnectOptions, Database, NewMessage, NewSession, SessionStore, SqliteDatabase, StatsDelta,
    StoreOptions, TurnCommit, UsageRecord,
};
use serde_json::json;

use self::raw::{RawTurns, raw_cold_load};
use super::ScratchDir;
use crate::args::Args;

mod raw;

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
    rt.block_on(write_window(&window_db, window))?;
    // A freshly opened store reads on its own, new connection thread, whose memory (its malloc
    // arena) is cold: the 20,000 rows are copied into pages that thread faults in. So the raw
    // read is timed on a fresh thread too (`raw_cold_load_ms`: the same rows, read into memory
    // in the same state) and, for reference, on the bench's own thread, whose heap earlier reads
    // have already grown (`raw_cold_load_warm_thread_ms`). The first window read of the process
    // grows the heap, so one untimed raw read goes first; then three rounds of all three cold
    // loads (each on a fresh connection, so SQLite's page cache is cold every time) in
    // alternating order. Medians are reported, with every sample.
    raw_cold_load(&window_db, window)?;
    let mut open = Vec::new();
    let (mut load, mut raw_load, mut raw_warm) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..3 {
        if round % 2 == 1 {
            raw_load.push(raw_cold_load_on_fresh_thread(&window_db, window)?);
            raw_warm.push(raw_cold_load(&window_db, window)?);
        }
        let (o, l) = rt.block_on(cold_load(&window_db, window))?;
        open.push(o);
        load.push(l);
        if round % 2 == 0 {
            raw_warm.push(raw_cold_load(&window_db, window)?);
            raw_load.push(raw_cold_load_on_fresh_thread(&window_db, window)?);
        }
    }
    let round2 = |v: &[f64]| {
        v.iter()
            .map(|x| (x * 100.0).round() / 100.0)
            .collect::<Vec<_>>()
    };
    let (load_samples, raw_samples) = (round2(&load), round2(&raw_load));
    let raw_warm_samples = round2(&raw_warm);
    let (open_ms, load_ms, raw_load_ms) = (median(open), median(load), median(raw_load));
    let raw_warm_ms = median(raw_warm);
    Ok(json!({
        "workload": "store",
        "store_turns_per_s": store_tps.round(),
        "raw_turns_per_s": raw_tps.round(),
        "ratio_vs_raw": (store_tps / raw_tps * 1000.0).round() / 1000.0,
        "cold_load_ms": (load_ms * 100.0).round() / 100.0,
        "cold_open_ms": (open_ms * 100.0).round() / 100.0,
        "raw_cold_load_ms": (raw_load_ms * 100.0).round() / 100.0,
        "cold_load_samples_ms": load_samples,
        "raw_cold_load_samples_ms": raw_samples,
        "cold_load_ratio_vs_raw": (load_ms / raw_load_ms * 100.0).round() / 100.0,
        "raw_cold_load_warm_thread_ms": (raw_warm_ms * 100.0).round() / 100.0,
        "raw_cold_load_warm_thread_samples_ms": raw_warm_samples,
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
/// The median of a few timings.
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Writes the `window`-message session the cold loads read.
async fn write_window(path: &Path, window: usize) -> Result<(), String> {
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
    Ok(())
}

/// [`raw_cold_load`] on a new thread, as a freshly opened store reads on its new connection
/// thread.
fn raw_cold_load_on_fresh_thread(path: &Path, window: usize) -> Result<f64, String> {
    let path = path.to_owned();
    std::thread::spawn(move || raw_cold_load(&path, window))
        .join()
        .map_err(|_| "the raw read's thread panicked".to_owned())?
}

/// Opens the store on `path` and loads the session's active window: (open ms, load ms).
async fn cold_load(path: &Path, window: usize) -> Result<(f64, f64), String> {
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
