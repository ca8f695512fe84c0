//! The `Database` port on a real PostgreSQL server: the shared port suite, plus what only this
//! backend does (aborted transactions after a swallowed error, read-only transactions, SQLSTATE
//! details, server column types and parameter inference, pipelined deferred writes, no
//! `idle in transaction` session left behind).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{drop_table, exec, open, options, query, scalar, unique};
use power_loop_contracts::{Error, ErrorCode};
use power_loop_store::conformance::port::{PortTarget, await_count, leave_write};
use power_loop_store::conformance::support::pg_dsn;
use power_loop_store::db::{Database, TxMode, Value};
use power_loop_store_postgres::PostgresDatabase;

fn target() -> Option<PortTarget> {
    let dsn = pg_dsn()?;
    Some(PortTarget::new(move |o| {
        let dsn = dsn.clone();
        async move {
            let db: Arc<dyn Database> = Arc::new(PostgresDatabase::connect(&dsn, &o).await?);
            Ok(db)
        }
    }))
}

power_loop_store::port_conformance_suite!(target);

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

fn sqlstate(err: &Error) -> Option<&str> {
    err.detail("sqlstate").and_then(|v| v.as_str())
}

#[tokio::test]
async fn a_swallowed_statement_error_aborts_the_transaction() {
    let Some(dsn) = pg_dsn() else { return };
    let db = PostgresDatabase::connect(&dsn, &options(1)).await.unwrap();
    let t = counter_table(&db).await;
    let sql = format!("INSERT INTO {t} (id, v) VALUES (?, ?)");

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
            assert_eq!(probe.unwrap_err().code(), ErrorCode::StoreSchemaMissing);
            Ok(())
        }),
    )
    .await
    .unwrap();
    drop_table(&db, &t).await;
}

#[tokio::test]
async fn an_ignored_duplicate_insert_counts_zero_rows() {
    let Some(dsn) = pg_dsn() else { return };
    let db = open(&dsn).await;
    let t = counter_table(&db).await;
    let ins = db.dialect().insert_ignore(&t, &["id", "v"], &["id"]);
    assert_eq!(
        exec(&db, &ins, vec![Value::Int(1), Value::Int(1)])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        exec(&db, &ins, vec![Value::Int(1), Value::Int(2)])
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        exec(&db, &ins, vec![Value::Int(2), Value::Int(1)])
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        scalar(&db, &format!("SELECT SUM(v) FROM {t}"), vec![]).await,
        2
    );
    drop_table(&db, &t).await;
}

#[tokio::test]
async fn server_column_types_and_parameter_inference() {
    let Some(dsn) = pg_dsn() else { return };
    let db = open(&dsn).await;
    let t = unique("vals");
    exec(&db, &format!("CREATE TABLE {t} (id BIGINT PRIMARY KEY, i8 BIGINT, i4 INTEGER, i2 SMALLINT, tx TEXT, vc VARCHAR(300), b BOOLEAN)"), vec![])
        .await
        .unwrap();
    let cases: Vec<(i64, Vec<Value>)> = vec![
        (
            1,
            vec![
                Value::Int(i64::MAX),
                Value::Int(i64::from(i32::MIN)),
                Value::Int(i64::from(i16::MAX)),
                Value::Text("naïve 日本語 🚀".into()),
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
                Value::Text("x".into()),
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

    // Aggregates: COUNT → INT8, SUM(int4) → INT8, MAX keeps BIGINT, an empty FILTER gives NULL.
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

#[tokio::test]
async fn a_caller_that_leaves_leaves_no_session_idle_in_transaction() {
    let Some(dsn) = pg_dsn() else { return };
    let app = unique("app");
    let sep = if dsn.contains('?') { '&' } else { '?' };
    let app_dsn = format!("{dsn}{sep}application_name={app}");
    let db = PostgresDatabase::connect(&app_dsn, &options(1))
        .await
        .unwrap();
    let admin = open(&dsn).await;
    let t = counter_table(&db).await;
    let idle_sql = "SELECT COUNT(*) FROM pg_stat_activity WHERE application_name = ? AND state LIKE 'idle in transaction%'";
    let count_sql = format!("SELECT COUNT(*) FROM {t}");

    leave_write(&db, format!("INSERT INTO {t} (id, v) VALUES (1, 1)"), false).await;
    assert_eq!(await_count(&db, &count_sql, 1).await, 1);
    assert_eq!(scalar(&admin, idle_sql, vec![app.clone().into()]).await, 0);

    // Same with a body that fails after the caller left: rolled back, nothing open.
    leave_write(&db, format!("INSERT INTO {t} (id, v) VALUES (2, 2)"), true).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(scalar(&db, &count_sql, vec![]).await, 1);
    assert_eq!(scalar(&admin, idle_sql, vec![app.into()]).await, 0);
    drop_table(&db, &t).await;
}

#[tokio::test]
async fn read_mode_is_read_only_and_errors_carry_sqlstate() {
    let Some(dsn) = pg_dsn() else { return };
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
    assert_eq!(sqlstate(&err), Some("25006"));

    let err = query(&db, "SELECT * FROM plt_missing_table_xyz", vec![])
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::StoreSchemaMissing);
    assert!(err.message().contains("schema"), "{}", err.message());
    assert_eq!(sqlstate(&err), Some("42P01"));
    drop_table(&db, &t).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_mode_selects_see_commits_and_later_writes_stay_read_only() {
    let Some(dsn) = pg_dsn() else { return };
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
    assert_eq!(sqlstate(&err), Some("25006"));
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
    assert_eq!(sqlstate(&err), Some("25006"));
    assert_eq!(
        scalar(&db, &format!("SELECT COUNT(*) FROM {t}"), vec![]).await,
        1
    );
    drop_table(&db, &t).await;
}

#[tokio::test]
async fn pipelined_deferred_writes_surface_errors_at_the_next_statement_or_commit() {
    let Some(dsn) = pg_dsn() else { return };
    // One pooled connection writes; another database handle (its own connection) checks.
    let db = PostgresDatabase::connect(&dsn, &options(1)).await.unwrap();
    let observer = PostgresDatabase::connect(&dsn, &options(1)).await.unwrap();
    let t = counter_table(&db).await;
    let ins = format!("INSERT INTO {t} (id, v) VALUES (?, ?)");
    let count_sql = format!("SELECT COUNT(*) FROM {t}");
    exec(&db, &ins, vec![Value::Int(5), Value::Int(1)])
        .await
        .unwrap();
    exec(&db, &ins, vec![Value::Int(7), Value::Int(1)])
        .await
        .unwrap();

    // A duplicate surfacing at COMMIT carries its SQLSTATE.
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
    assert_eq!(sqlstate(&err), Some("23505"));

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
    assert_eq!(scalar(&observer, &count_sql, vec![]).await, 2);

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
    assert_eq!(err.code(), ErrorCode::StoreSchemaMissing, "{err}");
    assert_eq!(scalar(&observer, &count_sql, vec![]).await, 2);

    // Deferred writes in a read transaction are refused as writes.
    let s = ins.clone();
    let err = db
        .transact(
            TxMode::Read,
            Box::new(move |tx| tx.execute_deferred(&s, &[Value::Int(4000), Value::Int(1)])),
        )
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&err), Some("25006"));

    // The pooled writer connection still works normally after all that.
    let s = ins.clone();
    db.transact(
        TxMode::Write,
        Box::new(move |tx| tx.execute_deferred(&s, &[Value::Int(5000), Value::Int(1)])),
    )
    .await
    .unwrap();
    assert_eq!(scalar(&observer, &count_sql, vec![]).await, 3);
    drop_table(&db, &t).await;
}
