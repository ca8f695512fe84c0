//! Typed failures of confined file operations, with stable reason codes.

use power_loop_contracts::{Error, ErrorCode};
use rustix::io::Errno;

/// Why a confined file operation failed. [`FsFault::reason`] is a stable string carried as the
/// error's `reason` detail; the message never contains an absolute host path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FsFault {
    /// The path (or a symlink on it) leads outside the allowed root.
    Escape,
    /// A symlink loop, or a `/proc` magic link, on the path.
    SymlinkLoop,
    /// The final entry is a symlink where a real entry was resolved a moment before.
    Symlink,
    /// Nothing exists at the path.
    NotFound,
    /// A FIFO, socket or device.
    NotRegular,
    /// A directory where a file is needed.
    IsDirectory,
    /// A non-directory on the way to the path.
    NotDirectory,
    /// The file has more than one hard link; writing it would change the other names too.
    HardLink,
    /// The file is over a size cap.
    TooLarge,
    /// The path argument itself is unusable (NUL byte, too long).
    InvalidPath,
    /// Any other I/O failure.
    Io,
}

impl FsFault {
    /// The stable reason code (`fs.*`).
    pub(crate) fn reason(self) -> &'static str {
        match self {
            FsFault::Escape => "fs.escape",
            FsFault::SymlinkLoop => "fs.symlink_loop",
            FsFault::Symlink => "fs.symlink",
            FsFault::NotFound => "fs.not_found",
            FsFault::NotRegular => "fs.not_regular",
            FsFault::IsDirectory => "fs.is_directory",
            FsFault::NotDirectory => "fs.not_directory",
            FsFault::HardLink => "fs.hard_link",
            FsFault::TooLarge => "fs.too_large",
            FsFault::InvalidPath => "fs.invalid_path",
            FsFault::Io => "fs.io",
        }
    }

    /// The error code a tool call fails with.
    pub(crate) fn code(self) -> ErrorCode {
        match self {
            FsFault::Escape
            | FsFault::SymlinkLoop
            | FsFault::Symlink
            | FsFault::NotRegular
            | FsFault::HardLink => ErrorCode::ToolDenied,
            FsFault::InvalidPath => ErrorCode::ToolInvalidArgs,
            _ => ErrorCode::ToolFailed,
        }
    }

    /// An error with this fault's code and reason and `message`.
    pub(crate) fn error(self, message: impl Into<String>) -> Error {
        Error::new(self.code(), message).with_detail("reason", self.reason())
    }

    /// The fault an `errno` from opening or walking a path stands for.
    pub(crate) fn of_errno(e: Errno) -> FsFault {
        match e {
            Errno::XDEV => FsFault::Escape,
            Errno::LOOP => FsFault::SymlinkLoop,
            Errno::NOENT => FsFault::NotFound,
            Errno::NOTDIR => FsFault::NotDirectory,
            Errno::ISDIR => FsFault::IsDirectory,
            Errno::NAMETOOLONG => FsFault::InvalidPath,
            Errno::NXIO | Errno::NODEV => FsFault::NotRegular,
            _ => FsFault::Io,
        }
    }
}

/// The error for `errno` while doing `verb` (e.g. "read") on the path shown as `display`.
pub(crate) fn errno_error(e: Errno, verb: &str, display: &str) -> Error {
    let fault = FsFault::of_errno(e);
    let why = match fault {
        FsFault::Escape => {
            "the path leads outside the allowed directory (through `..` or a symlink)".to_owned()
        }
        FsFault::SymlinkLoop => {
            "the path goes through a symlink loop or a /proc magic link".to_owned()
        }
        FsFault::NotFound => "no such file or directory".to_owned(),
        FsFault::NotDirectory => "a part of the path is not a directory".to_owned(),
        FsFault::IsDirectory => "it is a directory".to_owned(),
        FsFault::InvalidPath => "the path or one of its names is too long".to_owned(),
        FsFault::NotRegular => "it is a device, FIFO or socket".to_owned(),
        _ => e.to_string(),
    };
    fault.error(format!("cannot {verb} {display}: {why}"))
}
