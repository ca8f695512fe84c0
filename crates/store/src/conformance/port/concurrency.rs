//! Port scenarios for several callers at once: concurrent writers, leases, and close.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::time::Duration;

use power_loop_contracts::ErrorCode;

use super::{PortCtx, body, exec, scalar};
use crate::db::TxMode;

pub async fn concurrent_writers_are_serialized(ctx: PortCtx) {
    let db = ctx.open_pool(6).await;
    let t = ctx.table("ctr");
    ctx.create_table(
        &*db,
        &t,
        "id BIGINT NOT NULL PRIMARY KEY, v BIGINT NOT NULL",
    )
    .await;
    exec(
        &*db,
        &format!("INSERT INTO {t} (id, v) VALUES (1, 0)"),
        vec![],
    )
    .await
    .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let db = std::sync::Arc::clone(&db);
        let lock = format!(
            "SELECT v FROM {t} WHERE id = 1{}",
            db.dialect().for_update()
        );
        let upd = format!("UPDATE {t} SET v = ? WHERE id = 1");
        tasks.push(tokio::spawn(async move {
            for _ in 0..25 {
                let (lock, upd) = (lock.clone(), upd.clone());
                db.transact(
                    TxMode::Write,
                    body(move |tx| {
                        let v = tx.fetch_optional(&lock, &[])?.unwrap().i64("v")?;
                        tx.execute(&upd, &[(v + 1).into()])?;
                        Ok(())
                    }),
                )
                .await
                .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_eq!(
        scalar(&*db, &format!("SELECT v FROM {t} WHERE id = 1")).await,
        400
    );
}

pub async fn close_is_idempotent_and_later_calls_fail_closed(ctx: PortCtx) {
    let db = ctx.open().await;
    assert_eq!(scalar(&*db, "SELECT 1").await, 1);
    db.close().await.unwrap();
    db.close().await.unwrap();
    let err = db
        .transact(TxMode::Read, body(|_| Ok(())))
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::StoreClosed);
    let err = db.acquire_lease("x").await.err().unwrap();
    assert_eq!(err.code(), ErrorCode::StoreClosed);
    if let Some(m) = db.maintenance() {
        let err = m.checkpoint("PASSIVE").await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::StoreClosed);
    }
}

pub async fn leases_exclude_across_handles_and_are_freed(ctx: PortCtx) {
    let a = ctx.open().await;
    let b = ctx.open().await;
    let name = format!("session:{}", ctx.table("ls"));
    let la = a
        .acquire_lease(&name)
        .await
        .unwrap()
        .expect("a takes the lease");
    assert_eq!(la.name(), name);
    assert!(
        b.acquire_lease(&name).await.unwrap().is_none(),
        "held by another handle"
    );
    assert!(
        a.acquire_lease(&name).await.unwrap().is_none(),
        "not re-entrant"
    );
    let other = b.acquire_lease(&format!("{name}:other")).await.unwrap();
    assert!(other.is_some(), "names are independent");
    la.release().await.unwrap();
    let lb = b
        .acquire_lease(&name)
        .await
        .unwrap()
        .expect("free after release");
    // Dropping a lease frees it (possibly a moment later, when its connection closes).
    drop(lb);
    let mut got = None;
    for _ in 0..50 {
        if let Some(l) = a.acquire_lease(&name).await.unwrap() {
            got = Some(l);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let la = got.expect("free after drop");
    // Long names are still exclusive.
    let long = format!("{name}:{}", "y".repeat(100));
    let l1 = a.acquire_lease(&long).await.unwrap().expect("a long name");
    assert!(b.acquire_lease(&long).await.unwrap().is_none());
    l1.release().await.unwrap();
    la.release().await.unwrap();
    drop(other);
    a.close().await.unwrap();
    b.close().await.unwrap();
}
