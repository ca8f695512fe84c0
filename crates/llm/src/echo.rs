//! [`EchoLlm`]: the offline stub provider, selected by the provider keys `echo`,
//! `stub` and `scripted`.
//!
//! Each call answers, after an optional (cancellable) delay, with the fixed reply when one is set,
//! else the prefix followed by the text of the **last `user` message** of the request (empty when
//! there is none). It never calls tools, and its usage is fixed: prompt 1, completion 1, total 2.
//!
//! It does not stream: the answer comes in one final chunk as
//! [`StreamChunk::whole_text`](power_loop_contracts::StreamChunk::whole_text), so
//! `complete` returns the text while the agent loop emits no `stream_delta` event for it (the
//! reference's echo does not invoke the chunk callbacks). A loop over it completes in one round.
//! For scripted answers, tool calls and streamed deltas use [`ScriptedLlm`](crate::ScriptedLlm).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use power_loop_contracts::{
    BoxFuture, FinishReason, LlmRequest, LlmService, LlmStream, ProviderCapabilities, Result,
    StreamChunk, TokenUsage,
};

use crate::util::{cancelled_error, run_cancellable};

/// The offline echo provider. Cloning shares the call counter.
#[derive(Debug, Clone)]
pub struct EchoLlm {
    reply: Option<String>,
    prefix: String,
    delay: Option<Duration>,
    model: String,
    calls: Arc<AtomicU64>,
}

impl Default for EchoLlm {
    fn default() -> Self {
        Self::new()
    }
}

impl EchoLlm {
    /// An echo provider: no fixed reply, no prefix, no delay, model name `echo`.
    pub fn new() -> Self {
        EchoLlm {
            reply: None,
            prefix: String::new(),
            delay: None,
            model: "echo".into(),
            calls: Arc::default(),
        }
    }
    /// Answers every call with `reply` instead of echoing.
    pub fn with_reply(mut self, reply: impl Into<String>) -> Self {
        self.reply = Some(reply.into());
        self
    }
    /// Puts `prefix` before the echoed text (ignored when a fixed reply is set).
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }
    /// Waits this long before answering (artificial latency; zero means none).
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = (!delay.is_zero()).then_some(delay);
        self
    }
    /// Sets the reported model name (default `echo`).
    pub fn with_model(mut self, model: impl Into<String>) -> Self {
        self.model = model.into();
        self
    }

    /// The answer this provider gives to `request`.
    pub fn reply_for(&self, request: &LlmRequest) -> String {
        if let Some(r) = &self.reply {
            return r.clone();
        }
        format!("{}{}", self.prefix, request.last_user_text())
    }

    /// How many calls were answered or attempted so far.
    pub fn call_count(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// The fixed usage of every answer: prompt 1, completion 1, total 2.
    pub fn usage() -> TokenUsage {
        TokenUsage {
            prompt_tokens: Some(1),
            completion_tokens: Some(1),
            total_tokens: Some(2),
            ..Default::default()
        }
    }
}

impl LlmService for EchoLlm {
    fn stream(&self, request: LlmRequest) -> BoxFuture<'_, Result<LlmStream>> {
        Box::pin(async move {
            let call = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
            let cancel = request.cancel.clone();
            if cancel.as_ref().is_some_and(|t| t.is_cancelled()) {
                return Err(cancelled_error("before the echo model call"));
            }
            if let Some(d) = self.delay {
                run_cancellable(cancel.as_ref(), "while the echo model was waiting", async {
                    tokio::time::sleep(d).await;
                    Ok(())
                })
                .await?;
            }
            let mut last = StreamChunk::finished(Some(FinishReason::Stop), Some(Self::usage()));
            last.whole_text = self.reply_for(&request);
            last.model = Some(self.model.clone());
            last.response_id = Some(format!("echo-{call}"));
            let stream: LlmStream = Box::pin(futures_util::stream::iter([Ok(last)]));
            Ok(stream)
        })
    }

    fn capabilities(&self) -> ProviderCapabilities {
        let mut caps = ProviderCapabilities::new("echo")
            .with_tools(false)
            .with_parallel_tool_calls(false)
            .with_json_schema(false);
        caps.supports_stream = false;
        caps
    }

    fn model_name(&self) -> String {
        self.model.clone()
    }
}
