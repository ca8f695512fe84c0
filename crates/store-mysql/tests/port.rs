//! Port behaviour of `MySqlDatabase` against a real server (`POWER_LOOP_TEST_MYSQL_DSN`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use power_loop_contracts::ErrorCode;
use power_loop_store::backend::{ConnectOptions, DsnTarget, ParsedDsn};
use power_loop_store::db::{Database, Row, TxMode, Value};
use power_loop_store_mysql::{BACKEND, MySqlDatabase};

use common::{connect, drop_prefixed, dsn, exec, prefix};

async fn make_kv(db: &MySqlDatabase, p: &str) -> String {
    let t = format!("{p}kv");
    db.execute(
        &format!(
            "CREATE TABLE IF NOT EXISTS {t} (id BIGINT NOT NULL PRIMARY KEY, v LONGTEXT NULL, n BIGINT NULL) \
             ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
        ),
        &[],
    )
    .await
    .unwrap();
    t
}

async fn count(db: &MySqlDatabase, t: &str) -> i64 {
    let rows = db
        .fetch_all(&format!("SELECT COUNT(*) AS c FROM {t}"), &[])
        .await
        .unwrap();
    rows[0].i64("c").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_rollback_and_panic_rollback() {
    let Some(dsn) = dsn() else { return };
    let db = connect(&dsn).await;
    let p = prefix("cr");
    let t = make_kv(&db, &p).await;

    // Commit.
    let t1 = t.clone();
    db.transact(
        TxMode::Write,
        Box::new(move |tx| {
            tx.execute(
                &format!("INSERT INTO {t1} (id, v) VALUES (?, ?)"),
                &[1.into(), "a".into()],
            )?;
            Ok(())
        }),
    )
    .await
    .unwrap();
    assert_eq!(count(&db, &t).await, 1);

    // Err rolls back, including writes after a leading SELECT.
    let t2 = t.clone();
    let err = db
        .transact(
            TxMode::Write,
            Box::new(move |tx| {
                tx.fetch_all(&format!("SELECT * FROM {t2}"), &[])?;
                tx.execute(
                    &format!("INSERT INTO {t2} (id, v) VALUES (?, ?)"),
                    &[2.into(), "b".into()],
                )?;
                Err(power_loop_contracts::Error::invalid_argument("boom"))
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidArgument);
    assert_eq!(count(&db, &t).await, 1);

    // Panic rolls back and becomes an error.
    let t3 = t.clone();
    let err = db
        .transact(
            TxMode::Write,
            Box::new(move |tx| {
                tx.execute(
                    &format!("INSERT INTO {t3} (id, v) VALUES (?, ?)"),
                    &[3.into(), "c".into()],
                )?;
                panic!("body exploded");
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Internal);
    assert!(err.message().contains("body exploded"), "{}", err.message());
    assert_eq!(count(&db, &t).await, 1);

    // A duplicate key inside a tx maps to store.constraint and rolls back the whole tx.
    let t4 = t.clone();
    let err = db
        .transact(
            TxMode::Write,
            Box::new(move |tx| {
                tx.execute(&format!("INSERT INTO {t4} (id) VALUES (?)"), &[5.into()])?;
                tx.execute(&format!("INSERT INTO {t4} (id) VALUES (?)"), &[1.into()])?;
                Ok(())
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::StoreConstraint);
    assert_eq!(count(&db, &t).await, 1);

    // A missing table is store.query with a schema hint.
    let err = db
        .fetch_all(&format!("SELECT * FROM {p}nope"), &[])
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::StoreQuery);
    assert!(err.message().contains("schema"), "{}", err.message());

    drop_prefixed(&db, &p).await;
    db.close().await.unwrap();
}

#[tokio::test]
async fn current_thread_runtime_and_matched_rows() {
    let Some(dsn) = dsn() else { return };
    let db = connect(&dsn).await;
    let p = prefix("mr");
    let t = make_kv(&db, &p).await;
    assert_eq!(
        exec(
            &db,
            &format!("INSERT INTO {t} (id, v) VALUES (?, ?)"),
            vec![1.into(), "x".into()]
        )
        .await,
        1
    );
    // No-op UPDATE: one row matched, none changed.
    assert_eq!(
        exec(
            &db,
            &format!("UPDATE {t} SET v = ? WHERE id = ?"),
            vec!["x".into(), 1.into()]
        )
        .await,
        1
    );
    assert_eq!(
        exec(
            &db,
            &format!("UPDATE {t} SET v = ? WHERE id = ?"),
            vec!["x".into(), 9.into()]
        )
        .await,
        0
    );
    // Compare-and-set style.
    assert_eq!(
        exec(
            &db,
            &format!("UPDATE {t} SET v = ? WHERE id = ? AND v = ?"),
            vec!["y".into(), 1.into(), "x".into()]
        )
        .await,
        1
    );
    assert_eq!(
        exec(
            &db,
            &format!("UPDATE {t} SET v = ? WHERE id = ? AND v = ?"),
            vec!["z".into(), 1.into(), "x".into()]
        )
        .await,
        0
    );
    drop_prefixed(&db, &p).await;
    db.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_round_trip() {
    let Some(dsn) = dsn() else { return };
    let db = connect(&dsn).await;
    let p = prefix("rt");
    let t = make_kv(&db, &p).await;
    let big: String = "0123456789abcdef".repeat(65_536); // 1 MiB
    let emoji = "héllo 🦀🚀 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 中文 \u{0}nul".to_owned();
    let cases: Vec<(i64, Value, Value)> = vec![
        (1, Value::Text(big.clone()), Value::Int(i64::MAX)),
        (2, Value::Text(emoji.clone()), Value::Int(i64::MIN)),
        (3, Value::Null, Value::Null),
        (4, Value::Text(String::new()), Value::Int(-1)),
        (5, Value::Text("100% ? literal".into()), Value::Int(0)),
    ];
    let t1 = t.clone();
    let c1 = cases.clone();
    db.transact(
        TxMode::Write,
        Box::new(move |tx| {
            for (id, v, n) in c1 {
                tx.execute(
                    &format!("INSERT INTO {t1} (id, v, n) VALUES (?, ?, ?)"),
                    &[id.into(), v, n],
                )?;
            }
            Ok(())
        }),
    )
    .await
    .unwrap();
    let got: Arc<Mutex<Vec<Row>>> = Arc::default();
    let g = got.clone();
    let t2 = t.clone();
    db.transact(
        TxMode::Read,
        Box::new(move |tx| {
            *g.lock().unwrap() =
                tx.fetch_all(&format!("SELECT id, v, n FROM {t2} ORDER BY id"), &[])?;
            Ok(())
        }),
    )
    .await
    .unwrap();
    let rows = got.lock().unwrap().clone();
    assert_eq!(rows.len(), cases.len());
    for (row, (id, v, n)) in rows.iter().zip(&cases) {
        assert_eq!(row.columns(), ["id", "v", "n"]);
        assert_eq!(row.get("id"), Some(&Value::Int(*id)));
        assert_eq!(row.get("V"), Some(v), "id {id}");
        assert_eq!(row.get("n"), Some(n));
    }
    assert_eq!(rows[0].text("v").unwrap().len(), 1 << 20);

    // Autocommit reads decode integers the same way (binary protocol), incl. aggregates.
    let agg = db
        .fetch_all(
            &format!("SELECT COUNT(*) AS c, SUM(id) AS s, MAX(id) AS m, NULL AS z FROM {t}"),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        agg[0].values(),
        [Value::Int(5), Value::Int(15), Value::Int(5), Value::Null]
    );
    // fetch_optional on an empty result.
    let none: Arc<Mutex<Option<Option<Row>>>> = Arc::default();
    let n2 = none.clone();
    let t3 = t.clone();
    db.transact(
        TxMode::Read,
        Box::new(move |tx| {
            *n2.lock().unwrap() =
                Some(tx.fetch_optional(&format!("SELECT v FROM {t3} WHERE id = ?"), &[99.into()])?);
            Ok(())
        }),
    )
    .await
    .unwrap();
    assert_eq!(*none.lock().unwrap(), Some(None));
    drop_prefixed(&db, &p).await;
    db.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dialect_ddl_upsert_insert_ignore_and_locks_on_server() {
    let Some(dsn) = dsn() else { return };
    let db = connect(&dsn).await;
    let p = prefix("dl");
    let d = db.dialect();
    for stmt in d.ddl(&p) {
        db.execute(&stmt, &[]).await.unwrap();
    }
    // Idempotent.
    for stmt in d.ddl(&p) {
        db.execute(&stmt, &[]).await.unwrap();
    }
    let tables = db
        .fetch_all(
            "SELECT COUNT(*) AS c FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name LIKE CONCAT(?, '%')",
            &[Value::Text(p.replace('_', "\\_"))],
        )
        .await
        .unwrap();
    assert_eq!(tables[0].i64("c").unwrap(), 13);

    let stats = format!("{p}session_stats");
    let up = d.upsert(
        &stats,
        &["session_id"],
        &["last_send_at", "updated_at"],
        &["sends", "total_tokens"],
        &["first_send_at"],
    );
    let bind = |last: i64, sends: i64, tok: i64, first: i64| -> Vec<Value> {
        vec![
            "s1".into(),
            last.into(),
            last.into(),
            sends.into(),
            tok.into(),
            first.into(),
        ]
    };
    db.execute(&up, &bind(10, 1, 100, 10)).await.unwrap();
    db.execute(&up, &bind(20, 1, 50, 20)).await.unwrap();
    let r = db
        .fetch_all(
            &format!("SELECT sends, total_tokens, first_send_at, last_send_at FROM {stats}"),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        r[0].values(),
        [
            Value::Int(2),
            Value::Int(150),
            Value::Int(10),
            Value::Int(20)
        ]
    );

    let sm = format!("{p}schema_migrations");
    db.execute(
        &format!(
            "CREATE TABLE {sm} (id INTEGER PRIMARY KEY CHECK (id=1), version INTEGER NOT NULL)"
        ),
        &[],
    )
    .await
    .unwrap();
    let ins = d.insert_ignore(&sm, &["id", "version"], &["id"]);
    db.execute(&ins, &[1.into(), 1.into()]).await.unwrap();
    db.execute(&ins, &[1.into(), 7.into()]).await.unwrap();
    let v = db
        .fetch_all(&format!("SELECT version FROM {sm}"), &[])
        .await
        .unwrap();
    assert_eq!(v[0].i64("version").unwrap(), 1);

    // FOR UPDATE SKIP LOCKED: a second tx skips the row locked by the first.
    let timers = format!("{p}timers");
    db.execute(
        &format!("INSERT INTO {timers} (session_id, timer_id, due_at, note, created_at, updated_at) VALUES ('s', 1, 0, 'n', 0, 0), ('s', 2, 0, 'n', 0, 0)"),
        &[],
    )
    .await
    .unwrap();
    let (locked_tx, locked_rx) = std::sync::mpsc::channel::<()>();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let sel = format!(
        "SELECT timer_id FROM {timers} WHERE session_id = 's' AND timer_id = 1{}",
        d.for_update()
    );
    let holder = {
        let db = db.clone();
        tokio::spawn(async move {
            db.transact(
                TxMode::Write,
                Box::new(move |tx| {
                    tx.fetch_all(&sel, &[])?;
                    locked_tx.send(()).unwrap();
                    release_rx.recv_timeout(Duration::from_secs(30)).unwrap();
                    Ok(())
                }),
            )
            .await
        })
    };
    tokio::task::spawn_blocking(move || locked_rx.recv_timeout(Duration::from_secs(30)).unwrap())
        .await
        .unwrap();
    let skip = format!(
        "SELECT timer_id FROM {timers} ORDER BY timer_id{}",
        d.for_update_skip_locked()
    );
    let seen: Arc<Mutex<Vec<Row>>> = Arc::default();
    let s2 = seen.clone();
    db.transact(
        TxMode::Write,
        Box::new(move |tx| {
            *s2.lock().unwrap() = tx.fetch_all(&skip, &[])?;
            Ok(())
        }),
    )
    .await
    .unwrap();
    release_tx.send(()).unwrap();
    holder.await.unwrap().unwrap();
    let ids: Vec<i64> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.i64("timer_id").unwrap())
        .collect();
    assert_eq!(ids, [2]);

    drop_prefixed(&db, &p).await;
    db.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_caller_future_leaves_no_open_transaction() {
    let Some(dsn) = dsn() else { return };
    let mut opts = ConnectOptions::default();
    opts.pool_max_size = 1; // the next transaction must get the very same connection
    let db = MySqlDatabase::connect(&dsn, &opts).await.unwrap();
    let p = prefix("dr");
    let t = make_kv(&db, &p).await;
    let t1 = t.clone();
    let fut = db.transact(
        TxMode::Write,
        Box::new(move |tx| {
            tx.execute(&format!("INSERT INTO {t1} (id) VALUES (?)"), &[1.into()])?;
            std::thread::sleep(Duration::from_millis(400));
            Err(power_loop_contracts::Error::invalid_argument("rolled back"))
        }),
    );
    // Drop the caller future while the body runs.
    assert!(
        tokio::time::timeout(Duration::from_millis(100), fut)
            .await
            .is_err()
    );
    // The only pooled connection is reused once the worker finished; it must not be inside the
    // abandoned transaction (its insert must not appear and later writes must commit).
    let t2 = t.clone();
    db.transact(
        TxMode::Write,
        Box::new(move |tx| {
            let rows = tx.fetch_all(&format!("SELECT id FROM {t2}"), &[])?;
            assert!(rows.is_empty());
            tx.execute(&format!("INSERT INTO {t2} (id) VALUES (?)"), &[2.into()])?;
            Ok(())
        }),
    )
    .await
    .unwrap();
    let other = connect(&dsn).await;
    assert_eq!(count(&other, &t).await, 1);
    drop_prefixed(&db, &p).await;
    db.close().await.unwrap();
    other.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_is_idempotent_and_later_ops_fail_closed() {
    let Some(dsn) = dsn() else { return };
    let db = connect(&dsn).await;
    db.close().await.unwrap();
    db.close().await.unwrap();
    let err = db
        .transact(TxMode::Read, Box::new(|_| Ok(())))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::StoreClosed);
    let err = db.acquire_lease("x").await.err().unwrap();
    assert_eq!(err.code(), ErrorCode::StoreClosed);
    let err = db.fetch_all("SELECT 1", &[]).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::StoreClosed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_across_two_instances() {
    let Some(dsn) = dsn() else { return };
    let a = connect(&dsn).await;
    let b = connect(&dsn).await;
    let name = format!("session:{}", prefix("ls"));
    let la = a
        .acquire_lease(&name)
        .await
        .unwrap()
        .expect("a takes the lease");
    assert_eq!(la.name(), name);
    assert!(
        b.acquire_lease(&name).await.unwrap().is_none(),
        "b must not get a held lease"
    );
    // Same-process second attempt is refused too (separate connection).
    assert!(a.acquire_lease(&name).await.unwrap().is_none());
    la.release().await.unwrap();
    let lb = b
        .acquire_lease(&name)
        .await
        .unwrap()
        .expect("b takes it after release");
    // Dropping a lease frees it (the connection closes).
    drop(lb);
    let mut got = None;
    for _ in 0..50 {
        if let Some(l) = a.acquire_lease(&name).await.unwrap() {
            got = Some(l);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let la = got.expect("lease freed after drop");
    // Long names are hashed and still exclusive.
    let long = format!("{name}:{}", "y".repeat(100));
    let l1 = a.acquire_lease(&long).await.unwrap().expect("long name");
    assert!(b.acquire_lease(&long).await.unwrap().is_none());
    l1.release().await.unwrap();
    la.release().await.unwrap();
    a.close().await.unwrap();
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_concurrent_exclusive_boots_stamp_one_version() {
    let Some(dsn) = dsn() else { return };
    let p = prefix("bt");
    let inside = Arc::new(AtomicUsize::new(0));
    let max_inside = Arc::new(AtomicUsize::new(0));
    let created = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let dsn = dsn.clone();
        let p = p.clone();
        let (inside, max_inside, created) = (inside.clone(), max_inside.clone(), created.clone());
        tasks.push(tokio::spawn(async move {
            let db = connect(&dsn).await;
            let ddl = db.dialect().ddl(&p);
            let stamp = db.dialect().insert_ignore(&format!("{p}schema_migrations"), &["id", "version"], &["id"]);
            let p2 = p.clone();
            let r = db
                .transact_exclusive(
                    &format!("schema:{p}"),
                    Box::new(move |tx| {
                        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        max_inside.fetch_max(now, Ordering::SeqCst);
                        tx.execute(
                            &format!(
                                "CREATE TABLE IF NOT EXISTS {p2}schema_migrations (id INTEGER PRIMARY KEY CHECK (id=1), version INTEGER NOT NULL)"
                            ),
                            &[],
                        )?;
                        let row = tx.fetch_optional(&format!("SELECT version FROM {p2}schema_migrations WHERE id = 1"), &[])?;
                        if row.is_none() {
                            for s in &ddl {
                                tx.execute(s, &[])?;
                            }
                            tx.execute(&stamp, &[1.into(), 1.into()])?;
                            created.fetch_add(1, Ordering::SeqCst);
                        }
                        inside.fetch_sub(1, Ordering::SeqCst);
                        Ok(())
                    }),
                )
                .await;
            db.close().await.unwrap();
            r
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(
        max_inside.load(Ordering::SeqCst),
        1,
        "bodies must be serialized by GET_LOCK"
    );
    assert_eq!(
        created.load(Ordering::SeqCst),
        1,
        "exactly one boot creates the schema"
    );
    let db = connect(&dsn).await;
    let v = db
        .fetch_all(
            &format!("SELECT id, version FROM {p}schema_migrations"),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(v.len(), 1);
    drop_prefixed(&db, &p).await;
    db.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_descriptor_opens_url_targets_only() {
    let Some(dsn) = dsn() else { return };
    assert_eq!(BACKEND.name, "mysql");
    let db = (BACKEND.open)(
        ParsedDsn {
            backend: "mysql",
            target: DsnTarget::Url(dsn),
        },
        ConnectOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(db.dialect().name(), "mysql");
    db.close().await.unwrap();
    let err = (BACKEND.open)(
        ParsedDsn {
            backend: "mysql",
            target: DsnTarget::SqliteMemory,
        },
        ConnectOptions::default(),
    )
    .await
    .err()
    .unwrap();
    assert_eq!(err.code(), ErrorCode::StoreDsnInvalid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_leases_share_a_few_connections_and_exclude_in_process() {
    let Some(dsn) = dsn() else { return };
    let a = connect(&dsn).await;
    let b = connect(&dsn).await;
    let tag = format!("session:{}", prefix("many"));
    // 200 concurrent leases: more than the server's default connection limit of 151.
    let a = Arc::new(a);
    let mut tasks = Vec::new();
    for i in 0..200 {
        let a = Arc::clone(&a);
        let name = format!("{tag}-{i}");
        tasks.push(tokio::spawn(async move {
            a.acquire_lease(&name).await.unwrap().expect("free name")
        }));
    }
    let mut held = Vec::new();
    for t in tasks {
        held.push(t.await.unwrap());
    }
    // Same process, same name: refused while held (GET_LOCK is re-entrant per connection).
    assert!(
        a.acquire_lease(&format!("{tag}-7"))
            .await
            .unwrap()
            .is_none()
    );
    // Another instance (like another process) is refused by the server.
    assert!(
        b.acquire_lease(&format!("{tag}-8"))
            .await
            .unwrap()
            .is_none()
    );
    // The locks live on a handful of connections, not one per lease.
    let rows = b
        .fetch_all(
            "SELECT COUNT(DISTINCT IS_USED_LOCK(CONCAT('pl:', DATABASE(), ':', ?, '-', n))) AS c \
             FROM (SELECT 0 AS n UNION SELECT 7 UNION SELECT 50 UNION SELECT 99 UNION SELECT 123 \
             UNION SELECT 150 UNION SELECT 177 UNION SELECT 199) AS t",
            &[Value::Text(tag.clone())],
        )
        .await
        .unwrap();
    let conns = rows[0].opt_i64("c").unwrap().unwrap();
    assert!((1..=4).contains(&conns), "{conns} lease connections");
    for l in held {
        l.release().await.unwrap();
    }
    let again = b
        .acquire_lease(&format!("{tag}-8"))
        .await
        .unwrap()
        .expect("free after release");
    again.release().await.unwrap();
    a.close().await.unwrap();
    b.close().await.unwrap();
}
