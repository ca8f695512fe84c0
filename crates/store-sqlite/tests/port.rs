//! Behaviour of the `Database` port on SQLite: transactions, matched-row counts, close, leases.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use power_loop_contracts::ErrorCode;
use power_loop_store::backend::{ConnectOptions, DsnTarget, ParsedDsn};
use power_loop_store::db::{Database, Dialect, Row, Transaction, TxBody, TxMode, Value};
use power_loop_store_sqlite::{BACKEND, SqliteDatabase, SqliteDialect};

async fn memory() -> SqliteDatabase {
    SqliteDatabase::open_memory(&ConnectOptions::default())
        .await
        .unwrap()
}

fn body(
    f: impl FnOnce(&mut dyn Transaction) -> power_loop_contracts::Result<()> + Send + 'static,
) -> TxBody {
    Box::new(f)
}

async fn exec(db: &dyn Database, sql: &'static str, params: Vec<Value>) -> u64 {
    let (tx, rx) = std::sync::mpsc::channel();
    db.transact(
        TxMode::Write,
        body(move |t| {
            tx.send(t.execute(sql, &params)?).unwrap();
            Ok(())
        }),
    )
    .await
    .unwrap();
    rx.recv().unwrap()
}

async fn rows(db: &dyn Database, sql: &'static str) -> Vec<Row> {
    let (tx, rx) = std::sync::mpsc::channel();
    db.transact(
        TxMode::Read,
        body(move |t| {
            tx.send(t.fetch_all(sql, &[])?).unwrap();
            Ok(())
        }),
    )
    .await
    .unwrap();
    rx.recv().unwrap()
}

async fn count(db: &dyn Database, table: &'static str) -> i64 {
    let sql: &'static str = match table {
        "t" => "SELECT count(*) AS n FROM t",
        _ => unreachable!(),
    };
    rows(db, sql).await[0].i64("n").unwrap()
}

async fn with_table() -> SqliteDatabase {
    let db = memory().await;
    exec(
        &db,
        "CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT, n INTEGER NOT NULL DEFAULT 0)",
        vec![],
    )
    .await;
    db
}

#[tokio::test]
async fn commit_on_ok_rollback_on_err() {
    let db = with_table().await;
    db.transact(
        TxMode::Write,
        body(|t| {
            t.execute(
                "INSERT INTO t (k, v) VALUES (?, ?)",
                &[1.into(), "a".into()],
            )?;
            Ok(())
        }),
    )
    .await
    .unwrap();
    assert_eq!(count(&db, "t").await, 1);

    let err = db
        .transact(
            TxMode::Write,
            body(|t| {
                t.execute(
                    "INSERT INTO t (k, v) VALUES (?, ?)",
                    &[2.into(), "b".into()],
                )?;
                let _ = t.fetch_all("SELECT * FROM t", &[])?;
                Err(power_loop_contracts::Error::invalid_argument("boom"))
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidArgument);
    assert_eq!(count(&db, "t").await, 1, "a failed body leaves no trace");
}

#[tokio::test]
async fn panic_in_body_rolls_back_and_thread_survives() {
    let db = with_table().await;
    let err = db
        .transact(
            TxMode::Write,
            body(|t| {
                t.execute(
                    "INSERT INTO t (k, v) VALUES (?, ?)",
                    &[7.into(), "x".into()],
                )?;
                panic!("body exploded");
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Internal);
    assert!(err.message().contains("body exploded"), "{}", err.message());
    assert_eq!(count(&db, "t").await, 0);
    // The connection still works and is not stuck in a transaction.
    exec(&db, "INSERT INTO t (k, v) VALUES (8, 'y')", vec![]).await;
    assert_eq!(count(&db, "t").await, 1);
}

#[tokio::test]
async fn execute_returns_matched_rows() {
    let db = with_table().await;
    assert_eq!(
        exec(
            &db,
            "INSERT INTO t (k, v) VALUES (1, 'a'), (2, 'a'), (3, 'b')",
            vec![]
        )
        .await,
        3
    );
    // Same value written again: still "matched".
    assert_eq!(
        exec(
            &db,
            "UPDATE t SET v = ? WHERE v = ?",
            vec!["a".into(), "a".into()]
        )
        .await,
        2
    );
    assert_eq!(
        exec(&db, "UPDATE t SET v = 'z' WHERE k = 99", vec![]).await,
        0
    );
    // DDL right after a write reports 0, not the previous statement's count.
    assert_eq!(
        exec(
            &db,
            "INSERT INTO t (k, v) VALUES (4, 'c'), (5, 'c')",
            vec![]
        )
        .await,
        2
    );
    assert_eq!(
        exec(&db, "CREATE TABLE IF NOT EXISTS u (x INTEGER)", vec![]).await,
        0
    );
    assert_eq!(exec(&db, "DELETE FROM t WHERE v = 'c'", vec![]).await, 2);
}

#[tokio::test]
async fn values_round_trip_and_typed_errors() {
    let db = with_table().await;
    exec(
        &db,
        "INSERT INTO t (k, v, n) VALUES (?, ?, ?)",
        vec![1.into(), Value::Null, (-5).into()],
    )
    .await;
    exec(
        &db,
        "INSERT INTO t (k, v, n) VALUES (?, ?, ?)",
        vec![2.into(), "héllo ✓".into(), i64::MAX.into()],
    )
    .await;
    let r = rows(&db, "SELECT k, v, n FROM t ORDER BY k").await;
    assert_eq!(r[0].values(), &[Value::Int(1), Value::Null, Value::Int(-5)]);
    assert_eq!(r[1].text("v").unwrap(), "héllo ✓");
    assert_eq!(r[1].i64("n").unwrap(), i64::MAX);

    let err = db
        .transact(
            TxMode::Write,
            body(|t| {
                t.execute(
                    "INSERT INTO t (k, v) VALUES (?, ?)",
                    &[1.into(), "dup".into()],
                )
                .map(drop)
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::StoreConstraint);

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

    let err = db
        .transact(
            TxMode::Read,
            body(|t| t.fetch_all("SELECT nope FROM t", &[]).map(drop)),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::StoreQuery);

    let got = Arc::new(std::sync::Mutex::new(None));
    let g = Arc::clone(&got);
    db.transact(
        TxMode::Read,
        body(move |t| {
            *g.lock().unwrap() =
                Some(t.fetch_optional("SELECT v FROM t WHERE k = ?", &[42.into()])?);
            Ok(())
        }),
    )
    .await
    .unwrap();
    assert_eq!(*got.lock().unwrap(), Some(None));
}

#[tokio::test]
async fn dialect_upsert_and_insert_ignore() {
    let db = memory().await;
    exec(&db, "CREATE TABLE s (k TEXT NOT NULL, r INTEGER NOT NULL, val TEXT, cnt INTEGER NOT NULL DEFAULT 0, first INTEGER, PRIMARY KEY (k, r))", vec![]).await;
    let d = SqliteDialect;
    let up = d.upsert("s", &["k", "r"], &["val"], &["cnt"], &["first"]);
    let ins = d.insert_ignore("s", &["k", "r", "val"], &["k", "r"]);
    let (up2, ins2) = (up.clone(), ins.clone());
    db.transact(
        TxMode::Write,
        body(move |t| {
            assert_eq!(
                t.execute(
                    &up2,
                    &["a".into(), 1.into(), "v1".into(), 2.into(), 100.into()]
                )?,
                1
            );
            assert_eq!(
                t.execute(
                    &up2,
                    &["a".into(), 1.into(), "v2".into(), 3.into(), 200.into()]
                )?,
                1
            );
            assert_eq!(
                t.execute(&ins2, &["a".into(), 1.into(), "ignored".into()])?,
                0
            );
            assert_eq!(t.execute(&ins2, &["b".into(), 1.into(), "new".into()])?, 1);
            Ok(())
        }),
    )
    .await
    .unwrap();
    let r = rows(&db, "SELECT k, val, cnt, first FROM s ORDER BY k").await;
    assert_eq!(r[0].text("val").unwrap(), "v2", "val_cols overwrite");
    assert_eq!(r[0].i64("cnt").unwrap(), 5, "add_cols accumulate");
    assert_eq!(r[0].i64("first").unwrap(), 100, "insert_only preserved");
    assert_eq!(r[1].text("val").unwrap(), "new");
    assert_eq!(d.for_update(), "");
    assert_eq!(d.for_update_skip_locked(), "");
    assert_eq!(d.translate("SELECT ? , ?"), "SELECT ? , ?");
    assert_eq!(d.name(), "sqlite");
}

#[tokio::test]
async fn ddl_creates_prefixed_schema_idempotently() {
    let db = memory().await;
    let ddl = SqliteDialect.ddl("pfx_");
    assert_eq!(ddl.len(), 20);
    for _ in 0..2 {
        let stmts = ddl.clone();
        db.transact_exclusive(
            "schema",
            body(move |t| {
                for s in &stmts {
                    assert_eq!(t.execute(s, &[])?, 0);
                }
                Ok(())
            }),
        )
        .await
        .unwrap();
    }
    let names = rows(
        &db,
        "SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name",
    )
    .await;
    let tables: Vec<String> = names
        .iter()
        .filter(|r| r.text("type").unwrap() == "table")
        .map(|r| r.text("name").unwrap())
        .collect();
    let indexes: Vec<String> = names
        .iter()
        .filter(|r| r.text("type").unwrap() == "index")
        .map(|r| r.text("name").unwrap())
        .collect();
    assert_eq!(
        tables,
        [
            "pfx_background_tasks",
            "pfx_compactions",
            "pfx_messages",
            "pfx_notes",
            "pfx_session_runtime_state",
            "pfx_session_state",
            "pfx_session_stats",
            "pfx_sessions",
            "pfx_shared_state",
            "pfx_timers",
            "pfx_usage_rounds",
            "pfx_workflow_runs",
            "pfx_workflow_steps"
        ]
    );
    assert_eq!(
        indexes,
        [
            "pfx_idx_background_tasks_session_status",
            "pfx_idx_messages_session_state",
            "pfx_idx_sessions_parent",
            "pfx_idx_timers_due",
            "pfx_idx_workflow_runs_parent",
            "pfx_idx_workflow_runs_status",
            "pfx_idx_workflow_steps_seq"
        ]
    );
    // Defaults of the spec.
    exec(
        &db,
        "INSERT INTO pfx_sessions (session_id, created_at, updated_at) VALUES ('s', 1, 1)",
        vec![],
    )
    .await;
    exec(
        &db,
        "INSERT INTO pfx_session_state (session_id) VALUES ('s')",
        vec![],
    )
    .await;
    let r = rows(
        &db,
        "SELECT status, kind, spawn_depth, lifecycle FROM pfx_sessions",
    )
    .await;
    assert_eq!(
        r[0].values(),
        &[
            Value::from("active"),
            Value::from("root"),
            Value::Int(0),
            Value::from("ephemeral")
        ]
    );
    let r = rows(
        &db,
        "SELECT next_seq, round_index, last_compact_seq, pending_json FROM pfx_session_state",
    )
    .await;
    assert_eq!(
        r[0].values(),
        &[Value::Int(1), Value::Int(0), Value::Int(0), Value::Null]
    );
}

#[tokio::test]
async fn close_is_idempotent_and_later_calls_fail_closed() {
    let db = with_table().await;
    db.close().await.unwrap();
    db.close().await.unwrap();
    let err = db
        .transact(TxMode::Read, body(|_| Ok(())))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::StoreClosed);
    let err = db.acquire_lease("x").await.err().unwrap();
    assert_eq!(err.code(), ErrorCode::StoreClosed);
    let err = db
        .maintenance()
        .unwrap()
        .checkpoint("PASSIVE")
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::StoreClosed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_future_never_leaves_a_transaction_open() {
    let db = Arc::new(with_table().await);
    // 1. Dropped while the body runs: the body finishes on the connection thread and the tx ends.
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
    // 2. Dropped before it started: the body is skipped.
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
    exec(&*db, "INSERT INTO t (k, v) VALUES (2, 'after')", vec![]).await;
    assert!(
        !ran.load(Ordering::SeqCst),
        "a job whose caller left before it started is skipped"
    );
    assert_eq!(count(&*db, "t").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_are_serialized() {
    let db = Arc::new(with_table().await);
    exec(
        &*db,
        "INSERT INTO t (k, v, n) VALUES (1, 'counter', 0)",
        vec![],
    )
    .await;
    let mut handles = Vec::new();
    for _ in 0..16 {
        let db = Arc::clone(&db);
        handles.push(tokio::spawn(async move {
            for _ in 0..25 {
                db.transact(
                    TxMode::Write,
                    body(|t| {
                        let n = t
                            .fetch_optional("SELECT n FROM t WHERE k = 1", &[])?
                            .unwrap()
                            .i64("n")?;
                        t.execute("UPDATE t SET n = ? WHERE k = 1", &[(n + 1).into()])?;
                        Ok(())
                    }),
                )
                .await
                .unwrap();
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    assert_eq!(
        rows(&*db, "SELECT n FROM t").await[0].i64("n").unwrap(),
        400
    );
}

#[tokio::test]
async fn file_leases_exclude_across_handles_and_release() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lease.db");
    let a = SqliteDatabase::open_file(&path, &ConnectOptions::default())
        .await
        .unwrap();
    let b = SqliteDatabase::open_file(&path, &ConnectOptions::default())
        .await
        .unwrap();
    let la = a
        .acquire_lease("session:s1")
        .await
        .unwrap()
        .expect("first holder");
    assert_eq!(la.name(), "session:s1");
    assert!(
        b.acquire_lease("session:s1").await.unwrap().is_none(),
        "held elsewhere"
    );
    assert!(
        a.acquire_lease("session:s1").await.unwrap().is_none(),
        "not re-entrant"
    );
    let other = b.acquire_lease("session:s2").await.unwrap();
    assert!(other.is_some(), "names are independent");
    la.release().await.unwrap();
    let lb = b
        .acquire_lease("session:s1")
        .await
        .unwrap()
        .expect("free after release");
    drop(lb);
    assert!(
        a.acquire_lease("session:s1").await.unwrap().is_some(),
        "free after drop"
    );
    assert!(dir.path().join("lease.db-leases").is_dir());
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
    exec(&*file, "CREATE TABLE t (x INTEGER)", vec![]).await;
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
