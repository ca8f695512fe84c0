//! The store conformance suite against a real PostgreSQL server (`POWER_LOOP_TEST_PG_DSN`).
//! Each scenario runs under its own random table prefix, so it can share the database with other
//! suites; without the variable every scenario prints a skip reason and passes (or fails, with
//! `POWER_LOOP_REQUIRE_SERVERS=1`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use power_loop_store::backend::ConnectOptions;
use power_loop_store::conformance::support::pg_dsn;
use power_loop_store::db::Database;
use power_loop_store_postgres::PostgresDatabase;

async fn make_db() -> Option<Arc<dyn Database>> {
    let dsn = pg_dsn()?;
    let db = PostgresDatabase::connect(&dsn, &ConnectOptions::default())
        .await
        .expect("connecting to the test server");
    Some(Arc::new(db))
}

power_loop_store::store_conformance_suite!(make_db);
