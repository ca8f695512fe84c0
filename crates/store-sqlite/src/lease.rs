//! Cross-process leases: an OS file lock per lease name (file databases) or an in-process
//! registry (`:memory:` databases, which no other process can see).
//!
//! The file leases are cheap on the hot path: the directory is created once, an in-process
//! held-set refuses a second holder in this process without touching the file system, and up
//! to [`OPEN_FILE_CACHE`] lock files stay open (LRU) so re-acquiring a recently used lease is
//! one `flock` call (plus a `stat` that checks the path still names the locked file).
//! Cross-process exclusion is the OS lock, exactly as before.
//!
//! Loss mode: the lock lives in a file, so removing or replacing that file while a lease is held
//! lets the next opener create and lock a new file and take the lease over while the first
//! holder still runs. Fencing tokens make that safe (the first holder's writes are refused with
//! `session.lease_lost`), and a stale handle is never locked again here.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use power_loop_contracts::{Error, ErrorCode, Result};
use power_loop_store::db::{BoxFuture, Lease};

use crate::error::map_io;

/// Where leases of one database live.
#[derive(Debug, Clone)]
pub(crate) enum LeaseHost {
    /// Private in-memory database: a set of held names.
    Memory(Arc<Mutex<HashSet<String>>>),
    /// File database: the `<db>-leases/` directory.
    Dir(Arc<DirLeases>),
}

/// How many idle lock files a database keeps open.
const OPEN_FILE_CACHE: usize = 64;

/// The file leases of one database.
#[derive(Debug)]
pub(crate) struct DirLeases {
    dir: PathBuf,
    state: Mutex<DirState>,
}

#[derive(Debug, Default)]
struct DirState {
    dir_ready: bool,
    /// Names held by a lease of this process.
    held: HashSet<String>,
    /// Idle open lock files (not locked by us) with their last-use tick.
    idle: HashMap<String, (File, u64)>,
    tick: u64,
}

impl DirLeases {
    fn lock(&self) -> std::sync::MutexGuard<'_, DirState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn try_acquire(self: &Arc<Self>, name: &str) -> Result<Option<Box<dyn Lease>>> {
        let mut st = self.lock();
        if st.held.contains(name) {
            return Ok(None);
        }
        let path = self.dir.join(lock_file_name(name));
        let mut cached = st.idle.remove(name);
        // A lock file removed or replaced behind our back (the SQLite way of losing a lease: the
        // next opener creates and locks a new file) must not be locked again through a stale
        // handle: after locking, the path must still name the locked file, else reopen it.
        for _ in 0..3 {
            let file = match cached.take() {
                Some((f, _)) => f,
                None => {
                    if !st.dir_ready {
                        std::fs::create_dir_all(&self.dir)
                            .map_err(|e| map_io(e, "creating the lease directory", &self.dir))?;
                        st.dir_ready = true;
                    }
                    OpenOptions::new()
                        .read(true)
                        .write(true)
                        .create(true)
                        .truncate(false)
                        .open(&path)
                        .map_err(|e| map_io(e, "opening the lease file", &path))?
                }
            };
            match file.try_lock() {
                Ok(()) if is_file_at(&file, &path) => {
                    st.held.insert(name.to_owned());
                    return Ok(Some(Box::new(FileLease {
                        name: name.to_owned(),
                        file: Some(file),
                        host: Arc::clone(self),
                    })));
                }
                Ok(()) => {
                    // Stale handle: unlock (closing it does too) and open the path afresh.
                    let _ = file.unlock();
                }
                Err(TryLockError::WouldBlock) if is_file_at(&file, &path) => {
                    st.park(name, file);
                    return Ok(None);
                }
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(e)) => {
                    return Err(map_io(e, "locking the lease file", &path));
                }
            }
        }
        Err(Error::new(
            ErrorCode::StoreIo,
            format!(
                "sqlite: the lease file {} keeps being replaced while it is locked",
                path.display()
            ),
        ))
    }
}

/// Whether `path` still names the open `file` (same device and inode); `false` when the path
/// was removed or now names another file.
#[cfg(unix)]
fn is_file_at(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Without inode identity the path is trusted to name the file.
#[cfg(not(unix))]
fn is_file_at(_file: &File, path: &Path) -> bool {
    path.exists()
}

impl DirState {
    /// Keeps an unlocked lock file open for the next acquire, closing the least recently used
    /// beyond the bound.
    fn park(&mut self, name: &str, file: File) {
        self.tick += 1;
        let tick = self.tick;
        self.idle.insert(name.to_owned(), (file, tick));
        while self.idle.len() > OPEN_FILE_CACHE {
            let Some(oldest) = self
                .idle
                .iter()
                .min_by_key(|(_, (_, t))| *t)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            self.idle.remove(&oldest);
        }
    }
}

impl LeaseHost {
    /// The lease host of a database file (`<file>-leases/`).
    pub(crate) fn for_file(db_path: &Path) -> Self {
        let mut dir = db_path.as_os_str().to_owned();
        dir.push("-leases");
        LeaseHost::Dir(Arc::new(DirLeases {
            dir: PathBuf::from(dir),
            state: Mutex::new(DirState::default()),
        }))
    }

    /// Tries to take `name` without waiting.
    pub(crate) fn try_acquire(&self, name: &str) -> Result<Option<Box<dyn Lease>>> {
        if name.is_empty() {
            return Err(Error::invalid_argument("a lease name must not be empty"));
        }
        match self {
            LeaseHost::Memory(held) => {
                let mut set = held
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if !set.insert(name.to_owned()) {
                    return Ok(None);
                }
                Ok(Some(Box::new(MemoryLease {
                    name: name.to_owned(),
                    held: Arc::clone(held),
                })))
            }
            LeaseHost::Dir(d) => d.try_acquire(name),
        }
    }
}

/// FNV-1a 64: a hash that is the same in every process and build.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A file name for a lease: a readable, sanitized stem plus a hash of the exact name.
fn lock_file_name(name: &str) -> String {
    let stem: String = name
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{stem}-{:016x}.lock", fnv1a(name.as_bytes()))
}

/// A lease held through an OS lock on an open file; unlocking (or closing) the file releases
/// it. On release or drop the unlocked file goes back to the host's idle cache.
struct FileLease {
    name: String,
    file: Option<File>,
    host: Arc<DirLeases>,
}

impl FileLease {
    fn unlock(&mut self) -> Result<()> {
        let Some(file) = self.file.take() else {
            return Ok(());
        };
        let r = file.unlock();
        let mut st = self.host.lock();
        st.held.remove(&self.name);
        match r {
            Ok(()) => {
                st.park(&self.name, file);
                Ok(())
            }
            // Closing the file (dropping it here) releases the OS lock anyway.
            Err(e) => Err(Error::new(
                ErrorCode::StoreIo,
                format!("sqlite: releasing lease `{}` failed: {e}", self.name),
            )
            .with_source(e)),
        }
    }
}

impl Drop for FileLease {
    fn drop(&mut self) {
        let _ = self.unlock();
    }
}

impl Lease for FileLease {
    fn name(&self) -> &str {
        &self.name
    }

    fn release(mut self: Box<Self>) -> BoxFuture<'static, Result<()>> {
        let r = self.unlock();
        Box::pin(async move { r })
    }
}

/// A lease in the in-process registry of a `:memory:` database.
struct MemoryLease {
    name: String,
    held: Arc<Mutex<HashSet<String>>>,
}

impl Drop for MemoryLease {
    fn drop(&mut self) {
        let mut set = self
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        set.remove(&self.name);
    }
}

impl Lease for MemoryLease {
    fn name(&self) -> &str {
        &self.name
    }

    fn release(self: Box<Self>) -> BoxFuture<'static, Result<()>> {
        drop(self);
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_file_names_are_safe_and_distinct() {
        let a = lock_file_name("session:abc/../x");
        assert!(!a.contains('/') && !a.contains(':'));
        assert_ne!(lock_file_name("a/b"), lock_file_name("a_b"));
    }
}
