//! Advisory-lock schema boot and cross-process leases against a real PostgreSQL server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{exec, open, options, scalar, unique};
use power_loop_store::TableNames;
use power_loop_store::conformance::support::pg_dsn;
use power_loop_store::db::{Database, Value};
use power_loop_store_postgres::PostgresDatabase;

#[tokio::test]
async fn leases_exclude_across_two_instances() {
    let Some(dsn) = pg_dsn() else {
        return;
    };
    let a = open(&dsn).await;
    let b = open(&dsn).await;
    let name = unique("lease");

    let held = a
        .acquire_lease(&name)
        .await
        .unwrap()
        .expect("first holder gets the lease");
    assert_eq!(held.name(), name);
    assert!(
        b.acquire_lease(&name).await.unwrap().is_none(),
        "other instance is excluded"
    );
    assert!(
        a.acquire_lease(&name).await.unwrap().is_none(),
        "a second lease on the same instance is excluded too"
    );
    // A different name is independent.
    let other = b
        .acquire_lease(&format!("{name}_other"))
        .await
        .unwrap()
        .expect("independent name");

    held.release().await.unwrap();
    let held_b = b
        .acquire_lease(&name)
        .await
        .unwrap()
        .expect("free after release");
    assert!(a.acquire_lease(&name).await.unwrap().is_none());

    // Dropping a lease closes its connection, which frees the lock on the server.
    drop(held_b);
    let mut again = None;
    for _ in 0..100 {
        again = a.acquire_lease(&name).await.unwrap();
        if again.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let again = again.expect("free after the holder was dropped");
    again.release().await.unwrap();
    other.release().await.unwrap();

    // Closing the database closes its shared lease connection: the server frees every lease of
    // that handle, another worker can take it, and releasing the stale handle is harmless.
    let l = a.acquire_lease(&name).await.unwrap().unwrap();
    assert!(b.acquire_lease(&name).await.unwrap().is_none());
    a.close().await.unwrap();
    assert!(
        a.acquire_lease(&name).await.is_err(),
        "a closed handle refuses new leases"
    );
    let mut taken = None;
    for _ in 0..100 {
        taken = b.acquire_lease(&name).await.unwrap();
        if taken.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let taken = taken.expect("free after the holder's database was closed");
    l.release().await.unwrap();
    taken.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_leases_share_one_connection_and_exclude_in_process() {
    let Some(dsn) = pg_dsn() else {
        return;
    };
    let a = PostgresDatabase::connect(&dsn, &options(4)).await.unwrap();
    let tag = unique("many");
    // 150 concurrent leases: more than the server's default connection limit of 100.
    let mut held = Vec::new();
    for i in 0..150 {
        let l = a
            .acquire_lease(&format!("{tag}-{i}"))
            .await
            .unwrap()
            .expect("free name");
        held.push(l);
    }
    // Same process, same name: refused while held (advisory locks are re-entrant per connection).
    assert!(
        a.acquire_lease(&format!("{tag}-7"))
            .await
            .unwrap()
            .is_none()
    );
    for l in held {
        l.release().await.unwrap();
    }
    let again = a
        .acquire_lease(&format!("{tag}-7"))
        .await
        .unwrap()
        .expect("free after release");
    again.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_concurrent_exclusive_boots_serialize_and_stamp_once() {
    let Some(dsn) = pg_dsn() else {
        return;
    };
    let prefix = format!("{}_", unique("boot"));
    let lock = format!("schema:{prefix}");
    let inside = Arc::new(AtomicUsize::new(0));
    let max_inside = Arc::new(AtomicUsize::new(0));
    let created = Arc::new(AtomicUsize::new(0));
    let mut dbs = Vec::new();
    for _ in 0..8 {
        // Separate instances (separate pools), like separate processes.
        dbs.push(Arc::new(
            PostgresDatabase::connect(&dsn, &options(1)).await.unwrap(),
        ));
    }
    let barrier = Arc::new(tokio::sync::Barrier::new(8));
    let mut tasks = Vec::new();
    for db in &dbs {
        let (db, barrier, p, lock) = (
            Arc::clone(db),
            Arc::clone(&barrier),
            prefix.clone(),
            lock.clone(),
        );
        let (inside, max_inside, created) = (
            Arc::clone(&inside),
            Arc::clone(&max_inside),
            Arc::clone(&created),
        );
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            db.transact_exclusive(&lock, Box::new(move |tx| {
                let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                max_inside.fetch_max(now, Ordering::SeqCst);
                tx.execute(&format!("CREATE TABLE IF NOT EXISTS {p}schema_migrations (id INTEGER PRIMARY KEY CHECK (id=1), version INTEGER NOT NULL)"), &[])?;
                let row = tx.fetch_optional(&format!("SELECT version FROM {p}schema_migrations WHERE id = ?"), &[Value::Int(1)])?;
                if row.is_none() {
                    for stmt in tx.dialect().ddl(&p) {
                        tx.execute(&stmt, &[])?;
                    }
                    let stamp = tx.dialect().insert_ignore(&format!("{p}schema_migrations"), &["id", "version"], &["id"]);
                    assert_eq!(tx.execute(&stamp, &[Value::Int(1), Value::Int(1)])?, 1);
                    created.fetch_add(1, Ordering::SeqCst);
                }
                std::thread::sleep(Duration::from_millis(15));
                inside.fetch_sub(1, Ordering::SeqCst);
                Ok(())
            }))
            .await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(
        created.load(Ordering::SeqCst),
        1,
        "exactly one boot created the schema"
    );
    assert_eq!(
        max_inside.load(Ordering::SeqCst),
        1,
        "boot bodies never overlapped"
    );
    let db = &dbs[0];
    assert_eq!(
        scalar(
            db.as_ref(),
            &format!("SELECT COUNT(*) FROM {prefix}schema_migrations"),
            vec![]
        )
        .await,
        1
    );
    let like = format!("{prefix}%");
    assert_eq!(
        scalar(
            db.as_ref(),
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_name LIKE ?",
            vec![like.clone().into()]
        )
        .await,
        16,
        "15 data tables + the version table"
    );
    assert_eq!(
        scalar(
            db.as_ref(),
            "SELECT COUNT(*) FROM pg_indexes WHERE indexname LIKE ? AND indexname NOT LIKE '%pkey'",
            vec![like.into()]
        )
        .await,
        8
    );
    // pinned is SMALLINT: binding an Int goes through the INT2 path.
    exec(db.as_ref(), &format!("INSERT INTO {prefix}notes (session_id, note_id, content, pinned, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)"),
        vec!["s".into(), Value::Int(1), "n".into(), Value::Int(1), Value::Int(0), Value::Int(0)]).await.unwrap();
    assert_eq!(
        scalar(
            db.as_ref(),
            &format!("SELECT pinned FROM {prefix}notes"),
            vec![]
        )
        .await,
        1
    );
    for t in TableNames::new(&prefix).unwrap().all() {
        exec(db.as_ref(), &format!("DROP TABLE IF EXISTS {t}"), vec![])
            .await
            .unwrap();
    }
}
