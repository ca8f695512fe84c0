//! Out-of-band schema changes: while one store is open on a SQLite file, another process (the
//! `sqlite3` shell, or Python's `sqlite3` module) drops one of its tables. A second `open` — in
//! this process or in another one (this test binary re-executed) — must get the typed schema error
//! (not `store.io` "disk I/O error"), and the first handle must report the missing table on next
//! use.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use power_loop_contracts::ErrorCode;
use power_loop_store::backend::ConnectOptions;
use power_loop_store::db::Database;
use power_loop_store::{NewMessage, NewSession, SchemaPolicy, SessionStore, StoreOptions};
use power_loop_store_sqlite::SqliteDatabase;

async fn open(path: &Path, options: StoreOptions) -> power_loop_contracts::Result<SessionStore> {
    let db: Arc<dyn Database> =
        Arc::new(SqliteDatabase::open_file(path, &ConnectOptions::default()).await?);
    SessionStore::open_database(db, &options).await
}

fn sqlite3(path: &Path, sql: &str) -> bool {
    match Command::new("sqlite3").arg(path).arg(sql).output() {
        Ok(out) => {
            assert!(
                out.status.success(),
                "sqlite3 {sql}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            true
        }
        Err(e) => {
            assert!(
                std::env::var("POWER_LOOP_REQUIRE_PEERS").as_deref() != Ok("1"),
                "peer missing with POWER_LOOP_REQUIRE_PEERS=1: the sqlite3 shell ({e})"
            );
            eprintln!("SKIP: the sqlite3 shell is not installed ({e})");
            false
        }
    }
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
    for options in [
        StoreOptions::new().with_schema_policy(SchemaPolicy::Verify),
        StoreOptions::new(),
    ] {
        let e = open(&path, options).await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::StoreSchemaMissing, "{e}");
        assert!(e.message().contains("pl_messages"), "{e}");
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
    assert_eq!(e.code(), ErrorCode::StoreSchemaMissing, "{e}");
    assert!(e.message().contains("pl_messages"), "{e}");
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
            assert!(
                std::env::var("POWER_LOOP_REQUIRE_PEERS").as_deref() != Ok("1"),
                "peer missing with POWER_LOOP_REQUIRE_PEERS=1: python3 ({e})"
            );
            eprintln!("SKIP: python3 is not installed ({e})");
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
        (
            "verify",
            StoreOptions::new().with_schema_policy(SchemaPolicy::Verify),
        ),
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
    let lines = open_in_another_process(&path);
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
        assert!(line.contains("pl_session_state"), "{line}");
    }
    assert!(
        lines.contains(&"open other_prefix ok".to_owned()),
        "{lines:?}"
    );
    // The first handle reports the missing table on its next use, for a write and for a read.
    let e = first
        .append_message(&sid, NewMessage::user("after"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::StoreSchemaMissing, "{e}");
    assert!(e.message().contains("pl_session_state"), "{e}");
    let e = first.load_active_window(&sid).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::StoreSchemaMissing, "{e}");
    // Messages are untouched by the drop.
    assert_eq!(first.load_all_messages(&sid).await.unwrap().len(), 20);
    first.close().await.unwrap();
    // After the first handle is closed, VERIFY still says which table is missing.
    let e = open(
        &path,
        StoreOptions::new().with_schema_policy(SchemaPolicy::Verify),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), ErrorCode::StoreSchemaMissing, "{e}");
    assert!(e.message().contains("pl_session_state"), "{e}");
}
