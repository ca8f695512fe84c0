//! The `Database` port on SQLite: the shared port suite on a file database, plus what only this
//! backend does (skipped queued jobs, in-process leases of in-memory databases, lock files, the
//! dialect's SQL text, the DDL's indexes, the backend descriptor).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use power_loop_contracts::ErrorCode;
use power_loop_store::backend::{ConnectOptions, DsnTarget, ParsedDsn};
use power_loop_store::conformance::port::{PortTarget, body, exec, query, scalar};
use power_loop_store::db::{Database, Dialect, TxMode};
use power_loop_store_sqlite::{BACKEND, SqliteDatabase, SqliteDialect};

/// Handles on one fresh database file (its directory goes when the target is dropped).
fn file_target() -> Option<PortTarget> {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let path = dir.path().join("port.db");
    Some(PortTarget::new(move |o| {
        let _keep = Arc::clone(&dir);
        let path = path.clone();
        async move {
            let db: Arc<dyn Database> = Arc::new(SqliteDatabase::open_file(path, &o).await?);
            Ok(db)
        }
    }))
}

power_loop_store::port_conformance_suite!(file_target);

async fn memory() -> SqliteDatabase {
    SqliteDatabase::open_memory(&ConnectOptions::default())
        .await
        .unwrap()
}

async fn with_table() -> SqliteDatabase {
    let db = memory().await;
    exec(
        &db,
        "CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT, n INTEGER NOT NULL DEFAULT 0)",
        vec![],
    )
    .await
    .unwrap();
    db
}

#[tokio::test]
async fn a_wrong_parameter_count_is_a_query_error() {
    let db = with_table().await;
    let err = db
        .transact(
            TxMode::Write,
            body(|t| {
                t.execute("INSERT INTO t (k, v) VALUES (?, ?)", &[3.into()])
                    .map(drop)
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::StoreQuery);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_caller_left_before_it_started_is_skipped() {
    let db = Arc::new(with_table().await);
    let slow = db.transact(
        TxMode::Write,
        body(|t| {
            t.execute("INSERT INTO t (k, v) VALUES (1, 'slow')", &[])?;
            std::thread::sleep(Duration::from_millis(200));
            Ok(())
        }),
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(50), slow)
            .await
            .is_err()
    );
    let ran = Arc::new(AtomicBool::new(false));
    let r2 = Arc::clone(&ran);
    let queued = db.transact(
        TxMode::Write,
        body(move |_| {
            r2.store(true, Ordering::SeqCst);
            Ok(())
        }),
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(20), queued)
            .await
            .is_err()
    );
    // A later write transaction works (BEGIN IMMEDIATE would fail inside an open transaction).
    exec(&*db, "INSERT INTO t (k, v) VALUES (2, 'after')", vec![])
        .await
        .unwrap();
    assert!(
        !ran.load(Ordering::SeqCst),
        "a job whose caller left before it started is skipped"
    );
    assert_eq!(scalar(&*db, "SELECT count(*) FROM t").await, 2);
}

#[tokio::test]
async fn an_ignored_duplicate_insert_counts_zero_rows() {
    let db = with_table().await;
    let ins = SqliteDialect.insert_ignore("t", &["k", "v"], &["k"]);
    assert_eq!(
        exec(&db, &ins, vec![1.into(), "a".into()]).await.unwrap(),
        1
    );
    assert_eq!(
        exec(&db, &ins, vec![1.into(), "b".into()]).await.unwrap(),
        0
    );
    assert_eq!(scalar(&db, "SELECT count(*) FROM t WHERE v = 'a'").await, 1);
}

#[test]
fn dialect_sql_text() {
    let d = SqliteDialect;
    assert_eq!(d.for_update(), "");
    assert_eq!(d.for_update_skip_locked(), "");
    assert_eq!(d.translate("SELECT ? , ?"), "SELECT ? , ?");
    assert_eq!(d.name(), "sqlite");
}

#[tokio::test]
async fn ddl_tables_and_indexes() {
    let db = memory().await;
    let ddl = SqliteDialect.ddl("pfx_");
    assert_eq!(ddl.len(), 23);
    db.transact_exclusive(
        "schema",
        body(move |t| {
            for s in &ddl {
                t.execute(s, &[])?;
            }
            Ok(())
        }),
    )
    .await
    .unwrap();
    let names = query(
        &db,
        "SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name",
        vec![],
    )
    .await
    .unwrap();
    let of_type = |ty: &str| -> Vec<String> {
        names
            .iter()
            .filter(|r| r.text("type").unwrap() == ty)
            .map(|r| r.text("name").unwrap())
            .collect()
    };
    assert_eq!(
        of_type("table"),
        [
            "pfx_background_tasks",
            "pfx_compactions",
            "pfx_lease_fences",
            "pfx_messages",
            "pfx_notes",
            "pfx_session_runtime_state",
            "pfx_session_state",
            "pfx_session_stats",
            "pfx_sessions",
            "pfx_shared_state",
            "pfx_timers",
            "pfx_usage_rounds",
            "pfx_workflow_leaves",
            "pfx_workflow_runs",
            "pfx_workflow_steps"
        ]
    );
    assert_eq!(
        of_type("index"),
        [
            "pfx_idx_background_tasks_session_status",
            "pfx_idx_messages_session_state",
            "pfx_idx_sessions_parent",
            "pfx_idx_timers_due",
            "pfx_idx_workflow_leaves_state",
            "pfx_idx_workflow_runs_parent",
            "pfx_idx_workflow_runs_status",
            "pfx_idx_workflow_steps_seq"
        ]
    );
}

#[tokio::test]
async fn file_leases_live_in_a_lock_directory_beside_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lease.db");
    let a = SqliteDatabase::open_file(&path, &ConnectOptions::default())
        .await
        .unwrap();
    let l = a.acquire_lease("session:s1").await.unwrap().unwrap();
    assert!(dir.path().join("lease.db-leases").is_dir());
    l.release().await.unwrap();
}

#[tokio::test]
async fn memory_leases_use_an_in_process_registry() {
    let db = memory().await;
    let l = db.acquire_lease("w").await.unwrap().unwrap();
    assert!(db.acquire_lease("w").await.unwrap().is_none());
    l.release().await.unwrap();
    assert!(db.acquire_lease("w").await.unwrap().is_some());
    let err = db.acquire_lease("").await.err().unwrap();
    assert_eq!(err.code(), ErrorCode::InvalidArgument);
}

#[tokio::test]
async fn backend_descriptor_opens_memory_and_file() {
    assert_eq!(BACKEND.name, "sqlite");
    let mem = (BACKEND.open)(
        ParsedDsn {
            backend: "sqlite",
            target: DsnTarget::SqliteMemory,
        },
        ConnectOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(mem.dialect().name(), "sqlite");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dirs/x.db");
    let file = (BACKEND.open)(
        ParsedDsn {
            backend: "sqlite",
            target: DsnTarget::SqliteFile(path.clone()),
        },
        ConnectOptions::default(),
    )
    .await
    .unwrap();
    exec(&*file, "CREATE TABLE t (x INTEGER)", vec![])
        .await
        .unwrap();
    file.close().await.unwrap();
    assert!(path.is_file(), "parent directories are created");
    let err = (BACKEND.open)(
        ParsedDsn {
            backend: "sqlite",
            target: DsnTarget::Url("postgres://x".into()),
        },
        ConnectOptions::default(),
    )
    .await
    .err()
    .unwrap();
    assert_eq!(err.code(), ErrorCode::StoreDsnInvalid);
}
