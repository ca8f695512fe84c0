//! The store conformance suite against a real MySQL/MariaDB server (`POWER_LOOP_TEST_MYSQL_DSN`).
//! Each scenario runs under its own random table prefix, so it can share the database with other
//! suites; without the variable every scenario prints a skip reason and passes (or fails, with
//! `POWER_LOOP_REQUIRE_SERVERS=1`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use power_loop_store::conformance::support::mysql_dsn;
use power_loop_store::db::Database;

async fn make_db() -> Option<Arc<dyn Database>> {
    let dsn = mysql_dsn()?;
    let db = common::connect(&dsn).await;
    Some(Arc::new(db))
}

power_loop_store::store_conformance_suite!(make_db);
