//! Progress of a running workflow on stderr (never stdout): one overwritten line on a terminal,
//! throttled plain lines with `--progress` when stderr is not a terminal.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use power_loop::WorkflowProgress as Progress;

/// Shortest gap between two plain progress lines.
const PLAIN_EVERY: Duration = Duration::from_millis(250);

/// Prints progress reports.
pub(crate) struct Reporter {
    tty: bool,
    last: Mutex<Option<Instant>>,
}

/// A reporter when stderr is a terminal or `force` is set; else `None`.
pub(crate) fn reporter(force: bool) -> Option<std::sync::Arc<Reporter>> {
    let tty = std::io::stderr().is_terminal();
    (tty || force).then(|| {
        std::sync::Arc::new(Reporter {
            tty,
            last: Mutex::new(None),
        })
    })
}

impl Reporter {
    /// Reports one settled step.
    pub(crate) fn report(&self, p: &Progress) {
        let line = format!(
            "workflow: {}/{} steps finished (last: {} {})",
            p.finished, p.total, p.step_key, p.status
        );
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(err, "\r\x1b[2K{line}");
            let _ = err.flush();
            return;
        }
        let Ok(mut last) = self.last.lock() else {
            return;
        };
        let now = Instant::now();
        if last.is_none_or(|t| now.duration_since(t) >= PLAIN_EVERY) || p.finished >= p.total {
            *last = Some(now);
            let _ = writeln!(err, "{line}");
        }
    }
}

/// Ends an overwritten progress line on a terminal (no-op otherwise).
pub(crate) fn clear_line() {
    let mut err = std::io::stderr();
    if err.is_terminal() {
        let _ = write!(err, "\r\x1b[2K");
        let _ = err.flush();
    }
}
