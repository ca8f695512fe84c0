//! Real TLS against the local PostgreSQL server, checked from the server side with `pg_stat_ssl`.
//!
//! The server must have `ssl = on` (`scripts/tls.sh up` turns it on with a generated certificate
//! when it is off). The trusted root is the server's own certificate file
//! (`current_setting('ssl_cert_file')`, readable by the superuser running the tests), or
//! `POWER_LOOP_TEST_PG_SSLROOTCERT`. Without TLS on the server the tests skip with a reason,
//! unless `POWER_LOOP_REQUIRE_PEERS=1`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::str::FromStr;

use common::{options, query, unique};
use power_loop_contracts::ErrorCode;
use power_loop_store::conformance::support::pg_dsn;
use power_loop_store::db::{Database, Value};
use power_loop_store_postgres::PostgresDatabase;

fn require_peers() -> bool {
    std::env::var("POWER_LOOP_REQUIRE_PEERS").as_deref() == Ok("1")
}

fn skip(reason: &str) {
    assert!(
        !require_peers(),
        "peer missing with POWER_LOOP_REQUIRE_PEERS=1: {reason}"
    );
    eprintln!("SKIP: {reason}");
}

/// The server as a key=value DSN on `host`, plus `extra` parameters.
fn dsn_on(base: &str, host: &str, extra: &str) -> String {
    let cfg = tokio_postgres::Config::from_str(base).expect("test DSN parses");
    let port = cfg.get_ports().first().copied().unwrap_or(5432);
    let user = cfg.get_user().unwrap_or("postgres");
    let db = cfg.get_dbname().unwrap_or("postgres");
    format!("host={host} port={port} user={user} dbname={db} connect_timeout=5 {extra}")
}

fn int(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        other => panic!("expected an integer, got {other:?}"),
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::Text(s) => s.clone(),
        other => panic!("expected text, got {other:?}"),
    }
}

/// The base DSN and the server's certificate file when the server has TLS on.
async fn setup() -> Option<(String, String)> {
    let dsn = pg_dsn()?;
    let plain = PostgresDatabase::connect(&format!("{dsn}?sslmode=disable"), &options(1))
        .await
        .expect("plain connection to the test server");
    let rows = query(
        &plain,
        "SELECT current_setting('ssl'), current_setting('ssl_cert_file')",
        vec![],
    )
    .await
    .unwrap();
    plain.close().await.unwrap();
    if text(&rows[0].values()[0]) != "on" {
        skip("the PostgreSQL server has ssl = off (run scripts/tls.sh up)");
        return None;
    }
    let cert = std::env::var("POWER_LOOP_TEST_PG_SSLROOTCERT")
        .unwrap_or_else(|_| text(&rows[0].values()[1]));
    if std::fs::read(&cert).is_err() {
        skip(&format!("the server certificate `{cert}` is not readable"));
        return None;
    }
    Some((dsn, cert))
}

/// (ssl, tls version) of this connection as the server sees it.
async fn server_side_ssl(db: &PostgresDatabase) -> (bool, String) {
    let rows = query(
        db,
        "SELECT CASE WHEN ssl THEN 1 ELSE 0 END, COALESCE(version, '') \
         FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
        vec![],
    )
    .await
    .unwrap();
    (int(&rows[0].values()[0]) == 1, text(&rows[0].values()[1]))
}

#[tokio::test]
async fn sslmodes_are_honoured_as_the_server_sees_them() {
    let Some((dsn, cert)) = setup().await else {
        return;
    };
    let cases = [
        (dsn_on(&dsn, "127.0.0.1", "sslmode=disable"), false),
        (dsn_on(&dsn, "127.0.0.1", ""), true), // libpq's default: prefer
        (dsn_on(&dsn, "127.0.0.1", "sslmode=prefer"), true),
        (dsn_on(&dsn, "127.0.0.1", "sslmode=require"), true),
        (
            dsn_on(
                &dsn,
                "127.0.0.1",
                &format!("sslmode=verify-ca sslrootcert={cert}"),
            ),
            true,
        ),
        (
            dsn_on(
                &dsn,
                "localhost",
                &format!("sslmode=verify-full sslrootcert={cert}"),
            ),
            true,
        ),
        (format!("{dsn}?sslmode=require"), true),
        (format!("{dsn}?sslmode=disable"), false),
    ];
    for (dsn, want_tls) in cases {
        let db = PostgresDatabase::connect(&dsn, &options(1))
            .await
            .unwrap_or_else(|e| panic!("{dsn}: {e}"));
        let (ssl, version) = server_side_ssl(&db).await;
        assert_eq!(ssl, want_tls, "{dsn}: pg_stat_ssl.ssl");
        if want_tls {
            assert!(version.starts_with("TLSv1."), "{dsn}: version {version}");
        }
        db.close().await.unwrap();
    }
}

#[tokio::test]
async fn verification_failures_are_refused() {
    let Some((dsn, cert)) = setup().await else {
        return;
    };
    // verify-full: the certificate names `localhost`, not the address.
    let by_ip = dsn_on(
        &dsn,
        "127.0.0.1",
        &format!("sslmode=verify-full sslrootcert={cert}"),
    );
    let e = PostgresDatabase::connect(&by_ip, &options(1))
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::StoreConnection, "{e}");
    // verify-ca against roots that did not sign the server certificate.
    let wrong_ca = dsn_on(&dsn, "localhost", "sslmode=verify-ca sslrootcert=system");
    let e = PostgresDatabase::connect(&wrong_ca, &options(1))
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::StoreConnection, "{e}");
    // require + sslrootcert verifies the chain (libpq's rule).
    let require_wrong = dsn_on(&dsn, "localhost", "sslmode=require sslrootcert=system");
    let e = PostgresDatabase::connect(&require_wrong, &options(1))
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::StoreConnection, "{e}");
    // A missing root file is a DSN problem, named.
    let missing = dsn_on(
        &dsn,
        "localhost",
        "sslmode=verify-ca sslrootcert=/nonexistent/ca.pem",
    );
    let e = PostgresDatabase::connect(&missing, &options(1))
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::StoreDsnInvalid, "{e}");
    assert!(e.to_string().contains("sslrootcert"), "{e}");
}

#[tokio::test]
async fn every_connection_of_a_handle_is_encrypted_including_the_lease_connection() {
    let Some((dsn, cert)) = setup().await else {
        return;
    };
    let app = unique("tlsapp");
    let tls = dsn_on(
        &dsn,
        "localhost",
        &format!("sslmode=verify-full sslrootcert={cert} application_name={app}"),
    );
    let db = PostgresDatabase::connect(&tls, &options(4)).await.unwrap();
    let lease = db
        .acquire_lease(&unique("l"))
        .await
        .unwrap()
        .expect("lease");
    let rows = query(
        &db,
        "SELECT COUNT(*), COUNT(*) FILTER (WHERE s.ssl) FROM pg_stat_activity a \
         JOIN pg_stat_ssl s ON s.pid = a.pid WHERE a.application_name = $1",
        vec![Value::Text(app.clone())],
    )
    .await
    .unwrap();
    let (all, encrypted) = (int(&rows[0].values()[0]), int(&rows[0].values()[1]));
    assert!(all >= 2, "pool + lease connections seen: {all}");
    assert_eq!(all, encrypted, "every connection of {app} uses TLS");
    drop(lease);
    db.close().await.unwrap();
}
