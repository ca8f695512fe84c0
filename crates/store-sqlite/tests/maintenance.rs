//! Maintenance: checkpoint modes, vacuum that really shrinks the file, online backup.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
use support::footprint;

use power_loop_contracts::ErrorCode;
use power_loop_store::backend::ConnectOptions;
use power_loop_store::db::{Database, TxMode};
use power_loop_store_sqlite::SqliteDatabase;

async fn fill(db: &SqliteDatabase, rows: i64) {
    db.transact(
        TxMode::Write,
        Box::new(|t| {
            t.execute(
                "CREATE TABLE IF NOT EXISTS big (k INTEGER PRIMARY KEY, v TEXT)",
                &[],
            )?;
            t.execute(
                "CREATE TABLE IF NOT EXISTS keep (k INTEGER PRIMARY KEY, v TEXT)",
                &[],
            )?;
            t.execute("INSERT OR REPLACE INTO keep (k, v) VALUES (1, 'kept')", &[])?;
            Ok(())
        }),
    )
    .await
    .unwrap();
    for chunk in 0..rows / 500 {
        db.transact(
            TxMode::Write,
            Box::new(move |t| {
                for i in 0..500 {
                    let k = chunk * 500 + i;
                    t.execute(
                        "INSERT INTO big (k, v) VALUES (?, ?)",
                        &[k.into(), format!("{k:08}").repeat(512).into()],
                    )?;
                }
                Ok(())
            }),
        )
        .await
        .unwrap();
    }
}

async fn delete_big(db: &SqliteDatabase) {
    db.transact(
        TxMode::Write,
        Box::new(|t| t.execute("DELETE FROM big", &[]).map(drop)),
    )
    .await
    .unwrap();
}

async fn kept(db: &SqliteDatabase) -> String {
    let out = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let o = std::sync::Arc::clone(&out);
    db.transact(
        TxMode::Read,
        Box::new(move |t| {
            *o.lock().unwrap() = t
                .fetch_optional("SELECT v FROM keep WHERE k = 1", &[])?
                .unwrap()
                .text("v")?;
            Ok(())
        }),
    )
    .await
    .unwrap();
    out.lock().unwrap().clone()
}

#[tokio::test]
async fn incremental_vacuum_and_checkpoint_shrink_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.db");
    let db = SqliteDatabase::open_file(&path, &ConnectOptions::default())
        .await
        .unwrap();
    fill(&db, 5_000).await; // ~20 MB
    let m = db.maintenance().unwrap();
    m.checkpoint("TRUNCATE").await.unwrap();
    let full = footprint(&path);
    assert!(full > 15_000_000, "filled to {full} bytes");
    delete_big(&db).await;
    m.checkpoint("TRUNCATE").await.unwrap();
    let deleted = footprint(&path);
    m.vacuum(true).await.unwrap();
    let vacuumed = footprint(&path);
    eprintln!("full={full} after-delete={deleted} after-incremental-vacuum={vacuumed}");
    assert!(
        vacuumed < full / 10,
        "incremental vacuum must return the space: {full} -> {vacuumed}"
    );
    assert_eq!(kept(&db).await, "kept");
    db.close().await.unwrap();
    // Still a healthy database after reopening.
    let db = SqliteDatabase::open_file(&path, &ConnectOptions::default())
        .await
        .unwrap();
    assert_eq!(kept(&db).await, "kept");
}

#[tokio::test]
async fn full_vacuum_shrinks_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.db");
    let db = SqliteDatabase::open_file(&path, &ConnectOptions::default())
        .await
        .unwrap();
    fill(&db, 2_500).await;
    let m = db.maintenance().unwrap();
    m.checkpoint("FULL").await.unwrap();
    let full = footprint(&path);
    delete_big(&db).await;
    m.vacuum(false).await.unwrap();
    let vacuumed = footprint(&path);
    eprintln!("full={full} after-full-vacuum={vacuumed}");
    assert!(vacuumed < full / 10, "{full} -> {vacuumed}");
    assert_eq!(kept(&db).await, "kept");
}

#[tokio::test]
async fn checkpoint_modes_are_validated() {
    let db = SqliteDatabase::open_memory(&ConnectOptions::default())
        .await
        .unwrap();
    let m = db.maintenance().unwrap();
    for mode in ["PASSIVE", "FULL", "RESTART", "TRUNCATE", "truncate"] {
        m.checkpoint(mode).await.unwrap();
    }
    for bad in ["", "NOPE", "TRUNCATE); DROP TABLE x; --"] {
        let err = m.checkpoint(bad).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidArgument, "{bad}");
    }
    // Vacuum works on memory databases too.
    fill(&db, 500).await;
    delete_big(&db).await;
    m.vacuum(true).await.unwrap();
    m.vacuum(false).await.unwrap();
}

#[tokio::test]
async fn backup_produces_an_openable_copy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("src.db");
    let db = SqliteDatabase::open_file(&path, &ConnectOptions::default())
        .await
        .unwrap();
    fill(&db, 500).await;
    let dest = dir.path().join("backups/copy.db");
    db.maintenance().unwrap().backup(&dest).await.unwrap();
    let err = db.maintenance().unwrap().backup(&path).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidArgument);
    let copy = SqliteDatabase::open_file(&dest, &ConnectOptions::default())
        .await
        .unwrap();
    assert_eq!(kept(&copy).await, "kept");
    let n = std::sync::Arc::new(std::sync::Mutex::new(0));
    let n2 = std::sync::Arc::clone(&n);
    copy.transact(
        TxMode::Read,
        Box::new(move |t| {
            *n2.lock().unwrap() = t
                .fetch_optional("SELECT count(*) AS n FROM big", &[])?
                .unwrap()
                .i64("n")?;
            Ok(())
        }),
    )
    .await
    .unwrap();
    assert_eq!(*n.lock().unwrap(), 500);

    // Backup of a memory database to a file.
    let mem = SqliteDatabase::open_memory(&ConnectOptions::default())
        .await
        .unwrap();
    fill(&mem, 0).await;
    let dest2 = dir.path().join("mem.db");
    mem.maintenance().unwrap().backup(&dest2).await.unwrap();
    let copy2 = SqliteDatabase::open_file(&dest2, &ConnectOptions::default())
        .await
        .unwrap();
    assert_eq!(kept(&copy2).await, "kept");
}
