//! Race-free file access confined to an allowed root (the workspace, an allowlisted `@home/`
//! directory, or the skills directory).
//!
//! [`crate::paths::locate`] decides which root a path argument belongs to and where under it;
//! this module then resolves and opens it in one step relative to a handle on that root
//! ([`beneath`]), so a symlink swapped in between the check and the use cannot redirect the
//! access outside. Only regular files and directories are served: FIFOs, sockets and devices are
//! refused on the open handle (opened with `O_NONBLOCK`, so opening a FIFO cannot block).
//! Writes go to a temporary file beneath the same directory handle and are renamed over the
//! target ([`ops::write_atomic`]), with the file flushed to disk before the rename and the
//! directory after it, so the write is also crash-durable; a target with more than one hard
//! link is refused. The blocking
//! system calls run on tokio's blocking pool behind a timeout and the call's cancellation
//! ([`blocking::run_blocking`]). `glob` and `grep` walk trees through directory handles
//! ([`tree::walk`]), never reopening a directory by path.

pub(crate) mod beneath;
pub(crate) mod blocking;
pub(crate) mod fault;
pub(crate) mod ops;
pub(crate) mod tree;

pub(crate) use fault::FsFault;
pub(crate) use ops::Stamp;
