//! Small stream/cancellation helpers shared by providers and layers.

use std::future::Future;
use std::time::Duration;

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

/// Bounds the rest of a chunk stream by `deadline`: when it passes before the stream ends, the
/// stream yields `on_deadline()` once and stops.
pub(crate) fn until_deadline(
    stream: LlmStream,
    deadline: tokio::time::Instant,
    on_deadline: impl Fn() -> Error + Send + Sync + 'static,
) -> LlmStream {
    let sleep = Box::pin(tokio::time::sleep_until(deadline));
    let on_deadline = std::sync::Arc::new(on_deadline);
    Box::pin(futures_util::stream::unfold(
        Some((stream, sleep)),
        move |state| {
            let on_deadline = on_deadline.clone();
            async move {
                let (mut stream, mut sleep) = state?;
                tokio::select! {
                    biased;
                    item = stream.next() => item.map(|i| (i, Some((stream, sleep)))),
                    _ = &mut sleep => Some((Err(on_deadline()), None)),
                }
            }
        },
    ))
}

/// Defines a middleware service `$svc<S>` with the fields `inner: S` and `$state: Option<$ty>`
/// and implements `tower::Service<LlmRequest>` for it: always ready; each call clones both and
/// passes the request straight to `inner` when `$state` is `None`, else returns the boxed future
/// of `$run(inner, state, request)` (an `async fn` giving `Result<LlmStream>`).
macro_rules! llm_middleware_service {
    ($(#[$meta:meta])* $svc:ident, $state:ident: $ty:ty, $run:path) => {
        $(#[$meta])*
        #[derive(Debug, Clone)]
        pub struct $svc<S> {
            inner: S,
            $state: Option<$ty>,
        }

        impl<S> tower::Service<power_loop_contracts::LlmRequest> for $svc<S>
        where
            S: tower::Service<
                    power_loop_contracts::LlmRequest,
                    Response = power_loop_contracts::LlmStream,
                    Error = power_loop_contracts::Error,
                > + Clone
                + Send
                + 'static,
            S::Future: Send + 'static,
        {
            type Response = power_loop_contracts::LlmStream;
            type Error = power_loop_contracts::Error;
            type Future = power_loop_contracts::BoxFuture<
                'static,
                power_loop_contracts::Result<power_loop_contracts::LlmStream>,
            >;

            fn poll_ready(
                &mut self,
                _cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<power_loop_contracts::Result<()>> {
                std::task::Poll::Ready(Ok(()))
            }

            fn call(&mut self, req: power_loop_contracts::LlmRequest) -> Self::Future {
                let inner = self.inner.clone();
                let state = self.$state.clone();
                Box::pin(async move {
                    match state {
                        None => tower::ServiceExt::oneshot(inner, req).await,
                        Some(state) => $run(inner, state, req).await,
                    }
                })
            }
        }
    };
}
pub(crate) use llm_middleware_service;

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

/// A positive, finite number of seconds as a [`Duration`] (`config.invalid` otherwise).
pub(crate) fn duration_from_secs(field: &str, s: f64) -> Result<Duration> {
    if !s.is_finite() || s <= 0.0 || s > 1.0e9 {
        return Err(Error::config(format!(
            "{field} must be a positive number of seconds, got {s}"
        ))
        .with_detail("field", field));
    }
    Ok(Duration::from_secs_f64(s))
}
