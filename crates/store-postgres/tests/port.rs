//! The Database/Transaction port against a real PostgreSQL server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{drop_table, dsn, exec, open, options, query, scalar, unique};
use power_loop_contracts::{Error, ErrorCode};
use power_loop_store::db::{Database, TxMode, Value};
use power_loop_store_postgres::PostgresDatabase;

async fn counter_table(db: &dyn Database) -> String {
    let t = unique("port");
    exec(
        db,
        &format!("CREATE TABLE {t} (id BIGINT PRIMARY KEY, v BIGINT NOT NULL, s TEXT)"),
        vec![],
    )
    .await
    .unwrap();
    t
}

#[tokio::test]
async fn commit_rollback_and_panic_rollback() {
    let Some(dsn) = dsn("commit_rollback_and_panic_rollback") else {
        return;
    };
    let db = PostgresDatabase::connect(&dsn, &options(1)).await.unwrap();
    let t = counter_table(&db).await;

    // Ok commits.
    let sql = format!("INSERT INTO {t} (id, v) VALUES (?, ?)");
    let s = sql.clone();
    db.transact(
        TxMode::Write,
        Box::new(move |tx| {
            tx.execute(&s, &[Value::Int(1), Value::Int(10)])?;
            tx.execute(&s, &[Value::Int(2), Value::Int(20)])?;
            Ok(())
        }),
    )
    .await
    .unwrap();
    assert_eq!(
        scalar(&db, &format!("SELECT COUNT(*) FROM {t}"), vec![]).await,
        2
    );

    // Err rolls back, including after a leading SELECT; the body's error is returned.
    let s = sql.clone();
    let t2 = t.clone();
    let err = db
        .transact(
            TxMode::Write,
            Box::new(move |tx| {
                tx.fetch_all(&format!("SELECT * FROM {t2}"), &[])?;
                tx.execute(&s, &[Value::Int(3), Value::Int(30)])?;
                Err(Error::invalid_argument("body failed on purpose"))
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidArgument);
    assert_eq!(
        scalar(&db, &format!("SELECT COUNT(*) FROM {t}"), vec![]).await,
        2
    );

    // A panic rolls back and becomes an error; the single pooled connection is reusable and not
    // inside the old transaction (the count would include id 4 otherwise).
    let s = sql.clone();
    let err = db
        .transact(
            TxMode::Write,
            Box::new(move |tx| {
                tx.execute(&s, &[Value::Int(4), Value::Int(40)])?;
                panic!("boom in body");
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Internal);
    assert!(err.message().contains("boom in body"), "{err:?}");
    assert_eq!(
        scalar(&db, &format!("SELECT COUNT(*) FROM {t}"), vec![]).await,
        2
    );

    // A failed statement after a write, with the error swallowed: nothing commits and we say so.
    let s = sql.clone();
    let err = db
        .transact(
            TxMode::Write,
            Box::new(move |tx| {
                tx.execute(&s, &[Value::Int(5), Value::Int(50)])?;
                let dup = tx.execute(&s, &[Value::Int(5), Value::Int(51)]);
                assert_eq!(dup.unwrap_err().code(), ErrorCode::StoreConstraint);
                Ok(())
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::StoreQuery);
    assert_eq!(
        scalar(
            &db,
            &format!("SELECT COUNT(*) FROM {t} WHERE id = 5"),
            vec![]
        )
        .await,
        0
    );

    // A read-only body whose failed probe is swallowed still succeeds (nothing to lose).
    db.transact(
        TxMode::Read,
        Box::new(|tx| {
            let probe =
                tx.fetch_optional("SELECT version FROM plt_no_such_table WHERE id = 1", &[]);
            assert_eq!(probe.unwrap_err().code(), ErrorCode::StoreQuery);
            Ok(())
        }),
    )
    .await
    .unwrap();

    drop_table(&db, &t).await;
}

#[tokio::test]
async fn matched_rows_ddl_upsert_and_insert_ignore() {
    let Some(dsn) = dsn("matched_rows_ddl_upsert_and_insert_ignore") else {
        return;
    };
    let db = open(&dsn).await;
    let t = unique("rows");
    assert_eq!(
        exec(&db, &format!("CREATE TABLE {t} (k TEXT PRIMARY KEY, v BIGINT, n BIGINT NOT NULL DEFAULT 0, first BIGINT)"), vec![])
            .await
            .unwrap(),
        0,
        "DDL counts 0"
    );
    let d = db.dialect();
    let ins = d.insert_ignore(&t, &["k", "v"], &["k"]);
    assert_eq!(
        exec(&db, &ins, vec!["a".into(), Value::Int(1)])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        exec(&db, &ins, vec!["a".into(), Value::Int(2)])
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        exec(&db, &ins, vec!["b".into(), Value::Int(1)])
            .await
            .unwrap(),
        1
    );
    // UPDATE to the same value still counts matched rows.
    assert_eq!(
        exec(&db, &format!("UPDATE {t} SET v = 1"), vec![])
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        exec(
            &db,
            &format!("UPDATE {t} SET v = 1 WHERE k = ?"),
            vec!["zz".into()]
        )
        .await
        .unwrap(),
        0
    );

    let up = d.upsert(&t, &["k"], &["v"], &["n"], &["first"]);
    for (v, first) in [(7, 100), (8, 200)] {
        exec(
            &db,
            &up,
            vec!["c".into(), Value::Int(v), Value::Int(5), Value::Int(first)],
        )
        .await
        .unwrap();
    }
    let rows = query(
        &db,
        &format!("SELECT v, n, first FROM {t} WHERE k = ?"),
        vec!["c".into()],
    )
    .await
    .unwrap();
    assert_eq!(
        rows[0].values(),
        &[Value::Int(8), Value::Int(10), Value::Int(100)]
    );
    drop_table(&db, &t).await;
}

#[tokio::test]
async fn values_round_trip() {
    let Some(dsn) = dsn("values_round_trip") else {
        return;
    };
    let db = open(&dsn).await;
    let t = unique("vals");
    exec(&db, &format!("CREATE TABLE {t} (id BIGINT PRIMARY KEY, i8 BIGINT, i4 INTEGER, i2 SMALLINT, tx TEXT, vc VARCHAR(300), b BOOLEAN)"), vec![])
        .await
        .unwrap();
    let big = "é☃𝄞x".repeat(1024 * 1024 / 10 + 1); // ~1 MiB of mixed-width UTF-8
    assert!(big.len() >= 1024 * 1024);
    let unicode = "naïve 日本語 🚀 \u{0} zero? no: NUL is rejected by PG text".replace('\u{0}', "");
    let cases: Vec<(i64, Vec<Value>)> = vec![
        (
            1,
            vec![
                Value::Int(i64::MAX),
                Value::Int(i64::from(i32::MIN)),
                Value::Int(i64::from(i16::MAX)),
                Value::Text(unicode.clone()),
                Value::Text("v".into()),
                Value::Int(1),
            ],
        ),
        (
            2,
            vec![
                Value::Int(i64::MIN),
                Value::Null,
                Value::Null,
                Value::Text(big.clone()),
                Value::Null,
                Value::Int(0),
            ],
        ),
        (
            3,
            vec![
                Value::Null,
                Value::Int(0),
                Value::Int(-1),
                Value::Text(String::new()),
                Value::Text("'quoted' ? and %s and $1".into()),
                Value::Null,
            ],
        ),
    ];
    let ins = format!("INSERT INTO {t} (id, i8, i4, i2, tx, vc, b) VALUES (?, ?, ?, ?, ?, ?, ?)");
    for (id, vals) in &cases {
        let mut p = vec![Value::Int(*id)];
        p.extend(vals.iter().cloned());
        assert_eq!(exec(&db, &ins, p).await.unwrap(), 1);
    }
    let rows = query(
        &db,
        &format!("SELECT id, i8, i4, i2, tx, vc, b FROM {t} ORDER BY id"),
        vec![],
    )
    .await
    .unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(
        rows[0].columns(),
        &["id", "i8", "i4", "i2", "tx", "vc", "b"]
    );
    for (row, (id, vals)) in rows.iter().zip(&cases) {
        assert_eq!(row.values()[0], Value::Int(*id));
        assert_eq!(&row.values()[1..], vals.as_slice(), "row {id}");
    }
    assert_eq!(rows[1].text("tx").unwrap().len(), big.len());

    // Out-of-range integer for an INT2 parameter is a clean error, not a panic or truncation.
    let err = exec(
        &db,
        &ins,
        vec![
            Value::Int(9),
            Value::Null,
            Value::Null,
            Value::Int(70_000),
            Value::Null,
            Value::Null,
            Value::Null,
        ],
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), ErrorCode::StoreQuery, "{err:?}");

    // Aggregates: COUNT → INT8, SUM(bigint) → NUMERIC decoded as Int, MAX keeps BIGINT.
    let r = query(&db, &format!("SELECT COUNT(*) AS c, SUM(i4) AS s, MAX(i8) AS m, SUM(i8) FILTER (WHERE id = 99) AS none FROM {t}"), vec![])
        .await
        .unwrap();
    assert_eq!(
        r[0].values(),
        &[
            Value::Int(3),
            Value::Int(i64::from(i32::MIN)),
            Value::Int(i64::MAX),
            Value::Null
        ]
    );
    // Untyped parameter (inferred TEXT) accepts integers and text.
    let r = query(
        &db,
        "SELECT ? AS a, ? AS b",
        vec![Value::Int(42), "x".into()],
    )
    .await
    .unwrap();
    assert_eq!(
        r[0].values(),
        &[Value::Text("42".into()), Value::Text("x".into())]
    );
    drop_table(&db, &t).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_row_locked_increments_on_multi_thread_runtime() {
    let Some(dsn) = dsn("concurrent_row_locked_increments_on_multi_thread_runtime") else {
        return;
    };
    let db = Arc::new(PostgresDatabase::connect(&dsn, &options(6)).await.unwrap());
    let t = counter_table(db.as_ref()).await;
    exec(
        db.as_ref(),
        &format!("INSERT INTO {t} (id, v) VALUES (1, 0)"),
        vec![],
    )
    .await
    .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let db = Arc::clone(&db);
        let t = t.clone();
        tasks.push(tokio::spawn(async move {
            let lock = format!(
                "SELECT v FROM {t} WHERE id = 1{}",
                db.dialect().for_update()
            );
            let upd = format!("UPDATE {t} SET v = ? WHERE id = 1");
            db.transact(
                TxMode::Write,
                Box::new(move |tx| {
                    let v = tx.fetch_optional(&lock, &[])?.unwrap().i64("v")?;
                    tx.execute(&upd, &[Value::Int(v + 1)])?;
                    Ok(())
                }),
            )
            .await
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(
        scalar(
            db.as_ref(),
            &format!("SELECT v FROM {t} WHERE id = 1"),
            vec![]
        )
        .await,
        40
    );
    drop_table(db.as_ref(), &t).await;
}

#[tokio::test]
async fn dropped_caller_future_does_not_leak_an_open_transaction() {
    let Some(dsn) = dsn("dropped_caller_future_does_not_leak_an_open_transaction") else {
        return;
    };
    let app = unique("app");
    let sep = if dsn.contains('?') { '&' } else { '?' };
    let app_dsn = format!("{dsn}{sep}application_name={app}");
    let db = PostgresDatabase::connect(&app_dsn, &options(1))
        .await
        .unwrap();
    let admin = open(&dsn).await;
    let t = counter_table(&db).await;
    let ins = format!("INSERT INTO {t} (id, v) VALUES (1, 1)");
    let fut = db.transact(
        TxMode::Write,
        Box::new(move |tx| {
            tx.execute(&ins, &[])?;
            std::thread::sleep(Duration::from_millis(400));
            Ok(())
        }),
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(100), fut)
            .await
            .is_err(),
        "caller gave up"
    );
    // The body finishes on its own thread and commits; the connection returns to the pool clean.
    let count_sql = format!("SELECT COUNT(*) FROM {t}");
    let mut committed = 0;
    for _ in 0..50 {
        committed = scalar(&db, &count_sql, vec![]).await;
        if committed == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(committed, 1);
    let idle_in_tx = scalar(
        &admin,
        "SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = ? AND state LIKE 'idle in transaction%'",
        vec![app.clone().into()],
    )
    .await;
    assert_eq!(idle_in_tx, 0);

    // Same with a body that fails after the caller left: rolled back, nothing open.
    let ins = format!("INSERT INTO {t} (id, v) VALUES (2, 2)");
    let fut = db.transact(
        TxMode::Write,
        Box::new(move |tx| {
            tx.execute(&ins, &[])?;
            std::thread::sleep(Duration::from_millis(300));
            Err(Error::internal("late failure"))
        }),
    );
    drop(tokio::time::timeout(Duration::from_millis(50), fut).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(scalar(&db, &count_sql, vec![]).await, 1);
    assert_eq!(
        scalar(&admin, "SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = ? AND state LIKE 'idle in transaction%'", vec![app.into()]).await,
        0
    );
    drop_table(&db, &t).await;
}

#[tokio::test]
async fn read_mode_is_read_only_and_errors_are_typed() {
    let Some(dsn) = dsn("read_mode_is_read_only_and_errors_are_typed") else {
        return;
    };
    let db = open(&dsn).await;
    let t = counter_table(&db).await;
    let ins = format!("INSERT INTO {t} (id, v) VALUES (1, 1)");
    let err = db
        .transact(
            TxMode::Read,
            Box::new(move |tx| tx.execute(&ins, &[]).map(|_| ())),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::StoreQuery);
    assert_eq!(
        err.detail("sqlstate").and_then(|v| v.as_str()),
        Some("25006")
    );

    exec(
        &db,
        &format!("INSERT INTO {t} (id, v) VALUES (1, 1)"),
        vec![],
    )
    .await
    .unwrap();
    let err = exec(
        &db,
        &format!("INSERT INTO {t} (id, v) VALUES (1, 1)"),
        vec![],
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), ErrorCode::StoreConstraint);
    assert!(
        std::error::Error::source(&err).is_some(),
        "driver error kept as source"
    );

    let err = query(&db, "SELECT * FROM plt_missing_table_xyz", vec![])
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::StoreQuery);
    assert!(err.message().contains("schema"), "{}", err.message());
    assert_eq!(
        err.detail("sqlstate").and_then(|v| v.as_str()),
        Some("42P01")
    );

    let err = query(&db, "SELEC nonsense", vec![]).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::StoreQuery);

    drop_table(&db, &t).await;
    db.close().await.unwrap();
    db.close().await.unwrap();
    let err = query(&db, "SELECT 1", vec![]).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::StoreClosed);
    let err = db.acquire_lease("x").await.err().unwrap();
    assert_eq!(err.code(), ErrorCode::StoreClosed);
}

#[tokio::test]
async fn many_transactions_reuse_prepared_statements() {
    let Some(dsn) = dsn("many_transactions_reuse_prepared_statements") else {
        return;
    };
    let db = PostgresDatabase::connect(&dsn, &options(1)).await.unwrap();
    let t = counter_table(&db).await;
    let ins = format!("INSERT INTO {t} (id, v, s) VALUES (?, ?, ?)");
    let started = std::time::Instant::now();
    for i in 0..300 {
        let ins = ins.clone();
        db.transact(
            TxMode::Write,
            Box::new(move |tx| {
                tx.execute(
                    &ins,
                    &[
                        Value::Int(i),
                        Value::Int(i * 2),
                        Value::Text(format!("row {i}")),
                    ],
                )?;
                Ok(())
            }),
        )
        .await
        .unwrap();
    }
    let elapsed = started.elapsed();
    eprintln!(
        "300 single-insert transactions in {elapsed:?} ({:.0} tx/s)",
        300.0 / elapsed.as_secs_f64()
    );
    assert_eq!(
        scalar(&db, &format!("SELECT SUM(v) FROM {t}"), vec![]).await,
        (0..300).map(|i| i * 2).sum::<i64>()
    );
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = Arc::clone(&seen);
    let sel = format!("SELECT s FROM {t} WHERE id = ?");
    db.transact(
        TxMode::Read,
        Box::new(move |tx| {
            for id in [0, 150, 299] {
                s.lock().unwrap().push(
                    tx.fetch_optional(&sel, &[Value::Int(id)])?
                        .unwrap()
                        .text("s")?,
                );
            }
            Ok(())
        }),
    )
    .await
    .unwrap();
    assert_eq!(*seen.lock().unwrap(), ["row 0", "row 150", "row 299"]);
    drop_table(&db, &t).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_mode_selects_see_commits_and_later_writes_stay_read_only() {
    let Some(dsn) = dsn("read_mode_selects_see_commits_and_later_writes_stay_read_only") else {
        return;
    };
    let db = open(&dsn).await;
    let t = counter_table(&db).await;
    exec(
        &db,
        &format!("INSERT INTO {t} (id, v) VALUES (1, 5)"),
        vec![],
    )
    .await
    .unwrap();
    // A read body: its SELECT sees the committed row; a write after it is still refused as a
    // write in a read-only transaction, and nothing is written.
    let (sel, ins) = (
        format!("SELECT v FROM {t} WHERE id = 1"),
        format!("INSERT INTO {t} (id, v) VALUES (2, 1)"),
    );
    let seen = Arc::new(Mutex::new(None));
    let seen2 = Arc::clone(&seen);
    let err = db
        .transact(
            TxMode::Read,
            Box::new(move |tx| {
                let rows = tx.fetch_all(&sel, &[])?;
                *seen2.lock().unwrap() = rows.first().map(|r| r.opt_i64("v"));
                tx.execute(&ins, &[]).map(|_| ())
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.detail("sqlstate").and_then(|v| v.as_str()),
        Some("25006")
    );
    assert!(matches!(*seen.lock().unwrap(), Some(Ok(Some(5)))));
    // Row locks are refused in read mode too.
    let lock = format!("SELECT v FROM {t} WHERE id = 1 FOR UPDATE");
    let err = db
        .transact(
            TxMode::Read,
            Box::new(move |tx| tx.fetch_all(&lock, &[]).map(|_| ())),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.detail("sqlstate").and_then(|v| v.as_str()),
        Some("25006")
    );
    assert_eq!(
        scalar(&db, &format!("SELECT COUNT(*) FROM {t}"), vec![]).await,
        1
    );
    drop_table(&db, &t).await;
}

#[tokio::test]
async fn deferred_writes_are_pipelined_all_or_nothing_across_connections() {
    let Some(dsn) = dsn("deferred_writes_are_pipelined_all_or_nothing_across_connections") else {
        return;
    };
    // One pooled connection writes; another database handle (its own connection) checks.
    let db = PostgresDatabase::connect(&dsn, &options(1)).await.unwrap();
    let observer = PostgresDatabase::connect(&dsn, &options(1)).await.unwrap();
    let t = counter_table(&db).await;
    let ins = format!("INSERT INTO {t} (id, v) VALUES (?, ?)");
    let count_sql = format!("SELECT COUNT(*) FROM {t}");

    // Many deferred writes, no statement awaited before them: BEGIN + writes + COMMIT pipelined.
    let s = ins.clone();
    db.transact(
        TxMode::Write,
        Box::new(move |tx| {
            for i in 0..200 {
                tx.execute_deferred(&s, &[Value::Int(i), Value::Int(i)])?;
            }
            Ok(())
        }),
    )
    .await
    .unwrap();
    assert_eq!(scalar(&observer, &count_sql, vec![]).await, 200);

    // A duplicate surfacing at COMMIT: typed error, nothing kept, the connection is reusable and
    // not inside the old transaction.
    let s = ins.clone();
    let err = db
        .transact(
            TxMode::Write,
            Box::new(move |tx| {
                tx.execute_deferred(&s, &[Value::Int(1000), Value::Int(1)])?;
                tx.execute_deferred(&s, &[Value::Int(5), Value::Int(1)])?;
                tx.execute_deferred(&s, &[Value::Int(1001), Value::Int(1)])
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::StoreConstraint, "{err}");
    assert_eq!(
        err.detail("sqlstate").and_then(|v| v.as_str()),
        Some("23505")
    );
    assert_eq!(scalar(&observer, &count_sql, vec![]).await, 200);
    assert_eq!(scalar(&db, &count_sql, vec![]).await, 200);

    // A body that swallows the error a deferred write surfaced at a later statement and returns
    // Ok is still not acknowledged.
    let (s, c) = (ins.clone(), count_sql.clone());
    let err = db
        .transact(
            TxMode::Write,
            Box::new(move |tx| {
                tx.execute_deferred(&s, &[Value::Int(2000), Value::Int(1)])?;
                tx.execute_deferred(&s, &[Value::Int(7), Value::Int(1)])?;
                let surfaced = tx.fetch_all(&c, &[]);
                assert_eq!(
                    surfaced.err().map(|e| e.code()),
                    Some(ErrorCode::StoreConstraint)
                );
                Ok(())
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::StoreQuery, "{err}");
    assert_eq!(scalar(&observer, &count_sql, vec![]).await, 200);

    // A deferred statement that cannot even be prepared (missing table) after a real write.
    let s = ins.clone();
    let err = db
        .transact(
            TxMode::Write,
            Box::new(move |tx| {
                tx.execute(&s, &[Value::Int(3000), Value::Int(1)])?;
                tx.execute_deferred(
                    "INSERT INTO plt_missing_table_xyz (id) VALUES (?)",
                    &[Value::Int(1)],
                )
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::StoreQuery, "{err}");
    assert_eq!(scalar(&observer, &count_sql, vec![]).await, 200);

    // Deferred writes in a read transaction are refused as writes.
    let s = ins.clone();
    let err = db
        .transact(
            TxMode::Read,
            Box::new(move |tx| tx.execute_deferred(&s, &[Value::Int(4000), Value::Int(1)])),
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.detail("sqlstate").and_then(|v| v.as_str()),
        Some("25006")
    );

    // The pooled writer connection still works normally after all that.
    let s = ins.clone();
    db.transact(
        TxMode::Write,
        Box::new(move |tx| tx.execute_deferred(&s, &[Value::Int(5000), Value::Int(1)])),
    )
    .await
    .unwrap();
    assert_eq!(scalar(&observer, &count_sql, vec![]).await, 201);
    drop_table(&db, &t).await;
}
