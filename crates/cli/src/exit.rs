//! Exit codes (documented in `--help` and docs/cli.md) and how errors map to them.

use std::process::ExitCode;

use power_loop::{Error, ErrorCode, RunStatus};

/// A completed send (and every other command that did its job).
pub(crate) const OK: u8 = 0;
/// An error: store, configuration, I/O.
pub(crate) const ERROR: u8 = 1;
/// A usage error (bad flags or arguments).
pub(crate) const USAGE: u8 = 2;
/// Degraded: the model call failed after retries.
pub(crate) const DEGRADED: u8 = 3;
/// Cancelled (Ctrl-C).
pub(crate) const CANCELLED: u8 = 4;
/// Stopped by a budget or the round limit.
pub(crate) const LIMIT: u8 = 5;
/// Waiting for input, or a pending tool call.
pub(crate) const WAITING: u8 = 6;

/// The exit code of a finished send.
pub(crate) fn for_status(status: RunStatus) -> u8 {
    match status {
        RunStatus::Completed => OK,
        RunStatus::Degraded => DEGRADED,
        RunStatus::Cancelled => CANCELLED,
        RunStatus::HitRoundLimit | RunStatus::BudgetExceeded => LIMIT,
        RunStatus::WaitingForInput | RunStatus::PendingTools => WAITING,
    }
}

/// A usage error raised by the CLI itself (after clap accepted the flags): exit 2.
pub(crate) fn usage(message: impl Into<String>) -> Error {
    Error::new(ErrorCode::InvalidArgument, message).with_detail("usage", true)
}

/// Whether an error is a usage error (exit 2).
pub(crate) fn is_usage(e: &Error) -> bool {
    e.detail("usage").and_then(serde_json::Value::as_bool) == Some(true)
}

/// Marks a stdout write that failed because the reader went away (`| head`): not an error.
pub(crate) fn broken_pipe() -> Error {
    Error::new(ErrorCode::Io, "stdout closed").with_detail("broken_pipe", true)
}

fn is_broken_pipe(e: &Error) -> bool {
    e.detail("broken_pipe").and_then(serde_json::Value::as_bool) == Some(true)
}

/// The exit code of an error.
pub(crate) fn code_of(e: &Error) -> u8 {
    if is_broken_pipe(e) {
        OK
    } else if is_usage(e) {
        USAGE
    } else if e.code() == ErrorCode::Cancelled {
        CANCELLED
    } else {
        ERROR
    }
}

/// Prints an error to stderr (`power-loop: [code] message`) and returns its exit code.
pub(crate) fn report(e: &Error) -> ExitCode {
    let code = code_of(e);
    if !is_broken_pipe(e) {
        eprintln!("power-loop: [{}] {}", e.code().as_str(), e.message());
    }
    ExitCode::from(code)
}
