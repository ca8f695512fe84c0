//! The store's backend-neutral conformance suite on this backend: a WAL file database, an
//! in-memory database, and a file database with `synchronous=FULL`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use power_loop_store::backend::{ConnectOptions, SqliteSync};
use power_loop_store::db::Database;
use power_loop_store_sqlite::SqliteDatabase;

static NEXT: AtomicU64 = AtomicU64::new(0);

/// A fresh file path under cargo's per-target scratch directory.
fn fresh_path() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("store-sqlite-conformance-{}", std::process::id()));
    dir.join(format!(
        "db-{}.sqlite",
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

async fn file_db() -> Arc<dyn Database> {
    Arc::new(
        SqliteDatabase::open_file(fresh_path(), &ConnectOptions::default())
            .await
            .unwrap(),
    )
}

power_loop_store::store_conformance_suite!(file_db);

mod memory {
    use super::*;

    async fn memory_db() -> Arc<dyn Database> {
        Arc::new(
            SqliteDatabase::open_memory(&ConnectOptions::default())
                .await
                .unwrap(),
        )
    }

    power_loop_store::store_conformance_suite!(memory_db);
}

mod sync_full {
    use super::*;

    async fn full_db() -> Arc<dyn Database> {
        let mut opts = ConnectOptions::default();
        opts.sqlite_sync = SqliteSync::Full;
        Arc::new(
            SqliteDatabase::open_file(fresh_path(), &opts)
                .await
                .unwrap(),
        )
    }

    power_loop_store::store_conformance_suite!(full_db);
}
