//! Group commit survives SIGKILL: a child process (this test binary re-executed on an ignored
//! test) drives many sessions at once on one SQLite file, so that their turns are committed in
//! shared transactions (group commit), and prints `ACK <session> <n>` once each send returned
//! `Completed`. It also prints the writer's group counters, so the parent can check that turns
//! really were committed in groups. The parent SIGKILLs it at a random moment after a random
//! number of acks, several rounds on the same sessions, and checks from its own store handle
//! that, for every session:
//! * every acknowledged send is stored, complete (user message + final answer), exactly once and
//!   in order after what the earlier rounds left;
//! * besides those, at most the one send that was in flight at the kill is stored, and only as
//!   a prefix of its own rows (no torn or half-written turn, no duplicate);
//! * the transcript is well formed (gap-free seqs, no row without its user message).
//!
//! Run at `synchronous=FULL` (durable across power loss) and at `NORMAL` (durable across a
//! process crash, which is what SIGKILL tests; power loss may lose the last NORMAL commits).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/durability.rs"]
mod durability;

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use durability::{KillPoint, child_command, run_and_kill, well_formed};
use power_loop_agent::{NewSessionOptions, RunStatus, StatefulAgentLoop};
use power_loop_llm::{Fallback, ScriptedLlm};
use power_loop_store::backend::{ConnectOptions, SqliteSync};
use power_loop_store::db::Database;
use power_loop_store::{SessionStore, StoreOptions};
use power_loop_store_sqlite::SqliteDatabase;

const CHILD: &str = "group_commit_child";
/// Sessions driven at once by the child.
const SESSIONS: usize = 24;
/// A child never sends more than this per session (it is killed long before).
const CHILD_MAX_SENDS: u64 = 5_000;
const ANSWER_PREFIX: &str = "answer to ";

fn label(round: u32, session: usize, n: u64) -> String {
    format!("r{round} s{session} msg {n}")
}

fn sync_name(sync: SqliteSync) -> &'static str {
    match sync {
        SqliteSync::Full => "FULL",
        SqliteSync::Normal => "NORMAL",
    }
}

/// Opens the store on `path` at `sync`; also returns the SQLite handle (its group counters).
async fn open(path: &str, sync: SqliteSync) -> (SessionStore, Arc<SqliteDatabase>) {
    let mut connect = ConnectOptions::default();
    connect.sqlite_sync = sync;
    let db = Arc::new(SqliteDatabase::open_file(path, &connect).await.unwrap());
    let store = SessionStore::open_database(
        Arc::clone(&db) as Arc<dyn Database>,
        &StoreOptions::default(),
    )
    .await
    .unwrap();
    (store, db)
}

/// Runs only inside the child process: one task per session sends until killed, acking each
/// completed send; a reporter prints the group counters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "child process of the group-commit SIGKILL tests"]
async fn group_commit_child() {
    let Ok(path) = std::env::var("PL_GC_DB") else {
        return;
    };
    let sync = match std::env::var("PL_GC_SYNC").unwrap().as_str() {
        "FULL" => SqliteSync::Full,
        _ => SqliteSync::Normal,
    };
    let round: u32 = std::env::var("PL_GC_ROUND").unwrap().parse().unwrap();
    let sids: Vec<String> = std::env::var("PL_GC_SIDS")
        .unwrap()
        .split(',')
        .map(str::to_owned)
        .collect();
    let (store, db) = open(&path, sync).await;
    let llm = ScriptedLlm::new()
        .fallback(Fallback::EchoWithPrefix(ANSWER_PREFIX.to_owned()))
        .record_requests(false);
    let lp = StatefulAgentLoop::builder(Arc::new(llm))
        .store(store)
        .build()
        .unwrap();
    let out = Arc::new(std::sync::Mutex::new(std::io::stdout()));
    let reporter = {
        let out = Arc::clone(&out);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(20)).await;
                let s = db.group_commit_stats();
                let mut o = out.lock().unwrap();
                writeln!(o, "GROUPS {} {} {}", s.bodies, s.groups, s.largest_group).unwrap();
                o.flush().unwrap();
            }
        })
    };
    let mut tasks = Vec::new();
    for (i, sid) in sids.into_iter().enumerate() {
        let lp = lp.clone();
        let out = Arc::clone(&out);
        tasks.push(tokio::spawn(async move {
            for n in 0..CHILD_MAX_SENDS {
                let l = label(round, i, n);
                let r = lp.send(&sid, l.as_str()).await.unwrap();
                assert_eq!(r.status, RunStatus::Completed, "{r:?}");
                assert_eq!(r.final_text, format!("{ANSWER_PREFIX}{l}"));
                let mut o = out.lock().unwrap();
                writeln!(o, "ACK {i} {n}").unwrap();
                o.flush().unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    reporter.abort();
}

/// What one child run reported before it was killed.
struct ChildRun {
    /// Acknowledged send numbers per session index, in ack order.
    acks: BTreeMap<usize, Vec<u64>>,
    /// The last group counters printed: (bodies, groups, largest group).
    groups: Option<(u64, u64, u64)>,
}

/// Spawns the child and SIGKILLs it at `kill` (acks counted over all sessions).
fn run_child_and_kill(
    path: &str,
    sync: SqliteSync,
    sids: &[String],
    round: u32,
    kill: KillPoint,
) -> ChildRun {
    let mut cmd = child_command(CHILD);
    cmd.env("PL_GC_DB", path)
        .env("PL_GC_SYNC", sync_name(sync))
        .env("PL_GC_ROUND", round.to_string())
        .env("PL_GC_SIDS", sids.join(","));
    let run = ChildRun {
        acks: BTreeMap::new(),
        groups: None,
    };
    let wait = Duration::from_secs(120);
    let run = run_and_kill(cmd, kill, wait, run, |run, line| {
        if let Some((_, rest)) = line.split_once("ACK ") {
            let mut it = rest.split_whitespace().map(|x| x.parse::<u64>().unwrap());
            let (i, n) = (it.next().unwrap(), it.next().unwrap());
            run.acks
                .entry(usize::try_from(i).unwrap())
                .or_default()
                .push(n);
            return true;
        }
        if let Some((_, rest)) = line.split_once("GROUPS ") {
            let v: Vec<u64> = rest
                .split_whitespace()
                .map(|x| x.parse().unwrap())
                .collect();
            run.groups = Some((v[0], v[1], v[2]));
        }
        false
    });
    for (i, acks) in &run.acks {
        let want: Vec<u64> = (0..acks.len() as u64).collect();
        assert_eq!(acks, &want, "session {i}: acks out of order");
    }
    run
}

/// Checks every session after a kill; returns the labels now stored per session (the baseline
/// of the next round).
async fn verify(
    probe: &SessionStore,
    sids: &[String],
    round: u32,
    run: &ChildRun,
    before: &[Vec<String>],
) -> Vec<Vec<String>> {
    let mut now = Vec::with_capacity(sids.len());
    for (i, sid) in sids.iter().enumerate() {
        let rows = probe.load_all_messages(sid).await.unwrap();
        let pending = probe.get_pending(sid).await.unwrap();
        let groups = well_formed(&rows, pending.as_ref());
        let labels: Vec<String> = groups.iter().map(|g| g.label().to_owned()).collect();
        let acked = run.acks.get(&i).map_or(0, Vec::len) as u64;
        let mut want: Vec<String> = before[i].clone();
        want.extend((0..acked).map(|n| label(round, i, n)));
        assert!(
            labels.len() == want.len() || labels.len() == want.len() + 1,
            "session {i}: {} sends stored, {} acknowledged in total (at most one more may be \
             stored: the send in flight at the kill)\nstored: {labels:?}",
            labels.len(),
            want.len()
        );
        let in_flight = label(round, i, acked);
        assert_eq!(
            labels[..want.len()],
            want[..],
            "session {i}: an acknowledged send is missing, out of order or duplicated"
        );
        // Earlier rounds' sends were checked when they were first seen.
        for (g, l) in groups.iter().zip(&labels).skip(before[i].len()) {
            let full = vec![format!("assistant:{ANSWER_PREFIX}{l}")];
            let shape = g.shape();
            if l == &in_flight && labels.len() > want.len() {
                // The unacknowledged send: absent, or a prefix of its own rows.
                assert!(
                    shape.len() <= full.len() && shape[..] == full[..shape.len()],
                    "session {i}: the in-flight send {l} stored {shape:?}"
                );
            } else {
                assert_eq!(shape, full, "session {i}: send {l} is not intact");
            }
        }
        if labels.len() > want.len() {
            assert_eq!(
                labels.last(),
                Some(&in_flight),
                "session {i}: an unacknowledged send other than the one in flight is stored"
            );
        }
        now.push(labels);
    }
    now
}

async fn scenario(sync: SqliteSync, rounds: u32) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("group.db").to_str().unwrap().to_owned();
    let (store, db) = open(&path, sync).await;
    let lp = StatefulAgentLoop::new(Arc::new(ScriptedLlm::new()), store.clone());
    let mut sids = Vec::with_capacity(SESSIONS);
    for _ in 0..SESSIONS {
        sids.push(lp.new_session(NewSessionOptions::default()).await.unwrap());
    }
    // The parent's handle stays closed while the child writes (one writer process per file).
    store.close().await.unwrap();
    db.close().await.unwrap();
    let mut baseline: Vec<Vec<String>> = vec![Vec::new(); SESSIONS];
    let mut grouped = false;
    for round in 0..rounds {
        let kill = KillPoint::random(150, 150, 5_000);
        let run = run_child_and_kill(&path, sync, &sids, round, kill);
        let (probe, probe_db) = open(&path, sync).await;
        baseline = verify(&probe, &sids, round, &run, &baseline).await;
        probe.close().await.unwrap();
        probe_db.close().await.unwrap();
        let acks: usize = run.acks.values().map(Vec::len).sum();
        eprintln!(
            "{} round {round}: {acks} acks, killed {:?} after {}; writer counters \
             (bodies, groups, largest group): {:?}",
            sync_name(sync),
            kill.delay,
            kill.after_acks,
            run.groups
        );
        if let Some((bodies, groups, largest)) = run.groups {
            grouped |= largest > 1 && bodies > groups;
        }
    }
    assert!(
        grouped,
        "no round committed two turns in one transaction: group commit was not exercised"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acked_sends_survive_sigkill_with_group_commit_at_full() {
    scenario(SqliteSync::Full, 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acked_sends_survive_sigkill_with_group_commit_at_normal() {
    scenario(SqliteSync::Normal, 2).await;
}
