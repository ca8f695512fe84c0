//! Retry limits: `max_attempts = 0` means one attempt, the total timeout across attempts,
//! HTTP-date `Retry-After`, and a `complete` call (the compaction summary's path) going through
//! the retry layer and reporting its attempts to the request's observer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{complete_x, prompt_timeout};
use power_loop_contracts::{ErrorCode, LlmCallObserver, LlmRequest, LlmService, RetryAttempt};
use power_loop_llm::{LlmProviderConfig, RetryEvent, RetryPolicy, ScriptedLlm, Step, with_retry};
use serde_json::json;

fn fast() -> RetryPolicy {
    RetryPolicy::default()
        .with_base_delay(Duration::from_millis(5))
        .with_max_delay(Duration::from_millis(20))
        .with_jitter(0.0)
}

#[tokio::test]
async fn zero_max_attempts_means_one_attempt_and_the_error_unchanged() {
    let mut by_field = fast();
    by_field.max_attempts = 0;
    assert_eq!(by_field.effective_max_attempts(), 1);
    let by_builder = fast().with_max_attempts(0);
    assert_eq!(by_builder.max_attempts, 1);
    assert_eq!(
        LlmProviderConfig::default()
            .with_max_retries(0)
            .retry_policy()
            .effective_max_attempts(),
        1
    );
    for policy in [by_field, by_builder] {
        let llm = ScriptedLlm::new()
            .error(ErrorCode::LlmServer)
            .text("never reached");
        let svc = with_retry(Arc::new(llm.clone()), policy);
        let e = complete_x(&svc).await.unwrap_err();
        assert_eq!(e.code(), ErrorCode::LlmServer, "not wrapped: {e}");
        assert_eq!(llm.call_count(), 1);
    }
}

#[tokio::test]
async fn total_timeout_bounds_all_attempts_and_backoffs() {
    let llm = ScriptedLlm::new().steps((0..50).map(|_| Step::error(ErrorCode::LlmServer)));
    let policy = RetryPolicy::default()
        .with_max_attempts(50)
        .with_base_delay(Duration::from_millis(60))
        .with_max_delay(Duration::from_millis(60))
        .with_jitter(0.0)
        .with_total_timeout(Duration::from_millis(250));
    let svc = with_retry(Arc::new(llm.clone()), policy);
    let t0 = Instant::now();
    let e = complete_x(&svc).await.unwrap_err();
    let took = t0.elapsed();
    assert_eq!(e.code(), ErrorCode::LlmTimeout, "{e}");
    assert_eq!(e.detail("stage"), Some(&json!("total_timeout")));
    assert_eq!(e.detail("total_timeout_ms"), Some(&json!(250)));
    let attempts = e.detail("attempts").and_then(|v| v.as_u64()).unwrap();
    assert!((4..=6).contains(&attempts), "attempts {attempts}");
    assert_eq!(attempts, llm.call_count());
    assert!(std::error::Error::source(&e).is_some(), "last error kept");
    assert!(
        took >= Duration::from_millis(240) && took < Duration::from_millis(600),
        "{took:?}"
    );
}

#[tokio::test]
async fn total_timeout_abandons_a_stalled_attempt_and_cuts_a_long_backoff() {
    // An attempt that never answers.
    let llm = ScriptedLlm::new().step(Step::text("late").with_delay(Duration::from_secs(30)));
    let svc = with_retry(
        Arc::new(llm),
        fast().with_total_timeout(Duration::from_millis(150)),
    );
    let e = prompt_timeout(&svc).await;
    assert_eq!(e.detail("attempts"), Some(&json!(1)));

    // A server wait longer than the time left: the backoff is cut to the deadline.
    let events: Arc<Mutex<Vec<RetryEvent>>> = Arc::default();
    let ev = events.clone();
    let llm = ScriptedLlm::new()
        .step(Step::rate_limited(Duration::from_secs(20)))
        .text("never");
    let svc = with_retry(
        Arc::new(llm.clone()),
        fast()
            .with_total_timeout(Duration::from_millis(200))
            .on_retry(move |e| ev.lock().unwrap().push(e)),
    );
    prompt_timeout(&svc).await;
    assert_eq!(llm.call_count(), 1);
    let events = events.lock().unwrap();
    assert_eq!(events.len(), 1);
    assert!(
        events[0].delay <= Duration::from_millis(200),
        "{:?}",
        events[0].delay
    );
}

#[tokio::test]
async fn a_call_within_its_total_timeout_is_untouched() {
    let llm = ScriptedLlm::new()
        .error(ErrorCode::LlmConnection)
        .text("fine");
    let svc = with_retry(
        Arc::new(llm.clone()),
        fast().with_total_timeout(Duration::from_secs(5)),
    );
    let r = complete_x(&svc).await.unwrap();
    assert_eq!(r.raw_text, "fine");
    assert_eq!(llm.call_count(), 2);
}

#[derive(Default)]
struct Seen(Mutex<Vec<String>>);

impl LlmCallObserver for Seen {
    fn on_attempt(&self, attempt: u32) {
        self.0.lock().unwrap().push(format!("attempt {attempt}"));
    }
    fn on_retry(&self, retry: &RetryAttempt) {
        self.0
            .lock()
            .unwrap()
            .push(format!("retry {} {}", retry.attempt, retry.error_code));
    }
}

/// The compaction summary call is a `complete` on the provider the loop holds: wrapped once by
/// `with_retry`, it is retried and reports its attempts to the observer on the request, which is
/// how the agent emits `llm_call_*` and `llm_retry_attempted` for it.
#[tokio::test]
async fn complete_goes_through_the_retry_layer_and_reports_attempts() {
    let llm = ScriptedLlm::new()
        .error(ErrorCode::LlmOverloaded)
        .text("<summary>folded</summary>");
    let svc = with_retry(Arc::new(llm.clone()), fast());
    let seen = Arc::new(Seen::default());
    let req = LlmRequest::from_prompt("summarize").with_observer(seen.clone());
    let r = svc.complete(req).await.unwrap();
    assert_eq!(r.raw_text, "<summary>folded</summary>");
    assert_eq!(
        *seen.0.lock().unwrap(),
        vec!["attempt 1", "retry 1 llm.overloaded", "attempt 2"]
    );
    // The provider beneath never sees the observer (the layer took it off the request).
    assert!(llm.requests().iter().all(|r| r.observer.is_none()));
}

#[cfg(feature = "openai")]
mod http_date {
    use std::time::SystemTime;

    use super::*;
    use common::{Reply, TestServer, data};
    use power_loop_llm::{OpenAiConfig, OpenAiLlm};

    fn ok() -> Reply {
        Reply::sse_parts(&[data(&[
            r#"{"choices":[{"delta":{"content":"ok"},"finish_reason":"stop"}]}"#,
            "[DONE]",
        ])])
    }

    fn limited(retry_after: &str) -> Reply {
        Reply::status(
            429,
            "Too Many Requests",
            &[("retry-after", retry_after)],
            r#"{"error":{"message":"slow down","type":"rate_limit_exceeded"}}"#,
        )
    }

    async fn run(server: &TestServer, policy: RetryPolicy) -> (Vec<RetryEvent>, Duration) {
        let llm = OpenAiLlm::new(OpenAiConfig::new(
            format!("{}/v1", server.base),
            "k",
            "gpt-4o-mini",
        ))
        .unwrap();
        let events: Arc<Mutex<Vec<RetryEvent>>> = Arc::default();
        let ev = events.clone();
        let svc = with_retry(
            Arc::new(llm),
            policy.on_retry(move |e| ev.lock().unwrap().push(e)),
        );
        let t0 = Instant::now();
        let r = complete_x(&svc).await.unwrap();
        assert_eq!(r.raw_text, "ok");
        let events = events.lock().unwrap().clone();
        (events, t0.elapsed())
    }

    #[tokio::test]
    async fn an_http_date_retry_after_is_honoured_like_seconds() {
        // Two seconds ahead, at the one-second resolution of an IMF-fixdate.
        let at = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(2));
        let server = TestServer::start(vec![limited(&at), ok()]).await;
        let (events, took) = run(&server, fast()).await;
        assert_eq!(events.len(), 1);
        let wait = events[0].retry_after.expect("server wait reported");
        assert!(
            wait > Duration::from_millis(900) && wait <= Duration::from_secs(2),
            "{wait:?}"
        );
        assert_eq!(events[0].delay, wait, "the server's date wins over backoff");
        assert!(took >= Duration::from_millis(900), "{took:?}");
        assert_eq!(server.count(), 2);
    }

    #[tokio::test]
    async fn an_http_date_retry_after_is_clamped_and_a_past_date_uses_backoff() {
        let far = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(3600));
        let server = TestServer::start(vec![limited(&far), ok()]).await;
        let (events, took) = run(
            &server,
            fast().with_max_retry_after(Duration::from_millis(150)),
        )
        .await;
        assert_eq!(events[0].delay, Duration::from_millis(150));
        assert!(took < Duration::from_secs(2), "{took:?}");

        // The obsolete RFC 850 form, in the past: no server wait, the policy's backoff.
        let server = TestServer::start(vec![limited("Sunday, 06-Nov-94 08:49:37 GMT"), ok()]).await;
        let (events, _) = run(&server, fast()).await;
        assert_eq!(events[0].delay, Duration::from_millis(5));
    }
}
