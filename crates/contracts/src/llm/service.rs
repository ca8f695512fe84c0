//! The provider seam: [`LlmService`] (with forwarding impls for `Arc` and `Box`) and what a
//! provider supports ([`ProviderCapabilities`]).

use std::pin::Pin;
use std::sync::Arc;

use futures_core::Stream;
use serde::{Deserialize, Serialize};

use super::request::LlmRequest;
use super::response::LlmResponse;
use super::stream::{StreamAggregator, StreamChunk};
use crate::error::{Error, Result};

/// A boxed, `Send` future.
pub type BoxFuture<'a, T> = Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// A boxed, `Send` stream.
pub type BoxStream<'a, T> = Pin<Box<dyn Stream<Item = T> + Send + 'a>>;

/// The stream of chunks an [`LlmService`] returns.
pub type LlmStream = BoxStream<'static, Result<StreamChunk>>;

/// What a provider supports (informational flags plus the ones that change rendering).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ProviderCapabilities {
    /// Provider family (`openai`, `anthropic`, `scripted`, `openai-compatible`, …).
    pub provider: String,
    /// Tools / function calling.
    pub supports_tools: bool,
    /// Parallel tool calls in one answer.
    pub supports_parallel_tool_calls: bool,
    /// Streaming.
    pub supports_stream: bool,
    /// Image content parts.
    pub supports_image_input: bool,
    /// `data:` URLs for images.
    pub supports_data_url: bool,
    /// PDF documents as file content parts (OpenAI `file` parts, Anthropic `document` blocks).
    #[serde(default)]
    pub supports_pdf_input: bool,
    /// Native `response_format` with a JSON schema.
    pub supports_json_schema: bool,
    /// Reasoning / thinking deltas.
    pub supports_reasoning: bool,
}

impl Default for ProviderCapabilities {
    fn default() -> Self {
        ProviderCapabilities {
            provider: "openai-compatible".to_owned(),
            supports_tools: true,
            supports_parallel_tool_calls: true,
            supports_stream: true,
            supports_image_input: false,
            supports_data_url: true,
            supports_pdf_input: false,
            supports_json_schema: true,
            supports_reasoning: false,
        }
    }
}

impl ProviderCapabilities {
    /// Conservative defaults for a provider family.
    pub fn new(provider: impl Into<String>) -> Self {
        ProviderCapabilities {
            provider: provider.into(),
            ..Default::default()
        }
    }
    /// Sets image support.
    pub fn with_image_input(mut self, yes: bool) -> Self {
        self.supports_image_input = yes;
        self
    }
    /// Sets PDF document support.
    pub fn with_pdf_input(mut self, yes: bool) -> Self {
        self.supports_pdf_input = yes;
        self
    }
    /// Sets tool support.
    pub fn with_tools(mut self, yes: bool) -> Self {
        self.supports_tools = yes;
        self
    }
    /// Sets parallel tool-call support.
    pub fn with_parallel_tool_calls(mut self, yes: bool) -> Self {
        self.supports_parallel_tool_calls = yes;
        self
    }
    /// Sets JSON-schema support.
    pub fn with_json_schema(mut self, yes: bool) -> Self {
        self.supports_json_schema = yes;
        self
    }
    /// Sets reasoning support.
    pub fn with_reasoning(mut self, yes: bool) -> Self {
        self.supports_reasoning = yes;
        self
    }
}

/// A model provider. Object-safe: stored as `Arc<dyn LlmService>`.
///
/// Implement [`stream`](LlmService::stream); [`complete`](LlmService::complete) defaults to
/// aggregating the stream. A stream must end with a chunk whose `is_final` is set; one that stops
/// early makes `complete` fail with `llm.stream_incomplete`. Honour `request.cancel`.
pub trait LlmService: Send + Sync {
    /// Starts a streamed answer.
    fn stream(&self, request: LlmRequest) -> BoxFuture<'_, Result<LlmStream>>;

    /// One complete answer (default: aggregate [`stream`](LlmService::stream)).
    fn complete(&self, request: LlmRequest) -> BoxFuture<'_, Result<LlmResponse>> {
        Box::pin(async move {
            let cancel = request.cancel.clone();
            let mut stream = self.stream(request).await?;
            let mut agg = StreamAggregator::new();
            loop {
                let next = std::future::poll_fn(|cx| stream.as_mut().poll_next(cx));
                let item = match &cancel {
                    Some(token) => token.run_until_cancelled(next).await.ok_or_else(|| {
                        Error::cancelled("cancellation token fired during the model call")
                    })?,
                    None => next.await,
                };
                match item {
                    Some(chunk) => agg.push(&chunk?),
                    None => break,
                }
            }
            agg.finish()
        })
    }

    /// What this provider supports.
    fn capabilities(&self) -> ProviderCapabilities {
        ProviderCapabilities::default()
    }

    /// The configured model name (for events and usage rows).
    fn model_name(&self) -> String {
        String::new()
    }

    /// Releases HTTP resources.
    fn close(&self) -> BoxFuture<'_, Result<()>> {
        Box::pin(async { Ok(()) })
    }
}

/// Forwards every [`LlmService`] method through a smart pointer.
macro_rules! forward_llm_service {
    ($($ptr:ident),*) => {$(
        impl<T: LlmService + ?Sized> LlmService for $ptr<T> {
            fn stream(&self, request: LlmRequest) -> BoxFuture<'_, Result<LlmStream>> {
                (**self).stream(request)
            }
            fn complete(&self, request: LlmRequest) -> BoxFuture<'_, Result<LlmResponse>> {
                (**self).complete(request)
            }
            fn capabilities(&self) -> ProviderCapabilities {
                (**self).capabilities()
            }
            fn model_name(&self) -> String {
                (**self).model_name()
            }
            fn close(&self) -> BoxFuture<'_, Result<()>> {
                (**self).close()
            }
        }
    )*};
}

forward_llm_service!(Arc, Box);
