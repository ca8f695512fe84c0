//! Cross-process leases: an OS file lock per lease name (file databases) or an in-process
//! registry (`:memory:` databases, which no other process can see).

use std::collections::HashSet;
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
    Dir(PathBuf),
}

impl LeaseHost {
    /// The lease host of a database file (`<file>-leases/`).
    pub(crate) fn for_file(db_path: &Path) -> Self {
        let mut dir = db_path.as_os_str().to_owned();
        dir.push("-leases");
        LeaseHost::Dir(PathBuf::from(dir))
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
            LeaseHost::Dir(dir) => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| map_io(e, "creating the lease directory", dir))?;
                let path = dir.join(lock_file_name(name));
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(&path)
                    .map_err(|e| map_io(e, "opening the lease file", &path))?;
                match file.try_lock() {
                    Ok(()) => Ok(Some(Box::new(FileLease {
                        name: name.to_owned(),
                        file,
                    }))),
                    Err(TryLockError::WouldBlock) => Ok(None),
                    Err(TryLockError::Error(e)) => Err(map_io(e, "locking the lease file", &path)),
                }
            }
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

/// A lease held through an OS lock on an open file; closing the file releases it.
struct FileLease {
    name: String,
    file: File,
}

impl Lease for FileLease {
    fn name(&self) -> &str {
        &self.name
    }

    fn release(self: Box<Self>) -> BoxFuture<'static, Result<()>> {
        let r = self.file.unlock().map_err(|e| {
            Error::new(
                ErrorCode::StoreIo,
                format!("sqlite: releasing lease `{}` failed: {e}", self.name),
            )
            .with_source(e)
        });
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
