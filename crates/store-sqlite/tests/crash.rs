//! Crash test: a child process appends messages in a loop and is killed with SIGKILL at random
//! moments; after every kill the store reopens with gap-free seqs, no torn row, and every append
//! the child reported as committed present.
//!
//! The child is this same test binary re-executed with `crash_child --exact --ignored` and the
//! database path in `POWER_LOOP_CRASH_CHILD_DB`; it prints `COMMITTED <seq>` (flushed) only after
//! the append returned `Ok`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
use support::open_store as open;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use power_loop_store::{NewMessage, NewSession};
use rand::Rng;

const CHILD_ENV: &str = "POWER_LOOP_CRASH_CHILD_DB";
const SESSION: &str = "crash-session";
const KILLS: usize = 32;

/// The deterministic content of message `seq` (sizes vary so rows span pages differently).
fn content_for(seq: i64) -> String {
    let body = "0123456789abcdef".repeat(usize::try_from(seq % 97 + 1).unwrap() * 4);
    format!("seq={seq};{body};end={seq}")
}

/// The child: appends forever (1–3 messages per transaction) until killed.
#[test]
#[ignore = "child process of sigkill_during_appends_never_loses_or_tears_commits"]
fn crash_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        eprintln!("crash_child only runs as the child of the crash test");
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let store = open(Path::new(&path)).await;
        if store.get_session(SESSION).await.unwrap().is_none() {
            store
                .create_session(NewSession::new().with_id(SESSION))
                .await
                .unwrap();
        }
        let mut next = store.get_state(SESSION).await.unwrap().unwrap().next_seq;
        let mut out = std::io::stdout().lock();
        let mut rng = rand::rng();
        loop {
            let n: i64 = rng.random_range(1..=3);
            let msgs = (next..next + n)
                .map(|s| NewMessage::user(content_for(s)))
                .collect();
            let seqs = store.append_messages(SESSION, msgs).await.unwrap();
            assert_eq!(seqs, (next..next + n).collect::<Vec<_>>());
            for s in seqs {
                writeln!(out, "COMMITTED {s}").unwrap();
            }
            out.flush().unwrap();
            next += n;
        }
    });
}

/// Verifies the store after a kill; returns the number of messages.
async fn verify(path: &Path, reported: i64) -> i64 {
    let store = open(path).await;
    if store.get_session(SESSION).await.unwrap().is_none() {
        assert_eq!(
            reported, 0,
            "a commit was reported but the session is missing"
        );
        store.close().await.unwrap();
        return 0;
    }
    let rows = store.load_all_messages(SESSION).await.unwrap();
    let n = i64::try_from(rows.len()).unwrap();
    for (i, row) in rows.iter().enumerate() {
        let want = i64::try_from(i).unwrap() + 1;
        assert_eq!(row.seq, want, "seqs must be gap-free 1..=n");
        assert_eq!(
            row.content.as_deref(),
            Some(content_for(want).as_str()),
            "torn row at seq {want}"
        );
    }
    assert!(
        n >= reported,
        "child reported seq {reported} committed but only {n} rows survived"
    );
    let state = store.get_state(SESSION).await.unwrap().unwrap();
    assert_eq!(state.next_seq, n + 1, "next_seq must follow the last row");
    store.close().await.unwrap();
    n
}

#[test]
fn sigkill_during_appends_never_loses_or_tears_commits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crash.db");
    let exe = std::env::current_exe().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut rng = rand::rng();
    let started = Instant::now();
    let mut last_n = 0;
    let mut mid_append_kills = 0;
    for round in 0..KILLS {
        let mut child = Command::new(&exe)
            .args([
                "crash_child",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel::<i64>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let seq = line
                    .strip_prefix("COMMITTED ")
                    .and_then(|s| s.trim().parse().ok());
                if let Some(seq) = seq
                    && tx.send(seq).is_err()
                {
                    break;
                }
            }
        });
        let mut reported = 0;
        if round % 6 == 5 {
            // Kill early: during start-up, schema boot or the first appends.
            std::thread::sleep(Duration::from_millis(rng.random_range(0..15)));
        } else {
            // Kill while appending: wait for the first commit, then a random short delay.
            match rx.recv_timeout(Duration::from_secs(20)) {
                Ok(seq) => {
                    reported = seq;
                    mid_append_kills += 1;
                }
                Err(e) => {
                    let _ = child.kill();
                    panic!("child reported no commit within 20 s: {e}");
                }
            }
            std::thread::sleep(Duration::from_millis(rng.random_range(1..40)));
        }
        child.kill().unwrap(); // SIGKILL on Unix
        let status = child.wait().unwrap();
        assert!(!status.success(), "the child must die by the signal");
        reader.join().unwrap();
        reported = reported.max(rx.try_iter().max().unwrap_or(0));
        let n = rt.block_on(verify(&path, reported));
        assert!(n >= last_n, "rows disappeared: {last_n} -> {n}");
        last_n = n;
    }
    eprintln!(
        "{KILLS} SIGKILLs ({mid_append_kills} mid-append), {last_n} messages survived, {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(last_n > 0);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "crash test exceeded its time budget"
    );
}
