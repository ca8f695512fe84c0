//! Group commit on SQLite: write transactions queued together are committed in one SQLite
//! transaction, each body in its own savepoint.
//!
//! The group tests hold the connection thread inside one write body until the others are queued
//! behind it (the writer's `queued` counter says when), so the group that follows is known:
//! * a body that returns `Err`, panics, or violates a constraint fails alone: its writes are
//!   rolled back, the other bodies of its group commit (and survive a reopen);
//! * a failed `COMMIT` fails every body of its group, and none of their writes is visible;
//! * many sessions writing at once through the store are all durable, in fewer commits than
//!   turns.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use power_loop_contracts::{Error, ErrorCode, Result};
use power_loop_store::backend::{ConnectOptions, SqliteSync};
use power_loop_store::conformance::port::{body, exec, query, scalar};
use power_loop_store::db::{Database, TxMode};
use power_loop_store::{NewMessage, NewSession, SessionStore, StoreOptions};
use power_loop_store_sqlite::SqliteDatabase;

async fn open_full(path: &Path) -> Arc<SqliteDatabase> {
    let mut o = ConnectOptions::default();
    o.sqlite_sync = SqliteSync::Full;
    Arc::new(SqliteDatabase::open_file(path, &o).await.unwrap())
}

/// Waits until the writer has been handed `n` write bodies in total.
async fn wait_queued(db: &SqliteDatabase, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while db.group_commit_stats().queued < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} writes were queued",
            db.group_commit_stats().queued
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Runs a write body on `db` that (optionally inserts row 0 and) blocks the connection thread
/// until the returned sender fires; returns once the body is running.
async fn hold_writer(
    db: &Arc<SqliteDatabase>,
    insert_row0: bool,
) -> (tokio::task::JoinHandle<Result<()>>, mpsc::Sender<()>) {
    let (release, hold) = mpsc::channel::<()>();
    let (started_tx, started) = mpsc::channel::<()>();
    let task = {
        let db = Arc::clone(db);
        tokio::spawn(async move {
            db.transact(
                TxMode::Write,
                body(move |t| {
                    if insert_row0 {
                        t.execute("INSERT INTO t (k, v) VALUES (0, 'blocker')", &[])?;
                    }
                    let _ = started_tx.send(());
                    hold.recv_timeout(Duration::from_secs(30))
                        .map_err(|_| Error::internal("the test never released the blocker"))
                }),
            )
            .await
        })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while started.try_recv().is_err() {
        assert!(Instant::now() < deadline, "the blocking body never started");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    (task, release)
}

/// What one body of a test group does after inserting its own row `k`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Then {
    Commit,
    Fail,
    Panic,
    /// Inserts row 0 again (held by the blocker): a primary-key violation.
    Violate,
}

/// Holds the writer in a body (which inserts row 0) while one write per entry of `plan` (row
/// `k` = index + 1) is queued, then lets them all run as one group. Returns each outcome.
async fn run_group(db: &Arc<SqliteDatabase>, plan: &[Then]) -> Vec<Result<()>> {
    let (blocker, release) = hold_writer(db, true).await;
    let before = db.group_commit_stats().queued;
    let mut writers = Vec::new();
    for (i, then) in plan.iter().copied().enumerate() {
        let db = Arc::clone(db);
        let k = i64::try_from(i).unwrap() + 1;
        writers.push(tokio::spawn(async move {
            db.transact(
                TxMode::Write,
                body(move |t| {
                    t.execute(
                        "INSERT INTO t (k, v) VALUES (?, ?)",
                        &[k.into(), format!("row {k}").into()],
                    )?;
                    match then {
                        Then::Commit => Ok(()),
                        Then::Fail => Err(Error::invalid_argument(format!("body {k} refuses"))),
                        Then::Panic => panic!("body {k} panics"),
                        Then::Violate => t
                            .execute("INSERT INTO t (k, v) VALUES (0, 'again')", &[])
                            .map(drop),
                    }
                }),
            )
            .await
        }));
    }
    wait_queued(db, before + plan.len() as u64).await;
    release.send(()).unwrap();
    blocker.await.unwrap().unwrap();
    let mut out = Vec::new();
    for w in writers {
        out.push(w.await.unwrap());
    }
    out
}

async fn table(path: &Path) -> Arc<SqliteDatabase> {
    let db = open_full(path).await;
    exec(
        &*db,
        "CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)",
        vec![],
    )
    .await
    .unwrap();
    db
}

async fn keys(db: &dyn Database) -> Vec<i64> {
    query(db, "SELECT k FROM t ORDER BY k", vec![])
        .await
        .unwrap()
        .iter()
        .map(|r| r.i64("k").unwrap())
        .collect()
}

/// Checks the outcomes against the plan and the table (also after a reopen).
async fn check(path: &Path, db: Arc<SqliteDatabase>, plan: &[Then], out: &[Result<()>]) {
    let mut want = vec![0];
    for (i, (then, r)) in plan.iter().zip(out).enumerate() {
        let k = i64::try_from(i).unwrap() + 1;
        match then {
            Then::Commit => {
                assert!(r.is_ok(), "body {k} should commit: {r:?}");
                want.push(k);
            }
            Then::Fail => assert_eq!(r.as_ref().unwrap_err().code(), ErrorCode::InvalidArgument),
            Then::Panic => {
                let e = r.as_ref().unwrap_err();
                assert_eq!(e.code(), ErrorCode::Internal);
                assert!(e.message().contains("panicked"), "{e}");
            }
            Then::Violate => assert_eq!(r.as_ref().unwrap_err().code(), ErrorCode::StoreConstraint),
        }
    }
    assert_eq!(
        keys(&*db).await,
        want,
        "only the failed bodies' rows are missing"
    );
    let stats = db.group_commit_stats();
    assert_eq!(
        stats.largest_group,
        plan.len() as u64,
        "the queued bodies ran as one group: {stats:?}"
    );
    db.close().await.unwrap();
    let again = open_full(path).await;
    assert_eq!(keys(&*again).await, want, "after a reopen");
    // The connection is not left inside a transaction: a later write works.
    exec(
        &*again,
        "INSERT INTO t (k, v) VALUES (1000, 'later')",
        vec![],
    )
    .await
    .unwrap();
    again.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_body_fails_alone_and_the_rest_of_its_group_commits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.db");
    let db = table(&path).await;
    let mut plan = vec![Then::Commit; 20];
    plan[4] = Then::Fail;
    plan[9] = Then::Violate;
    plan[19] = Then::Fail;
    let out = run_group(&db, &plan).await;
    check(&path, db, &plan, &out).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_body_fails_alone_and_the_rest_of_its_group_commits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.db");
    let db = table(&path).await;
    let mut plan = vec![Then::Commit; 12];
    plan[0] = Then::Panic;
    plan[6] = Then::Panic;
    plan[7] = Then::Fail;
    let out = run_group(&db, &plan).await;
    check(&path, db, &plan, &out).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_commit_fails_every_body_of_its_group() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.db");
    let db = table(&path).await;
    // A deferred foreign key is checked only at COMMIT: the group's COMMIT fails.
    for sql in [
        "CREATE TABLE parent (id INTEGER PRIMARY KEY)",
        "CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER NOT NULL \
         REFERENCES parent(id) DEFERRABLE INITIALLY DEFERRED)",
    ] {
        exec(&*db, sql, vec![]).await.unwrap();
    }
    let (blocker, release) = hold_writer(&db, false).await;
    let before = db.group_commit_stats().queued;
    let statements = [
        "INSERT INTO t (k, v) VALUES (1, 'one')",
        "INSERT INTO child (id, parent_id) VALUES (1, 42)",
        "INSERT INTO t (k, v) VALUES (2, 'two')",
    ];
    let mut writers = Vec::new();
    for sql in statements {
        let db = Arc::clone(&db);
        writers.push(tokio::spawn(async move { exec(&*db, sql, vec![]).await }));
    }
    wait_queued(&db, before + statements.len() as u64).await;
    release.send(()).unwrap();
    blocker.await.unwrap().unwrap();
    for w in writers {
        let e = w.await.unwrap().unwrap_err();
        assert_eq!(e.code(), ErrorCode::StoreConstraint, "{e}");
    }
    assert_eq!(
        keys(&*db).await,
        Vec::<i64>::new(),
        "nothing of the group is visible"
    );
    assert_eq!(scalar(&*db, "SELECT count(*) FROM child").await, 0);
    assert_eq!(db.group_commit_stats().largest_group, 3);
    // The writer recovers: the next write commits.
    exec(&*db, "INSERT INTO t (k, v) VALUES (3, 'three')", vec![])
        .await
        .unwrap();
    assert_eq!(keys(&*db).await, vec![3]);
    db.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_from_many_sessions_are_all_durable() {
    const SESSIONS: usize = 40;
    const APPENDS: usize = 10;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sessions.db");
    let db = open_full(&path).await;
    let store =
        SessionStore::open_database(Arc::clone(&db) as Arc<dyn Database>, &StoreOptions::new())
            .await
            .unwrap();
    let start = db.group_commit_stats();
    let mut tasks = Vec::new();
    for s in 0..SESSIONS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let sid = format!("session-{s}");
            store
                .create_session(NewSession::new().with_id(sid.as_str()))
                .await
                .unwrap();
            for n in 0..APPENDS {
                store
                    .append_messages(
                        &sid,
                        vec![
                            NewMessage::user(format!("{sid} q{n}")),
                            NewMessage::assistant(format!("{sid} a{n}")),
                        ],
                    )
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let stats = db.group_commit_stats();
    let bodies = stats.bodies - start.bodies;
    let groups = stats.groups - start.groups;
    assert!(
        bodies >= (SESSIONS * (APPENDS + 1)) as u64,
        "every write went through the writer: {stats:?}"
    );
    assert!(
        groups < bodies,
        "writes from concurrent sessions shared commits: {bodies} bodies in {groups} commits"
    );
    store.close().await.unwrap();
    db.close().await.unwrap();

    let db = open_full(&path).await;
    let store =
        SessionStore::open_database(Arc::clone(&db) as Arc<dyn Database>, &StoreOptions::new())
            .await
            .unwrap();
    for s in 0..SESSIONS {
        let sid = format!("session-{s}");
        let rows = store.load_all_messages(&sid).await.unwrap();
        let got: Vec<String> = rows
            .iter()
            .map(|r| r.content.clone().unwrap_or_default())
            .collect();
        let want: Vec<String> = (0..APPENDS)
            .flat_map(|n| [format!("{sid} q{n}"), format!("{sid} a{n}")])
            .collect();
        assert_eq!(got, want, "{sid}");
        let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
        assert_eq!(
            seqs,
            (1..=(2 * APPENDS) as i64).collect::<Vec<_>>(),
            "{sid}"
        );
    }
    store.close().await.unwrap();
    db.close().await.unwrap();
}
