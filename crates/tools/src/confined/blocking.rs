//! Running blocking file I/O off the async workers, bounded by a timeout and the call's
//! cancellation.

use std::time::Duration;

use power_loop_contracts::{CancellationToken, Error, ErrorCode, Result};

/// Runs `work` on tokio's blocking pool and waits for it, for `cancel`, or for `timeout`,
/// whichever comes first. On timeout (`tool.timeout`) or cancellation (`cancelled`) the call
/// returns at once; the blocking thread is left to finish on its own (a system call stuck in
/// the kernel cannot be interrupted from here), and whatever it does afterwards stays confined.
pub(crate) async fn run_blocking<T, F>(
    what: &str,
    timeout: Duration,
    cancel: &CancellationToken,
    work: F,
) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    let handle = tokio::task::spawn_blocking(work);
    tokio::select! {
        joined = handle => match joined {
            Ok(r) => r,
            Err(e) => Err(Error::new(
                ErrorCode::ToolFailed,
                format!("{what} failed inside its worker thread: {e}"),
            )),
        },
        () = cancel.cancelled() => Err(Error::new(
            ErrorCode::Cancelled,
            format!("{what} was cancelled before the file system answered"),
        )),
        () = tokio::time::sleep(timeout) => Err(Error::new(
            ErrorCode::ToolTimeout,
            format!(
                "{what} did not finish within {} s; the file system did not answer",
                timeout.as_secs_f64()
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A worker stuck forever (a stand-in for a read the kernel never completes).
    fn stuck(rx: std::sync::mpsc::Receiver<()>) -> impl FnOnce() -> Result<()> + Send + 'static {
        move || {
            let _ = rx.recv();
            Ok(())
        }
    }

    #[tokio::test]
    async fn stuck_work_honours_timeout_and_cancel() {
        let (tx, rx) = std::sync::mpsc::channel();
        let started = std::time::Instant::now();
        let err = run_blocking(
            "read_file",
            Duration::from_millis(50),
            &CancellationToken::new(),
            stuck(rx),
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), ErrorCode::ToolTimeout);
        assert!(started.elapsed() < Duration::from_secs(10));
        drop(tx);

        let (tx, rx) = std::sync::mpsc::channel();
        let cancel = CancellationToken::new();
        let c2 = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            c2.cancel();
        });
        let err = run_blocking("read_file", Duration::from_secs(3600), &cancel, stuck(rx))
            .await
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::Cancelled);
        drop(tx);

        let v = run_blocking(
            "x",
            Duration::from_secs(5),
            &CancellationToken::new(),
            || Ok(7),
        )
        .await
        .unwrap();
        assert_eq!(v, 7);
    }
}
