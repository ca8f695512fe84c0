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

/// A Python process holding the write lock of `path` (`BEGIN IMMEDIATE`) until its stdin closes;
/// `None` (after printing why) when Python is not installed and peers are not required.
fn python_writer(path: &std::path::Path) -> Option<std::process::Child> {
    use std::io::BufRead;
    let code = "import sqlite3, sys\n\
                c = sqlite3.connect(sys.argv[1], isolation_level=None)\n\
                c.execute('BEGIN IMMEDIATE')\n\
                print('locked', flush=True)\n\
                sys.stdin.read()\n\
                c.execute('ROLLBACK')\n";
    let spawned = std::process::Command::new("python3")
        .arg("-c")
        .arg(code)
        .arg(path)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            assert!(
                std::env::var("POWER_LOOP_REQUIRE_PEERS").as_deref() != Ok("1"),
                "peer missing with POWER_LOOP_REQUIRE_PEERS=1: python3 ({e})"
            );
            eprintln!("SKIP: python3 is not installed ({e})");
            return None;
        }
    };
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "locked");
    Some(child)
}

#[tokio::test]
async fn opening_an_existing_database_needs_no_write_lock() {
    use power_loop_store::{SchemaPolicy, SessionStore, StoreOptions};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("existing.db");
    let db = SqliteDatabase::open_file(&path, &ConnectOptions::default())
        .await
        .unwrap();
    let db: Arc<dyn Database> = Arc::new(db);
    SessionStore::open_database(Arc::clone(&db), &StoreOptions::new())
        .await
        .unwrap()
        .close()
        .await
        .unwrap();
    // Another process writes; a reader opening the existing file must not wait for it (the
    // auto_vacuum PRAGMA used to open a write transaction on every open).
    let Some(mut writer) = python_writer(&path) else {
        return;
    };
    let mut options = ConnectOptions::default();
    options.sqlite_busy_timeout_ms = 200;
    let opened = SqliteDatabase::open_file(&path, &options).await;
    drop(writer.stdin.take());
    writer.wait().unwrap();
    let db: Arc<dyn Database> = Arc::new(opened.unwrap());
    let store = SessionStore::open_database(
        Arc::clone(&db),
        &StoreOptions::new().with_schema_policy(SchemaPolicy::Verify),
    )
    .await
    .unwrap();
    store.close().await.unwrap();
}
