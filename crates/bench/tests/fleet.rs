//! W7 and the two-process fight, run small through the real bench binary: every session must
//! hold exactly its acknowledged turns (0 lease violations) and no send may fail. The SQLite
//! runs always run (file leases are cross-process too); the PostgreSQL runs need
//! `POWER_LOOP_TEST_PG_DSN` and are skipped without it, unless `POWER_LOOP_REQUIRE_SERVERS=1`,
//! which makes a missing DSN a failure. Nothing here is timed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use serde_json::Value;

/// The PostgreSQL test DSN, `None` (after saying so) when the test is skipped.
fn pg_dsn() -> Option<String> {
    match std::env::var("POWER_LOOP_TEST_PG_DSN") {
        Ok(d) if !d.trim().is_empty() => Some(d),
        _ => {
            assert!(
                std::env::var("POWER_LOOP_REQUIRE_SERVERS").as_deref() != Ok("1"),
                "POWER_LOOP_REQUIRE_SERVERS=1 but POWER_LOOP_TEST_PG_DSN is not set \
                 (e.g. postgres://postgres@127.0.0.1:5432/test)"
            );
            eprintln!("skipped: POWER_LOOP_TEST_PG_DSN is not set");
            None
        }
    }
}

/// Runs the bench with `args` and returns its one JSON line (fails on a non-zero exit).
fn bench(args: &[&str]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_power-loop-bench"))
        .args(args)
        .output()
        .expect("the bench binary starts");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "power-loop-bench {args:?} failed ({}):\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one JSON line expected, got {stdout}");
    serde_json::from_str(lines[0]).unwrap()
}

fn n(v: &Value, key: &str) -> u64 {
    v.get(key)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("`{key}` missing or not a count in {v}"))
}

/// 40 sessions × 2 sends over 1 and 2 workers: every turn checked, none violated.
fn small_w7(dsn_args: &[&str]) {
    let mut args = vec!["--workload", "W7", "--sessions", "40", "--sends", "2"];
    args.extend(["--workers", "1,2", "--latency-ms", "5", "--in-flight", "4"]);
    args.extend(dsn_args);
    let v = bench(&args);
    assert_eq!(v["workload"], "W7");
    assert_eq!(n(&v, "lease_violations"), 0, "{v}");
    assert_eq!(n(&v, "send_failures"), 0, "{v}");
    // Two runs (1 and 2 workers) of 40 sessions, each holding 2 turns = 4 messages.
    assert_eq!(n(&v, "sessions_checked"), 80, "{v}");
    assert_eq!(n(&v, "messages_checked"), 80 * 4, "{v}");
    let rates = v["sends_per_s_by_workers"].as_object().unwrap();
    assert_eq!(rates.len(), 2, "{v}");
    assert!(rates.values().all(|r| r.as_f64().unwrap() > 0.0), "{v}");
    // No 4-worker run here, so no 4-vs-1 figure.
    assert!(v["scaling_4_vs_1"].is_null(), "{v}");
}

/// Two workers × 10 sessions × 3 sends each, in the same order: they collide on every session.
fn fight(dsn_args: &[&str]) {
    let mut args = vec![
        "--workload",
        "W7",
        "--fight",
        "--sessions",
        "10",
        "--sends",
        "3",
    ];
    args.extend(["--latency-ms", "5"]);
    args.extend(dsn_args);
    let v = bench(&args);
    assert_eq!(v["workload"], "W7-fight");
    assert_eq!(n(&v, "lease_violations"), 0, "{v}");
    assert_eq!(n(&v, "send_failures"), 0, "{v}");
    assert_eq!(n(&v, "sends"), 2 * 10 * 3, "{v}");
    assert_eq!(n(&v, "sessions_checked"), 10, "{v}");
    // Every session holds both workers' 3 turns: 12 messages.
    assert_eq!(n(&v, "messages_checked"), 10 * 12, "{v}");
    // Both workers start on the same 8 sessions at once and each send holds the lease for at
    // least the model's 5 ms: the other worker's send to that session is refused and retried.
    assert!(
        n(&v, "lease_held_retries") > 0,
        "the workers never collided: {v}"
    );
}

#[test]
fn w7_small_on_sqlite_holds_exactly_the_acknowledged_turns() {
    small_w7(&[]);
}

#[test]
fn fight_on_sqlite_holds_exactly_the_acknowledged_turns() {
    fight(&[]);
}

#[test]
fn w7_small_on_postgres_holds_exactly_the_acknowledged_turns() {
    let Some(dsn) = pg_dsn() else { return };
    small_w7(&["--dsn", &dsn]);
}

#[test]
fn fight_on_postgres_holds_exactly_the_acknowledged_turns() {
    let Some(dsn) = pg_dsn() else { return };
    fight(&["--dsn", &dsn]);
}
