//! The model a compactor gets: the loop's provider (so behind the same retry layer as the
//! main calls) wrapped so that each summary call runs through the loop's evented call path,
//! emitting `llm_call_started` / `llm_call_completed` (call id `r<round>.compact.a<attempt>`)
//! and `llm_retry_attempted` like any other model call, but no stream events or deltas (the
//! summary is not the answer being streamed to the user).

use std::sync::Arc;

use power_loop_contracts::{
    BoxFuture, LlmRequest, LlmResponse, LlmService, LlmStream, ProviderCapabilities, Result,
    StreamChunk, ToolCallDelta,
};

use super::model_call::call_llm_as;
use crate::compaction::Instrument;
use crate::emit::Emitter;

/// A compaction-call view of a model for round `round`.
pub(super) struct SummaryLlm {
    inner: Arc<dyn LlmService>,
    emitter: Emitter,
    round: u32,
    model: Option<String>,
}

/// The instrumenting function a [`CompactionContext`](crate::CompactionContext) carries.
pub(super) fn instrument(emitter: Emitter, round: u32, model: Option<String>) -> Instrument {
    Arc::new(move |inner: Arc<dyn LlmService>| {
        Arc::new(SummaryLlm {
            inner,
            emitter: emitter.clone(),
            round,
            model: model.clone(),
        }) as Arc<dyn LlmService>
    })
}

/// The response as a non-streamed chunk sequence (the aggregator rebuilds it unchanged).
fn chunks(r: LlmResponse) -> Vec<StreamChunk> {
    let mut out = Vec::new();
    if !r.think.is_empty() {
        out.push(StreamChunk::think(r.think));
    }
    for (i, c) in r.tool_calls.into_iter().enumerate() {
        let mut d = ToolCallDelta {
            index: u32::try_from(i).unwrap_or(u32::MAX),
            ..Default::default()
        };
        d.name = Some(c.name().to_owned());
        d.id = Some(c.id);
        d.arguments = c.function.arguments;
        out.push(StreamChunk::tool_call(d));
    }
    let mut last = StreamChunk::finished(r.finish_reason, Some(r.token_usage));
    last.whole_text = r.raw_text;
    last.model = r.model;
    last.response_id = r.response_id;
    out.push(last);
    out
}

impl LlmService for SummaryLlm {
    fn stream(&self, request: LlmRequest) -> BoxFuture<'_, Result<LlmStream>> {
        Box::pin(async move {
            let cancel = request.cancel.clone().unwrap_or_default();
            let model = request
                .model
                .clone()
                .or_else(|| self.model.clone())
                .unwrap_or_else(|| self.inner.model_name());
            let resp = call_llm_as(
                &self.inner,
                &self.emitter,
                (self.round, true),
                model,
                request,
                &cancel,
            )
            .await?;
            let stream: LlmStream =
                Box::pin(futures_util::stream::iter(chunks(resp).into_iter().map(Ok)));
            Ok(stream)
        })
    }

    fn capabilities(&self) -> ProviderCapabilities {
        self.inner.capabilities()
    }

    fn model_name(&self) -> String {
        self.inner.model_name()
    }
}
