//! Bad input against a real PostgreSQL server: each case gives a typed error naming the fix.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{exec, open, options, query, unique, variant};
use power_loop_contracts::ErrorCode;
use power_loop_store::backend::{DsnTarget, ParsedDsn};
use power_loop_store::conformance::support::pg_dsn;
use power_loop_store::db::Database;
use power_loop_store::{SchemaPolicy, SessionStore, StoreOptions, TableNames};
use power_loop_store_postgres::{BACKEND, PostgresDatabase};

/// Creates a login role if absent (safe when several test processes race).
async fn ensure_role(admin: &dyn Database, role: &str, password: Option<&str>) {
    let pw = password
        .map(|p| format!(" PASSWORD '{p}'"))
        .unwrap_or_default();
    exec(
        admin,
        &format!(
            "DO $$ BEGIN CREATE ROLE {role} LOGIN{pw}; \
             EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
        ),
        vec![],
    )
    .await
    .unwrap();
}

async fn connect_err(dsn: &str) -> power_loop_contracts::Error {
    PostgresDatabase::connect(dsn, &options(1))
        .await
        .expect_err("connecting must fail")
}

#[tokio::test]
async fn unknown_role_is_auth_failed() {
    let Some(dsn) = pg_dsn() else {
        return;
    };
    let err = connect_err(&variant(
        &dsn,
        Some("pl_no_such_role_xyz"),
        None,
        None,
        None,
    ))
    .await;
    assert_eq!(err.code(), ErrorCode::StoreAuth, "{err:?}");
    assert!(err.message().contains("DSN"), "{}", err.message());
    assert!(std::error::Error::source(&err).is_some());
}

#[tokio::test]
async fn wrong_password_is_auth_failed_unless_the_server_trusts_everyone() {
    let Some(dsn) = pg_dsn() else {
        return;
    };
    let admin = open(&dsn).await;
    ensure_role(&admin, "pl_test_pw", Some("right-password")).await;
    let trust = query(
        &admin,
        "SELECT COUNT(*) AS n FROM pg_hba_file_rules WHERE auth_method = 'trust' AND type IN ('host', 'hostnossl')",
        vec![],
    )
    .await
    .map(|r| r[0].i64("n").unwrap_or(0) > 0)
    .unwrap_or(false);
    match PostgresDatabase::connect(
        &variant(&dsn, Some("pl_test_pw"), Some("wrong-password"), None, None),
        &options(1),
    )
    .await
    {
        Err(err) => assert_eq!(err.code(), ErrorCode::StoreAuth, "{err:?}"),
        Ok(_) => {
            assert!(
                trust,
                "a wrong password was accepted although pg_hba.conf has no trust rule"
            );
            eprintln!(
                "note: pg_hba.conf uses trust auth for TCP, so a wrong password cannot be rejected \
                 here; the auth mapping is covered by unknown_role_is_auth_failed (SQLSTATE 28000)"
            );
        }
    }
}

#[tokio::test]
async fn missing_database_is_database_missing() {
    let Some(dsn) = pg_dsn() else {
        return;
    };
    let err = connect_err(&variant(&dsn, None, None, Some("pl_no_such_db_xyz"), None)).await;
    assert_eq!(err.code(), ErrorCode::StoreDatabaseMissing, "{err:?}");
    assert!(
        err.message().contains("CREATE DATABASE"),
        "{}",
        err.message()
    );
}

#[tokio::test]
async fn unreachable_server_is_connection_error() {
    let Some(dsn) = pg_dsn() else {
        return;
    };
    let started = Instant::now();
    let err = connect_err(&variant(&dsn, None, None, None, Some(1))).await;
    assert_eq!(err.code(), ErrorCode::StoreConnection, "{err:?}");
    assert!(err.is_retryable());
    assert!(started.elapsed() < Duration::from_secs(10));

    // A TLS failure (here: verify-full against a host the certificate does not name, or a
    // server without TLS) is a connection error that says so.
    let err = connect_err(&format!(
        "{dsn}{}sslmode=verify-full&sslrootcert=system",
        if dsn.contains('?') { '&' } else { '?' }
    ))
    .await;
    assert_eq!(err.code(), ErrorCode::StoreConnection, "{err:?}");
    assert!(err.message().contains("TLS"), "{}", err.message());
}

#[tokio::test]
async fn malformed_dsn_and_wrong_target_are_dsn_invalid() {
    let err = connect_err("postgres://u@127.0.0.1:notaport/db").await;
    assert_eq!(err.code(), ErrorCode::StoreDsnInvalid, "{err:?}");
    let err = (BACKEND.open)(
        ParsedDsn {
            backend: "postgres",
            target: DsnTarget::SqliteMemory,
        },
        options(1),
    )
    .await
    .err()
    .unwrap();
    assert_eq!(err.code(), ErrorCode::StoreDsnInvalid);
    assert_eq!(BACKEND.name, "postgres");
}

#[tokio::test]
async fn backend_descriptor_opens_urls() {
    let Some(dsn) = pg_dsn() else {
        return;
    };
    let db = (BACKEND.open)(
        ParsedDsn {
            backend: "postgres",
            target: DsnTarget::Url(dsn),
        },
        options(2),
    )
    .await
    .unwrap();
    assert_eq!(db.dialect().name(), "postgres");
    let rows = query(db.as_ref(), "SELECT 1 AS one", vec![]).await.unwrap();
    assert_eq!(rows[0].i64("one").unwrap(), 1);
    db.close().await.unwrap();
}

#[tokio::test]
async fn read_only_role_gets_permission_errors() {
    let Some(dsn) = pg_dsn() else {
        return;
    };
    let admin: Arc<dyn Database> = Arc::new(open(&dsn).await);
    ensure_role(admin.as_ref(), "pl_test_ro", None).await;
    let ro_dsn = variant(&dsn, Some("pl_test_ro"), None, None, None);
    let ro: Arc<dyn Database> = Arc::new(
        PostgresDatabase::connect(&ro_dsn, &options(2))
            .await
            .unwrap(),
    );

    // No CREATE on schema public (PostgreSQL 15 default for PUBLIC).
    let t = unique("ro");
    let err = exec(ro.as_ref(), &format!("CREATE TABLE {t} (x BIGINT)"), vec![])
        .await
        .unwrap_err();
    assert_eq!(err.code(), ErrorCode::StorePermissionDenied, "{err:?}");
    assert!(
        err.message().contains("SchemaPolicy::Verify"),
        "{}",
        err.message()
    );

    // A store schema provisioned by the admin, not granted to the role.
    let prefix = common::short_prefix("rost");
    let store_opts = |policy| {
        StoreOptions::new()
            .with_table_prefix(prefix.clone())
            .with_schema_policy(policy)
    };
    drop(
        SessionStore::open_database(Arc::clone(&admin), &store_opts(SchemaPolicy::AutoCreate))
            .await
            .unwrap(),
    );
    let err = SessionStore::open_database(Arc::clone(&ro), &store_opts(SchemaPolicy::Verify))
        .await
        .err()
        .unwrap();
    assert_eq!(
        err.code(),
        ErrorCode::StorePermissionDenied,
        "Verify must not call a permission problem 'not initialized': {err:?}"
    );

    // Once granted read access, Verify opens; writes are still denied.
    for t in TableNames::new(&prefix).unwrap().all() {
        exec(
            admin.as_ref(),
            &format!("GRANT SELECT ON {t} TO pl_test_ro"),
            vec![],
        )
        .await
        .unwrap();
    }
    let store = SessionStore::open_database(Arc::clone(&ro), &store_opts(SchemaPolicy::Verify))
        .await
        .unwrap();
    drop(store);
    let err = exec(
        ro.as_ref(),
        &format!("DELETE FROM {prefix}sessions"),
        vec![],
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), ErrorCode::StorePermissionDenied, "{err:?}");

    // AutoCreate on a fresh prefix fails with the schema-creation error carrying the DDL.
    let fresh = common::short_prefix("rofr");
    let err = SessionStore::open_database(
        Arc::clone(&ro),
        &StoreOptions::new()
            .with_table_prefix(fresh)
            .with_schema_policy(SchemaPolicy::AutoCreate),
    )
    .await
    .err()
    .unwrap();
    assert!(
        matches!(
            err.code(),
            ErrorCode::StoreSchemaCreateFailed | ErrorCode::StorePermissionDenied
        ),
        "{err:?}"
    );

    power_loop_store::drop_schema(admin.as_ref(), &prefix)
        .await
        .unwrap();
}
