//! Small stream/cancellation helpers shared by providers and layers.

use std::future::Future;

use futures_util::StreamExt;
use power_loop_contracts::{CancellationToken, Error, LlmStream, Result};

/// The error a fired cancellation token produces.
pub(crate) fn cancelled_error(stage: &str) -> Error {
    Error::cancelled(format!("cancellation token fired {stage}"))
}

/// Runs `fut` unless `token` fires first (then `cancelled`).
pub(crate) async fn run_cancellable<T>(
    token: Option<&CancellationToken>,
    stage: &str,
    fut: impl Future<Output = Result<T>>,
) -> Result<T> {
    match token {
        None => fut.await,
        Some(t) => {
            if t.is_cancelled() {
                return Err(cancelled_error(stage));
            }
            match t.run_until_cancelled(fut).await {
                Some(r) => r,
                None => Err(cancelled_error(stage)),
            }
        }
    }
}

/// Wraps a chunk stream so a fired token ends it promptly with one `cancelled` error.
pub(crate) fn with_cancel(stream: LlmStream, token: Option<CancellationToken>) -> LlmStream {
    let Some(token) = token else {
        return stream;
    };
    Box::pin(futures_util::stream::unfold(
        Some((stream, token)),
        |state| async move {
            let (mut stream, token) = state?;
            tokio::select! {
                biased;
                _ = token.cancelled() => Some((
                    Err(cancelled_error("while the model was streaming")),
                    None,
                )),
                item = stream.next() => item.map(|i| {
                    let next = if i.is_err() { None } else { Some((stream, token)) };
                    (i, next)
                }),
            }
        },
    ))
}

/// Ends a stream after its first error (providers stop parsing after a failure).
#[cfg(feature = "http")]
pub(crate) fn fuse_on_error(stream: LlmStream) -> LlmStream {
    Box::pin(futures_util::stream::unfold(
        Some(stream),
        |state| async move {
            let mut s = state?;
            let item = s.next().await?;
            let next = if item.is_err() { None } else { Some(s) };
            Some((item, next))
        },
    ))
}
