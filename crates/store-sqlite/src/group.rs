//! Group commit: write transactions that are queued together are committed in ONE SQLite
//! transaction (one `COMMIT`, so one fsync at `synchronous=FULL`).
//!
//! The connection thread collects the write bodies that are waiting when it gets to them (never
//! waiting for more to arrive, at most [`MAX_GROUP`]), then:
//! * one body: `BEGIN IMMEDIATE`, body, `COMMIT` — exactly the single-writer path;
//! * several: `BEGIN IMMEDIATE`, each body inside its own `SAVEPOINT` (a body that returns `Err`
//!   or panics is rolled back to its savepoint and fails alone), one `COMMIT`, then every caller
//!   gets its reply. A caller is acknowledged only after the `COMMIT` returned; if the `COMMIT`
//!   fails, every body of the group gets the error (nothing is acknowledged that is not durable).
//!
//! A body whose failure makes SQLite abort the whole transaction (an I/O error, a full disk)
//! takes the group's earlier bodies down with it: they get an error naming the cause (they were
//! not committed), and the bodies after it run in a fresh transaction.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};

use power_loop_contracts::{Error, Result};
use power_loop_store::db::{TxBody, TxMode};
use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::error::map_sqlite;
use crate::tx::{SqliteTx, panic_message, rollback_quietly, run_transaction};

/// The most write bodies committed by one transaction: bounds a group's latency (every body of
/// a group waits for the group's last one) while amortising the commit over many turns.
pub(crate) const MAX_GROUP: usize = 128;

/// The savepoint each body of a group runs in.
const SAVEPOINT: &str = "SAVEPOINT pl_group_body";
const ROLLBACK_TO: &str = "ROLLBACK TO pl_group_body";
const RELEASE: &str = "RELEASE pl_group_body";

/// One queued write transaction: its body and where its outcome goes.
pub(crate) struct WriteJob {
    /// The body to run.
    pub(crate) body: TxBody,
    /// The caller's reply slot (sent only after the commit returned).
    pub(crate) reply: oneshot::Sender<Result<()>>,
}

/// Counters of the group-commit writer of one database (see
/// [`crate::SqliteDatabase::group_commit_stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupCommitStats {
    /// Write bodies handed to the connection thread so far.
    pub queued: u64,
    /// Write bodies the connection thread has run (committed, or failed alone).
    pub bodies: u64,
    /// Write transactions those bodies ran in: each is one `COMMIT` (one fsync at
    /// `synchronous=FULL`). `bodies / groups` is the mean group size.
    pub groups: u64,
    /// The most bodies one transaction has held.
    pub largest_group: u64,
}

/// The live counters behind [`GroupCommitStats`].
#[derive(Debug, Default)]
pub(crate) struct GroupCounters {
    queued: AtomicU64,
    bodies: AtomicU64,
    groups: AtomicU64,
    largest_group: AtomicU64,
}

impl GroupCounters {
    /// Counts a body handed to the connection thread.
    pub(crate) fn queued(&self) {
        self.queued.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one transaction of `n` bodies.
    fn record(&self, n: usize) {
        let n = n as u64;
        self.bodies.fetch_add(n, Ordering::Relaxed);
        self.groups.fetch_add(1, Ordering::Relaxed);
        self.largest_group.fetch_max(n, Ordering::Relaxed);
    }

    /// A snapshot.
    pub(crate) fn snapshot(&self) -> GroupCommitStats {
        GroupCommitStats {
            queued: self.queued.load(Ordering::Relaxed),
            bodies: self.bodies.load(Ordering::Relaxed),
            groups: self.groups.load(Ordering::Relaxed),
            largest_group: self.largest_group.load(Ordering::Relaxed),
        }
    }
}

/// A copy of `e` (code, message and details) for another caller of the same group.
fn copy_error(e: &Error) -> Error {
    e.details()
        .iter()
        .fold(Error::new(e.code(), e.message()), |acc, (k, v)| {
            acc.with_detail(k, v.clone())
        })
}

/// The error of a body that succeeded but whose transaction SQLite aborted because of another
/// body of the group.
fn lost_with(cause: &Error) -> Error {
    Error::new(
        cause.code(),
        format!(
            "sqlite: this write was not committed: another write of the same group commit failed \
             in a way that made SQLite abort the whole transaction ({}); retry it",
            cause.message()
        ),
    )
}

fn exec(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)
        .and_then(|mut s| s.execute([]))
        .map(|_| ())
}

/// Runs one body inside its own savepoint of the open group transaction. On `Err` or a panic
/// the body's writes are rolled back to the savepoint (the rest of the group is untouched); if
/// the savepoint itself cannot be managed, the whole transaction is rolled back (the caller sees
/// `conn.is_autocommit()`).
fn run_in_savepoint(conn: &mut Connection, body: TxBody) -> Result<()> {
    if let Err(e) = exec(conn, SAVEPOINT) {
        rollback_quietly(conn);
        return Err(map_sqlite(e, "starting a savepoint of a group commit"));
    }
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let mut tx = SqliteTx::new(conn);
        body(&mut tx)
    }));
    let result = match outcome {
        Ok(r) => r,
        Err(payload) => Err(Error::internal(format!(
            "sqlite: a transaction body panicked ({}); its writes were rolled back",
            panic_message(payload.as_ref())
        ))),
    };
    match result {
        Ok(()) => exec(conn, RELEASE).map_err(|e| {
            rollback_quietly(conn);
            map_sqlite(e, "releasing a savepoint of a group commit")
        }),
        Err(e) => {
            // SQLite may already have rolled the whole transaction back (I/O error, full disk).
            if !conn.is_autocommit()
                && (exec(conn, ROLLBACK_TO).is_err() || exec(conn, RELEASE).is_err())
            {
                rollback_quietly(conn);
            }
            Err(e)
        }
    }
}

/// Sends every outcome (the callers may have stopped waiting: ignored).
fn reply_all(done: Vec<(oneshot::Sender<Result<()>>, Result<()>)>) {
    for (reply, r) in done {
        let _ = reply.send(r);
    }
}

/// Runs a group of write bodies (see the module docs) and replies to each caller.
pub(crate) fn commit_group(conn: &mut Connection, jobs: Vec<WriteJob>, counters: &GroupCounters) {
    // A caller that stopped waiting before its write started has its write skipped.
    let mut jobs: Vec<WriteJob> = jobs.into_iter().filter(|j| !j.reply.is_closed()).collect();
    if jobs.len() <= 1 {
        if let Some(job) = jobs.pop() {
            let r = run_transaction(conn, TxMode::Write, job.body);
            counters.record(1);
            let _ = job.reply.send(r);
        }
        return;
    }
    let mut rest = jobs.into_iter().peekable();
    while rest.peek().is_some() {
        if let Err(e) = exec(conn, "BEGIN IMMEDIATE") {
            rollback_quietly(conn);
            let err = map_sqlite(e, "starting a transaction");
            reply_all(rest.map(|j| (j.reply, Err(copy_error(&err)))).collect());
            return;
        }
        let mut done: Vec<(oneshot::Sender<Result<()>>, Result<()>)> = Vec::new();
        let mut aborted = false;
        for job in rest.by_ref() {
            let r = run_in_savepoint(conn, job.body);
            done.push((job.reply, r));
            if conn.is_autocommit() {
                aborted = true;
                break;
            }
            if done.len() >= MAX_GROUP {
                break;
            }
        }
        counters.record(done.len());
        if aborted {
            // Nothing of this transaction is on disk: every body that had succeeded fails with
            // the cause; the one that caused it keeps its own error.
            let cause = done
                .iter()
                .rev()
                .find_map(|(_, r)| r.as_ref().err().map(copy_error))
                .unwrap_or_else(|| {
                    Error::internal("sqlite: the group transaction ended before its COMMIT")
                });
            reply_all(
                done.into_iter()
                    .map(|(reply, r)| (reply, r.and_then(|()| Err(lost_with(&cause)))))
                    .collect(),
            );
            continue;
        }
        match exec(conn, "COMMIT") {
            Ok(()) => reply_all(done),
            Err(e) => {
                rollback_quietly(conn);
                let err = map_sqlite(e, "committing a group of write transactions");
                reply_all(
                    done.into_iter()
                        .map(|(reply, r)| (reply, r.and_then(|()| Err(copy_error(&err)))))
                        .collect(),
                );
            }
        }
    }
}
