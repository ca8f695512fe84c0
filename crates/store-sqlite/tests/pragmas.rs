//! PRAGMAs of file and memory databases.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use power_loop_store::backend::{ConnectOptions, SqliteSync};
use power_loop_store::db::{Database, TxMode, Value};
use power_loop_store_sqlite::SqliteDatabase;

async fn pragma(db: &SqliteDatabase, name: &'static str) -> Value {
    let out = Arc::new(Mutex::new(Value::Null));
    let o = Arc::clone(&out);
    db.transact(
        TxMode::Read,
        Box::new(move |t| {
            let row = t.fetch_optional(&format!("PRAGMA {name}"), &[])?.unwrap();
            *o.lock().unwrap() = row.values()[0].clone();
            Ok(())
        }),
    )
    .await
    .unwrap();
    out.lock().unwrap().clone()
}

#[tokio::test]
async fn file_defaults_wal_normal_incremental() {
    let dir = tempfile::tempdir().unwrap();
    let db = SqliteDatabase::open_file(dir.path().join("p.db"), &ConnectOptions::default())
        .await
        .unwrap();
    assert_eq!(pragma(&db, "journal_mode").await, Value::from("wal"));
    assert_eq!(pragma(&db, "synchronous").await, Value::Int(1), "NORMAL");
    assert_eq!(
        pragma(&db, "auto_vacuum").await,
        Value::Int(2),
        "INCREMENTAL on a fresh file"
    );
    assert_eq!(pragma(&db, "foreign_keys").await, Value::Int(1));
    assert_eq!(pragma(&db, "busy_timeout").await, Value::Int(5000));
    db.close().await.unwrap();
}

#[tokio::test]
async fn sync_full_option_and_busy_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = ConnectOptions::default();
    opts.sqlite_sync = SqliteSync::Full;
    opts.sqlite_busy_timeout_ms = 1234;
    let db = SqliteDatabase::open_file(dir.path().join("p.db"), &opts)
        .await
        .unwrap();
    assert_eq!(pragma(&db, "synchronous").await, Value::Int(2), "FULL");
    assert_eq!(pragma(&db, "busy_timeout").await, Value::Int(1234));
    assert_eq!(db.path(), Some(dir.path().join("p.db").as_path()));
}

#[tokio::test]
async fn memory_database_is_private() {
    let a = SqliteDatabase::open_memory(&ConnectOptions::default())
        .await
        .unwrap();
    let b = SqliteDatabase::open_memory(&ConnectOptions::default())
        .await
        .unwrap();
    a.transact(
        TxMode::Write,
        Box::new(|t| t.execute("CREATE TABLE only_a (x INTEGER)", &[]).map(drop)),
    )
    .await
    .unwrap();
    assert_eq!(pragma(&a, "journal_mode").await, Value::from("memory"));
    let seen = Arc::new(Mutex::new(0));
    let s = Arc::clone(&seen);
    b.transact(
        TxMode::Read,
        Box::new(move |t| {
            *s.lock().unwrap() = t.fetch_all("SELECT name FROM sqlite_master", &[])?.len();
            Ok(())
        }),
    )
    .await
    .unwrap();
    assert_eq!(*seen.lock().unwrap(), 0);
    assert!(a.path().is_none());
}
