//! Out-of-band schema changes: while one store is open on a SQLite file, another process (the
//! `sqlite3` shell) drops one of its tables. A second `open` must get the typed schema error (not
//! `store.io` "disk I/O error"), and the first handle must report the missing table on next use.
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
