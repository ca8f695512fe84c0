//! Shared helpers for the MySQL integration tests (the server DSN and skip rule come from
//! `power_loop_store::conformance::support::mysql_dsn`).
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};

use power_loop_store::backend::ConnectOptions;
use power_loop_store::db::{Database, TxMode, Value};
use power_loop_store_mysql::{MySqlDatabase, MySqlUrl};

/// A table prefix unique to this process and call.
pub fn prefix(tag: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!("t{}{}_{n}_", tag, std::process::id() % 100_000)
}

pub async fn connect(dsn: &str) -> MySqlDatabase {
    MySqlDatabase::connect(dsn, &ConnectOptions::default())
        .await
        .expect("connect")
}

/// Runs one statement in its own transaction.
pub async fn exec(db: &dyn Database, sql: &str, params: Vec<Value>) -> u64 {
    let sql = sql.to_owned();
    let out = std::sync::Arc::new(std::sync::Mutex::new(0));
    let o = out.clone();
    db.transact(
        TxMode::Write,
        Box::new(move |tx| {
            *o.lock().unwrap() = tx.execute(&sql, &params)?;
            Ok(())
        }),
    )
    .await
    .expect("exec");
    *out.lock().unwrap()
}

/// Drops every table whose name starts with `prefix`.
pub async fn drop_prefixed(db: &MySqlDatabase, prefix: &str) {
    let rows = db
        .fetch_all(
            "SELECT table_name AS t FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name LIKE CONCAT(?, '%')",
            &[Value::Text(prefix.replace('_', "\\_"))],
        )
        .await
        .unwrap_or_default();
    for r in rows {
        let t = r.text("t").unwrap();
        let _ = db.execute(&format!("DROP TABLE IF EXISTS {t}"), &[]).await;
    }
}

/// The test DSN with its user, password, database or port replaced.
pub fn dsn_variant(
    dsn: &str,
    user: Option<&str>,
    pass: Option<&str>,
    db: Option<&str>,
    port: Option<u16>,
) -> String {
    let u = MySqlUrl::parse(dsn).unwrap();
    let user = user.map(str::to_owned).or(u.user).unwrap_or_default();
    let pass = pass.map(str::to_owned).or(u.password);
    let db = db.map(str::to_owned).or(u.database).unwrap_or_default();
    let port = port.unwrap_or(u.port);
    let host = if u.host.contains(':') {
        format!("[{}]", u.host)
    } else {
        u.host
    };
    match pass {
        Some(p) => format!("mysql://{user}:{p}@{host}:{port}/{db}"),
        None => format!("mysql://{user}@{host}:{port}/{db}"),
    }
}

/// Creates (or resets, when a concurrent run made it) the login `pl_test_ro` with password
/// `ro_pw` and only SELECT on the test database, for every host form; returns its DSN.
pub async fn read_only_user(admin: &MySqlDatabase, dsn: &str) -> String {
    let database = MySqlUrl::parse(dsn)
        .unwrap()
        .database
        .unwrap_or_else(|| "test".into());
    for host in ["%", "localhost", "127.0.0.1"] {
        for sql in [
            format!("CREATE USER IF NOT EXISTS 'pl_test_ro'@'{host}' IDENTIFIED BY 'ro_pw'"),
            format!("ALTER USER 'pl_test_ro'@'{host}' IDENTIFIED BY 'ro_pw'"),
            format!("GRANT SELECT ON `{database}`.* TO 'pl_test_ro'@'{host}'"),
        ] {
            admin.execute(&sql, &[]).await.unwrap();
        }
    }
    dsn_variant(dsn, Some("pl_test_ro"), Some("ro_pw"), None, None)
}
