//! Provider-aware retry of LLM calls as a tower layer.
//!
//! Retried: `llm.rate_limited` (429), `llm.overloaded` (Anthropic 529 / `overloaded_error`),
//! `llm.server` (408/409/5xx), `llm.connection`, `llm.timeout` raised by the transport (a stalled
//! HTTP request), and `llm.stream_incomplete` — all only **before the first chunk** was yielded:
//! the layer opens the stream and waits for its first item; once a chunk has been handed to the
//! caller a failure surfaces unchanged. Never retried: `llm.bad_request` (400/422), `llm.auth`
//! (401/403), `llm.not_found` (404), `llm.protocol`, `llm.provider_error`, `cancelled`.
//!
//! Delay before retry `k` (1-based): `min(base_delay · 2^(k-1), max_delay)` times a jitter factor
//! in `(1 - jitter, 1]`; when the error carries a server `retry_after_ms` detail (from
//! `Retry-After` / `retry-after-ms`) that value is used instead, capped at `max_retry_after`.
//! Exhaustion gives `llm.retry_exhausted` (the last error as source; `attempts` and
//! `last_error_code` in details). `request.cancel` aborts a backoff sleep or a pending attempt
//! promptly with `cancelled`.
//!
//! # Attempts
//! `max_attempts` counts every attempt including the first: `4` is one call plus up to three
//! retries, `1` is no retry, and `0` is read as `1` (no retries: exactly one attempt, never zero).
//! Without retries (`max_attempts` ≤ 1) an error comes back unchanged, with its own code, never
//! wrapped in `llm.retry_exhausted`.
//!
//! # Total timeout
//! [`RetryPolicy::total_timeout`] (default: none) is one deadline for the whole call, started
//! when the call starts: every attempt, every backoff sleep and the streamed answer after the
//! first chunk. An attempt still running at the deadline is abandoned, a backoff sleep is cut to
//! the time left, and no attempt starts after it; the call then fails with `llm.timeout` carrying
//! the details `stage = "total_timeout"`, `total_timeout_ms`, `elapsed_ms` and `attempts` (the
//! attempts started), and the last attempt's error as source when one failed. The layer never
//! retries its own deadline.
//!
//! The layer takes the request's [`LlmCallObserver`](power_loop_contracts::LlmCallObserver) off
//! it and reports every attempt (`on_attempt`) and every retry (`on_retry`, before the backoff
//! sleep, together with [`RetryPolicy::on_retry`]) to it; layers beneath see no observer.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use power_loop_contracts::{Error, ErrorCode, LlmRequest, LlmStream, Result, StreamChunk};
use tower::{Layer, Service, ServiceExt};

use crate::util::{cancelled_error, llm_middleware_service, run_cancellable, until_deadline};

/// What the retry layer reports before sleeping for a retry (e.g. for `llm_retry_attempted`):
/// the contracts' [`RetryAttempt`](power_loop_contracts::RetryAttempt) under its historical name.
pub use power_loop_contracts::RetryAttempt as RetryEvent;

/// The observer callback type of [`RetryPolicy::on_retry`].
pub type RetryObserver = Arc<dyn Fn(RetryEvent) + Send + Sync>;

/// Retry settings. Plain struct with `Default` + builder methods.
#[derive(Clone)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Attempts in total, including the first (default 4 = 1 + 3 retries). `1` disables retry;
    /// `0` is read as `1` (no retries, one attempt).
    pub max_attempts: u32,
    /// First backoff delay (default 500 ms).
    pub base_delay: Duration,
    /// Backoff ceiling (default 8 s).
    pub max_delay: Duration,
    /// Jitter fraction in `[0, 1]`: the backoff is multiplied by a factor in `(1 - jitter, 1]`
    /// (default 0.25).
    pub jitter: f64,
    /// Ceiling for a server-requested `Retry-After` wait (default 60 s).
    pub max_retry_after: Duration,
    /// One deadline covering the whole call: all attempts, backoff sleeps and the streamed
    /// answer (default `None`: unbounded). Exceeding it fails the call with `llm.timeout`.
    pub total_timeout: Option<Duration>,
    /// Called before each backoff sleep (its panics are not caught; keep it cheap).
    pub on_retry: Option<RetryObserver>,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
            jitter: 0.25,
            max_retry_after: Duration::from_secs(60),
            total_timeout: None,
            on_retry: None,
        }
    }
}

impl fmt::Debug for RetryPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryPolicy")
            .field("max_attempts", &self.max_attempts)
            .field("base_delay", &self.base_delay)
            .field("max_delay", &self.max_delay)
            .field("jitter", &self.jitter)
            .field("max_retry_after", &self.max_retry_after)
            .field("total_timeout", &self.total_timeout)
            .field("on_retry", &self.on_retry.as_ref().map(|_| "<fn>"))
            .finish()
    }
}

impl RetryPolicy {
    /// The default policy.
    pub fn new() -> Self {
        Self::default()
    }
    /// No retries (one attempt).
    pub fn none() -> Self {
        Self::default().with_max_attempts(1)
    }
    /// Sets the attempt limit, the first attempt included; `0` means no retries (stored as 1).
    pub fn with_max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }
    /// The number of attempts this policy makes at most (`max_attempts`, `0` read as `1`).
    pub fn effective_max_attempts(&self) -> u32 {
        self.max_attempts.max(1)
    }
    /// Sets the deadline of the whole call (attempts, backoff sleeps and streaming); a zero
    /// duration removes it.
    pub fn with_total_timeout(mut self, d: Duration) -> Self {
        self.total_timeout = (!d.is_zero()).then_some(d);
        self
    }
    /// Sets the first backoff delay.
    pub fn with_base_delay(mut self, d: Duration) -> Self {
        self.base_delay = d;
        self
    }
    /// Sets the backoff ceiling.
    pub fn with_max_delay(mut self, d: Duration) -> Self {
        self.max_delay = d;
        self
    }
    /// Sets the jitter fraction (clamped to `[0, 1]`).
    pub fn with_jitter(mut self, j: f64) -> Self {
        self.jitter = if j.is_finite() {
            j.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self
    }
    /// Sets the ceiling for server-requested waits.
    pub fn with_max_retry_after(mut self, d: Duration) -> Self {
        self.max_retry_after = d;
        self
    }
    /// Sets the observer called before each backoff sleep.
    pub fn on_retry(mut self, f: impl Fn(RetryEvent) + Send + Sync + 'static) -> Self {
        self.on_retry = Some(Arc::new(f));
        self
    }

    /// The backoff before retry `k` (1-based), without jitter.
    pub fn backoff(&self, k: u32) -> Duration {
        if k == 0 {
            return Duration::ZERO;
        }
        let factor = 2u32.saturating_pow(k.saturating_sub(1).min(31));
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }

    /// The actual delay before retry `k` after `err` (server wait or jittered backoff).
    pub fn delay_for(&self, k: u32, err: &Error) -> Duration {
        if let Some(after) = retry_after_of(err).filter(|d| !d.is_zero()) {
            return after.min(self.max_retry_after);
        }
        let b = self.backoff(k);
        let j = if self.jitter.is_finite() {
            self.jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        if j == 0.0 || b.is_zero() {
            return b;
        }
        // factor in (1 - j, 1]
        let r: f64 = rand::random::<f64>();
        b.mul_f64(1.0 - j * r)
    }
}

/// The server-requested wait carried by an error (`retry_after_ms` detail).
pub fn retry_after_of(err: &Error) -> Option<Duration> {
    err.detail("retry_after_ms")
        .and_then(|v| v.as_u64())
        .map(Duration::from_millis)
}

/// Whether the retry layer retries an error with this code (before the first chunk): the
/// retryable codes ([`ErrorCode::is_retryable`]) of the `llm.` family.
pub fn is_retryable_code(code: ErrorCode) -> bool {
    code.is_retryable() && code.as_str().starts_with("llm.")
}

/// Tower layer adding [`RetryPolicy`] retries (a no-op layer when built with `None`).
#[derive(Debug, Clone)]
pub struct RetryLayer {
    policy: Option<RetryPolicy>,
}

impl RetryLayer {
    /// A retry layer (`None` passes calls through).
    pub fn new(policy: Option<RetryPolicy>) -> Self {
        RetryLayer { policy }
    }
}

impl<S> Layer<S> for RetryLayer {
    type Service = RetryService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RetryService {
            inner,
            policy: self.policy.clone().map(Arc::new),
        }
    }
}

llm_middleware_service!(
    /// The service made by [`RetryLayer`].
    RetryService,
    policy: Arc<RetryPolicy>,
    call_with_retry
);

/// Opens the stream and waits for its first item, so a failure before any chunk is retryable.
async fn open_and_peek<S>(svc: S, req: LlmRequest) -> Result<LlmStream>
where
    S: Service<LlmRequest, Response = LlmStream, Error = Error>,
{
    let mut stream = svc.oneshot(req).await?;
    match stream.next().await {
        Some(Ok(first)) => {
            let head = futures_util::stream::once(async move { Ok::<StreamChunk, Error>(first) });
            Ok(Box::pin(head.chain(stream)))
        }
        Some(Err(e)) => Err(e),
        None => Err(Error::new(
            ErrorCode::LlmStreamIncomplete,
            "the model's stream ended before its first chunk (retry the call)",
        )),
    }
}

/// The `llm.timeout` error of a crossed [`RetryPolicy::total_timeout`].
fn total_timeout_error(total: Duration, started: tokio::time::Instant, attempts: u32) -> Error {
    let elapsed = started.elapsed();
    Error::new(
        ErrorCode::LlmTimeout,
        format!(
            "the model call did not finish within its total timeout of {:.1} s ({attempts} attempt(s), {:.1} s elapsed); raise RetryPolicy::total_timeout or check the provider",
            total.as_secs_f64(),
            elapsed.as_secs_f64()
        ),
    )
    .with_detail("stage", "total_timeout")
    .with_detail("total_timeout_ms", u64::try_from(total.as_millis()).unwrap_or(u64::MAX))
    .with_detail("elapsed_ms", u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
    .with_detail("attempts", attempts)
}

async fn call_with_retry<S>(
    svc: S,
    policy: Arc<RetryPolicy>,
    mut req: LlmRequest,
) -> Result<LlmStream>
where
    S: Service<LlmRequest, Response = LlmStream, Error = Error> + Clone,
{
    let cancel = req.cancel.clone();
    // This layer reports the call's attempts; the layers beneath it must not report them again.
    let observer = req.observer.take();
    let max = policy.effective_max_attempts();
    let started = tokio::time::Instant::now();
    let deadline = policy.total_timeout.map(|t| (started + t, t));
    let mut attempt: u32 = 0;
    let mut last_err: Option<Error> = None;
    loop {
        attempt += 1;
        if cancel.as_ref().is_some_and(|t| t.is_cancelled()) {
            return Err(cancelled_error("before a model call attempt"));
        }
        if let Some((at, total)) = deadline
            && tokio::time::Instant::now() >= at
        {
            let e = total_timeout_error(total, started, attempt - 1);
            return Err(match last_err {
                Some(last) => e.with_source(last),
                None => e,
            });
        }
        if let Some(o) = &observer {
            o.on_attempt(attempt);
        }
        let opening = run_cancellable(
            cancel.as_ref(),
            "while waiting for the model",
            open_and_peek(svc.clone(), req.clone()),
        );
        let result = match deadline {
            None => opening.await,
            Some((at, total)) => match tokio::time::timeout_at(at, opening).await {
                Ok(r) => r,
                Err(_) => return Err(total_timeout_error(total, started, attempt)),
            },
        };
        let err = match result {
            Ok(stream) => {
                return Ok(match deadline {
                    None => stream,
                    Some((at, total)) => until_deadline(stream, at, move || {
                        total_timeout_error(total, started, attempt)
                    }),
                });
            }
            Err(e) => e,
        };
        if !is_retryable_code(err.code()) || max == 1 {
            return Err(err);
        }
        if attempt >= max {
            let code = err.code();
            let msg = format!(
                "the model call failed {attempt} time(s) in a row; last error: {err}; check the provider status or raise max_retries"
            );
            return Err(Error::new(ErrorCode::LlmRetryExhausted, msg)
                .with_detail("attempts", attempt)
                .with_detail("last_error_code", code.as_str())
                .with_source(err));
        }
        let mut delay = policy.delay_for(attempt, &err);
        if let Some((at, total)) = deadline {
            let left = at.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Err(total_timeout_error(total, started, attempt).with_source(err));
            }
            delay = delay.min(left);
        }
        tracing::debug!(target: "power_loop::llm", attempt, ?delay, code = %err.code(), "retrying model call");
        let event = RetryEvent::new(attempt, max, delay, err.code(), err.message())
            .with_retry_after(retry_after_of(&err));
        if let Some(o) = &observer {
            o.on_retry(&event);
        }
        if let Some(cb) = &policy.on_retry {
            cb(event);
        }
        let sleep = tokio::time::sleep(delay);
        match &cancel {
            Some(t) => {
                if t.run_until_cancelled(sleep).await.is_none() {
                    return Err(cancelled_error("during a retry backoff"));
                }
            }
            None => sleep.await,
        }
        last_err = Some(err);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        let p = RetryPolicy::default().with_jitter(0.0);
        assert_eq!(p.backoff(1), Duration::from_millis(500));
        assert_eq!(p.backoff(2), Duration::from_secs(1));
        assert_eq!(p.backoff(10), Duration::from_secs(8));
        assert_eq!(p.backoff(1000), Duration::from_secs(8));
        let e =
            Error::new(ErrorCode::LlmRateLimited, "x").with_detail("retry_after_ms", 120_000u64);
        assert_eq!(p.delay_for(1, &e), Duration::from_secs(60));
        let j = RetryPolicy::default();
        for _ in 0..100 {
            let d = j.delay_for(2, &Error::new(ErrorCode::LlmServer, "x"));
            assert!(d > Duration::from_millis(750) && d <= Duration::from_secs(1));
        }
    }
}
