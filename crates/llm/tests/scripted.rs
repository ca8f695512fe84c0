//! The scripted offline model.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use power_loop_contracts::{
    CancellationToken, ErrorCode, FinishReason, LlmRequest, LlmService, Message, Role, TokenUsage,
};
use power_loop_llm::{Fallback, ScriptedLlm, Step};
use serde_json::json;

#[tokio::test]
async fn text_is_streamed_as_several_deltas() {
    let llm = ScriptedLlm::new().text("Hello there, world!");
    let mut s = llm.stream(LlmRequest::from_prompt("hi")).await.unwrap();
    let mut deltas = Vec::new();
    let mut last = None;
    while let Some(c) = s.next().await {
        let c = c.unwrap();
        if c.is_final {
            last = Some(c);
        } else {
            deltas.push(c.delta_text);
        }
    }
    assert!(deltas.len() >= 2, "{deltas:?}");
    assert_eq!(deltas.concat(), "Hello there, world!");
    let last = last.unwrap();
    assert_eq!(last.finish_reason, Some(FinishReason::Stop));
    assert!(last.token_usage.unwrap().total_tokens.unwrap() > 0);
    assert_eq!(last.model.as_deref(), Some("scripted"));
}

#[tokio::test]
async fn script_of_tool_calls_then_text_and_recorded_requests() {
    let llm = ScriptedLlm::new()
        .tool_call("echo", json!({"text": "hi"}))
        .tool_calls([("a", json!({"x": 1})), ("b", json!({"y": "é"}))])
        .then_text("done");
    let r1 = llm.complete(LlmRequest::from_prompt("one")).await.unwrap();
    assert_eq!(r1.finish_reason, Some(FinishReason::ToolCalls));
    assert_eq!(r1.tool_calls.len(), 1);
    assert_eq!(r1.tool_calls[0].name(), "echo");
    assert_eq!(
        r1.tool_calls[0].arguments_json().unwrap(),
        json!({"text": "hi"})
    );
    assert_eq!(r1.tool_calls[0].id, "call_1_0");
    let r2 = llm.complete(LlmRequest::from_prompt("two")).await.unwrap();
    assert_eq!(r2.tool_calls.len(), 2);
    assert_eq!(r2.tool_calls[1].name(), "b");
    assert_eq!(
        r2.tool_calls[1].arguments_json().unwrap(),
        json!({"y": "é"})
    );
    let r3 = llm
        .complete(LlmRequest::from_prompt("three"))
        .await
        .unwrap();
    assert_eq!(r3.raw_text, "done");
    assert_eq!(llm.remaining_steps(), 0);
    // Exhausted → fallback echo.
    let r4 = llm
        .complete(LlmRequest::from_prompt("echo me"))
        .await
        .unwrap();
    assert_eq!(r4.raw_text, "echo me");
    let reqs = llm.requests();
    assert_eq!(reqs.len(), 4);
    assert_eq!(reqs[1].messages[0].text(), "two");
    assert_eq!(llm.call_count(), 4);
    assert_eq!(llm.last_request().unwrap().messages[0].role, Role::User);
}

#[tokio::test]
async fn structured_answer_usage_and_think() {
    let llm = ScriptedLlm::new().step(
        Step::json(json!({"answer": 42}))
            .with_tokens(100, 7)
            .with_think("let me think"),
    );
    let r = llm.complete(LlmRequest::from_prompt("q")).await.unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&r.raw_text).unwrap(),
        json!({"answer": 42})
    );
    assert_eq!(r.think, "let me think");
    assert_eq!(
        r.token_usage,
        TokenUsage {
            prompt_tokens: Some(100),
            completion_tokens: Some(7),
            total_tokens: Some(107),
            ..Default::default()
        }
    );
}

#[tokio::test]
async fn errors_on_cue_with_any_code() {
    let llm = ScriptedLlm::new()
        .error(ErrorCode::LlmAuth)
        .step(Step::rate_limited(Duration::from_millis(1500)))
        .step(Step::error_msg(ErrorCode::LlmServer, "boom"))
        .text("ok");
    let e = llm
        .complete(LlmRequest::from_prompt("a"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::LlmAuth);
    let e = llm
        .complete(LlmRequest::from_prompt("a"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::LlmRateLimited);
    assert_eq!(e.detail("retry_after_ms"), Some(&json!(1500)));
    let e = llm
        .complete(LlmRequest::from_prompt("a"))
        .await
        .unwrap_err();
    assert_eq!(e.message(), "boom");
    assert_eq!(
        llm.complete(LlmRequest::from_prompt("a"))
            .await
            .unwrap()
            .raw_text,
        "ok"
    );
}

#[tokio::test]
async fn cut_off_and_mid_stream_failures() {
    let llm = ScriptedLlm::new()
        .step(Step::text("partial").cut_off())
        .step(Step::text("partial").fail_mid_stream(ErrorCode::LlmConnection));
    let e = llm
        .complete(LlmRequest::from_prompt("a"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::LlmStreamIncomplete);
    let e = llm
        .complete(LlmRequest::from_prompt("a"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::LlmConnection);
}

#[tokio::test]
async fn from_fn_and_fallbacks() {
    let llm = ScriptedLlm::from_fn(|req| {
        if req.tools.is_empty() {
            Step::text(format!("{} messages", req.messages.len()))
        } else {
            Step::tool_call(&req.tools[0].name, json!({}))
        }
    });
    let r = llm
        .complete(LlmRequest::new(vec![
            Message::user("a"),
            Message::assistant("b"),
            Message::user("c"),
        ]))
        .await
        .unwrap();
    assert_eq!(r.raw_text, "3 messages");

    let fixed = ScriptedLlm::new().fallback(Fallback::Text("fixed".into()));
    assert_eq!(
        fixed
            .complete(LlmRequest::from_prompt("x"))
            .await
            .unwrap()
            .raw_text,
        "fixed"
    );
    let prefixed = ScriptedLlm::new().fallback(Fallback::EchoWithPrefix("echo: ".into()));
    assert_eq!(
        prefixed
            .complete(LlmRequest::from_prompt("x"))
            .await
            .unwrap()
            .raw_text,
        "echo: x"
    );
    let strict = ScriptedLlm::new()
        .text("only")
        .fallback(Fallback::Error(ErrorCode::Internal));
    strict.complete(LlmRequest::from_prompt("x")).await.unwrap();
    let e = strict
        .complete(LlmRequest::from_prompt("x"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Internal);
}

#[tokio::test]
async fn shared_clone_and_push_after_sharing() {
    let llm = ScriptedLlm::new();
    let shared: Arc<dyn LlmService> = Arc::new(llm.clone());
    llm.push(Step::text("later"));
    assert_eq!(
        shared
            .complete(LlmRequest::from_prompt("x"))
            .await
            .unwrap()
            .raw_text,
        "later"
    );
    assert_eq!(llm.requests().len(), 1);
    let quiet = ScriptedLlm::new().record_requests(false);
    quiet.complete(LlmRequest::from_prompt("x")).await.unwrap();
    assert!(quiet.requests().is_empty());
    assert_eq!(quiet.call_count(), 1);
}

#[tokio::test]
async fn delay_is_honoured_and_cancellable() {
    let llm = ScriptedLlm::new().step(Step::text("slow").with_delay(Duration::from_millis(100)));
    let t0 = Instant::now();
    llm.complete(LlmRequest::from_prompt("x")).await.unwrap();
    assert!(t0.elapsed() >= Duration::from_millis(100));

    let llm = ScriptedLlm::new().step(Step::text("slow").with_delay(Duration::from_secs(30)));
    let token = CancellationToken::new();
    let t = token.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        t.cancel();
    });
    let t0 = Instant::now();
    let e = llm
        .complete(LlmRequest::from_prompt("x").with_cancel(token))
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::Cancelled);
    assert!(t0.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn fast_without_delays() {
    let llm = ScriptedLlm::new()
        .record_requests(false)
        .fallback(Fallback::Text("ok".into()));
    let req = LlmRequest::from_prompt("x");
    let t0 = Instant::now();
    for _ in 0..2000 {
        llm.complete(req.clone()).await.unwrap();
    }
    let per_call = t0.elapsed() / 2000;
    assert!(per_call < Duration::from_millis(2), "{per_call:?} per call");
}
