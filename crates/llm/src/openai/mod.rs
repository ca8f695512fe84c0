//! OpenAI-compatible chat completions over HTTP + SSE, for any base URL.
//!
//! `POST {base_url}/chat/completions` (the base URL normally ends in `/v1`; exactly one `/` joins
//! them), headers `Authorization: Bearer {api_key}`, `Content-Type: application/json`,
//! `Accept: text/event-stream`. Every call streams; `complete` aggregates the stream. A server
//! that answers with a plain JSON `chat.completion` body (`content-type: application/json`)
//! instead of SSE is accepted: the body becomes the chunks the SSE path would have produced.
//! Optional stream resume ([`OpenAiConfig::with_stream_resume`]) asks the model to
//! continue an answer whose stream broke after part of it was delivered.
//!
//! Transport choice: reqwest + eventsource-stream rather than async-openai's `byot` streaming, so
//! the transport sees every SSE byte (a stream without `[DONE]` or without a `finish_reason` is an
//! `llm.stream_incomplete` error, never a complete answer), keeps the HTTP status and the
//! `Retry-After` / `retry-after-ms` headers for the retry layer, parses leniently from
//! `serde_json::Value`, and never retries on its own (the SDK's built-in retries would multiply with
//! ours). The request body is built as JSON by [`build_body`](self) rules below.
//!
//! Body (conservative): `extra` first, then `model`, `messages` (no `"content": null`: an
//! assistant message that only calls tools has no `content` key), `temperature`, `max_tokens`
//! (`max_completion_tokens` and no default temperature for o1/o3/o4 models), `stream: true`,
//! `stream_options: {"include_usage": true}`, `tools` + `tool_choice` only when tools exist,
//! `response_format` verbatim, `reason` when set, then `extra["extra_body"]` merged on top.

mod body;
mod capabilities;
mod parse;
mod resume;

use std::sync::Arc;

use bytes::Bytes;
use futures_core::Stream;
use power_loop_contracts::{
    BoxFuture, LlmRequest, LlmService, LlmStream, ProviderCapabilities, Result,
};

pub use capabilities::resolve_capabilities;

use crate::endpoint::{EndpointConfig, endpoint_setters, transport_config_new};
use crate::http;
use crate::overrides::CapabilityOverrides;
use crate::util::with_cancel;

/// Configuration of the OpenAI-compatible transport.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct OpenAiConfig {
    /// Base URL (normally ending in `/v1`, e.g. `https://api.openai.com/v1`), bearer credential,
    /// model, request timeout and reply defaults.
    pub endpoint: EndpointConfig,
    /// Capability overrides applied over the model-prefix table.
    pub capability_overrides: CapabilityOverrides,
    /// Resume a stream that broke mid-answer (default false; see [`with_stream_resume`]).
    ///
    /// [`with_stream_resume`]: OpenAiConfig::with_stream_resume
    pub stream_resume_on_error: bool,
    /// Most continuation requests per call when resuming (default 0: none).
    pub stream_max_restarts: u32,
    /// The user message asking the model to continue (default: the reference's Chinese
    /// "continue from where you were interrupted; do not repeat what was already output").
    pub stream_resume_instruction: String,
}

/// The default [`OpenAiConfig::stream_resume_instruction`].
pub const DEFAULT_STREAM_RESUME_INSTRUCTION: &str =
    "继续，从你上次中断的位置继续输出。不要重复已经输出的内容。";

impl OpenAiConfig {
    transport_config_new!(
        /// A config with the defaults: 180 s timeout, 8000 max tokens, temperature 0, no
        /// capability overrides.
    );
    /// A config for `endpoint`, with no capability overrides and no stream resume.
    pub fn from_endpoint(endpoint: EndpointConfig) -> Self {
        OpenAiConfig {
            endpoint,
            capability_overrides: CapabilityOverrides::default(),
            stream_resume_on_error: false,
            stream_max_restarts: 0,
            stream_resume_instruction: DEFAULT_STREAM_RESUME_INSTRUCTION.into(),
        }
    }
    endpoint_setters!(self => self.endpoint);
    /// Sets capability overrides.
    pub fn with_capability_overrides(mut self, o: CapabilityOverrides) -> Self {
        self.capability_overrides = o;
        self
    }
    /// Resumes a stream that breaks mid-answer up to `max_restarts` times per call (0 turns
    /// resume off): the model is asked to continue from the text it already produced. See the
    /// module docs of stream resume (`openai/resume.rs`) for what the caller sees.
    pub fn with_stream_resume(mut self, max_restarts: u32) -> Self {
        self.stream_resume_on_error = max_restarts > 0;
        self.stream_max_restarts = max_restarts;
        self
    }
    /// Sets the user message that asks the model to continue a broken answer.
    pub fn with_stream_resume_instruction(mut self, text: impl Into<String>) -> Self {
        self.stream_resume_instruction = text.into();
        self
    }
}

/// The OpenAI-compatible chat-completions service.
#[derive(Debug, Clone)]
pub struct OpenAiLlm {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    cfg: OpenAiConfig,
    caps: ProviderCapabilities,
    url: String,
    client: reqwest::Client,
}

impl OpenAiLlm {
    /// Builds the service (no network I/O happens here).
    pub fn new(cfg: OpenAiConfig) -> Result<Self> {
        let client = http::client_for_timeout_s(cfg.endpoint.timeout_s)?;
        let caps = resolve_capabilities(&cfg.endpoint.model, &cfg.capability_overrides);
        let url = http::join_url(&cfg.endpoint.base_url, "chat/completions");
        Ok(OpenAiLlm {
            inner: Arc::new(Inner {
                cfg,
                caps,
                url,
                client,
            }),
        })
    }

    /// The JSON body this service sends for `request` (what goes on the wire); an
    /// `llm.unsupported_content` error when the request holds a part the model cannot take.
    pub fn request_body(&self, request: &LlmRequest) -> Result<serde_json::Value> {
        body::build_body(&self.inner.cfg, &self.inner.caps, request)
    }

    /// The endpoint URL (`{base_url}/chat/completions`).
    pub fn url(&self) -> &str {
        &self.inner.url
    }
}

/// Decodes a chat-completions SSE byte stream into chunks (what the service does with a response
/// body). Public for replaying recorded streams and for fuzzing.
pub fn decode_stream<S, E>(bytes: S) -> LlmStream
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    http::decode_fused(
        "OpenAI-compatible",
        bytes,
        parse::OpenAiSseParser::default(),
    )
}

/// Decodes a success response: SSE, or a plain JSON `chat.completion` body (some compatible
/// servers and proxies answer a streaming request that way) into the same chunks.
fn decode_response(resp: reqwest::Response) -> LlmStream {
    if http::is_json_response(&resp) {
        http::decode_json_body(
            "the OpenAI-compatible server",
            resp,
            parse::OpenAiSseParser::default(),
        )
    } else {
        decode_stream(http::body_stream(resp))
    }
}

/// Sends `request` and decodes the answer (no resume, no cancellation wrapper).
async fn open_stream(inner: &Inner, request: LlmRequest) -> Result<LlmStream> {
    let body = body::build_body(&inner.cfg, &inner.caps, &request)?;
    tracing::debug!(target: "power_loop::llm", url = %inner.url, "openai-compatible request");
    let mut post = inner.client.post(&inner.url);
    if !inner.cfg.endpoint.api_key.trim().is_empty() {
        // A key-less local server (llama.cpp, Ollama) gets no Authorization header.
        post = post.bearer_auth(&inner.cfg.endpoint.api_key);
    }
    let resp = http::send_streaming(
        "the OpenAI-compatible server",
        &inner.url,
        post,
        &body,
        request.cancel.as_ref(),
    )
    .await?;
    Ok(decode_response(resp))
}

impl LlmService for OpenAiLlm {
    fn stream(&self, request: LlmRequest) -> BoxFuture<'_, Result<LlmStream>> {
        Box::pin(async move {
            let inner = &self.inner;
            let cancel = request.cancel.clone();
            let resume = inner.cfg.stream_resume_on_error && inner.cfg.stream_max_restarts > 0;
            let stream = if resume {
                let first = open_stream(inner, request.clone()).await?;
                resume::resumable(first, inner.clone(), request)
            } else {
                open_stream(inner, request).await?
            };
            Ok(with_cancel(stream, cancel))
        })
    }

    fn capabilities(&self) -> ProviderCapabilities {
        self.inner.caps.clone()
    }

    fn model_name(&self) -> String {
        self.inner.cfg.endpoint.model.clone()
    }
}
