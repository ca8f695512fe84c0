//! The store conformance suite against a real MySQL/MariaDB server (`POWER_LOOP_TEST_MYSQL_DSN`).
//! Each scenario runs under its own random table prefix, so it can share the database with other
//! suites; without the variable every scenario prints a skip reason and passes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use power_loop_store::backend::ConnectOptions;
use power_loop_store::db::Database;
use power_loop_store_mysql::MySqlDatabase;

async fn make_db() -> Option<Arc<dyn Database>> {
    let dsn = match std::env::var("POWER_LOOP_TEST_MYSQL_DSN") {
        Ok(v) if !v.trim().is_empty() => v,
        _ => {
            assert!(
                std::env::var("POWER_LOOP_REQUIRE_SERVERS").as_deref() != Ok("1"),
                "POWER_LOOP_TEST_MYSQL_DSN is not set but POWER_LOOP_REQUIRE_SERVERS=1: the server suite must run, not skip"
            );
            eprintln!(
                "skipped: POWER_LOOP_TEST_MYSQL_DSN is not set (e.g. mysql://root@127.0.0.1:3306/test)"
            );
            return None;
        }
    };
    let db = MySqlDatabase::connect(&dsn, &ConnectOptions::default())
        .await
        .expect("connecting to the test server");
    Some(Arc::new(db))
}

power_loop_store::store_conformance_suite!(make_db);
