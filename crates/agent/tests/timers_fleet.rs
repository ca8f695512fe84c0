//! Several timer runners on one database: each due firing happens exactly once.
//!
//! PostgreSQL and MySQL/MariaDB (`POWER_LOOP_TEST_PG_DSN`, `POWER_LOOP_TEST_MYSQL_DSN`; skipped when
//! unset, failing instead with `POWER_LOOP_REQUIRE_SERVERS=1`): 200 due timers in 200 sessions,
//! two runner *processes* (this test binary re-executed on an ignored test) plus a third process
//! that claims a batch and is SIGKILLed mid-delivery; after the lease the survivors take the
//! crashed claims over. Counted in the store: every timer `fired` with `fire_count == 1` and
//! exactly one delivered note per session (200 in all).
//!
//! SQLite: two runners with separate store handles in separate tokio runtimes on separate
//! threads, same 200-timer check.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use power_loop_agent::{
    NewSessionOptions, StatefulAgentLoop, TimerDue, TimerRunner, TimerRunnerOptions,
};
use power_loop_llm::ScriptedLlm;
use power_loop_store::{SessionStore, now_ms, timer_status};
use support::*;

const TIMERS: usize = 200;

/// Creates `TIMERS` sessions with one timer each, all due now; returns the session ids.
async fn seed(store: &SessionStore) -> Vec<String> {
    let lp = StatefulAgentLoop::new(Arc::new(ScriptedLlm::new()), store.clone());
    let mut sids = Vec::with_capacity(TIMERS);
    for i in 0..TIMERS {
        let sid = lp.new_session(NewSessionOptions::default()).await.unwrap();
        lp.schedule_timer(
            &sid,
            TimerDue::AtMs(now_ms() - 1),
            &format!("job {i}"),
            None,
        )
        .await
        .unwrap();
        sids.push(sid);
    }
    sids
}

/// Polls until nothing is claimable; returns how many firings this runner completed as
/// (delivered now, found already delivered by a crashed runner).
async fn drain(store: SessionStore, lease: Duration, start_at_ms: i64) -> (usize, usize) {
    let lp = StatefulAgentLoop::new(Arc::new(ScriptedLlm::new()), store.clone());
    let runner = TimerRunner::new(
        lp,
        TimerRunnerOptions::default()
            .with_lease(lease)
            .with_batch_limit(8)
            .with_concurrency(4),
    );
    let wait = start_at_ms - now_ms();
    if wait > 0 {
        tokio::time::sleep(Duration::from_millis(wait.unsigned_abs())).await;
    }
    let (mut delivered, mut dedup) = (0, 0);
    let mut idle_polls = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while idle_polls < 5 && Instant::now() < deadline {
        let fired = runner.run_once(now_ms()).await.unwrap();
        if fired.is_empty() {
            let left = store.due_timers(None, 1).await.unwrap().len()
                + count_status(&store, timer_status::FIRING).await;
            idle_polls = if left == 0 { idle_polls + 1 } else { 0 };
            tokio::time::sleep(Duration::from_millis(50)).await;
        } else {
            idle_polls = 0;
            delivered += fired.iter().filter(|f| !f.deduplicated).count();
            dedup += fired.iter().filter(|f| f.deduplicated).count();
        }
    }
    (delivered, dedup)
}

async fn count_status(store: &SessionStore, status: &str) -> usize {
    // Cross-session view through the claimable/due queries is not enough for `firing` rows;
    // sessions are few enough here to ask each one.
    let mut n = 0;
    for s in store.list_sessions(10_000).await.unwrap() {
        n += store
            .list_timers(&s.session_id, &[status])
            .await
            .unwrap()
            .len();
    }
    n
}

/// Every timer fired exactly once and every session holds exactly one delivered note.
async fn assert_exactly_once(store: &SessionStore, sids: &[String]) {
    let mut notes = 0;
    for sid in sids {
        let t = store.get_timer(sid, 1).await.unwrap().unwrap();
        assert_eq!(t.status, timer_status::FIRED, "{sid}");
        assert_eq!(t.fire_count, 1, "{sid}: fired more than once");
        let n = store
            .load_all_messages(sid)
            .await
            .unwrap()
            .iter()
            .filter(|m| {
                m.role == "user"
                    && m.content
                        .as_deref()
                        .unwrap_or("")
                        .starts_with("<timer id=1>")
            })
            .count();
        assert_eq!(n, 1, "{sid}: {n} deliveries");
        notes += n;
    }
    assert_eq!(notes, TIMERS);
}

/// Runs only inside a child process: one runner draining the shared PostgreSQL tables.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "child process of the timer fleet test"]
async fn child_timer_runner() {
    let (Ok(dsn), Ok(prefix)) = (
        std::env::var("PL_TIMER_DSN"),
        std::env::var("PL_TIMER_PREFIX"),
    ) else {
        return;
    };
    let start_at: i64 = std::env::var("PL_TIMER_START_AT").unwrap().parse().unwrap();
    let lease_ms: u64 = std::env::var("PL_TIMER_LEASE_MS").unwrap().parse().unwrap();
    let store = server_at(&dsn, &prefix).await;
    if std::env::var("PL_TIMER_HANG").is_ok() {
        // The crashing runner: claims a batch, delivers into a model that never answers.
        let lp = StatefulAgentLoop::new(
            Arc::new(ScriptedLlm::new().with_delay(Duration::from_secs(3600))),
            store,
        );
        let runner = TimerRunner::new(
            lp,
            TimerRunnerOptions::default()
                .with_lease(Duration::from_millis(lease_ms))
                .with_batch_limit(6)
                .with_concurrency(6),
        );
        println!("HANGING");
        let _ = runner.run_once(now_ms()).await;
        return;
    }
    let (n, d) = drain(store, Duration::from_millis(lease_ms), start_at).await;
    println!("DELIVERED={n}");
    println!("DEDUPLICATED={d}");
}

fn spawn_child(
    dsn: &str,
    prefix: &str,
    start_at: i64,
    lease_ms: u64,
    hang: bool,
) -> std::process::Child {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "child_timer_runner", "--ignored", "--nocapture"])
        .env("PL_TIMER_DSN", dsn)
        .env("PL_TIMER_PREFIX", prefix)
        .env("PL_TIMER_START_AT", start_at.to_string())
        .env("PL_TIMER_LEASE_MS", lease_ms.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if hang {
        cmd.env("PL_TIMER_HANG", "1");
    }
    cmd.spawn().unwrap()
}

/// Opens PostgreSQL or MySQL (by the DSN's scheme) with this table prefix.
async fn server_at(dsn: &str, prefix: &str) -> SessionStore {
    power_loop_store::open_store(
        dsn,
        power_loop_store::StoreOptions::default().with_table_prefix(prefix),
        &[
            power_loop_store_postgres::BACKEND,
            power_loop_store_mysql::BACKEND,
        ],
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runner_processes_on_postgres_fire_200_timers_exactly_once() {
    let Some(dsn) = power_loop_store::conformance::support::pg_dsn() else {
        return;
    };
    fleet(&dsn).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_runner_processes_on_mysql_fire_200_timers_exactly_once() {
    let Some(dsn) = power_loop_store::conformance::support::mysql_dsn() else {
        return;
    };
    fleet(&dsn).await;
}

/// Two runner processes and one killed claimer over the server at `dsn`.
async fn fleet(dsn: &str) {
    let dsn = dsn.to_owned();
    let prefix = unique_prefix("tmrfleet");
    let store = server_at(&dsn, &prefix).await;
    let sids = seed(&store).await;
    let lease_ms = 3_000;

    // A runner that claims a batch and is killed mid-delivery.
    let mut crasher = spawn_child(&dsn, &prefix, 0, lease_ms, true);
    let mut out = BufReader::new(crasher.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("HANGING") {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "crasher exited early"
        );
    }
    let t0 = Instant::now();
    while count_status(&store, timer_status::FIRING).await < 6 {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "crasher never claimed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    crasher.kill().unwrap(); // SIGKILL with 6 claims held
    crasher.wait().unwrap();

    let start_at = now_ms() + 1_500;
    let children: Vec<_> = (0..2)
        .map(|_| spawn_child(&dsn, &prefix, start_at, lease_ms, false))
        .collect();
    let mut counts = Vec::new();
    let mut dedups = 0;
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "runner process failed");
        let text = String::from_utf8_lossy(&o.stdout);
        let field = |k: &str| -> usize {
            text.lines()
                .find_map(|l| l.strip_prefix(k))
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        };
        counts.push(field("DELIVERED="));
        dedups += field("DEDUPLICATED=");
    }
    println!(
        "deliveries per runner process: {counts:?}; crashed claims found already delivered: {dedups}"
    );
    assert_exactly_once(&store, &sids).await;
    // Every firing was completed once by a survivor: delivered fresh, or (a note the killed
    // runner had already persisted) completed without a second delivery.
    assert_eq!(counts.iter().sum::<usize>() + dedups, TIMERS);
    assert!(dedups <= 6);
    assert!(
        counts.iter().all(|n| *n > 0),
        "both runners took part: {counts:?}"
    );
}

#[test]
fn two_runners_on_separate_runtimes_fire_200_sqlite_timers_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fleet.db").to_str().unwrap().to_owned();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sids = rt.block_on(async { seed(&sqlite_at(&path).await).await });
    let start_at = now_ms() + 300;
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    drain(sqlite_at(&path).await, Duration::from_secs(60), start_at).await
                })
            })
        })
        .collect();
    let counts: Vec<(usize, usize)> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    println!("(delivered, deduplicated) per runner: {counts:?}");
    assert_eq!(counts.iter().map(|c| c.0).sum::<usize>(), TIMERS);
    assert!(counts.iter().all(|c| c.1 == 0));
    rt.block_on(async { assert_exactly_once(&sqlite_at(&path).await, &sids).await });
}
