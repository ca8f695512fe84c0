//! Port scenarios for transactions: commit and rollback, panics, matched-row counts, values,
//! typed errors, callers that leave, and deferred writes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::{Arc, Mutex};

use power_loop_contracts::{Error, ErrorCode};

use super::{PortCtx, await_count, body, exec, leave_write, query, scalar};
use crate::db::{Database, Row, TxMode, Value};

const KV: &str = "id BIGINT NOT NULL PRIMARY KEY, v BIGINT NULL, s TEXT NULL";

async fn kv_table(ctx: &PortCtx, db: &dyn Database) -> String {
    let t = ctx.table("kv");
    ctx.create_table(db, &t, KV).await;
    t
}

pub async fn commit_on_ok_and_rollback_on_err(ctx: PortCtx) {
    let db = ctx.open().await;
    let t = kv_table(&ctx, &*db).await;
    let count = format!("SELECT COUNT(*) FROM {t}");
    let ins = format!("INSERT INTO {t} (id, v) VALUES (?, ?)");

    let s = ins.clone();
    db.transact(
        TxMode::Write,
        body(move |tx| {
            tx.execute(&s, &[1.into(), 10.into()])?;
            tx.execute(&s, &[2.into(), 20.into()])?;
            Ok(())
        }),
    )
    .await
    .unwrap();
    assert_eq!(scalar(&*db, &count).await, 2, "Ok commits");

    // Err rolls back, including writes after a leading SELECT; the body's error is returned.
    let (s, sel) = (ins.clone(), format!("SELECT * FROM {t}"));
    let err = db
        .transact(
            TxMode::Write,
            body(move |tx| {
                tx.fetch_all(&sel, &[])?;
                tx.execute(&s, &[3.into(), 30.into()])?;
                Err(Error::invalid_argument("body failed on purpose"))
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidArgument);
    assert_eq!(
        scalar(&*db, &count).await,
        2,
        "a failed body leaves no trace"
    );
}

pub async fn panic_in_body_rolls_back_and_the_connection_is_reused(ctx: PortCtx) {
    // One pooled connection: the next transaction must get the very connection the panic left.
    let db = ctx.open_pool(1).await;
    let t = kv_table(&ctx, &*db).await;
    let count = format!("SELECT COUNT(*) FROM {t}");
    let ins = format!("INSERT INTO {t} (id, v) VALUES (?, ?)");
    let s = ins.clone();
    let err = db
        .transact(
            TxMode::Write,
            body(move |tx| {
                tx.execute(&s, &[7.into(), 1.into()])?;
                panic!("body exploded");
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::Internal);
    assert!(err.message().contains("body exploded"), "{}", err.message());
    assert_eq!(scalar(&*db, &count).await, 0);
    // The connection still works and is not inside the old transaction.
    exec(&*db, &ins, vec![8.into(), 1.into()]).await.unwrap();
    assert_eq!(scalar(&*db, &count).await, 1);
    let other = ctx.open().await;
    assert_eq!(
        scalar(&*other, &count).await,
        1,
        "the later write committed"
    );
}

pub async fn failed_statement_rolls_back_the_whole_transaction(ctx: PortCtx) {
    let db = ctx.open().await;
    let t = kv_table(&ctx, &*db).await;
    exec(
        &*db,
        &format!("INSERT INTO {t} (id, v) VALUES (1, 1)"),
        vec![],
    )
    .await
    .unwrap();
    let ins = format!("INSERT INTO {t} (id) VALUES (?)");
    let err = db
        .transact(
            TxMode::Write,
            body(move |tx| {
                tx.execute(&ins, &[5.into()])?;
                tx.execute(&ins, &[1.into()])?;
                Ok(())
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::StoreConstraint, "{err}");
    assert_eq!(scalar(&*db, &format!("SELECT COUNT(*) FROM {t}")).await, 1);
}

pub async fn matched_row_counts(ctx: PortCtx) {
    let db = ctx.open().await;
    let t = ctx.table("mr");
    let cols = "k BIGINT NOT NULL PRIMARY KEY, v VARCHAR(64) NULL, n BIGINT NOT NULL DEFAULT 0";
    ctx.create_table(&*db, &t, cols).await;
    let run = |sql: String, params: Vec<Value>| {
        let db = Arc::clone(&db);
        async move { exec(&*db, &sql, params).await.unwrap() }
    };
    assert_eq!(
        run(
            format!("INSERT INTO {t} (k, v) VALUES (1, 'a'), (2, 'a'), (3, 'b')"),
            vec![]
        )
        .await,
        3
    );
    // The same value written again still counts as matched.
    assert_eq!(
        run(
            format!("UPDATE {t} SET v = ? WHERE v = ?"),
            vec!["a".into(), "a".into()]
        )
        .await,
        2
    );
    assert_eq!(
        run(format!("UPDATE {t} SET v = 'z' WHERE k = 99"), vec![]).await,
        0
    );
    // Compare-and-set style updates.
    let cas = format!("UPDATE {t} SET v = ? WHERE k = ? AND v = ?");
    assert_eq!(
        run(cas.clone(), vec!["y".into(), 1.into(), "a".into()]).await,
        1
    );
    assert_eq!(run(cas, vec!["w".into(), 1.into(), "a".into()]).await, 0);
    // DDL right after a write reports 0, not the previous statement's count.
    assert_eq!(
        run(
            format!("INSERT INTO {t} (k, v) VALUES (4, 'c'), (5, 'c')"),
            vec![]
        )
        .await,
        2
    );
    let u = ctx.table("mru");
    assert_eq!(run(format!("CREATE TABLE {u} (x BIGINT)"), vec![]).await, 0);
    assert_eq!(
        run(format!("DELETE FROM {t} WHERE v = 'c'"), vec![]).await,
        2
    );
}

pub async fn values_round_trip(ctx: PortCtx) {
    let db = ctx.open().await;
    let t = ctx.table("vals");
    let long = PortCtx::long_text(&*db);
    let cols = format!("id BIGINT NOT NULL PRIMARY KEY, v {long} NULL, n BIGINT NULL");
    ctx.create_table(&*db, &t, &cols).await;
    let big = "é☃𝄞x".repeat(1024 * 1024 / 10 + 1); // ~1 MiB of mixed-width UTF-8
    assert!(big.len() >= 1024 * 1024);
    let cases: Vec<(i64, Value, Value)> = vec![
        (1, Value::Text(big.clone()), Value::Int(i64::MAX)),
        (
            2,
            "héllo ✓ 🦀🚀 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 日本語 中文".into(),
            Value::Int(i64::MIN),
        ),
        (3, Value::Null, Value::Null),
        (4, Value::Text(String::new()), Value::Int(-1)),
        (
            5,
            "'quoted' ? and %s and $1, 100% ? literal".into(),
            Value::Int(0),
        ),
    ];
    let ins = format!("INSERT INTO {t} (id, v, n) VALUES (?, ?, ?)");
    let c1 = cases.clone();
    db.transact(
        TxMode::Write,
        body(move |tx| {
            for (id, v, n) in c1 {
                assert_eq!(tx.execute(&ins, &[id.into(), v, n])?, 1);
            }
            Ok(())
        }),
    )
    .await
    .unwrap();
    let rows = query(
        &*db,
        &format!("SELECT id, v, n FROM {t} ORDER BY id"),
        vec![],
    )
    .await
    .unwrap();
    assert_eq!(rows.len(), cases.len());
    for (row, (id, v, n)) in rows.iter().zip(&cases) {
        assert_eq!(row.columns(), ["id", "v", "n"]);
        assert_eq!(row.get("id"), Some(&Value::Int(*id)));
        assert_eq!(
            row.get("V"),
            Some(v),
            "id {id} (column lookup ignores case)"
        );
        assert_eq!(row.get("n"), Some(n));
    }
    assert_eq!(rows[0].text("v").unwrap().len(), big.len());
    assert_eq!(rows[1].i64("n").unwrap(), i64::MIN);

    // Aggregates decode as integers; a NULL aggregate as Null.
    let r = query(
        &*db,
        &format!(
            "SELECT COUNT(*) AS c, SUM(id) AS s, MAX(id) AS m, MAX(n) AS mx, \
             (SELECT MAX(n) FROM {t} WHERE id = 99) AS z FROM {t}"
        ),
        vec![],
    )
    .await
    .unwrap();
    assert_eq!(
        r[0].values(),
        [
            Value::Int(5),
            Value::Int(15),
            Value::Int(5),
            Value::Int(i64::MAX),
            Value::Null
        ]
    );

    // fetch_optional on an empty result.
    let got: Arc<Mutex<Option<Option<Row>>>> = Arc::default();
    let g = Arc::clone(&got);
    let sel = format!("SELECT v FROM {t} WHERE id = ?");
    db.transact(
        TxMode::Read,
        body(move |tx| {
            *g.lock().unwrap() = Some(tx.fetch_optional(&sel, &[42.into()])?);
            Ok(())
        }),
    )
    .await
    .unwrap();
    assert_eq!(*got.lock().unwrap(), Some(None));
}

pub async fn errors_are_typed(ctx: PortCtx) {
    let db = ctx.open().await;
    let t = kv_table(&ctx, &*db).await;
    let ins = format!("INSERT INTO {t} (id, v) VALUES (?, ?)");
    exec(&*db, &ins, vec![1.into(), 1.into()]).await.unwrap();

    let err = exec(&*db, &ins, vec![1.into(), 2.into()])
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::StoreConstraint);
    assert!(
        std::error::Error::source(&err).is_some(),
        "the driver error is kept as the source"
    );

    let err = query(&*db, &format!("SELECT nope FROM {t}"), vec![])
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::StoreQuery);

    let missing = ctx.table("missing");
    // A missing table is the typed schema error on every backend (a table dropped out of band
    // is reported as such, not as a generic query failure).
    let err = query(&*db, &format!("SELECT * FROM {missing}"), vec![])
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::StoreSchemaMissing, "{err}");

    let err = query(&*db, "SELEC nonsense", vec![]).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::StoreQuery);
}

pub async fn dropped_caller_future_leaves_no_open_transaction(ctx: PortCtx) {
    // One pooled connection: later transactions get the very connection the caller left.
    let db = ctx.open_pool(1).await;
    let observer = ctx.open().await;
    let t = kv_table(&ctx, &*db).await;
    let count = format!("SELECT COUNT(*) FROM {t}");

    // 1. Dropped while the body runs: the body finishes on its own and its transaction commits.
    leave_write(
        &*db,
        format!("INSERT INTO {t} (id, v) VALUES (1, 1)"),
        false,
    )
    .await;
    assert_eq!(await_count(&*db, &count, 1).await, 1);

    // 2. A body that fails after its caller left is rolled back, and the connection it used is
    // not left inside that transaction: the next transaction on it does not see the row and its
    // own write commits.
    leave_write(&*db, format!("INSERT INTO {t} (id, v) VALUES (2, 2)"), true).await;
    let (sel, ins) = (
        format!("SELECT id FROM {t} ORDER BY id"),
        format!("INSERT INTO {t} (id, v) VALUES (3, 3)"),
    );
    db.transact(
        TxMode::Write,
        body(move |tx| {
            let ids: Vec<i64> = tx
                .fetch_all(&sel, &[])?
                .iter()
                .map(|r| r.i64("id"))
                .collect::<power_loop_contracts::Result<_>>()?;
            assert_eq!(ids, [1], "the abandoned write is not visible");
            tx.execute(&ins, &[])?;
            Ok(())
        }),
    )
    .await
    .unwrap();
    assert_eq!(scalar(&*observer, &count).await, 2);
}

pub async fn many_small_transactions_on_one_connection(ctx: PortCtx) {
    let db = ctx.open_pool(1).await;
    let t = kv_table(&ctx, &*db).await;
    let ins = format!("INSERT INTO {t} (id, v, s) VALUES (?, ?, ?)");
    for i in 0..300_i64 {
        let ins = ins.clone();
        db.transact(
            TxMode::Write,
            body(move |tx| {
                tx.execute(&ins, &[i.into(), (i * 2).into(), format!("row {i}").into()])?;
                Ok(())
            }),
        )
        .await
        .unwrap();
    }
    assert_eq!(
        scalar(&*db, &format!("SELECT SUM(v) FROM {t}")).await,
        (0..300).map(|i| i * 2).sum::<i64>()
    );
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = Arc::clone(&seen);
    let sel = format!("SELECT s FROM {t} WHERE id = ?");
    db.transact(
        TxMode::Read,
        body(move |tx| {
            for id in [0_i64, 150, 299] {
                let row = tx.fetch_optional(&sel, &[id.into()])?.unwrap();
                s.lock().unwrap().push(row.text("s")?);
            }
            Ok(())
        }),
    )
    .await
    .unwrap();
    assert_eq!(*seen.lock().unwrap(), ["row 0", "row 150", "row 299"]);
}

pub async fn deferred_writes_commit_together_or_not_at_all(ctx: PortCtx) {
    let db = ctx.open_pool(1).await;
    let observer = ctx.open_pool(1).await;
    let t = kv_table(&ctx, &*db).await;
    let ins = format!("INSERT INTO {t} (id, v) VALUES (?, ?)");
    let count = format!("SELECT COUNT(*) FROM {t}");

    let s = ins.clone();
    db.transact(
        TxMode::Write,
        body(move |tx| {
            for i in 0..200_i64 {
                tx.execute_deferred(&s, &[i.into(), i.into()])?;
            }
            Ok(())
        }),
    )
    .await
    .unwrap();
    assert_eq!(scalar(&*observer, &count).await, 200);

    // A duplicate among deferred writes: a typed error, nothing of the transaction is kept, and
    // the connection is reusable and not inside the old transaction.
    let s = ins.clone();
    let err = db
        .transact(
            TxMode::Write,
            body(move |tx| {
                tx.execute_deferred(&s, &[1000.into(), 1.into()])?;
                tx.execute_deferred(&s, &[5.into(), 1.into()])?;
                tx.execute_deferred(&s, &[1001.into(), 1.into()])
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::StoreConstraint, "{err}");
    assert_eq!(scalar(&*observer, &count).await, 200);
    assert_eq!(scalar(&*db, &count).await, 200);

    let s = ins.clone();
    db.transact(
        TxMode::Write,
        body(move |tx| tx.execute_deferred(&s, &[5000.into(), 1.into()])),
    )
    .await
    .unwrap();
    assert_eq!(scalar(&*observer, &count).await, 201);
}
