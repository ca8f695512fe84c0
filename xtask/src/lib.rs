//! Developer tasks for the power-loop workspace: `cargo xtask api-check` and `cargo xtask
//! api-bless`, the guard of the façade's public API (see `docs/stability.md`).
//!
//! # Owns
//! The comparison of the façade's current public API (items with their signatures, read from
//! rustdoc JSON by the `public-api` crate) and of the frozen error codes with the baseline files
//! committed under `api/`.
//!
//! # Must not import
//! Anything of power-loop but `power-loop-contracts` (for `ErrorCode::ALL`). It is never a
//! dependency of a product crate.
//!
//! # Seams
//! None: a command-line tool. [`diff`] holds the comparison logic, [`rustdoc`] the rustdoc JSON
//! build, [`reexport`] the following of re-exports into the defining crates, [`tasks`] the two commands.
//!
//! # Feature flags
//! None.
//!
//! # Stability
//! Internal tool (`publish = false`); its output format is described in `docs/stability.md`.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod diff;
pub mod reexport;
pub mod rustdoc;
pub mod tasks;

use std::fmt;

/// A failure of an xtask command that is not a baseline mismatch (tool missing, build failed,
/// file unreadable). The message says what failed and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XtaskError(String);

impl XtaskError {
    /// Creates an error with a user-facing message.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl fmt::Display for XtaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for XtaskError {}

/// The error codes of `power_loop_contracts::ErrorCode::ALL`, one `Variant = "code"` line each,
/// sorted by variant.
pub fn error_code_lines() -> Vec<String> {
    let mut lines: Vec<String> = power_loop_contracts::ErrorCode::ALL
        .iter()
        .map(|code| format!("{code:?} = \"{}\"", code.as_str()))
        .collect();
    lines.sort();
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_code_lines_hold_the_reference_codes() {
        let lines = error_code_lines();
        assert!(lines.contains(&"SessionNotFound = \"session.not_found\"".to_owned()));
        assert!(lines.contains(&"Cancelled = \"cancelled\"".to_owned()));
        assert_eq!(lines.len(), power_loop_contracts::ErrorCode::ALL.len());
    }
}
