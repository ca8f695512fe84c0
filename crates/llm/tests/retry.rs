//! Retry, timeout and concurrency layers over the scripted model.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{complete_x, prompt_timeout};

use futures_util::StreamExt;
use power_loop_contracts::{CancellationToken, ErrorCode, LlmRequest, LlmService};
use power_loop_llm::{LlmStack, RetryEvent, RetryPolicy, ScriptedLlm, Step};
use serde_json::json;

fn fast() -> RetryPolicy {
    RetryPolicy::default()
        .with_base_delay(Duration::from_millis(5))
        .with_max_delay(Duration::from_millis(20))
}

#[tokio::test]
async fn retries_retryable_codes_then_succeeds_and_reports_events() {
    let llm = ScriptedLlm::new()
        .error(ErrorCode::LlmServer)
        .step(Step::rate_limited(Duration::from_millis(200)))
        .error(ErrorCode::LlmOverloaded)
        .text("ok");
    let events: Arc<Mutex<Vec<RetryEvent>>> = Arc::default();
    let ev = events.clone();
    let svc = LlmStack::new()
        .retry(
            fast()
                .with_max_attempts(4)
                .on_retry(move |e| ev.lock().unwrap().push(e)),
        )
        .wrap(Arc::new(llm.clone()));
    let t0 = Instant::now();
    let r = complete_x(&svc).await.unwrap();
    assert_eq!(r.raw_text, "ok");
    assert!(t0.elapsed() >= Duration::from_millis(200));
    assert_eq!(llm.call_count(), 4);
    let events = events.lock().unwrap();
    let codes: Vec<ErrorCode> = events.iter().map(|e| e.error_code).collect();
    assert_eq!(
        codes,
        vec![
            ErrorCode::LlmServer,
            ErrorCode::LlmRateLimited,
            ErrorCode::LlmOverloaded
        ]
    );
    assert_eq!(
        events.iter().map(|e| e.attempt).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(events[1].delay, Duration::from_millis(200));
    assert_eq!(events[0].max_attempts, 4);
}

#[tokio::test]
async fn permanent_errors_are_never_retried() {
    for code in [
        ErrorCode::LlmBadRequest,
        ErrorCode::LlmAuth,
        ErrorCode::LlmNotFound,
        ErrorCode::LlmProtocol,
        ErrorCode::LlmProvider,
    ] {
        let llm = ScriptedLlm::new().error(code).text("never");
        let svc = LlmStack::new().retry(fast()).wrap(Arc::new(llm.clone()));
        let e = complete_x(&svc).await.unwrap_err();
        assert_eq!(e.code(), code);
        assert_eq!(llm.call_count(), 1, "{code} was retried");
    }
}

#[tokio::test]
async fn exhaustion_gives_retry_exhausted_with_attempts_and_source() {
    let llm = ScriptedLlm::new().steps((0..5).map(|_| Step::error(ErrorCode::LlmConnection)));
    let svc = LlmStack::new()
        .retry(fast().with_max_attempts(3))
        .wrap(Arc::new(llm.clone()));
    let e = complete_x(&svc).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::LlmRetryExhausted);
    assert_eq!(e.detail("attempts"), Some(&json!(3)));
    assert_eq!(e.detail("last_error_code"), Some(&json!("llm.connection")));
    assert!(std::error::Error::source(&e).is_some());
    assert_eq!(llm.call_count(), 3);
}

#[tokio::test]
async fn incomplete_before_first_chunk_is_retried_but_not_after() {
    let llm = ScriptedLlm::new()
        .step(Step::text("").cut_off())
        .text("second");
    let svc = LlmStack::new().retry(fast()).wrap(Arc::new(llm.clone()));
    assert_eq!(
        svc.complete(LlmRequest::from_prompt("x"))
            .await
            .unwrap()
            .raw_text,
        "second"
    );
    assert_eq!(llm.call_count(), 2);

    let llm = ScriptedLlm::new()
        .step(Step::text("partial answer").fail_mid_stream(ErrorCode::LlmConnection))
        .text("second");
    let svc = LlmStack::new().retry(fast()).wrap(Arc::new(llm.clone()));
    let e = complete_x(&svc).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::LlmConnection);
    assert_eq!(llm.call_count(), 1);

    let llm = ScriptedLlm::new()
        .step(Step::text("partial").cut_off())
        .text("second");
    let svc = LlmStack::new().retry(fast()).wrap(Arc::new(llm.clone()));
    let e = complete_x(&svc).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::LlmStreamIncomplete);
    assert_eq!(llm.call_count(), 1);
}

#[tokio::test]
async fn cancellation_aborts_a_backoff_sleep_promptly() {
    let llm = ScriptedLlm::new()
        .step(Step::rate_limited(Duration::from_secs(30)))
        .text("never");
    let svc = LlmStack::new().retry(fast()).wrap(Arc::new(llm.clone()));
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        t.cancel();
    });
    let t0 = Instant::now();
    let e = svc
        .complete(LlmRequest::from_prompt("x").with_cancel(token))
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Cancelled);
    assert!(t0.elapsed() < Duration::from_secs(2));
    assert_eq!(llm.call_count(), 1);

    // Already cancelled: no call at all.
    let token = CancellationToken::new();
    token.cancel();
    let e = svc
        .complete(LlmRequest::from_prompt("x").with_cancel(token))
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Cancelled);
    assert_eq!(llm.call_count(), 1);
}

#[tokio::test]
async fn retry_after_is_capped() {
    let llm = ScriptedLlm::new()
        .step(Step::rate_limited(Duration::from_secs(3600)))
        .text("ok");
    let svc = LlmStack::new()
        .retry(fast().with_max_retry_after(Duration::from_millis(50)))
        .wrap(Arc::new(llm));
    let t0 = Instant::now();
    complete_x(&svc).await.unwrap();
    assert!(t0.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn call_timeout_covers_attempts_and_the_stream() {
    let llm = ScriptedLlm::new().step(Step::text("slow").with_delay(Duration::from_secs(30)));
    let svc = LlmStack::new()
        .retry(fast())
        .call_timeout(Duration::from_millis(100))
        .wrap(Arc::new(llm));
    prompt_timeout(&svc).await;
}

#[tokio::test]
async fn concurrency_limit_holds_the_permit_while_streaming() {
    let llm = ScriptedLlm::new().fallback(power_loop_llm::Fallback::Text("x".into()));
    let svc = LlmStack::new().concurrency_limit(1).wrap(Arc::new(llm));
    let s1 = svc.stream(LlmRequest::from_prompt("a")).await.unwrap();
    // A second call waits while the first stream is alive.
    let svc2 = svc.clone();
    let second = tokio::spawn(async move { svc2.complete(LlmRequest::from_prompt("b")).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!second.is_finished());
    let chunks: Vec<_> = s1.collect().await;
    assert!(chunks.iter().all(|c| c.is_ok()));
    // s1 dropped by collect → the waiting call proceeds.
    let r = tokio::time::timeout(Duration::from_secs(2), second)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(r.raw_text, "x");
}

#[tokio::test]
async fn stacked_service_keeps_model_name_and_capabilities() {
    let llm = ScriptedLlm::new().with_model("my-model");
    let svc = LlmStack::new().retry(fast()).wrap(Arc::new(llm));
    assert_eq!(svc.model_name(), "my-model");
    assert_eq!(svc.capabilities().provider, "scripted");
    svc.close().await.unwrap();
}

/// Records what a retry layer reports to a request's observer.
#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl power_loop_contracts::LlmCallObserver for Recorder {
    fn on_attempt(&self, attempt: u32) {
        self.0.lock().unwrap().push(format!("attempt {attempt}"));
    }
    fn on_retry(&self, retry: &power_loop_contracts::RetryAttempt) {
        self.0.lock().unwrap().push(format!(
            "retry {} of {}: {}",
            retry.attempt, retry.max_attempts, retry.error_code
        ));
    }
}

#[tokio::test]
async fn the_retry_layer_reports_attempts_and_retries_to_the_request_observer() {
    let llm = ScriptedLlm::new()
        .error(ErrorCode::LlmServer)
        .error(ErrorCode::LlmConnection)
        .text("ok");
    let svc = power_loop_llm::with_retry(Arc::new(llm.clone()), fast().with_max_attempts(3));
    let rec = Arc::new(Recorder::default());
    let r = svc
        .complete(LlmRequest::from_prompt("x").with_observer(rec.clone()))
        .await
        .unwrap();
    assert_eq!(r.raw_text, "ok");
    assert_eq!(
        *rec.0.lock().unwrap(),
        vec![
            "attempt 1",
            "retry 1 of 3: llm.server",
            "attempt 2",
            "retry 2 of 3: llm.connection",
            "attempt 3",
        ]
    );
}

#[tokio::test]
async fn only_the_outermost_retry_layer_reports_to_the_observer() {
    let llm = ScriptedLlm::new().error(ErrorCode::LlmServer).text("ok");
    let inner = LlmStack::new()
        .retry(fast().with_max_attempts(2))
        .wrap(Arc::new(llm.clone()));
    let outer = power_loop_llm::with_retry(inner, fast().with_max_attempts(3));
    let rec = Arc::new(Recorder::default());
    let r = outer
        .complete(LlmRequest::from_prompt("x").with_observer(rec.clone()))
        .await
        .unwrap();
    assert_eq!(r.raw_text, "ok");
    assert_eq!(llm.call_count(), 2, "the inner layer retried once");
    assert_eq!(*rec.0.lock().unwrap(), vec!["attempt 1"]);
}
