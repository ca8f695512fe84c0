//! The conformance suite against the SQLite backend (file databases with WAL, and in-memory),
//! run from the store crate itself so the core is checked as soon as it changes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use power_loop_store::ConnectOptions;
use power_loop_store::db::Database;
use power_loop_store_sqlite::SqliteDatabase;

static NEXT: AtomicU64 = AtomicU64::new(0);

async fn make_db() -> Arc<dyn Database> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!(
        "pl-store-conf-{}-{nanos}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    Arc::new(
        SqliteDatabase::open_file(dir.join("conf.db"), &ConnectOptions::default())
            .await
            .unwrap(),
    )
}

power_loop_store::store_conformance_suite!(make_db);

mod memory {
    use super::*;

    async fn make_mem_db() -> Arc<dyn Database> {
        Arc::new(
            SqliteDatabase::open_memory(&ConnectOptions::default())
                .await
                .unwrap(),
        )
    }

    power_loop_store::store_conformance_suite!(make_mem_db);
}
