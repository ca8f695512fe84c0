//! `LlmService` ⇄ tower adapters, the per-call timeout and concurrency layers, and [`LlmStack`].
//!
//! [`LlmStack`] stacks, outermost first, *per-call timeout → retry → concurrency limit* with a
//! `tower::ServiceBuilder` around [`LlmTowerService`] and erases the result back into an
//! `Arc<dyn LlmService>`:
//! - the timeout bounds the whole call (all attempts, backoff sleeps and the streamed body) and
//!   fails with `llm.timeout` (not retried: it is outside the retry layer);
//! - the retry layer is [`crate::retry::RetryLayer`];
//! - the concurrency limit holds its permit until the returned stream is dropped, so it bounds
//!   in-flight model streams, not just stream openings; a waiting call honours `request.cancel`.
//!
//! The erased service also wraps the final stream so `request.cancel` ends it promptly.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use power_loop_contracts::{
    BoxFuture, Error, ErrorCode, LlmRequest, LlmService, LlmStream, ProviderCapabilities, Result,
};
use tokio::sync::Semaphore;
use tower::util::BoxCloneSyncService;
use tower::{Layer, Service, ServiceBuilder, ServiceExt};

use crate::retry::{RetryLayer, RetryPolicy};
use crate::util::{llm_middleware_service, run_cancellable, until_deadline, with_cancel};

/// Adapts an `Arc<dyn LlmService>` to `tower::Service<LlmRequest>` (response: the chunk stream).
#[derive(Clone)]
pub struct LlmTowerService {
    inner: Arc<dyn LlmService>,
}

impl std::fmt::Debug for LlmTowerService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LlmTowerService")
            .field("model", &self.inner.model_name())
            .finish()
    }
}

impl LlmTowerService {
    /// Wraps a service.
    pub fn new(inner: Arc<dyn LlmService>) -> Self {
        LlmTowerService { inner }
    }
}

impl Service<LlmRequest> for LlmTowerService {
    type Response = LlmStream;
    type Error = Error;
    type Future = BoxFuture<'static, Result<LlmStream>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: LlmRequest) -> Self::Future {
        let inner = self.inner.clone();
        Box::pin(async move { inner.stream(req).await })
    }
}

fn timeout_error(limit: Duration) -> Error {
    Error::new(
        ErrorCode::LlmTimeout,
        format!(
            "the model call did not finish within {:.1} s; raise the timeout or shorten the request",
            limit.as_secs_f64()
        ),
    )
    .with_detail("timeout_ms", limit.as_millis() as u64)
}

/// Tower layer bounding a whole call (open + stream) by a deadline (`None`: no bound).
#[derive(Debug, Clone)]
pub struct CallTimeoutLayer {
    limit: Option<Duration>,
}

impl CallTimeoutLayer {
    /// A timeout layer.
    pub fn new(limit: Option<Duration>) -> Self {
        CallTimeoutLayer { limit }
    }
}

impl<S> Layer<S> for CallTimeoutLayer {
    type Service = CallTimeout<S>;
    fn layer(&self, inner: S) -> Self::Service {
        CallTimeout {
            inner,
            limit: self.limit,
        }
    }
}

llm_middleware_service!(
    /// The service made by [`CallTimeoutLayer`].
    CallTimeout,
    limit: Duration,
    call_with_timeout
);

/// One call under `limit`: the deadline covers opening the stream and every chunk after it.
async fn call_with_timeout<S>(svc: S, limit: Duration, req: LlmRequest) -> Result<LlmStream>
where
    S: Service<LlmRequest, Response = LlmStream, Error = Error>,
{
    let deadline = tokio::time::Instant::now() + limit;
    let stream = match tokio::time::timeout_at(deadline, svc.oneshot(req)).await {
        Ok(r) => r?,
        Err(_) => return Err(timeout_error(limit)),
    };
    Ok(until_deadline(stream, deadline, move || {
        timeout_error(limit)
    }))
}

/// Tower layer limiting concurrent calls; the permit lives as long as the returned stream.
#[derive(Debug, Clone)]
pub struct ConcurrencyLayer {
    sem: Option<Arc<Semaphore>>,
}

impl ConcurrencyLayer {
    /// At most `max` concurrent calls (`None`: unlimited). One semaphore per layer value.
    pub fn new(max: Option<usize>) -> Self {
        ConcurrencyLayer {
            sem: max.map(|m| Arc::new(Semaphore::new(m.max(1)))),
        }
    }
}

impl<S> Layer<S> for ConcurrencyLayer {
    type Service = Concurrency<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Concurrency {
            inner,
            sem: self.sem.clone(),
        }
    }
}

llm_middleware_service!(
    /// The service made by [`ConcurrencyLayer`].
    Concurrency,
    sem: Arc<Semaphore>,
    call_with_permit
);

/// One call holding a permit of `sem` for as long as the returned stream lives.
async fn call_with_permit<S>(svc: S, sem: Arc<Semaphore>, req: LlmRequest) -> Result<LlmStream>
where
    S: Service<LlmRequest, Response = LlmStream, Error = Error>,
{
    let cancel = req.cancel.clone();
    let permit = run_cancellable(cancel.as_ref(), "while waiting for a model slot", async {
        sem.acquire_owned()
            .await
            .map_err(|_| Error::internal("the LLM concurrency limiter was closed"))
    })
    .await?;
    let stream = svc.oneshot(req).await?;
    Ok(Box::pin(PermitStream {
        inner: stream,
        _permit: permit,
    }) as LlmStream)
}

struct PermitStream {
    inner: LlmStream,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl futures_core::Stream for PermitStream {
    type Item = Result<power_loop_contracts::StreamChunk>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

/// Builder of the middleware stack around a provider.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
#[must_use = "a stack does nothing until `wrap(provider)`"]
pub struct LlmStack {
    /// Retry policy (`None`: no retry layer).
    pub retry: Option<RetryPolicy>,
    /// Whole-call deadline (`None`: unbounded).
    pub call_timeout: Option<Duration>,
    /// Maximum concurrent calls (`None`: unlimited).
    pub concurrency: Option<usize>,
}

impl LlmStack {
    /// An empty stack (no layers).
    pub fn new() -> Self {
        Self::default()
    }
    /// Adds the retry layer.
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }
    /// Adds the per-call timeout.
    pub fn call_timeout(mut self, limit: Duration) -> Self {
        self.call_timeout = Some(limit);
        self
    }
    /// Adds the concurrency limit.
    pub fn concurrency_limit(mut self, max: usize) -> Self {
        self.concurrency = Some(max);
        self
    }

    /// Wraps `inner` (timeout → retry → concurrency) and erases it back to `Arc<dyn LlmService>`.
    pub fn wrap(&self, inner: Arc<dyn LlmService>) -> Arc<dyn LlmService> {
        let svc = ServiceBuilder::new()
            .layer(CallTimeoutLayer::new(self.call_timeout))
            .layer(RetryLayer::new(self.retry.clone()))
            .layer(ConcurrencyLayer::new(self.concurrency))
            .service(LlmTowerService::new(inner.clone()));
        Arc::new(StackedLlm {
            svc: BoxCloneSyncService::new(svc),
            inner,
        })
    }
}

/// Wraps `provider` in one retry layer: `LlmStack::new().retry(policy).wrap(provider)`.
///
/// Do it once, before handing the provider to the agent loop; the layer reports each attempt and
/// retry to the request's [`LlmCallObserver`](power_loop_contracts::LlmCallObserver), which is
/// how the loop emits `llm_retry_attempted`.
pub fn with_retry(provider: Arc<dyn LlmService>, policy: RetryPolicy) -> Arc<dyn LlmService> {
    LlmStack::new().retry(policy).wrap(provider)
}

/// A tower stack erased back into an [`LlmService`].
struct StackedLlm {
    svc: BoxCloneSyncService<LlmRequest, LlmStream, Error>,
    inner: Arc<dyn LlmService>,
}

impl LlmService for StackedLlm {
    fn stream(&self, request: LlmRequest) -> BoxFuture<'_, Result<LlmStream>> {
        let svc = self.svc.clone();
        Box::pin(async move {
            let cancel = request.cancel.clone();
            let stream = svc.oneshot(request).await?;
            Ok(with_cancel(stream, cancel))
        })
    }
    fn capabilities(&self) -> ProviderCapabilities {
        self.inner.capabilities()
    }
    fn model_name(&self) -> String {
        self.inner.model_name()
    }
    fn close(&self) -> BoxFuture<'_, Result<()>> {
        self.inner.close()
    }
}
