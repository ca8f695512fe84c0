//! One main-loop LLM call: streamed, evented per attempt, retried by the llm crate's retry layer
//! (the one retry layer), cancellable at every await point including mid-stream.
//!
//! Per attempt: `stream_started`, `llm_call_started`, deltas, `llm_call_completed`,
//! `stream_completed` (paired per attempt); between attempts `llm_retry_attempted` (from the
//! retry policy's observer).

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures_util::StreamExt;
use power_loop_contracts::event::*;
use power_loop_contracts::{
    BoxFuture, Error, ErrorCode, EventPayload, LlmRequest, LlmResponse, LlmService, LlmStream,
    Result, StreamAggregator, StreamChunk,
};
use power_loop_llm::{LlmStack, RetryPolicy};
use tokio_util::sync::CancellationToken;

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
}

impl Ctx {
    fn call_id(&self, attempt: u32) -> String {
        format!("r{}.a{}", self.round, attempt)
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

/// Wraps the provider so every physical attempt is evented.
struct Instrumented {
    inner: Arc<dyn LlmService>,
    ctx: Arc<Ctx>,
}

impl LlmService for Instrumented {
    fn stream(&self, request: LlmRequest) -> BoxFuture<'_, Result<LlmStream>> {
        Box::pin(async move {
            let ctx = Arc::clone(&self.ctx);
            let attempt = ctx.tracker.attempt.fetch_add(1, Ordering::AcqRel) + 1;
            ctx.tracker.closed.store(false, Ordering::Release);
            if let Ok(mut t) = ctx.tracker.started_at.lock() {
                *t = Instant::now();
            }
            let r = ctx
                .emitter
                .emit(EventType::StreamStarted, Some(ctx.round), true, || {
                    EventPayload::StreamStarted(StreamStartedPayload {
                        stream_id: "main".into(),
                    })
                });
            ctx.note(r);
            let r = ctx
                .emitter
                .emit(EventType::LlmCallStarted, Some(ctx.round), true, || {
                    EventPayload::LlmCallStarted(LlmCallStartedPayload {
                        call_id: ctx.call_id(attempt),
                        round_index: ctx.round,
                        attempt,
                        model: ctx.model.clone(),
                    })
                });
            ctx.note(r);
            match self.inner.stream(request).await {
                Err(e) => {
                    ctx.fail_attempt(e.code().as_str());
                    Err(e)
                }
                Ok(stream) => {
                    let c2 = Arc::clone(&ctx);
                    let s = stream.map(move |item: Result<StreamChunk>| {
                        if let Err(e) = &item {
                            c2.fail_attempt(e.code().as_str());
                        }
                        item
                    });
                    Ok(Box::pin(s) as LlmStream)
                }
            }
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
    retry: Option<&RetryPolicy>,
    emitter: &Emitter,
    round: u32,
    model: String,
    mut request: LlmRequest,
    cancel: &CancellationToken,
) -> Result<LlmResponse> {
    request.cancel = Some(cancel.clone());
    let ctx = Arc::new(Ctx {
        emitter: emitter.clone(),
        round,
        model,
        tracker: Tracker {
            attempt: AtomicU32::new(0),
            closed: AtomicBool::new(true),
            started_at: Mutex::new(Instant::now()),
            publish_error: Mutex::new(None),
        },
    });
    let instrumented: Arc<dyn LlmService> = Arc::new(Instrumented {
        inner: Arc::clone(llm),
        ctx: Arc::clone(&ctx),
    });
    let svc: Arc<dyn LlmService> = match retry {
        Some(p) if p.max_attempts > 1 => {
            let em = emitter.clone();
            let policy = p.clone().on_retry(move |ev| {
                let msg: String = ev.error_message.chars().take(500).collect();
                let _ = em.emit(EventType::LlmRetryAttempted, Some(round), true, || {
                    EventPayload::LlmRetryAttempted(LlmRetryAttemptedPayload {
                        attempt: ev.attempt.saturating_sub(1),
                        max_attempts: ev.max_attempts,
                        error_type: ev.error_code.as_str().to_owned(),
                        error_message: msg,
                        next_sleep_seconds: ev.delay.as_secs_f64(),
                    })
                });
            });
            LlmStack::new().retry(policy).wrap(instrumented)
        }
        _ => instrumented,
    };
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
        ctx.emitter
            .emit(EventType::StreamCompleted, Some(ctx.round), true, || {
                EventPayload::StreamCompleted(StreamCompletedPayload {
                    stream_id: "main".into(),
                })
            })?;
    }
    Ok(resp)
}
