//! Port scenarios for the dialect's SQL: upsert, insert-ignore, the DDL, and exclusive
//! (schema) transactions.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{PortCtx, body, exec, query, scalar};
use crate::db::{TxMode, Value};

pub async fn dialect_upsert_and_insert_ignore(ctx: PortCtx) {
    let db = ctx.open().await;
    let t = ctx.table("ups");
    ctx.create_table(
        &*db,
        &t,
        "k VARCHAR(64) NOT NULL, r BIGINT NOT NULL, val TEXT NULL, val2 BIGINT NULL, \
         cnt BIGINT NOT NULL DEFAULT 0, tok BIGINT NOT NULL DEFAULT 0, first BIGINT NULL, \
         PRIMARY KEY (k, r)",
    )
    .await;
    let d = db.dialect();
    let up = d.upsert(
        &t,
        &["k", "r"],
        &["val", "val2"],
        &["cnt", "tok"],
        &["first"],
    );
    let ins = d.insert_ignore(&t, &["k", "r", "val"], &["k", "r"]);
    let (up2, ins2) = (up.clone(), ins.clone());
    db.transact(
        TxMode::Write,
        body(move |t| {
            let row = |k: &str, val: &str, v2: i64, cnt: i64, tok: i64, first: i64| -> Vec<Value> {
                vec![
                    k.into(),
                    1.into(),
                    val.into(),
                    v2.into(),
                    cnt.into(),
                    tok.into(),
                    first.into(),
                ]
            };
            t.execute(&up2, &row("a", "v1", 10, 2, 100, 10))?;
            t.execute(&up2, &row("a", "v2", 20, 3, 50, 20))?;
            // (The count of an ignored duplicate differs: 0 on SQLite and PostgreSQL, 1 on
            // MySQL, whose found-rows count includes the no-op update; no caller relies on it.)
            t.execute(&ins2, &["a".into(), 1.into(), "ignored".into()])?;
            assert_eq!(t.execute(&ins2, &["b".into(), 1.into(), "new".into()])?, 1);
            Ok(())
        }),
    )
    .await
    .unwrap();
    let r = query(
        &*db,
        &format!("SELECT k, val, val2, cnt, tok, first FROM {t} ORDER BY k"),
        vec![],
    )
    .await
    .unwrap();
    assert_eq!(r[0].text("val").unwrap(), "v2", "val_cols overwrite");
    assert_eq!(r[0].i64("val2").unwrap(), 20, "val_cols overwrite");
    assert_eq!(r[0].i64("cnt").unwrap(), 5, "add_cols accumulate");
    assert_eq!(r[0].i64("tok").unwrap(), 150, "add_cols accumulate");
    assert_eq!(r[0].i64("first").unwrap(), 10, "insert_only preserved");
    assert_eq!(r[1].text("val").unwrap(), "new");
    assert_eq!(r.len(), 2);

    // insert_ignore keeps the first row of a single-column key.
    let sm = ctx.table("sm");
    ctx.create_table(
        &*db,
        &sm,
        "id INTEGER NOT NULL PRIMARY KEY, version INTEGER NOT NULL",
    )
    .await;
    let ins = d.insert_ignore(&sm, &["id", "version"], &["id"]);
    assert_eq!(exec(&*db, &ins, vec![1.into(), 1.into()]).await.unwrap(), 1);
    exec(&*db, &ins, vec![1.into(), 7.into()]).await.unwrap();
    assert_eq!(scalar(&*db, &format!("SELECT version FROM {sm}")).await, 1);
}

/// The tables the store's DDL creates (without the prefix).
const TABLES: [&str; 14] = [
    "background_tasks",
    "compactions",
    "lease_fences",
    "messages",
    "notes",
    "session_runtime_state",
    "session_state",
    "session_stats",
    "sessions",
    "shared_state",
    "timers",
    "usage_rounds",
    "workflow_runs",
    "workflow_steps",
];

pub async fn ddl_creates_the_prefixed_schema_idempotently(ctx: PortCtx) {
    let db = ctx.open().await;
    let p = ctx.prefix();
    let ddl = db.dialect().ddl(&p);
    for _ in 0..2 {
        let stmts = ddl.clone();
        db.transact_exclusive(
            &format!("schema:{p}"),
            body(move |t| {
                for s in &stmts {
                    assert_eq!(t.execute(s, &[])?, 0, "{s}");
                }
                Ok(())
            }),
        )
        .await
        .unwrap();
    }
    for table in TABLES {
        assert_eq!(
            scalar(&*db, &format!("SELECT COUNT(*) FROM {p}{table}")).await,
            0
        );
    }
    // Column defaults.
    exec(
        &*db,
        &format!("INSERT INTO {p}sessions (session_id, created_at, updated_at) VALUES ('s', 1, 1)"),
        vec![],
    )
    .await
    .unwrap();
    exec(
        &*db,
        &format!("INSERT INTO {p}session_state (session_id) VALUES ('s')"),
        vec![],
    )
    .await
    .unwrap();
    let r = query(
        &*db,
        &format!("SELECT status, kind, spawn_depth, lifecycle FROM {p}sessions"),
        vec![],
    )
    .await
    .unwrap();
    assert_eq!(
        r[0].values(),
        &[
            Value::from("active"),
            Value::from("root"),
            Value::Int(0),
            Value::from("ephemeral")
        ]
    );
    let r = query(
        &*db,
        &format!(
            "SELECT next_seq, round_index, last_compact_seq, pending_json FROM {p}session_state"
        ),
        vec![],
    )
    .await
    .unwrap();
    assert_eq!(
        r[0].values(),
        &[Value::Int(1), Value::Int(0), Value::Int(0), Value::Null]
    );
}

pub async fn exclusive_transactions_are_serialized(ctx: PortCtx) {
    let p = ctx.prefix();
    let inside = Arc::new(AtomicUsize::new(0));
    let max_inside = Arc::new(AtomicUsize::new(0));
    let created = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let db = ctx.open_pool(2).await;
        let p = p.clone();
        let (inside, max_inside, created) = (
            Arc::clone(&inside),
            Arc::clone(&max_inside),
            Arc::clone(&created),
        );
        tasks.push(tokio::spawn(async move {
            let ddl = db.dialect().ddl(&p);
            let stamp = db.dialect().insert_ignore(
                &format!("{p}schema_migrations"),
                &["id", "version"],
                &["id"],
            );
            let p2 = p.clone();
            let r = db
                .transact_exclusive(
                    &format!("schema:{p}"),
                    body(move |tx| {
                        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        max_inside.fetch_max(now, Ordering::SeqCst);
                        tx.execute(
                            &format!(
                                "CREATE TABLE IF NOT EXISTS {p2}schema_migrations \
                                 (id INTEGER PRIMARY KEY CHECK (id=1), version INTEGER NOT NULL)"
                            ),
                            &[],
                        )?;
                        let sel = format!("SELECT version FROM {p2}schema_migrations WHERE id = 1");
                        if tx.fetch_optional(&sel, &[])?.is_none() {
                            for s in &ddl {
                                tx.execute(s, &[])?;
                            }
                            tx.execute(&stamp, &[1.into(), 1.into()])?;
                            created.fetch_add(1, Ordering::SeqCst);
                        }
                        // Linger so an unserialized second body would overlap.
                        std::thread::sleep(std::time::Duration::from_millis(20));
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
        "exclusive bodies must not overlap"
    );
    assert_eq!(
        created.load(Ordering::SeqCst),
        1,
        "exactly one body creates the schema"
    );
    let db = ctx.open().await;
    assert_eq!(
        scalar(&*db, &format!("SELECT COUNT(*) FROM {p}schema_migrations")).await,
        1
    );
}
