//! `open_store` end to end through the `BACKEND` descriptor, and a read-only role opening with
//! Verify (works on a provisioned schema) or AutoCreate on a fresh prefix (typed refusal).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use power_loop_contracts::ErrorCode;
use power_loop_store::conformance::support::mysql_dsn;
use power_loop_store::db::Database;
use power_loop_store::{
    NewMessage, NewSession, SchemaPolicy, StoreOptions, drop_schema, open_store,
};
use power_loop_store_mysql::BACKEND;

use common::{connect, prefix, read_only_user};

fn with_scheme(dsn: &str, scheme: &str) -> String {
    let rest = dsn.split_once("://").map(|(_, r)| r).unwrap();
    format!("{scheme}://{rest}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_store_via_mariadb_scheme_and_big_message() {
    let Some(dsn) = mysql_dsn() else { return };
    let p = prefix("os");
    let opts = StoreOptions::new().with_table_prefix(&p);
    let store = open_store(&with_scheme(&dsn, "mariadb+aiomysql"), opts, &[BACKEND])
        .await
        .unwrap();
    assert_eq!(store.backend_name(), "mysql");
    let sid = store.create_session(NewSession::new()).await.unwrap();
    let big = "λ🦀".repeat(100_000); // ~600 KiB, far above the 64 KiB TEXT limit
    assert_eq!(
        store
            .append_message(&sid, NewMessage::user(big.clone()))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .append_message(&sid, NewMessage::assistant("ok"))
            .await
            .unwrap(),
        2
    );
    let msgs = store.load_all_messages(&sid).await.unwrap();
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0].content.as_deref(), Some(big.as_str()));
    // Reopen with Verify: the schema is there.
    let verify = StoreOptions::new()
        .with_table_prefix(&p)
        .with_schema_policy(SchemaPolicy::Verify);
    let again = open_store(&dsn, verify, &[BACKEND]).await.unwrap();
    assert_eq!(again.load_all_messages(&sid).await.unwrap().len(), 2);
    again.close().await.unwrap();
    drop_schema(&**store.database(), &p).await.unwrap();
    store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_role_verify_and_auto_create() {
    let Some(dsn) = mysql_dsn() else { return };
    let admin = connect(&dsn).await;
    let ro_dsn = read_only_user(&admin, &dsn).await;
    admin.close().await.unwrap();
    let p = prefix("rv");
    // Provision as the privileged user.
    let owner = open_store(&dsn, StoreOptions::new().with_table_prefix(&p), &[BACKEND])
        .await
        .unwrap();
    let sid = owner.create_session(NewSession::new()).await.unwrap();
    owner
        .append_message(&sid, NewMessage::user("hi"))
        .await
        .unwrap();

    // Verify with a read-only role opens and reads.
    let verify = StoreOptions::new()
        .with_table_prefix(&p)
        .with_schema_policy(SchemaPolicy::Verify);
    let ro = open_store(&ro_dsn, verify, &[BACKEND]).await.unwrap();
    assert_eq!(ro.load_all_messages(&sid).await.unwrap().len(), 1);
    // Writes are refused with a typed permission error.
    let e = ro
        .append_message(&sid, NewMessage::user("nope"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::StorePermissionDenied, "{e:?}");
    ro.close().await.unwrap();

    // AutoCreate on a fresh prefix as the read-only role: a typed refusal carrying the DDL.
    let fresh = prefix("rf");
    let e = open_store(
        &ro_dsn,
        StoreOptions::new().with_table_prefix(&fresh),
        &[BACKEND],
    )
    .await
    .err()
    .unwrap();
    assert!(
        matches!(
            e.code(),
            ErrorCode::StoreSchemaCreateFailed | ErrorCode::StorePermissionDenied
        ),
        "{e:?}"
    );
    if e.code() == ErrorCode::StoreSchemaCreateFailed {
        assert!(!e.ddl().is_empty());
    }
    // Verify on the fresh prefix: schema missing, with the DDL.
    let verify = StoreOptions::new()
        .with_table_prefix(&fresh)
        .with_schema_policy(SchemaPolicy::Verify);
    let e = open_store(&ro_dsn, verify, &[BACKEND]).await.err().unwrap();
    assert_eq!(e.code(), ErrorCode::StoreSchemaMissing, "{e:?}");
    assert!(!e.ddl().is_empty());

    drop_schema(&**owner.database(), &p).await.unwrap();
    owner.close().await.unwrap();
}
