//! Upgrade from a database written by the last build before fencing: the committed fixture
//! `fixtures/schema_v2_main_f99775e.db` was written by the `power-loop` CLI of commit f99775e
//! (schema version 2: `send --new-session v2-fixture "hello from schema v2"`, a second send,
//! then `store vacuum` and a TRUNCATE checkpoint). This build migrates it to version 3 with its
//! data intact, and fencing works on the migrated database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use power_loop_contracts::ErrorCode;
use power_loop_store::backend::ConnectOptions;
use power_loop_store::db::Database;
use power_loop_store::{
    CURRENT_SCHEMA_VERSION, NewMessage, SchemaPolicy, SessionStore, StoreOptions,
};
use power_loop_store_sqlite::SqliteDatabase;

const SID: &str = "v2-fixture";

/// A private copy of the fixture (the committed file is never opened for writing).
fn copy_fixture(dir: &Path) -> PathBuf {
    let src =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/schema_v2_main_f99775e.db");
    let dst = dir.join("v2.db");
    std::fs::copy(&src, &dst).unwrap();
    dst
}

async fn open(path: &Path, policy: SchemaPolicy) -> power_loop_contracts::Result<SessionStore> {
    let db: Arc<dyn Database> =
        Arc::new(SqliteDatabase::open_file(path, &ConnectOptions::default()).await?);
    SessionStore::open_database(db, &StoreOptions::default().with_schema_policy(policy)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v2_database_from_main_migrates_forward_and_is_fenced() {
    let dir = tempfile::tempdir().unwrap();
    let path = copy_fixture(dir.path());

    // Verify refuses with the upgrade script (it only creates tables: the fence table, v3, and
    // the fleet's leaf claims, v4).
    let e = open(&path, SchemaPolicy::Verify).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::StoreSchemaOutdated, "{e}");
    assert_eq!(e.detail("found_version").and_then(|v| v.as_i64()), Some(2));
    assert!(e.to_string().contains("pl_lease_fences"), "{e}");

    // AutoCreate migrates; the data of the v2 build is intact.
    let s = open(&path, SchemaPolicy::AutoCreate).await.unwrap();
    assert_eq!(CURRENT_SCHEMA_VERSION, 4);
    let msgs = s.load_all_messages(SID).await.unwrap();
    let got: Vec<(&str, &str)> = msgs
        .iter()
        .map(|m| (m.role.as_str(), m.content.as_deref().unwrap_or_default()))
        .collect();
    assert_eq!(got.len(), 4, "{got:?}");
    assert_eq!(got[0], ("user", "hello from schema v2"));
    assert_eq!(got[2], ("user", "second turn"));
    assert!(got[1].1.contains("hello from schema v2"), "{got:?}");
    assert_eq!(msgs.iter().map(|m| m.seq).collect::<Vec<_>>(), [1, 2, 3, 4]);
    s.close().await.unwrap();
    // Verify now passes.
    let s = open(&path, SchemaPolicy::Verify).await.unwrap();

    // Fencing on the migrated database: a lost lease's writes are refused.
    let l1 = s.acquire_session_lease(SID).await.unwrap();
    assert_eq!(l1.token(), 1);
    let stale = s.fenced(l1.fence());
    l1.release().await.unwrap();
    // Taken back by the same store with nobody in between: the token is kept, the released
    // grant's handle is refused all the same.
    let l2 = s.acquire_session_lease(SID).await.unwrap();
    assert_eq!(l2.token(), 1);
    let e = stale
        .append_message(SID, NewMessage::user("stale"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::SessionLeaseLost, "{e}");
    s.fenced(l2.fence())
        .append_message(SID, NewMessage::user("after the upgrade"))
        .await
        .unwrap();
    l2.release().await.unwrap();
    let msgs = s.load_all_messages(SID).await.unwrap();
    assert_eq!(msgs.len(), 5);
    assert_eq!(msgs[4].content.as_deref(), Some("after the upgrade"));
    s.close().await.unwrap();
}
