//! Real TLS against a TLS-only MariaDB instance started by `scripts/tls.sh up` (127.0.0.1:3307,
//! `require_secure_transport = ON`, a generated CA at `~/.cache/power-loop-tls/mariadb/ca.pem`,
//! a server certificate for IP 127.0.0.1 only), and refusal against the plain test server.
//!
//! Overrides: `POWER_LOOP_TEST_MYSQL_TLS_DSN` (no query string), `POWER_LOOP_TEST_MYSQL_TLS_CA`.
//! Without the instance the tests skip with a reason, unless `POWER_LOOP_REQUIRE_PEERS=1`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use power_loop_contracts::ErrorCode;
use power_loop_store::backend::ConnectOptions;
use power_loop_store::conformance::support::mysql_dsn;
use power_loop_store::db::{Database, TxMode, Value};
use power_loop_store_mysql::MySqlDatabase;

fn options() -> ConnectOptions {
    let mut o = ConnectOptions::default();
    o.pool_max_size = 2;
    o.connect_timeout_ms = 5_000;
    o
}

fn skip(reason: &str) {
    assert!(
        std::env::var("POWER_LOOP_REQUIRE_PEERS").as_deref() != Ok("1"),
        "peer missing with POWER_LOOP_REQUIRE_PEERS=1: {reason}"
    );
    eprintln!("SKIP: {reason}");
}

/// (DSN without query, CA file) of the TLS instance, when it is up.
async fn tls_instance() -> Option<(String, String)> {
    let dsn = std::env::var("POWER_LOOP_TEST_MYSQL_TLS_DSN")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3307/test".to_owned());
    let ca = std::env::var("POWER_LOOP_TEST_MYSQL_TLS_CA").unwrap_or_else(|_| {
        format!(
            "{}/.cache/power-loop-tls/mariadb/ca.pem",
            std::env::var("HOME").unwrap_or_default()
        )
    });
    if !std::path::Path::new(&ca).is_file() {
        skip(&format!("no CA at {ca} (run scripts/tls.sh up)"));
        return None;
    }
    let probe = format!("{dsn}?require_ssl=true&verify_ca=false");
    match MySqlDatabase::connect(&probe, &options()).await {
        Ok(db) => {
            db.close().await.unwrap();
            Some((dsn, ca))
        }
        Err(e) => {
            skip(&format!(
                "the TLS MariaDB instance at {dsn} is not up ({e}); run scripts/tls.sh up"
            ));
            None
        }
    }
}

/// The session's TLS version as the server sees it (`""` for plain text).
async fn server_ssl_version(db: &MySqlDatabase) -> String {
    let out = Arc::new(Mutex::new(String::new()));
    let o = Arc::clone(&out);
    db.transact(
        TxMode::Read,
        Box::new(move |tx| {
            let rows = tx.fetch_all(
                "SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS \
                 WHERE VARIABLE_NAME = 'SSL_VERSION'",
                &[],
            )?;
            if let Some(Value::Text(v)) = rows.first().map(|r| r.values()[0].clone()) {
                *o.lock().unwrap() = v;
            }
            Ok(())
        }),
    )
    .await
    .unwrap();
    out.lock().unwrap().clone()
}

#[tokio::test]
async fn require_ssl_with_a_ca_file_is_verified_tls() {
    let Some((dsn, ca)) = tls_instance().await else {
        return;
    };
    for q in [
        format!("require_ssl=true&ssl_ca={ca}"),
        format!("require_ssl=true&verify_ca=true&verify_identity=true&ssl_ca={ca}"),
        "require_ssl=true&verify_ca=false".to_owned(),
    ] {
        let db = MySqlDatabase::connect(&format!("{dsn}?{q}"), &options())
            .await
            .unwrap_or_else(|e| panic!("{q}: {e}"));
        let v = server_ssl_version(&db).await;
        assert!(
            v.starts_with("TLSv1."),
            "{q}: server sees Ssl_version `{v}`"
        );
        // The lease connections go through the same options: the server (which refuses plain
        // text) accepting one proves they are encrypted too.
        let lease = db.acquire_lease("tls-lease").await.unwrap();
        assert!(lease.is_some(), "{q}: lease");
        drop(lease);
        db.close().await.unwrap();
    }
}

#[tokio::test]
async fn verification_failures_are_refused() {
    let Some((dsn, ca)) = tls_instance().await else {
        return;
    };
    // The certificate names 127.0.0.1 only.
    let by_name = dsn.replace("127.0.0.1", "localhost");
    let e = MySqlDatabase::connect(
        &format!("{by_name}?require_ssl=true&ssl_ca={ca}"),
        &options(),
    )
    .await
    .unwrap_err();
    assert_ne!(e.code(), ErrorCode::StoreDsnInvalid, "{e}");
    // ... which verify_ca=false (no verification at all) accepts.
    let db = MySqlDatabase::connect(
        &format!("{by_name}?require_ssl=true&verify_ca=false"),
        &options(),
    )
    .await
    .unwrap();
    assert!(server_ssl_version(&db).await.starts_with("TLSv1."));
    db.close().await.unwrap();
    // The built-in (Mozilla) roots did not sign the test CA.
    let e = MySqlDatabase::connect(&format!("{dsn}?require_ssl=true"), &options())
        .await
        .unwrap_err();
    assert_ne!(e.code(), ErrorCode::StoreDsnInvalid, "{e}");
    // A missing CA file is a DSN problem, named.
    let e = MySqlDatabase::connect(
        &format!("{dsn}?require_ssl=true&ssl_ca=/nonexistent/ca.pem"),
        &options(),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), ErrorCode::StoreDsnInvalid, "{e}");
    assert!(e.message().contains("ssl_ca"), "{e}");
}

#[tokio::test]
async fn the_tls_only_server_refuses_plain_text() {
    let Some((dsn, _ca)) = tls_instance().await else {
        return;
    };
    let e = MySqlDatabase::connect(&dsn, &options()).await.unwrap_err();
    assert_ne!(e.code(), ErrorCode::StoreDsnInvalid, "{e}");
}

#[tokio::test]
async fn require_ssl_is_refused_by_a_server_without_tls() {
    let Some(plain) = mysql_dsn() else {
        return;
    };
    let sep = if plain.contains('?') { '&' } else { '?' };
    // The plain server has TLS disabled: require_ssl must fail, not connect in plain text.
    match MySqlDatabase::connect(
        &format!("{plain}{sep}require_ssl=true&verify_ca=false"),
        &options(),
    )
    .await
    {
        Err(e) => assert_ne!(e.code(), ErrorCode::StoreDsnInvalid, "{e}"),
        Ok(db) => {
            let v = server_ssl_version(&db).await;
            assert!(
                v.starts_with("TLSv1."),
                "require_ssl connected, so it must be TLS; server sees `{v}`"
            );
        }
    }
}
