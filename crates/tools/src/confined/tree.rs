//! Walking a directory tree through handles, for `glob` and `grep`.
//!
//! Every directory is listed through a handle opened relative to its parent's handle with
//! `openat(O_DIRECTORY | O_NOFOLLOW)`, starting from a base opened beneath the allowed root. A
//! directory swapped for a symlink after its parent was listed therefore fails to open (the
//! walk skips it) instead of leading the listing to wherever the symlink points, and no path is
//! ever resolved again from the top. Symlinks are reported as entries but never followed.

use std::ffi::{CStr, CString};
use std::ops::ControlFlow;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags, Stat, openat, statat};

/// What a walk visits and how far it goes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WalkOptions {
    /// Visit (and descend into) names starting with `.`.
    pub(crate) include_hidden: bool,
    /// Directory names that are neither visited nor descended into.
    pub(crate) skip_dirs: &'static [&'static str],
    /// Stop after visiting this many entries.
    pub(crate) max_entries: usize,
    /// Directories at this depth (the base's entries are at depth 1) are visited but not
    /// descended into; this also bounds the handles a walk holds open.
    pub(crate) max_depth: usize,
}

/// The kind of an entry, as listed (symlinks are not followed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symlink, FIFO, socket, device, or an entry whose kind could not be read.
    Other,
}

/// One visited entry.
pub(crate) struct Visit<'a> {
    /// The handle of the directory holding the entry.
    pub(crate) dir: BorrowedFd<'a>,
    /// The entry's name in `dir`.
    pub(crate) name: &'a CStr,
    /// The `/`-separated path from the walk's base (names decoded lossily).
    pub(crate) rel: &'a str,
    /// The entry's kind.
    pub(crate) kind: Kind,
}

impl Visit<'_> {
    /// The entry's own metadata (`lstat` through the parent handle).
    pub(crate) fn stat(&self) -> Option<Stat> {
        statat(self.dir, self.name, AtFlags::SYMLINK_NOFOLLOW).ok()
    }

    /// The entry's name, decoded lossily.
    pub(crate) fn name_lossy(&self) -> String {
        String::from_utf8_lossy(self.name.to_bytes()).into_owned()
    }
}

/// How a walk ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct WalkEnd {
    /// The walk stopped at [`WalkOptions::max_entries`] with entries left.
    pub(crate) entries_capped: bool,
    /// Some directory was not descended into because of [`WalkOptions::max_depth`].
    pub(crate) depth_capped: bool,
    /// The visitor asked to stop.
    pub(crate) stopped: bool,
}

/// One directory being walked: its handle, its sorted entries and the next one to visit.
struct Frame {
    fd: OwnedFd,
    entries: Vec<(CString, Kind)>,
    next: usize,
    /// The `/`-terminated path of this directory from the base (empty for the base).
    prefix: String,
}

fn kind_of(t: FileType) -> Option<Kind> {
    match t {
        FileType::RegularFile => Some(Kind::File),
        FileType::Directory => Some(Kind::Dir),
        FileType::Unknown => None,
        _ => Some(Kind::Other),
    }
}

/// Lists `fd`, sorted by name (bytes), without `.` and `..`. Entries whose kind the directory
/// does not report are `lstat`ed through the handle. An unreadable directory lists as empty.
fn list(fd: &OwnedFd) -> Vec<(CString, Kind)> {
    let Ok(rd) = Dir::read_from(fd) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in rd {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name();
        if matches!(name.to_bytes(), b"." | b"..") {
            continue;
        }
        let kind = kind_of(entry.file_type()).unwrap_or_else(|| {
            statat(fd, name, AtFlags::SYMLINK_NOFOLLOW)
                .ok()
                .and_then(|st| kind_of(FileType::from_raw_mode(st.st_mode)))
                .unwrap_or(Kind::Other)
        });
        out.push((name.to_owned(), kind));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Walks the directory `base` depth-first, entries sorted by name, calling `visit` for each
/// entry (a directory before its contents). Hidden names and `skip_dirs` are pruned as
/// [`WalkOptions`] says; a subdirectory that can no longer be opened as a real directory
/// beneath its parent's handle (swapped for a symlink, removed, unreadable) is skipped.
pub(crate) fn walk(
    base: OwnedFd,
    opts: &WalkOptions,
    mut visit: impl FnMut(&Visit<'_>) -> ControlFlow<()>,
) -> WalkEnd {
    let mut end = WalkEnd::default();
    let mut visited = 0usize;
    let entries = list(&base);
    let mut stack = vec![Frame {
        fd: base,
        entries,
        next: 0,
        prefix: String::new(),
    }];
    while let Some(frame) = stack.last_mut() {
        let Some((name, kind)) = frame.entries.get(frame.next).cloned() else {
            stack.pop();
            continue;
        };
        frame.next += 1;
        let bytes = name.to_bytes();
        if !opts.include_hidden && bytes.first() == Some(&b'.') {
            continue;
        }
        let lossy = String::from_utf8_lossy(bytes);
        if kind == Kind::Dir && opts.skip_dirs.contains(&lossy.as_ref()) {
            continue;
        }
        if visited == opts.max_entries {
            end.entries_capped = true;
            break;
        }
        visited += 1;
        let rel = format!("{}{lossy}", frame.prefix);
        let flow = visit(&Visit {
            dir: frame.fd.as_fd(),
            name: &name,
            rel: &rel,
            kind,
        });
        if flow.is_break() {
            end.stopped = true;
            break;
        }
        if kind != Kind::Dir {
            continue;
        }
        if stack.len() >= opts.max_depth {
            end.depth_capped = true;
            continue;
        }
        let Some(parent) = stack.last() else { break };
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let Ok(fd) = openat(&parent.fd, name.as_c_str(), flags, Mode::empty()) else {
            continue;
        };
        let entries = list(&fd);
        stack.push(Frame {
            fd,
            entries,
            next: 0,
            prefix: format!("{rel}/"),
        });
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(p: &std::path::Path) -> OwnedFd {
        rustix::fs::open(p, OFlags::RDONLY | OFlags::DIRECTORY, Mode::empty()).unwrap()
    }

    fn collect(base: &std::path::Path, opts: &WalkOptions) -> (Vec<(String, Kind)>, WalkEnd) {
        let mut seen = Vec::new();
        let end = walk(open(base), opts, |v| {
            seen.push((v.rel.to_owned(), v.kind));
            ControlFlow::Continue(())
        });
        (seen, end)
    }

    const OPTS: WalkOptions = WalkOptions {
        include_hidden: false,
        skip_dirs: &["target"],
        max_entries: 100,
        max_depth: 100,
    };

    #[test]
    fn walks_sorted_pruned_and_never_follows_links() {
        let d = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("host_only"), "h").unwrap();
        let b = d.path();
        std::fs::create_dir_all(b.join("src/deep")).unwrap();
        std::fs::write(b.join("src/deep/b.rs"), "").unwrap();
        std::fs::write(b.join("src/a.rs"), "").unwrap();
        std::fs::create_dir_all(b.join("target")).unwrap();
        std::fs::write(b.join("target/t.rs"), "").unwrap();
        std::fs::create_dir_all(b.join(".hidden")).unwrap();
        std::fs::write(b.join(".hidden/h.rs"), "").unwrap();
        std::os::unix::fs::symlink(outside.path(), b.join("out")).unwrap();
        let (seen, end) = collect(b, &OPTS);
        let names: Vec<&str> = seen.iter().map(|s| s.0.as_str()).collect();
        assert_eq!(
            names,
            ["out", "src", "src/a.rs", "src/deep", "src/deep/b.rs"]
        );
        assert_eq!(seen[0].1, Kind::Other);
        assert_eq!(seen[1].1, Kind::Dir);
        assert_eq!(seen[2].1, Kind::File);
        assert_eq!(end, WalkEnd::default());

        let hidden = WalkOptions {
            include_hidden: true,
            ..OPTS
        };
        let (seen, _) = collect(b, &hidden);
        assert!(seen.iter().any(|s| s.0 == ".hidden/h.rs"), "{seen:?}");

        let shallow = WalkOptions {
            max_depth: 1,
            ..OPTS
        };
        let (seen, end) = collect(b, &shallow);
        let names: Vec<&str> = seen.iter().map(|s| s.0.as_str()).collect();
        assert_eq!(names, ["out", "src"]);
        assert!(end.depth_capped && !end.entries_capped, "{end:?}");
        let few = WalkOptions {
            max_entries: 3,
            ..OPTS
        };
        let (seen, end) = collect(b, &few);
        assert_eq!(seen.len(), 3);
        assert!(end.entries_capped && !end.depth_capped, "{end:?}");

        // The visitor can stop the walk.
        let end = walk(open(b), &OPTS, |_| ControlFlow::Break(()));
        assert!(end.stopped);
    }

    #[test]
    fn a_directory_swapped_for_a_symlink_after_listing_is_not_entered() {
        let d = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("host_only"), "h").unwrap();
        let b = d.path().to_path_buf();
        std::fs::create_dir(b.join("sub")).unwrap();
        std::fs::write(b.join("sub/inside"), "").unwrap();
        let mut seen = Vec::new();
        walk(open(&b), &OPTS, |v| {
            if v.rel == "sub" {
                // Between listing the base and entering `sub`, swap it for a symlink out.
                std::fs::rename(b.join("sub"), b.join("sub_real")).unwrap();
                std::os::unix::fs::symlink(outside.path(), b.join("sub")).unwrap();
            }
            seen.push(v.rel.to_owned());
            ControlFlow::Continue(())
        });
        assert_eq!(seen, ["sub"]);
    }
}
