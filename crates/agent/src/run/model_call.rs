//! One main-loop LLM call: streamed, evented per attempt, cancellable at every await point
//! including mid-stream.
//!
//! Retry is not the loop's: the caller wraps the provider in a retry layer once. That layer
//! reports each attempt and each retry to the [`LlmCallObserver`] this module puts on the
//! request, so the loop still emits, per attempt, `stream_started`, `llm_call_started`, deltas,
//! `llm_call_completed`, `stream_completed` (paired per attempt) and between attempts
//! `llm_retry_attempted`. Without a retry layer the call is one attempt.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures_util::StreamExt;
use power_loop_contracts::event::*;
use power_loop_contracts::{
    BoxFuture, Error, ErrorCode, EventPayload, LlmCallObserver, LlmRequest, LlmResponse,
    LlmService, LlmStream, Message, NormalizedUsage, Result, RetryAttempt, StreamAggregator,
    ToolChoice, ToolDefinition,
};
use tokio_util::sync::CancellationToken;

use super::state::Run;
use crate::budget::usage_map;
use crate::emit::Emitter;

struct Tracker {
    attempt: AtomicU32,
    /// Whether the current attempt's completion events were already emitted.
    closed: AtomicBool,
    started_at: Mutex<Instant>,
    publish_error: Mutex<Option<Error>>,
}

struct Ctx {
    emitter: Emitter,
    round: u32,
    model: String,
    tracker: Tracker,
    /// A compaction summary call: its own call ids, no stream events, no deltas.
    compaction: bool,
}

impl Ctx {
    fn call_id(&self, attempt: u32) -> String {
        if self.compaction {
            format!("r{}.compact.a{}", self.round, attempt)
        } else {
            format!("r{}.a{}", self.round, attempt)
        }
    }

    fn note(&self, r: Result<()>) {
        if let Err(e) = r
            && let Ok(mut slot) = self.tracker.publish_error.lock()
        {
            slot.get_or_insert(e);
        }
    }

    fn elapsed_ms(&self) -> f64 {
        self.tracker
            .started_at
            .lock()
            .map(|t| t.elapsed().as_secs_f64() * 1000.0)
            .unwrap_or(0.0)
    }

    /// Emits the failure completion of the current attempt once.
    fn fail_attempt(&self, code: &str) {
        if self.tracker.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let attempt = self.tracker.attempt.load(Ordering::Acquire);
        let r = self
            .emitter
            .emit(EventType::LlmCallCompleted, Some(self.round), true, || {
                EventPayload::LlmCallCompleted(LlmCallCompletedPayload {
                    call_id: self.call_id(attempt),
                    round_index: self.round,
                    attempt,
                    model: self.model.clone(),
                    duration_ms: self.elapsed_ms(),
                    success: false,
                    error_type: code.to_owned(),
                    ..Default::default()
                })
            });
        self.note(r);
        if self.compaction {
            return;
        }
        let r = self
            .emitter
            .emit(EventType::StreamCompleted, Some(self.round), true, || {
                EventPayload::StreamCompleted(StreamCompletedPayload {
                    stream_id: "main".into(),
                })
            });
        self.note(r);
    }
}

impl Ctx {
    /// Opens attempt `attempt` (its start events) unless it is already open or past.
    fn begin_attempt(&self, attempt: u32) {
        let current = self.tracker.attempt.load(Ordering::Acquire);
        if attempt <= current
            || self
                .tracker
                .attempt
                .compare_exchange(current, attempt, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        {
            return;
        }
        self.tracker.closed.store(false, Ordering::Release);
        if let Ok(mut t) = self.tracker.started_at.lock() {
            *t = Instant::now();
        }
        if !self.compaction {
            let r = self
                .emitter
                .emit(EventType::StreamStarted, Some(self.round), true, || {
                    EventPayload::StreamStarted(StreamStartedPayload {
                        stream_id: "main".into(),
                    })
                });
            self.note(r);
        }
        let r = self
            .emitter
            .emit(EventType::LlmCallStarted, Some(self.round), true, || {
                EventPayload::LlmCallStarted(LlmCallStartedPayload {
                    call_id: self.call_id(attempt),
                    round_index: self.round,
                    attempt,
                    model: self.model.clone(),
                })
            });
        self.note(r);
    }
}

/// Closes the open attempt (as `cancelled`) when the call is abandoned; a no-op once the
/// attempt completed or failed.
struct CloseOnDrop(Arc<Ctx>);

impl Drop for CloseOnDrop {
    fn drop(&mut self) {
        self.0.fail_attempt(ErrorCode::Cancelled.as_str());
    }
}

/// Hears the retry layer (if the provider has one): each attempt opens, each retry closes the
/// failed attempt and emits `llm_retry_attempted`.
struct AttemptObserver(Arc<Ctx>);

impl LlmCallObserver for AttemptObserver {
    fn on_attempt(&self, attempt: u32) {
        self.0.begin_attempt(attempt);
    }

    fn on_retry(&self, retry: &RetryAttempt) {
        let ctx = &self.0;
        ctx.fail_attempt(retry.error_code.as_str());
        let msg: String = retry.error_message.chars().take(500).collect();
        let _ = ctx
            .emitter
            .emit(EventType::LlmRetryAttempted, Some(ctx.round), true, || {
                EventPayload::LlmRetryAttempted(LlmRetryAttemptedPayload {
                    attempt: retry.attempt.saturating_sub(1),
                    max_attempts: retry.max_attempts,
                    error_type: retry.error_code.as_str().to_owned(),
                    error_message: msg,
                    next_sleep_seconds: retry.delay.as_secs_f64(),
                })
            });
    }
}

/// The code an attempt failed with: a retry layer that gave up names the last attempt's code.
fn attempt_code(e: &Error) -> String {
    match e.detail("last_error_code").and_then(|v| v.as_str()) {
        Some(c) if e.code() == ErrorCode::LlmRetryExhausted => c.to_owned(),
        _ => e.code().as_str().to_owned(),
    }
}

/// Wraps the (possibly retried) provider: the first attempt opens when the call starts, and a
/// call that fails before streaming closes the attempt that was open.
struct Instrumented {
    inner: Arc<dyn LlmService>,
    ctx: Arc<Ctx>,
}

impl LlmService for Instrumented {
    fn stream(&self, request: LlmRequest) -> BoxFuture<'_, Result<LlmStream>> {
        Box::pin(async move {
            self.ctx.begin_attempt(1);
            let r = self.inner.stream(request).await;
            if let Err(e) = &r {
                self.ctx.fail_attempt(&attempt_code(e));
            }
            r
        })
    }

    fn capabilities(&self) -> power_loop_contracts::ProviderCapabilities {
        self.inner.capabilities()
    }

    fn model_name(&self) -> String {
        self.inner.model_name()
    }
}

/// Runs one LLM call for round `round`.
pub(crate) async fn call_llm(
    llm: &Arc<dyn LlmService>,
    emitter: &Emitter,
    round: u32,
    model: String,
    request: LlmRequest,
    cancel: &CancellationToken,
) -> Result<LlmResponse> {
    call_llm_as(llm, emitter, (round, false), model, request, cancel).await
}

/// Runs one LLM call for round `round`; `compaction` marks a compaction summary call (call ids
/// `r<round>.compact.a<n>`, no stream events or deltas).
pub(super) async fn call_llm_as(
    llm: &Arc<dyn LlmService>,
    emitter: &Emitter,
    (round, compaction): (u32, bool),
    model: String,
    mut request: LlmRequest,
    cancel: &CancellationToken,
) -> Result<LlmResponse> {
    request.cancel = Some(cancel.clone());
    let ctx = Arc::new(Ctx {
        emitter: emitter.clone(),
        round,
        compaction,
        model,
        tracker: Tracker {
            attempt: AtomicU32::new(0),
            closed: AtomicBool::new(true),
            started_at: Mutex::new(Instant::now()),
            publish_error: Mutex::new(None),
        },
    });
    request.observer = Some(Arc::new(AttemptObserver(Arc::clone(&ctx))));
    let svc: Arc<dyn LlmService> = Arc::new(Instrumented {
        inner: Arc::clone(llm),
        ctx: Arc::clone(&ctx),
    });
    // A caller that stops waiting (a compactor's own timeout or cancel) drops this future:
    // the open attempt still gets its failed completion.
    let _close = CloseOnDrop(Arc::clone(&ctx));
    let result = consume(&svc, &ctx, request, cancel).await;
    if let Ok(mut slot) = ctx.tracker.publish_error.lock()
        && let Some(e) = slot.take()
    {
        return Err(e);
    }
    result
}

async fn consume(
    svc: &Arc<dyn LlmService>,
    ctx: &Arc<Ctx>,
    request: LlmRequest,
    cancel: &CancellationToken,
) -> Result<LlmResponse> {
    let cancelled = || Error::cancelled("the run was cancelled during the model call");
    let mut stream = tokio::select! {
        biased;
        () = cancel.cancelled() => {
            ctx.fail_attempt(ErrorCode::Cancelled.as_str());
            return Err(cancelled());
        }
        s = svc.stream(request) => s?,
    };
    let mut agg = StreamAggregator::new();
    loop {
        let item = tokio::select! {
            biased;
            () = cancel.cancelled() => {
                ctx.fail_attempt(ErrorCode::Cancelled.as_str());
                return Err(cancelled());
            }
            item = stream.next() => item,
        };
        match item {
            None => break,
            Some(Err(e)) => {
                ctx.fail_attempt(e.code().as_str());
                return Err(e);
            }
            Some(Ok(chunk)) if ctx.compaction => agg.push(&chunk),
            Some(Ok(chunk)) => {
                if !chunk.delta_text.is_empty() {
                    let r = ctx
                        .emitter
                        .emit(EventType::StreamDelta, Some(ctx.round), true, || {
                            EventPayload::StreamDelta(StreamDeltaPayload {
                                stream_id: "main".into(),
                                text: chunk.delta_text.clone(),
                                is_think: false,
                            })
                        });
                    r?;
                }
                if !chunk.think.is_empty() {
                    let r = ctx.emitter.emit(
                        EventType::StreamThinkDelta,
                        Some(ctx.round),
                        true,
                        || {
                            EventPayload::StreamThinkDelta(StreamDeltaPayload {
                                stream_id: "main".into(),
                                text: chunk.think.clone(),
                                is_think: true,
                            })
                        },
                    );
                    r?;
                }
                agg.push(&chunk);
            }
        }
    }
    let resp = match agg.finish() {
        Ok(r) => r,
        Err(e) => {
            ctx.fail_attempt(e.code().as_str());
            return Err(e);
        }
    };
    if !ctx.tracker.closed.swap(true, Ordering::AcqRel) {
        let attempt = ctx.tracker.attempt.load(Ordering::Acquire);
        let u = resp.token_usage;
        let model = resp.model.clone().unwrap_or_else(|| ctx.model.clone());
        ctx.emitter
            .emit(EventType::LlmCallCompleted, Some(ctx.round), true, || {
                EventPayload::LlmCallCompleted(LlmCallCompletedPayload {
                    call_id: ctx.call_id(attempt),
                    round_index: ctx.round,
                    attempt,
                    model,
                    duration_ms: ctx.elapsed_ms(),
                    success: true,
                    error_type: String::new(),
                    prompt_tokens: u.prompt_tokens,
                    completion_tokens: u.completion_tokens,
                    total_tokens: u.total_tokens,
                })
            })?;
        if !ctx.compaction {
            ctx.emitter
                .emit(EventType::StreamCompleted, Some(ctx.round), true, || {
                    EventPayload::StreamCompleted(StreamCompletedPayload {
                        stream_id: "main".into(),
                    })
                })?;
        }
    }
    Ok(resp)
}

impl Run {
    pub(super) fn request(
        &self,
        messages: Arc<Vec<Message>>,
        system_prompt: String,
        tools: Arc<Vec<ToolDefinition>>,
        max_tokens: Option<u32>,
        temperature: Option<f64>,
    ) -> LlmRequest {
        let mut req = LlmRequest::shared(messages);
        if !system_prompt.is_empty() {
            req.system_prompt = Some(system_prompt);
        }
        if !tools.is_empty() {
            req.tool_choice = Some(ToolChoice::Auto);
        }
        req.tools = tools;
        req.max_tokens = max_tokens;
        req.temperature = temperature;
        req.model = self.cfg().model.clone();
        req.response_format = self.cfg().effective_response_format();
        req
    }

    pub(super) async fn call(&self, idx: u32, req: LlmRequest) -> Result<LlmResponse> {
        let model = self
            .cfg()
            .model
            .clone()
            .unwrap_or_else(|| self.ctx.llm.model_name());
        call_llm(&self.ctx.llm, &self.emitter, idx, model, req, &self.cancel).await
    }

    pub(super) fn record_usage(&mut self, idx: u32, resp: &LlmResponse) -> Result<NormalizedUsage> {
        let n = self.tally.usage.record(&resp.token_usage);
        let max_rounds = self.cfg().max_rounds;
        let u = resp.token_usage;
        self.emit(EventType::StatusChanged, Some(idx), || {
            EventPayload::StatusChanged(StatusChanged::RoundUsage(RoundUsageStatus {
                time_iso: crate::timers::utc_iso_now(),
                round_index: idx,
                round_number: idx + 1,
                max_rounds,
                prompt_tokens: u.prompt_tokens,
                completion_tokens: u.completion_tokens,
                cache_read_tokens: u.prompt_cached_tokens.or(u.cached_tokens),
                reasoning_tokens: u.completion_reasoning_tokens.or(u.reasoning_tokens),
            }))
        })?;
        self.emit(EventType::UsageUpdated, Some(idx), || {
            EventPayload::UsageUpdated(UsageUpdatedPayload {
                usage: usage_map(&n),
            })
        })?;
        Ok(n)
    }
}
