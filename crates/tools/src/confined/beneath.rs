//! Opening a path beneath a directory handle in one step, never leaving that directory.
//!
//! Linux `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)` does it in the kernel: every
//! component (including symlink targets and `..`) is resolved relative to the handle, and an
//! absolute symlink, a `..` above the handle or a `/proc` magic link fails the open instead of
//! being followed. Where `openat2` is missing (kernels before 5.6, or seccomp filters answering
//! `ENOSYS`/`EPERM`), [`walk_beneath`] does the same in user space: one `openat(O_NOFOLLOW)` per
//! component, reading each symlink itself and refusing any whose target leaves the root.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::{Component, Path, PathBuf};
#[cfg(target_os = "linux")]
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::{Mode, OFlags, openat, readlinkat};
use rustix::io::Errno;

/// How many symlinks one lookup may traverse (the kernel's own limit is 40).
const MAX_SYMLINKS: usize = 40;
/// The longest path the kernel resolves, in bytes including the terminating NUL (Linux
/// `PATH_MAX`).
const PATH_MAX: usize = 4096;

/// Set once `openat2` answered `ENOSYS`: later opens go straight to the walker.
#[cfg(target_os = "linux")]
static OPENAT2_MISSING: AtomicBool = AtomicBool::new(false);

/// The environment variable that, set to `1` when the first confined open runs, makes every
/// open use [`walk_beneath`] instead of `openat2`. It exists so the tool-level tests (races,
/// special files, path tricks) can run through the fallback as well; both resolvers keep
/// paths beneath the root, so it cannot loosen anything.
#[cfg(target_os = "linux")]
const FORCE_WALKER_ENV: &str = "POWER_LOOP_TEST_FS_WALKER";

/// Whether [`FORCE_WALKER_ENV`] asked for the walker (read once per process).
#[cfg(target_os = "linux")]
fn walker_forced() -> bool {
    static FORCED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *FORCED.get_or_init(|| std::env::var_os(FORCE_WALKER_ENV).is_some_and(|v| v == "1"))
}

/// Opens `rel` beneath the directory `root` (whose canonical path is `root_path`) with `flags`
/// (`O_CLOEXEC` is added). `EXDEV` means the path would leave the root.
pub(crate) fn open_beneath(
    root: BorrowedFd<'_>,
    root_path: &Path,
    rel: &Path,
    flags: OFlags,
) -> Result<OwnedFd, Errno> {
    #[cfg(target_os = "linux")]
    if !OPENAT2_MISSING.load(Ordering::Relaxed) && !walker_forced() {
        use rustix::fs::{ResolveFlags, openat2};
        let target: &Path = if rel.as_os_str().is_empty() {
            Path::new(".")
        } else {
            rel
        };
        if target.is_absolute() {
            return Err(Errno::XDEV);
        }
        let how = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
        for _ in 0..4 {
            match openat2(root, target, flags | OFlags::CLOEXEC, Mode::empty(), how) {
                // A concurrent rename made the kernel give up on a `..` walk; try again.
                Err(Errno::AGAIN) => continue,
                Err(Errno::NOSYS) => {
                    OPENAT2_MISSING.store(true, Ordering::Relaxed);
                    break;
                }
                // Seccomp filters often answer EPERM for syscalls they do not know; the walker
                // reports the real answer if it is a genuine permission error.
                Err(Errno::PERM | Errno::TOOBIG) => break,
                other => return other,
            }
        }
    }
    walk_beneath(root, root_path, rel, flags)
}

/// The user-space fallback of [`open_beneath`]: walks `rel` one component at a time with
/// `O_NOFOLLOW`, resolving symlinks itself. A relative target is spliced into the remaining
/// path; an absolute one is accepted only when it names a place under `root_path` (then the walk
/// restarts at the root). A `..` above the root fails with `EXDEV`.
pub(crate) fn walk_beneath(
    root: BorrowedFd<'_>,
    root_path: &Path,
    rel: &Path,
    flags: OFlags,
) -> Result<OwnedFd, Errno> {
    // The kernel refuses a path of PATH_MAX bytes or more with ENAMETOOLONG; so does the walker,
    // or it would accept (and a write would create) arbitrarily deep paths openat2 refuses.
    if rel.as_os_str().len() >= PATH_MAX {
        return Err(Errno::NAMETOOLONG);
    }
    let mut pending: VecDeque<OsString> = VecDeque::new();
    push_front_components(&mut pending, rel)?;
    // Directories entered below the root; empty = at the root.
    let mut stack: Vec<OwnedFd> = Vec::new();
    let mut links = 0usize;
    loop {
        let cur = stack.last().map_or(root, AsFd::as_fd);
        let Some(comp) = pending.pop_front() else {
            // The path ended on a directory (or was empty): open it with the caller's flags.
            return openat(cur, ".", flags | OFlags::CLOEXEC, Mode::empty());
        };
        if comp == ".." {
            if stack.pop().is_none() {
                return Err(Errno::XDEV);
            }
            continue;
        }
        let last = pending.is_empty();
        let step_flags = if last {
            flags | OFlags::NOFOLLOW | OFlags::CLOEXEC
        } else {
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
        };
        match openat(cur, comp.as_os_str(), step_flags, Mode::empty()) {
            Ok(fd) if last => return Ok(fd),
            Ok(fd) => stack.push(fd),
            Err(e @ (Errno::LOOP | Errno::NOTDIR)) => {
                let Ok(target) = readlinkat(cur, comp.as_os_str(), Vec::new()) else {
                    return Err(e);
                };
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(Errno::LOOP);
                }
                let target = PathBuf::from(OsString::from_vec(target.into_bytes()));
                if target.is_absolute() {
                    let Ok(inside) = target.strip_prefix(root_path) else {
                        return Err(Errno::XDEV);
                    };
                    stack.clear();
                    push_front_components(&mut pending, inside)?;
                } else {
                    push_front_components(&mut pending, &target)?;
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Puts the components of `p` (`.` dropped, `..` kept) in front of `pending`.
fn push_front_components(pending: &mut VecDeque<OsString>, p: &Path) -> Result<(), Errno> {
    let mut parts = Vec::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => parts.push(n.to_os_string()),
            Component::ParentDir => parts.push(OsString::from("..")),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => return Err(Errno::XDEV),
        }
    }
    for part in parts.into_iter().rev() {
        pending.push_front(part);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn root(dir: &Path) -> OwnedFd {
        rustix::fs::open(
            dir,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .unwrap()
    }

    /// Both resolvers must agree on what they refuse and what they open.
    fn both(fd: &OwnedFd, root_path: &Path, rel: &str) -> [Result<OwnedFd, Errno>; 2] {
        let flags = OFlags::RDONLY | OFlags::NONBLOCK;
        [
            open_beneath(fd.as_fd(), root_path, Path::new(rel), flags),
            walk_beneath(fd.as_fd(), root_path, Path::new(rel), flags),
        ]
    }

    #[test]
    fn walker_and_openat2_refuse_escapes_and_follow_inside_links() {
        let d = tempfile::tempdir().unwrap();
        let ws = std::fs::canonicalize(d.path()).unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "s").unwrap();
        std::fs::create_dir(ws.join("real")).unwrap();
        std::fs::write(ws.join("real/f"), "f").unwrap();
        symlink(outside.path(), ws.join("out")).unwrap();
        symlink("../..", ws.join("real/up")).unwrap();
        symlink("real", ws.join("rel_in")).unwrap();
        symlink(ws.join("real"), ws.join("abs_in")).unwrap();
        symlink("/proc/self/root", ws.join("magic")).unwrap();
        let fd = root(&ws);
        for bad in [
            "out/secret",
            "real/up/x",
            "../x",
            "real/../../x",
            "magic/etc/passwd",
        ] {
            for (i, r) in both(&fd, &ws, bad).into_iter().enumerate() {
                assert!(r.is_err(), "{bad} opened by resolver {i}");
            }
        }
        for good in ["real/f", "rel_in/f", "real/../real/f", ""] {
            for (i, r) in both(&fd, &ws, good).into_iter().enumerate() {
                assert!(r.is_ok(), "{good} refused by resolver {i}: {r:?}");
            }
        }
        // An absolute link that stays inside: the walker follows it; openat2 refuses it (both safe).
        assert!(walk_beneath(fd.as_fd(), &ws, Path::new("abs_in/f"), OFlags::RDONLY).is_ok());
        // A path the kernel would call too long is too long for the walker as well.
        let long = "a/".repeat(3000) + "x";
        for (i, r) in both(&fd, &ws, &long).into_iter().enumerate() {
            assert_eq!(r.unwrap_err(), Errno::NAMETOOLONG, "resolver {i}");
        }
        // A symlink loop ends with ELOOP, not a hang.
        symlink("loop_b", ws.join("loop_a")).unwrap();
        symlink("loop_a", ws.join("loop_b")).unwrap();
        assert_eq!(
            walk_beneath(fd.as_fd(), &ws, Path::new("loop_a"), OFlags::RDONLY).unwrap_err(),
            Errno::LOOP
        );
    }
}
