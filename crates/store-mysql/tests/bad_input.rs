//! Bad connection input against a real server: each gives a typed error whose message names a fix.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use power_loop_contracts::{Error, ErrorCode};
use power_loop_store::backend::ConnectOptions;
use power_loop_store::conformance::support::mysql_dsn;
use power_loop_store::db::{Database, TxMode};
use power_loop_store_mysql::MySqlDatabase;

use common::{connect, dsn_variant, prefix, read_only_user};

async fn open_err(dsn: &str) -> Error {
    let mut o = ConnectOptions::default();
    o.connect_timeout_ms = 5_000;
    MySqlDatabase::connect(dsn, &o)
        .await
        .expect_err("connect must fail")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_auth_failed() {
    let Some(dsn) = mysql_dsn() else { return };
    let e = open_err(&dsn_variant(
        &dsn,
        None,
        Some("definitely-wrong-pw"),
        None,
        None,
    ))
    .await;
    assert_eq!(e.code(), ErrorCode::StoreAuth, "{e:?}");
    assert!(e.message().contains("password"), "{}", e.message());
    assert!(
        !e.message().contains("definitely-wrong-pw"),
        "password leaked: {}",
        e.message()
    );
    assert!(std::error::Error::source(&e).is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_database_is_database_missing() {
    let Some(dsn) = mysql_dsn() else { return };
    let e = open_err(&dsn_variant(
        &dsn,
        None,
        None,
        Some("pl_no_such_db_4711"),
        None,
    ))
    .await;
    assert_eq!(e.code(), ErrorCode::StoreDatabaseMissing, "{e:?}");
    assert!(e.message().contains("CREATE DATABASE"), "{}", e.message());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_port_is_connection_error() {
    let Some(dsn) = mysql_dsn() else { return };
    let e = open_err(&dsn_variant(&dsn, None, None, None, Some(1))).await;
    assert_eq!(e.code(), ErrorCode::StoreConnection, "{e:?}");
    assert!(e.is_retryable());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_dsn_is_dsn_invalid() {
    let e = open_err("mysql://root@127.0.0.1:notaport/test").await;
    assert_eq!(e.code(), ErrorCode::StoreDsnInvalid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_user_maps_to_permission_denied() {
    let Some(dsn) = mysql_dsn() else { return };
    let admin = connect(&dsn).await;
    let p = prefix("ro");
    let table = format!("{p}t");
    admin
        .execute(
            &format!("CREATE TABLE {table} (id BIGINT PRIMARY KEY) ENGINE=InnoDB"),
            &[],
        )
        .await
        .unwrap();
    let ro_dsn = read_only_user(&admin, &dsn).await;
    let ro = connect(&ro_dsn).await;
    // Reads work.
    assert!(
        ro.fetch_all(&format!("SELECT id FROM {table}"), &[])
            .await
            .unwrap()
            .is_empty()
    );
    // Writes and DDL are refused with store.permission_denied.
    let e = ro
        .execute(&format!("INSERT INTO {table} (id) VALUES (1)"), &[])
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::StorePermissionDenied, "{e:?}");
    assert!(e.message().contains("grant"), "{}", e.message());
    let t2 = format!("{p}u");
    let e = ro
        .transact(
            TxMode::Write,
            Box::new(move |tx| {
                tx.execute(&format!("CREATE TABLE {t2} (id BIGINT PRIMARY KEY)"), &[])?;
                Ok(())
            }),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::StorePermissionDenied, "{e:?}");
    ro.close().await.unwrap();
    admin
        .execute(&format!("DROP TABLE {table}"), &[])
        .await
        .unwrap();
    admin.close().await.unwrap();
}
