//! The confined file operations the tools use: open (regular files and directories only),
//! read with a cap, list a directory, and write atomically.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path};

use power_loop_contracts::Result;
use rustix::fs::{
    AtFlags, Dir, FileType, Mode, OFlags, Stat, fstat, mkdirat, openat, renameat, statat, unlinkat,
};
use rustix::io::Errno;

use super::beneath::open_beneath;
use super::fault::{FsFault, errno_error};
use crate::paths::{Located, io_why};

/// Flags for opening something to read: never blocks on a FIFO, never becomes a controlling tty.
const READ_FLAGS: OFlags = OFlags::RDONLY.union(OFlags::NONBLOCK).union(OFlags::NOCTTY);
/// Flags for opening a directory handle.
const DIR_FLAGS: OFlags = OFlags::RDONLY.union(OFlags::DIRECTORY);

/// (modification time, size) of a file, taken from its open handle: the read stamp that
/// guards overwrites.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stamp {
    mtime_ns: i128,
    size: u64,
}

impl Stamp {
    /// The stamp of a `stat` result.
    pub(crate) fn of(st: &Stat) -> Stamp {
        Stamp {
            mtime_ns: i128::from(st.st_mtime) * 1_000_000_000 + i128::from(st.st_mtime_nsec),
            size: u64::try_from(st.st_size).unwrap_or(0),
        }
    }

    /// The size in bytes.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// The modification time, in nanoseconds since the Unix epoch.
    pub(crate) fn mtime_ns(&self) -> i128 {
        self.mtime_ns
    }
}

/// An opened path: a regular file or a directory (nothing else is ever returned).
pub(crate) enum Node {
    /// A regular file, with its stamp.
    File(std::fs::File, Stamp),
    /// A directory handle.
    Dir(OwnedFd),
}

/// Opens the root of `loc`; with `create`, an allowlisted home directory (`.cache`, `logs`)
/// that does not exist yet is created first.
fn open_root(loc: &Located, create: bool) -> Result<OwnedFd> {
    let flags = DIR_FLAGS | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    match rustix::fs::open(&loc.root, flags, Mode::empty()) {
        Ok(fd) => Ok(fd),
        Err(Errno::NOENT) if create && loc.creatable_root => {
            let (Some(parent), Some(name)) = (loc.root.parent(), loc.root.file_name()) else {
                return Err(errno_error(Errno::NOENT, "open", &loc.display));
            };
            let pfd = rustix::fs::open(parent, flags, Mode::empty())
                .map_err(|e| errno_error(e, "open", &loc.display))?;
            match mkdirat(&pfd, name, Mode::from_raw_mode(0o777)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(errno_error(e, "create the directory of", &loc.display)),
            }
            openat(&pfd, name, flags, Mode::empty())
                .map_err(|e| errno_error(e, "open", &loc.display))
        }
        Err(e) => Err(errno_error(e, "open", &loc.display)),
    }
}

/// Opens `loc` for reading beneath its root and checks what the handle is.
pub(crate) fn open_node(loc: &Located) -> Result<Node> {
    let root = open_root(loc, false)?;
    let fd = open_beneath(root.as_fd(), &loc.root, &loc.rel, READ_FLAGS)
        .map_err(|e| errno_error(e, "open", &loc.display))?;
    classify(fd, &loc.display)
}

/// Opens the file at `rel` beneath an already open root (used by walkers such as `grep`);
/// only a regular file is returned.
pub(crate) fn open_file_beneath(
    root: BorrowedFd<'_>,
    root_path: &Path,
    rel: &Path,
    display: &str,
) -> Result<(std::fs::File, Stamp)> {
    let fd = open_beneath(root, root_path, rel, READ_FLAGS)
        .map_err(|e| errno_error(e, "open", display))?;
    match classify(fd, display)? {
        Node::File(f, s) => Ok((f, s)),
        Node::Dir(_) => Err(FsFault::IsDirectory.error(format!("{display} is a directory"))),
    }
}

/// Opens the entry `name` of the directory handle `dir` without following a symlink (used by
/// the tree walker); only a regular file is returned.
pub(crate) fn open_file_at(
    dir: BorrowedFd<'_>,
    name: &std::ffi::CStr,
    display: &str,
) -> Result<(std::fs::File, Stamp)> {
    let fd = openat(
        dir,
        name,
        READ_FLAGS | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| errno_error(e, "open", display))?;
    match classify(fd, display)? {
        Node::File(f, s) => Ok((f, s)),
        Node::Dir(_) => Err(FsFault::IsDirectory.error(format!("{display} is a directory"))),
    }
}

/// Opens a root directory (canonical path) as a handle for [`open_file_beneath`].
pub(crate) fn open_dir(path: &Path, display: &str) -> Result<OwnedFd> {
    rustix::fs::open(
        path,
        DIR_FLAGS | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| errno_error(e, "open", display))
}

fn kind_name(t: FileType) -> &'static str {
    match t {
        FileType::Fifo => "FIFO (named pipe)",
        FileType::Socket => "socket",
        FileType::CharacterDevice => "character device",
        FileType::BlockDevice => "block device",
        FileType::Symlink => "symlink",
        _ => "special file",
    }
}

fn classify(fd: OwnedFd, display: &str) -> Result<Node> {
    let st = fstat(&fd).map_err(|e| errno_error(e, "inspect", display))?;
    match FileType::from_raw_mode(st.st_mode) {
        FileType::RegularFile => Ok(Node::File(std::fs::File::from(fd), Stamp::of(&st))),
        FileType::Directory => Ok(Node::Dir(fd)),
        other => Err(FsFault::NotRegular.error(format!(
            "refusing {display}: it is a {}; only regular files and directories can be used",
            kind_name(other)
        ))),
    }
}

/// Reads a whole file, failing with `fs.too_large` past `cap` bytes (`None` = no cap).
pub(crate) fn read_capped(
    file: &mut std::fs::File,
    cap: Option<u64>,
    display: &str,
) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let res = match cap {
        Some(c) => file.take(c.saturating_add(1)).read_to_end(&mut out),
        None => file.read_to_end(&mut out),
    };
    res.map_err(|e| FsFault::Io.error(format!("cannot read {display}: {}", io_why(&e))))?;
    if let Some(c) = cap
        && out.len() as u64 > c
    {
        return Err(FsFault::TooLarge.error(format!(
            "{display} is larger than {c} bytes; refusing to read it"
        )));
    }
    Ok(out)
}

/// One directory entry: (is a directory, name, size if it could be read). Symlinks are not
/// followed.
pub(crate) type Entry = (bool, String, Option<u64>);

/// Lists a directory handle.
pub(crate) fn list_dir(dir: &OwnedFd, display: &str) -> Result<Vec<Entry>> {
    let rd = Dir::read_from(dir).map_err(|e| errno_error(e, "list", display))?;
    let mut out = Vec::new();
    for entry in rd {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name();
        let bytes = name.to_bytes();
        if bytes == b"." || bytes == b".." {
            continue;
        }
        let st = statat(dir, name, AtFlags::SYMLINK_NOFOLLOW).ok();
        let is_dir = st
            .as_ref()
            .is_some_and(|s| FileType::from_raw_mode(s.st_mode) == FileType::Directory);
        let size = st.map(|s| u64::try_from(s.st_size).unwrap_or(0));
        out.push((is_dir, String::from_utf8_lossy(bytes).into_owned(), size));
    }
    Ok(out)
}

/// Opens the directory `rel` beneath `root`, creating missing components with `mkdirat`
/// (each new one reopened with `O_NOFOLLOW`, so a swapped-in symlink is refused).
fn open_dir_creating(root: &OwnedFd, loc: &Located, rel: &Path) -> Result<OwnedFd> {
    let verb = "create the parent directory of";
    match open_beneath(root.as_fd(), &loc.root, rel, DIR_FLAGS) {
        Ok(fd) => return Ok(fd),
        Err(Errno::NOENT) => {}
        Err(e) => return Err(errno_error(e, verb, &loc.display)),
    }
    let mut comps: Vec<&OsStr> = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(n) => comps.push(n),
            Component::CurDir => {}
            _ => return Err(errno_error(Errno::XDEV, verb, &loc.display)),
        }
    }
    // The deepest existing ancestor.
    let mut k = comps.len();
    let mut base = loop {
        k = k.saturating_sub(1);
        let prefix: std::path::PathBuf = comps[..k].iter().collect();
        match open_beneath(root.as_fd(), &loc.root, &prefix, DIR_FLAGS) {
            Ok(fd) => break fd,
            Err(Errno::NOENT) if k > 0 => continue,
            Err(e) => return Err(errno_error(e, verb, &loc.display)),
        }
    };
    for c in &comps[k..] {
        match mkdirat(&base, *c, Mode::from_raw_mode(0o777)) {
            Ok(()) => {
                // A new directory's entry in its parent must be durable before files go in it.
                sync_dir(&base).map_err(|e| errno_error(e, verb, &loc.display))?;
            }
            Err(Errno::EXIST) => {}
            Err(e) => return Err(errno_error(e, verb, &loc.display)),
        }
        base = openat(
            &base,
            *c,
            DIR_FLAGS | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| errno_error(e, verb, &loc.display))?;
    }
    Ok(base)
}

/// What [`write_atomic`] replaced and the stamp of what it wrote.
pub(crate) struct Written {
    /// The stamp of the file before (`None` = it did not exist).
    pub(crate) before: Option<Stamp>,
    /// The stamp of the new file.
    pub(crate) after: Stamp,
}

/// Writes `bytes` to `loc`: parents are created beneath the root; the content goes to a
/// temporary file in the target's directory (same handle) which is then renamed over the
/// target, so readers see the old or the new file, never a mix, and a symlink swapped in for
/// the target is replaced rather than followed. The temporary file is flushed to disk
/// (`fsync`) before the rename and the directory after it (as is every directory it creates),
/// so a crash or power loss leaves the old or the new content under the name, never a partial
/// file or a lost name. `check` sees the current target's stamp
/// (`None` when absent) and may refuse. A directory, symlink, special file or a file with more
/// than one hard link as the target is refused. The new file keeps the old one's permission
/// bits (and, when permitted, owner).
pub(crate) fn write_atomic(
    loc: &Located,
    bytes: &[u8],
    check: impl FnOnce(Option<Stamp>) -> Result<()>,
) -> Result<Written> {
    let is_dir_error = || {
        FsFault::IsDirectory.error(format!(
            "Cannot write file because path is a directory: {}",
            loc.display
        ))
    };
    let Some(name) = loc.rel.file_name() else {
        return Err(is_dir_error());
    };
    let root = open_root(loc, true)?;
    let parent_rel = loc.rel.parent().unwrap_or(Path::new(""));
    let parent = open_dir_creating(&root, loc, parent_rel)?;
    let existing = match statat(&parent, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => match FileType::from_raw_mode(st.st_mode) {
            FileType::RegularFile if st.st_nlink > 1 => {
                return Err(FsFault::HardLink.error(format!(
                    "refusing to write {}: the file has {} hard links, and writing it would change the other names too",
                    loc.display, st.st_nlink
                )));
            }
            FileType::RegularFile => Some(st),
            FileType::Directory => return Err(is_dir_error()),
            FileType::Symlink => {
                return Err(FsFault::Symlink.error(format!(
                    "refusing to write {}: it became a symlink while being opened",
                    loc.display
                )));
            }
            other => {
                return Err(FsFault::NotRegular.error(format!(
                    "refusing to write {}: it is a {}",
                    loc.display,
                    kind_name(other)
                )));
            }
        },
        Err(Errno::NOENT) => None,
        Err(e) => return Err(errno_error(e, "inspect", &loc.display)),
    };
    check(existing.as_ref().map(Stamp::of))?;
    let (tmp_name, tmp_fd) = create_temp(&parent, &loc.display)?;
    let renamed = fill_temp(tmp_fd, bytes, existing.as_ref(), &loc.display).and_then(|file| {
        renameat(&parent, &tmp_name, &parent, name)
            .map_err(|e| errno_error(e, "write", &loc.display))?;
        Ok(file)
    });
    let file = match renamed {
        Ok(file) => file,
        Err(e) => {
            let _ = unlinkat(&parent, &tmp_name, AtFlags::empty());
            return Err(e);
        }
    };
    // The new name must survive a crash too, not only the new content.
    sync_dir(&parent).map_err(|e| {
        FsFault::Io.error(format!(
            "wrote {} but could not flush its directory to disk: {e}",
            loc.display
        ))
    })?;
    let st = fstat(&file).map_err(|e| errno_error(e, "inspect", &loc.display))?;
    Ok(Written {
        before: existing.as_ref().map(Stamp::of),
        after: Stamp::of(&st),
    })
}

/// Flushes a directory's entries to disk. File systems that cannot sync a directory
/// (`EINVAL`, `ENOTSUP`) are taken as done: there is nothing more this side can do.
fn sync_dir(dir: &OwnedFd) -> std::result::Result<(), Errno> {
    match rustix::fs::fsync(dir) {
        Ok(()) | Err(Errno::INVAL | Errno::NOTSUP | Errno::ROFS) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Creates a fresh temporary file in `dir` (`O_EXCL|O_NOFOLLOW`: never an existing entry).
fn create_temp(dir: &OwnedFd, display: &str) -> Result<(String, OwnedFd)> {
    let mut last = Errno::EXIST;
    for _ in 0..16 {
        let name = format!(
            ".pl-write-{}-{:016x}.tmp",
            std::process::id(),
            rand::random::<u64>()
        );
        match openat(
            dir,
            name.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o666),
        ) {
            Ok(fd) => return Ok((name, fd)),
            Err(Errno::EXIST) => last = Errno::EXIST,
            Err(e) => return Err(errno_error(e, "write", display)),
        }
    }
    Err(errno_error(last, "write", display))
}

fn fill_temp(
    fd: OwnedFd,
    bytes: &[u8],
    existing: Option<&Stat>,
    display: &str,
) -> Result<std::fs::File> {
    let mut file = std::fs::File::from(fd);
    if let Some(st) = existing {
        // Owner first: a chown clears set-id bits, which the chmod then restores.
        let _ = std::os::unix::fs::fchown(&file, Some(st.st_uid), Some(st.st_gid));
        let _ = rustix::fs::fchmod(&file, Mode::from_raw_mode(st.st_mode & 0o7777));
    }
    file.write_all(bytes)
        .map_err(|e| FsFault::Io.error(format!("cannot write {display}: {}", io_why(&e))))?;
    // Durable before it is visible: after a crash the name shows the old or the new content,
    // never an empty or partial file.
    file.sync_all().map_err(|e| {
        FsFault::Io.error(format!("cannot flush {display} to disk: {}", io_why(&e)))
    })?;
    Ok(file)
}
