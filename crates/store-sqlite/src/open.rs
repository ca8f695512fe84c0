//! Opening a connection: path checks that never touch a foreign file, then the PRAGMAs.
//!
//! POSIX record locks belong to a process and a file, not to a descriptor: closing *any*
//! descriptor of the database file drops every lock the process holds on it, including the
//! `SHARED` lock a WAL connection keeps on the database file for as long as it is open. The header
//! check below reads the file through its own descriptor, so it runs only while no connection of
//! this process has that file open ([`LiveFile`]); otherwise another process closing its
//! connection believes it is the last one, checkpoints and deletes the `-wal` and `-shm` files
//! under our open connections (see docs/storage.md, "Out-of-band schema changes").

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use power_loop_contracts::{Error, ErrorCode, Result};
use power_loop_store::backend::{ConnectOptions, SqliteSync};
use rusqlite::{Connection, OpenFlags};

use crate::error::{map_io, map_sqlite};

/// Prepared-statement cache capacity of every connection.
pub(crate) const STATEMENT_CACHE_CAPACITY: usize = 256;

/// The 16 magic bytes every SQLite 3 database file starts with.
const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// Where a connection points.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// A private in-memory database.
    Memory,
    /// A database file.
    File(PathBuf),
}

fn corrupt(path: &Path, what: &str) -> Error {
    Error::new(
        ErrorCode::StoreCorrupt,
        format!(
            "sqlite: `{}` {what}; the store left the file untouched. Restore it from a backup, \
             move it away, or point the store at a different path",
            path.display()
        ),
    )
    .with_detail("path", path.display().to_string())
}

/// Whether a non-empty write-ahead log sits next to `path`.
fn wal_has_content(path: &Path) -> bool {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    std::fs::metadata(PathBuf::from(wal))
        .map(|m| m.len() > 0)
        .unwrap_or(false)
}

/// Checks an existing file's header before SQLite opens it, so that a foreign or truncated file is
/// reported (`store.corrupt`) instead of being written to.
fn check_existing_file(path: &Path, len: u64) -> Result<()> {
    if len == 0 {
        // SQLite treats an empty file as a new, empty database.
        return Ok(());
    }
    let mut header = Vec::with_capacity(100);
    std::fs::File::open(path)
        .and_then(|f| f.take(100).read_to_end(&mut header))
        .map_err(|e| map_io(e, "reading the header of", path))?;
    if !header.starts_with(SQLITE_MAGIC) {
        if SQLITE_MAGIC.starts_with(&header) {
            return Err(corrupt(
                path,
                "is truncated (it ends inside the SQLite header)",
            ));
        }
        return Err(corrupt(
            path,
            "is not a SQLite database (its first bytes are not the SQLite header)",
        ));
    }
    if header.len() < 100 {
        return Err(corrupt(
            path,
            "is truncated (it ends inside the 100-byte SQLite header)",
        ));
    }
    let be32 = |at: usize| {
        u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let raw_page = u32::from(u16::from_be_bytes([header[16], header[17]]));
    let page_size = if raw_page == 1 { 65_536 } else { raw_page };
    if !(512..=65_536).contains(&page_size) || !page_size.is_power_of_two() {
        return Err(corrupt(
            path,
            "has a damaged SQLite header (invalid page size)",
        ));
    }
    if wal_has_content(path) {
        // The write-ahead log may hold pages the main file does not have yet; SQLite recovers them.
        return Ok(());
    }
    let (change_counter, pages, valid_for) = (be32(24), be32(28), be32(92));
    let expected = if pages > 0 && valid_for == change_counter {
        u64::from(pages) * u64::from(page_size)
    } else {
        u64::from(page_size)
    };
    if len < expected {
        return Err(corrupt(
            path,
            &format!("is truncated (the header describes {expected} bytes but the file has {len})"),
        ));
    }
    Ok(())
}

/// What identifies a database file within this process: its device and inode, so two paths to
/// one file are one key.
type FileKey = (u64, u64);

#[cfg(unix)]
fn file_key(path: &Path) -> Option<FileKey> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Elsewhere closing a handle does not release another handle's locks: no file is tracked, and
/// the header is always checked.
#[cfg(not(unix))]
fn file_key(_path: &Path) -> Option<FileKey> {
    None
}

/// The database files this process has open through SQLite, with how many connections each.
static LIVE_FILES: Mutex<BTreeMap<FileKey, usize>> = Mutex::new(BTreeMap::new());

fn live_files() -> std::sync::MutexGuard<'static, BTreeMap<FileKey, usize>> {
    LIVE_FILES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// One open connection's entry in the process-wide set of open database files; removed when
/// dropped, which must happen after the connection is closed.
#[derive(Debug)]
pub(crate) struct LiveFile {
    key: FileKey,
}

impl Drop for LiveFile {
    fn drop(&mut self) {
        let mut live = live_files();
        if let Some(n) = live.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                live.remove(&self.key);
            }
        }
    }
}

/// An open connection and, for a file database, its [`LiveFile`] entry. The fields drop in
/// order: the connection is closed before the entry goes away.
#[derive(Debug)]
pub(crate) struct Opened {
    /// The configured connection.
    pub(crate) conn: Connection,
    /// The entry of a file database (`None` in memory).
    _live: Option<LiveFile>,
}

/// Prepares the file location: refuses directories and damaged files, creates missing parents.
///
/// `check_header` is false when a connection of this process already has the file open: the
/// header was checked when that one opened, and reading it again through a new descriptor would
/// drop that connection's locks (see the module docs).
fn prepare_path(path: &Path, check_header: bool) -> Result<()> {
    if path.as_os_str().is_empty() {
        return Err(Error::new(
            ErrorCode::StoreDsnInvalid,
            "sqlite: the database path is empty; give a file path or `:memory:`",
        ));
    }
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Err(Error::new(
            ErrorCode::StoreIo,
            format!(
                "sqlite: `{}` is a directory, not a database file; point the store at a file inside it",
                path.display()
            ),
        )
        .with_detail("path", path.display().to_string())),
        Ok(m) if check_header => check_existing_file(path, m.len()),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)
                    .map_err(|e| map_io(e, "creating the parent directory of", path))?;
            }
            Ok(())
        }
        Err(e) => Err(map_io(e, "inspecting", path)),
    }
}

fn pragma(conn: &Connection, name: &str, value: &str, path: &str) -> Result<()> {
    conn.pragma_update(None, name, value)
        .map_err(|e| map_sqlite(e, &format!("setting PRAGMA {name}={value} on `{path}`")))
}

/// Opens `path` with SQLite: checks the location (and the header unless this process already has
/// the file open), opens it, and records it in the process-wide set of open files, all under
/// that set's lock, so no other open in this process reads the header while a connection is
/// being opened.
fn open_file(path: &Path) -> Result<Opened> {
    let shown = path.display().to_string();
    let mut live = live_files();
    let open_here = file_key(path).is_some_and(|k| live.contains_key(&k));
    prepare_path(path, !open_here)?;
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| {
        map_sqlite(e, &format!("opening `{shown}`")).with_detail("path", shown.clone())
    })?;
    // SQLite created a missing file when it opened it, so the key exists now.
    let entry = file_key(path).map(|key| {
        *live.entry(key).or_insert(0) += 1;
        LiveFile { key }
    });
    Ok(Opened { conn, _live: entry })
}

/// Opens and configures one connection for `target`.
pub(crate) fn open_connection(target: &Target, options: &ConnectOptions) -> Result<Opened> {
    let busy = Duration::from_millis(options.sqlite_busy_timeout_ms);
    match target {
        Target::Memory => {
            let conn = Connection::open_in_memory()
                .map_err(|e| map_sqlite(e, "opening an in-memory database"))?;
            conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
            conn.busy_timeout(busy)
                .map_err(|e| map_sqlite(e, "setting busy_timeout"))?;
            pragma(&conn, "auto_vacuum", "INCREMENTAL", ":memory:")?;
            pragma(&conn, "foreign_keys", "ON", ":memory:")?;
            Ok(Opened { conn, _live: None })
        }
        Target::File(path) => {
            let opened = open_file(path)?;
            let conn = &opened.conn;
            let shown = path.display().to_string();
            conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
            // The busy timeout goes first: it writes nothing, and lets the PRAGMAs below wait for
            // another process that is opening the same file.
            conn.busy_timeout(busy)
                .map_err(|e| map_sqlite(e, "setting busy_timeout"))?;
            // Read the schema before anything writes: a damaged file fails here, untouched.
            let objects = conn
                .query_row("SELECT count(*) FROM sqlite_master", [], |r| {
                    r.get::<_, i64>(0)
                })
                .map_err(|e| {
                    let err = map_sqlite(e, &format!("reading the schema of `{shown}`"));
                    if err.code() == ErrorCode::StoreCorrupt {
                        corrupt(path, "is not a readable SQLite database").with_source(err)
                    } else {
                        err.with_detail("path", shown.clone())
                    }
                })?;
            if objects == 0 {
                // Only a database without tables takes the mode (on any other, setting it opens a
                // write transaction that rewrites the header on every open). It must precede
                // journal_mode=WAL: WAL initializes a fresh file's header, after which
                // auto_vacuum can no longer change without a VACUUM.
                pragma(conn, "auto_vacuum", "INCREMENTAL", &shown)?;
            }
            let mode: String = conn
                .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
                .map_err(|e| map_sqlite(e, &format!("enabling WAL on `{shown}`")))?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(Error::new(
                    ErrorCode::StoreIo,
                    format!(
                        "sqlite: `{shown}` could not switch to WAL journaling (got `{mode}`); \
                         put the database on a local file system"
                    ),
                ));
            }
            let sync = match options.sqlite_sync {
                SqliteSync::Full => "FULL",
                SqliteSync::Normal => "NORMAL",
            };
            pragma(conn, "synchronous", sync, &shown)?;
            pragma(conn, "foreign_keys", "ON", &shown)?;
            Ok(opened)
        }
    }
}
