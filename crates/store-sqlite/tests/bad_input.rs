//! Bad input at open: typed errors, and the original file is never modified.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use power_loop_contracts::ErrorCode;
use power_loop_store::backend::ConnectOptions;
use power_loop_store::db::{Database, Transaction, TxBody, TxMode};
use power_loop_store_sqlite::SqliteDatabase;

fn body(
    f: impl FnOnce(&mut dyn Transaction) -> power_loop_contracts::Result<()> + Send + 'static,
) -> TxBody {
    Box::new(f)
}

async fn open(path: &Path) -> power_loop_contracts::Result<SqliteDatabase> {
    SqliteDatabase::open_file(path, &ConnectOptions::default()).await
}

fn siblings_absent(path: &Path) {
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        assert!(
            !Path::new(&p).exists(),
            "{suffix} file must not be created next to a refused file"
        );
    }
}

/// A real database file with some data in it, closed.
async fn make_db(path: &Path) -> Vec<u8> {
    let db = open(path).await.unwrap();
    db.transact(
        TxMode::Write,
        body(|t| {
            t.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)", &[])?;
            for i in 0..400 {
                t.execute(
                    "INSERT INTO t (k, v) VALUES (?, ?)",
                    &[i.into(), "x".repeat(1000).into()],
                )?;
            }
            Ok(())
        }),
    )
    .await
    .unwrap();
    db.close().await.unwrap();
    std::fs::read(path).unwrap()
}

#[tokio::test]
async fn non_sqlite_file_is_refused_and_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    let original: Vec<u8> = b"these are my important notes, not a database\n".repeat(200);
    std::fs::write(&path, &original).unwrap();
    let err = open(&path).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::StoreCorrupt);
    assert!(
        err.message().contains(&path.display().to_string()),
        "{}",
        err.message()
    );
    assert!(
        err.message().contains("not a SQLite database"),
        "{}",
        err.message()
    );
    assert!(err.message().contains("untouched"), "{}", err.message());
    assert_eq!(std::fs::read(&path).unwrap(), original);
    siblings_absent(&path);

    // Short garbage too.
    std::fs::write(&path, b"hi").unwrap();
    assert_eq!(
        open(&path).await.unwrap_err().code(),
        ErrorCode::StoreCorrupt
    );
    assert_eq!(std::fs::read(&path).unwrap(), b"hi");
}

#[tokio::test]
async fn truncated_database_is_refused_and_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.db");
    let full = make_db(&path).await;
    assert!(full.len() > 100_000);
    for cut in [full.len() / 2, 4096, 60, 10] {
        let truncated = full[..cut].to_vec();
        std::fs::write(&path, &truncated).unwrap();
        let err = open(&path).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::StoreCorrupt, "cut at {cut}: {err:?}");
        assert!(err.message().contains("truncated"), "{}", err.message());
        assert!(err.message().contains(&path.display().to_string()));
        assert_eq!(
            std::fs::read(&path).unwrap(),
            truncated,
            "cut at {cut}: bytes unchanged"
        );
        siblings_absent(&path);
    }
    // The intact file opens again.
    std::fs::write(&path, &full).unwrap();
    let db = open(&path).await.unwrap();
    db.close().await.unwrap();
}

#[tokio::test]
async fn damaged_header_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data.db");
    let mut bytes = make_db(&path).await;
    bytes[16] = 0x03; // page size 0x0310: not a power of two
    std::fs::write(&path, &bytes).unwrap();
    let err = open(&path).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::StoreCorrupt);
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
}

#[tokio::test]
async fn empty_file_is_a_new_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.db");
    std::fs::write(&path, b"").unwrap();
    let db = open(&path).await.unwrap();
    db.transact(
        TxMode::Write,
        body(|t| t.execute("CREATE TABLE t (x INTEGER)", &[]).map(drop)),
    )
    .await
    .unwrap();
    db.close().await.unwrap();
}

#[tokio::test]
async fn directory_path_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = open(dir.path()).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::StoreIo);
    assert!(err.message().contains("directory"), "{}", err.message());
}

#[tokio::test]
async fn path_below_a_regular_file_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain.txt");
    std::fs::write(&file, b"keep me").unwrap();
    let err = open(&file.join("sub/x.db")).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::StoreIo, "{err:?}");
    assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
}

#[tokio::test]
async fn read_only_location_is_permission_denied() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let ro = dir.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
    // Root ignores directory permissions: detect that and use a location no one may write.
    let probe = ro.join("probe");
    let root = std::fs::write(&probe, b"").is_ok();
    let target = if root {
        let _ = std::fs::remove_file(&probe);
        eprintln!("running as root: using /proc (read-only for everyone) instead of a 0555 dir");
        std::path::PathBuf::from("/proc/power-loop-test/x.db")
    } else {
        ro.join("new/x.db")
    };
    let err = open(&target).await.unwrap_err();
    assert!(
        matches!(
            err.code(),
            ErrorCode::StorePermissionDenied | ErrorCode::StoreIo
        ),
        "{err:?}"
    );
    if !root {
        assert_eq!(err.code(), ErrorCode::StorePermissionDenied);
    }
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
}
