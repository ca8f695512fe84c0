//! Out-of-band schema changes: while one store is open on a SQLite file, another process (the
//! `sqlite3` shell, or Python's `sqlite3` module) drops one of its tables. A second `open` — in
//! this process or in another one (this test binary re-executed) — must get the typed schema error
//! (not `store.io` "disk I/O error"), and the first handle must report the missing table on next
//! use.
//!
//! The scenarios that once ended in "disk I/O error" need one more ingredient: the process that
//! holds the first handle has opened the file a second time before the drop. That open used to
//! read the file header through its own descriptor and close it, which dropped the first
//! connection's POSIX locks; the dropping process then took itself for the last connection and
//! deleted the `-wal` and `-shm` files under the open handles (see docs/storage.md).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use power_loop_contracts::ErrorCode;
use power_loop_store::backend::ConnectOptions;
use power_loop_store::db::Database;
use power_loop_store::{
    NewMessage, NewSession, SchemaPolicy, SessionStore, StoreOptions, open_store,
};
use power_loop_store_sqlite::{BACKEND, SqliteDatabase};

async fn open(path: &Path, options: StoreOptions) -> power_loop_contracts::Result<SessionStore> {
    let db: Arc<dyn Database> =
        Arc::new(SqliteDatabase::open_file(path, &ConnectOptions::default()).await?);
    SessionStore::open_database(db, &options).await
}

/// Runs `sql` on `path` in the `sqlite3` shell; `false` (after printing why) when the shell is not
/// installed and peers are not required.
fn sqlite3(path: &Path, sql: &str) -> bool {
    sqlite3_answer(path, sql).is_some()
}

/// Handles a peer program that could not be started: fails the test when peers are required,
/// otherwise prints why the test is skipped.
fn peer_missing(peer: &str, e: &std::io::Error) {
    assert!(
        std::env::var("POWER_LOOP_REQUIRE_PEERS").as_deref() != Ok("1"),
        "peer missing with POWER_LOOP_REQUIRE_PEERS=1: {peer} ({e})"
    );
    eprintln!("SKIP: {peer} is not installed ({e})");
}

/// The options of an open under [`SchemaPolicy::Verify`].
fn verify() -> StoreOptions {
    StoreOptions::new().with_schema_policy(SchemaPolicy::Verify)
}

/// Asserts that opening `path` directly with `options` is the typed schema error naming `table`.
async fn assert_open_missing(path: &Path, options: StoreOptions, table: &str) {
    let e = open(path, options).await.unwrap_err();
    assert_missing(&e, table);
}

/// Asserts that opening `path` through the DSN with `options` is the typed schema error naming
/// `table`.
async fn assert_dsn_missing(path: &Path, options: StoreOptions, table: &str) {
    let e = open_dsn(path, options).await.unwrap_err();
    assert_missing(&e, table);
}

/// Asserts the report of [`open_in_another_process`]: the typed error naming `table` under either
/// policy, and a foreign prefix that opens.
fn assert_child_lines(lines: &[String], table: &str) {
    assert_eq!(lines.len(), 3, "{lines:?}");
    for label in ["verify", "auto"] {
        let line = lines
            .iter()
            .find(|l| l.starts_with(&format!("open {label} ")))
            .unwrap();
        assert!(
            line.starts_with(&format!("open {label} store.schema_missing ")),
            "{line}"
        );
        assert!(line.contains(table), "{line}");
    }
    assert!(
        lines.contains(&"open other_prefix ok".to_owned()),
        "{lines:?}"
    );
}

#[tokio::test]
async fn a_table_dropped_by_another_process_is_a_schema_error_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("oob.db");
    let first = open(&path, StoreOptions::new()).await.unwrap();
    let sid = first.create_session(NewSession::new()).await.unwrap();
    first
        .append_message(&sid, NewMessage::user("before"))
        .await
        .unwrap();
    if !sqlite3(&path, "DROP TABLE pl_messages") {
        return;
    }
    // Every later open, whatever the policy or prefix, gets a typed answer, not an I/O error.
    for options in [verify(), StoreOptions::new()] {
        assert_open_missing(&path, options, "pl_messages").await;
    }
    let other = open(&path, StoreOptions::new().with_table_prefix("other_"))
        .await
        .expect("another prefix in the same file is unaffected");
    other.close().await.unwrap();
    // The first handle reports the missing table on its next use.
    let e = first
        .append_message(&sid, NewMessage::user("after"))
        .await
        .unwrap_err();
    assert_missing(&e, "pl_messages");
    first.close().await.unwrap();
}

/// Set in the environment of the re-executed test binary: the database file the child opens.
const CHILD_PATH_VAR: &str = "POWER_LOOP_OOB_CHILD_DB";

/// Drops `table` from `path` with Python's `sqlite3` module in a separate process; `false` (after
/// printing why) when Python is not installed and peers are not required.
fn python_drop(path: &Path, table: &str) -> bool {
    let code = "import sqlite3, sys\n\
                c = sqlite3.connect(sys.argv[1])\n\
                c.execute('DROP TABLE ' + sys.argv[2])\n\
                c.commit()\n\
                c.close()\n";
    match Command::new("python3")
        .arg("-c")
        .arg(code)
        .arg(path)
        .arg(table)
        .output()
    {
        Ok(out) => {
            assert!(
                out.status.success(),
                "python3 dropping {table}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            true
        }
        Err(e) => {
            peer_missing("python3", &e);
            false
        }
    }
}

/// The child half of the cross-process test: when re-executed with [`CHILD_PATH_VAR`], opens the
/// file under each policy and a foreign prefix and prints one `open <label> <code|ok>` line each.
/// Without the variable (a normal test run) it does nothing.
#[tokio::test]
async fn oob_child_opens_and_reports() {
    let Ok(path) = std::env::var(CHILD_PATH_VAR) else {
        return;
    };
    let path = std::path::PathBuf::from(path);
    for (label, options) in [
        ("verify", verify()),
        ("auto", StoreOptions::new()),
        (
            "other_prefix",
            StoreOptions::new().with_table_prefix("other_"),
        ),
    ] {
        match open(&path, options).await {
            Ok(store) => {
                println!("open {label} ok");
                store.close().await.unwrap();
            }
            Err(e) => println!(
                "open {label} {} {}",
                e.code().as_str(),
                e.message().replace('\n', " ")
            ),
        }
    }
}

/// Runs [`oob_child_opens_and_reports`] in a new process on `path`; returns its report lines.
fn open_in_another_process(path: &Path) -> Vec<String> {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "oob_child_opens_and_reports", "--nocapture"])
        .env(CHILD_PATH_VAR, path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the child process failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.starts_with("open "))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn a_table_dropped_by_python_is_typed_in_another_process_and_in_the_first_handle() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("oob-python.db");
    let first = open(&path, StoreOptions::new()).await.unwrap();
    let sid = first.create_session(NewSession::new()).await.unwrap();
    for i in 0..20 {
        first
            .append_message(&sid, NewMessage::user(format!("before {i}")))
            .await
            .unwrap();
    }
    // Every turn reads and writes the state table: the first handle uses it right after.
    if !python_drop(&path, "pl_session_state") {
        return;
    }
    // A second handle in another OS process, while the first is still open: the typed error
    // under either policy, and a foreign prefix in the same file opens.
    assert_child_lines(&open_in_another_process(&path), "pl_session_state");
    // The first handle reports the missing table on its next use, for a write and for a read.
    let e = first
        .append_message(&sid, NewMessage::user("after"))
        .await
        .unwrap_err();
    assert_missing(&e, "pl_session_state");
    let e = first.load_active_window(&sid).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::StoreSchemaMissing, "{e}");
    // Messages are untouched by the drop.
    assert_eq!(first.load_all_messages(&sid).await.unwrap().len(), 20);
    first.close().await.unwrap();
    // After the first handle is closed, VERIFY still says which table is missing.
    assert_open_missing(&path, verify(), "pl_session_state").await;
}

/// What the `sqlite3` shell prints for `sql` on `path`; `None` (after printing why) when the shell
/// is not installed and peers are not required.
fn sqlite3_answer(path: &Path, sql: &str) -> Option<String> {
    match Command::new("sqlite3").arg(path).arg(sql).output() {
        Ok(out) => {
            assert!(
                out.status.success(),
                "sqlite3 {sql}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            Some(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        }
        Err(e) => {
            peer_missing("the sqlite3 shell", &e);
            None
        }
    }
}

/// Asserts, through the `sqlite3` shell, that the closed file passes `PRAGMA integrity_check` and
/// holds `sessions` rows in `pl_sessions` (no write of the first handle was lost).
fn assert_file_intact(path: &Path, sessions: usize) {
    if let Some(check) = sqlite3_answer(path, "PRAGMA integrity_check") {
        assert_eq!(check, "ok");
    }
    if let Some(count) = sqlite3_answer(path, "SELECT count(*) FROM pl_sessions") {
        assert_eq!(count, sessions.to_string());
    }
}

/// Asserts `e` is the typed schema error naming `table`.
fn assert_missing(e: &power_loop_contracts::Error, table: &str) {
    assert_eq!(e.code(), ErrorCode::StoreSchemaMissing, "{e}");
    assert!(e.message().contains(table), "{e}");
}

/// Opens `path` through the DSN entry point (the façade's `open_store` path).
async fn open_dsn(
    path: &Path,
    options: StoreOptions,
) -> power_loop_contracts::Result<SessionStore> {
    let dsn = format!("sqlite://{}", path.display());
    open_store(&dsn, options, &[BACKEND]).await
}

/// Creates `n` sessions with one message each through `store`; the database grows, so the
/// header page and new pages go to the write-ahead log.
async fn write_sessions(store: &SessionStore, n: usize) {
    for i in 0..n {
        let sid = store.create_session(NewSession::new()).await.unwrap();
        store
            .append_message(&sid, NewMessage::user(format!("{i} {}", "x".repeat(2000))))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_second_open_in_the_same_process_before_the_drop_keeps_every_answer_typed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("oob-reopen.db");
    let first = open(&path, StoreOptions::new()).await.unwrap();
    write_sessions(&first, 5).await;
    // The same process opens the file again (another prefix, then a second handle on the first
    // prefix that stays open) before the other process drops a table.
    let other = open(&path, StoreOptions::new().with_table_prefix("other_"))
        .await
        .unwrap();
    other.close().await.unwrap();
    let held = open(&path, verify()).await.unwrap();
    if !sqlite3(&path, "DROP TABLE pl_schema_migrations") {
        return;
    }
    // The first handle keeps writing (its tables are all there): the log grows.
    write_sessions(&first, 40).await;
    // Later opens: the typed error under Verify, an unaffected foreign prefix, never store.io.
    assert_open_missing(&path, verify(), "pl_schema_migrations").await;
    assert_dsn_missing(&path, verify(), "pl_schema_migrations").await;
    // AutoCreate does not re-create and re-stamp the version table behind the first handle.
    assert_dsn_missing(&path, StoreOptions::new(), "pl_schema_migrations").await;
    let again = open_dsn(&path, StoreOptions::new().with_table_prefix("other_"))
        .await
        .expect("another prefix in the same file opens");
    again.close().await.unwrap();
    // Both open handles still read and write.
    write_sessions(&first, 2).await;
    assert_eq!(held.list_sessions(1000).await.unwrap().len(), 47);
    held.close().await.unwrap();
    first.close().await.unwrap();
    // Closed: the same typed answer, and the file is intact with every session written.
    for options in [verify(), StoreOptions::new()] {
        assert_open_missing(&path, options, "pl_schema_migrations").await;
    }
    assert_file_intact(&path, 47);
    if let Some(n) = sqlite3_answer(
        &path,
        "SELECT count(*) FROM sqlite_master WHERE name = 'pl_schema_migrations'",
    ) {
        assert_eq!(n, "0", "the version table was re-created");
    }
}

#[tokio::test]
async fn a_data_table_dropped_after_a_second_open_is_typed_for_new_opens_and_the_first_handle() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("oob-reopen-data.db");
    // Group commit off: the plain one-transaction-per-write path.
    let mut connect = ConnectOptions::default();
    connect.sqlite_group_commit = false;
    let first = open_dsn(&path, StoreOptions::new().with_connect(connect))
        .await
        .unwrap();
    let sid = first.create_session(NewSession::new()).await.unwrap();
    first
        .append_message(&sid, NewMessage::user("before"))
        .await
        .unwrap();
    let other = open_dsn(&path, StoreOptions::new().with_table_prefix("other_"))
        .await
        .unwrap();
    other.close().await.unwrap();
    if !python_drop(&path, "pl_messages") {
        return;
    }
    // Sessions still work on the first handle and grow the log; messages are the typed error.
    for _ in 0..40 {
        first.create_session(NewSession::new()).await.unwrap();
    }
    let e = first
        .append_message(&sid, NewMessage::user("after"))
        .await
        .unwrap_err();
    assert_missing(&e, "pl_messages");
    for options in [verify(), StoreOptions::new()] {
        assert_dsn_missing(&path, options, "pl_messages").await;
    }
    // In another OS process too.
    assert_child_lines(&open_in_another_process(&path), "pl_messages");
    let e = first.load_active_window(&sid).await.unwrap_err();
    assert_missing(&e, "pl_messages");
    first.close().await.unwrap();
    for options in [verify(), StoreOptions::new()] {
        assert_dsn_missing(&path, options, "pl_messages").await;
    }
    assert_file_intact(&path, 41);
}
