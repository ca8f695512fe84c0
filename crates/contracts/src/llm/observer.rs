//! What a retry layer reports back to whoever made the call.
//!
//! A caller that wants to see the attempts of one model call puts an [`LlmCallObserver`] on the
//! request ([`LlmRequest::observer`](super::LlmRequest::observer)). The outermost retry layer
//! around the provider takes it off the request (so layers beneath it do not report the same
//! call twice) and tells it when an attempt starts and when it backs off to try again. The agent
//! loop uses this to emit its per-attempt and `llm_retry_attempted` events without knowing which
//! crate implements the retry.

use std::time::Duration;

use crate::error::ErrorCode;

/// One failed attempt that a retry layer is about to retry (reported before the backoff sleep).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct RetryAttempt {
    /// The attempt that failed (1-based).
    pub attempt: u32,
    /// The configured attempt limit.
    pub max_attempts: u32,
    /// How long the layer sleeps before the next attempt.
    pub delay: Duration,
    /// Code of the error that triggered the retry.
    pub error_code: ErrorCode,
    /// Message of that error.
    pub error_message: String,
    /// The server's requested wait, when it sent one.
    pub retry_after: Option<Duration>,
}

impl RetryAttempt {
    /// A report of failed attempt `attempt` (of `max_attempts`) retried after `delay`.
    pub fn new(
        attempt: u32,
        max_attempts: u32,
        delay: Duration,
        error_code: ErrorCode,
        error_message: impl Into<String>,
    ) -> Self {
        RetryAttempt {
            attempt,
            max_attempts,
            delay,
            error_code,
            error_message: error_message.into(),
            retry_after: None,
        }
    }

    /// Sets the server's requested wait.
    pub fn with_retry_after(mut self, after: Option<Duration>) -> Self {
        self.retry_after = after;
        self
    }
}

/// Receives the attempts of one model call from the retry layer that runs them.
///
/// Both methods default to doing nothing. They are called synchronously from the retry loop:
/// keep them cheap and do not block.
pub trait LlmCallObserver: Send + Sync {
    /// Attempt `attempt` (1-based) is about to open its stream.
    fn on_attempt(&self, attempt: u32) {
        let _ = attempt;
    }

    /// An attempt failed before its first chunk and will be retried after `retry.delay`.
    fn on_retry(&self, retry: &RetryAttempt) {
        let _ = retry;
    }
}

impl std::fmt::Debug for dyn LlmCallObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LlmCallObserver")
    }
}
