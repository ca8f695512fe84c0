//! Shared helpers for the PostgreSQL integration tests (the server DSN and skip rule come from
//! `power_loop_store::conformance::support::pg_dsn`).
#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicU32, Ordering};

use power_loop_store::backend::ConnectOptions;
use power_loop_store::db::{Database, Value};
use power_loop_store_postgres::PostgresDatabase;

/// A name unique to this process and call, usable as a table name or prefix.
pub fn unique(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "plt_{tag}_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        nanos % 100_000
    )
}

/// A short unique table prefix (store prefixes are limited to 24 characters).
pub fn short_prefix(tag: &str) -> String {
    let u = unique(tag);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in u.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("p{}{:010x}_", &tag[..tag.len().min(4)], h & 0xff_ffff_ffff)
}

pub fn options(pool: usize) -> ConnectOptions {
    let mut o = ConnectOptions::default();
    o.pool_max_size = pool;
    o.connect_timeout_ms = 5_000;
    o
}

pub async fn open(dsn: &str) -> PostgresDatabase {
    PostgresDatabase::connect(dsn, &options(4))
        .await
        .expect("connect to the test server")
}

/// One query in its own read transaction, and one statement in its own write transaction: the
/// port suite's helpers.
pub use power_loop_store::conformance::port::{exec, query};

/// One integer from a single-row, single-column query.
pub async fn scalar(db: &dyn Database, sql: &str, params: Vec<Value>) -> i64 {
    let rows = query(db, sql, params).await.expect("scalar query");
    match rows.first().map(|r| r.values()[0].clone()) {
        Some(Value::Int(v)) => v,
        other => panic!("expected one integer from {sql}, got {other:?}"),
    }
}

/// A key=value DSN for the same server as `dsn` with another user / database / port.
pub fn variant(
    dsn: &str,
    user: Option<&str>,
    password: Option<&str>,
    dbname: Option<&str>,
    port: Option<u16>,
) -> String {
    use std::str::FromStr;
    let cfg = tokio_postgres::Config::from_str(dsn).expect("test DSN parses");
    let host = match cfg.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "127.0.0.1".to_owned(),
    };
    let port = port
        .or_else(|| cfg.get_ports().first().copied())
        .unwrap_or(5432);
    let user = user
        .map(str::to_owned)
        .or_else(|| cfg.get_user().map(str::to_owned))
        .unwrap_or_else(|| "postgres".into());
    let dbname = dbname
        .map(str::to_owned)
        .or_else(|| cfg.get_dbname().map(str::to_owned))
        .unwrap_or_else(|| "postgres".into());
    let mut s = format!("host={host} port={port} user={user} dbname={dbname} connect_timeout=3");
    if let Some(p) = password.map(str::to_owned).or_else(|| {
        if user_is_same(&cfg, &user) {
            cfg.get_password()
                .map(|p| String::from_utf8_lossy(p).into_owned())
        } else {
            None
        }
    }) {
        s.push_str(&format!(" password={p}"));
    }
    s
}

fn user_is_same(cfg: &tokio_postgres::Config, user: &str) -> bool {
    cfg.get_user() == Some(user)
}

pub async fn drop_table(db: &dyn Database, table: &str) {
    let _ = exec(db, &format!("DROP TABLE IF EXISTS {table}"), vec![]).await;
}
