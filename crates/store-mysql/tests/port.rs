//! The `Database` port on a real MySQL/MariaDB server (`POWER_LOOP_TEST_MYSQL_DSN`): the shared
//! port suite, plus what only this backend does (autocommit statements outside transactions,
//! NUL in text, `SKIP LOCKED`, leases multiplexed on a few connections, the backend descriptor).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use power_loop_contracts::ErrorCode;
use power_loop_store::backend::{ConnectOptions, DsnTarget, ParsedDsn};
use power_loop_store::conformance::port::PortTarget;
use power_loop_store::conformance::support::mysql_dsn as dsn;
use power_loop_store::db::{Database, Row, TxMode, Value};
use power_loop_store_mysql::{BACKEND, MySqlDatabase};

use common::{connect, drop_prefixed, prefix};

fn target() -> Option<PortTarget> {
    let dsn = dsn()?;
    Some(PortTarget::new(move |o| {
        let dsn = dsn.clone();
        async move {
            let db: Arc<dyn Database> = Arc::new(MySqlDatabase::connect(&dsn, &o).await?);
            Ok(db)
        }
    }))
}

power_loop_store::port_conformance_suite!(target);

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autocommit_statements_outside_transactions() {
    let Some(dsn) = dsn() else { return };
    let db = connect(&dsn).await;
    let p = prefix("ac");
    let t = make_kv(&db, &p).await;
    for id in 1..=5_i64 {
        db.execute(&format!("INSERT INTO {t} (id) VALUES (?)"), &[id.into()])
            .await
            .unwrap();
    }
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
    // A missing table is store.schema_missing with a schema hint.
    let err = db
        .fetch_all(&format!("SELECT * FROM {p}nope"), &[])
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::StoreSchemaMissing);
    assert!(err.message().contains("schema"), "{}", err.message());
    drop_prefixed(&db, &p).await;
    db.close().await.unwrap();
    let err = db.fetch_all("SELECT 1", &[]).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::StoreClosed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_with_nul_round_trips() {
    let Some(dsn) = dsn() else { return };
    let db = connect(&dsn).await;
    let p = prefix("nul");
    let t = make_kv(&db, &p).await;
    let emoji = "héllo 🦀🚀 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 中文 \u{0}nul".to_owned();
    db.execute(
        &format!("INSERT INTO {t} (id, v) VALUES (?, ?)"),
        &[1.into(), emoji.clone().into()],
    )
    .await
    .unwrap();
    let got: Arc<Mutex<Vec<Row>>> = Arc::default();
    let g = got.clone();
    let t2 = t.clone();
    db.transact(
        TxMode::Read,
        Box::new(move |tx| {
            *g.lock().unwrap() = tx.fetch_all(&format!("SELECT v FROM {t2}"), &[])?;
            Ok(())
        }),
    )
    .await
    .unwrap();
    assert_eq!(got.lock().unwrap()[0].text("v").unwrap(), emoji);
    drop_prefixed(&db, &p).await;
    db.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn for_update_skip_locked_skips_rows_locked_elsewhere() {
    let Some(dsn) = dsn() else { return };
    let db = connect(&dsn).await;
    let p = prefix("sk");
    let d = db.dialect();
    for stmt in d.ddl(&p) {
        db.execute(&stmt, &[]).await.unwrap();
    }
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
