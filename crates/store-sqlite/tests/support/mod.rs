//! Helpers shared by the SQLite backend's integration tests: the on-disk footprint of a database
//! and a store opened on a file.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;

use power_loop_store::backend::ConnectOptions;
use power_loop_store::db::Database;
use power_loop_store::{SessionStore, StoreOptions};
use power_loop_store_sqlite::SqliteDatabase;

/// Size of the database file plus its write-ahead log.
pub(crate) fn footprint(path: &Path) -> u64 {
    let main = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    main + std::fs::metadata(Path::new(&wal))
        .map(|m| m.len())
        .unwrap_or(0)
}

/// A store (default options, schema created) on the SQLite file at `path`.
pub(crate) async fn open_store(path: &Path) -> SessionStore {
    let db: Arc<dyn Database> = Arc::new(
        SqliteDatabase::open_file(path, &ConnectOptions::default())
            .await
            .unwrap(),
    );
    SessionStore::open_database(db, &StoreOptions::new())
        .await
        .unwrap()
}
