//! The native Anthropic Messages API, streaming, over reqwest + eventsource-stream.
//!
//! `POST {base}/v1/messages` where `{base}` is `base_url` without a trailing `/` and without a
//! trailing `/v1` (so both `https://api.anthropic.com` and `https://api.anthropic.com/v1` work).
//! Headers: `x-api-key`, `anthropic-version: 2023-06-01` (configurable), `content-type:
//! application/json`, `accept: text/event-stream`. The body is described on the `build_body` rules
//! in this module's source (`body.rs`); structured output is an instruction appended to the system
//! prompt, since the API has no `response_format`.
//!
//! Streaming events: `message_start` (id, model, input and cache usage), `content_block_start`
//! (text / tool_use with id + name / thinking), `content_block_delta` (`text_delta`,
//! `input_json_delta`, `thinking_delta`), `content_block_stop`, `message_delta` (stop reason,
//! output usage), `message_stop` (→ the final chunk), `ping` (ignored), `error`
//! (`overloaded_error` → `llm.overloaded`, `rate_limit_error` → `llm.rate_limited`, else
//! `llm.provider_error`); unknown events are ignored. No `message_stop` → `llm.stream_incomplete`.
//! A server that answers with a plain JSON `message` object (`content-type: application/json`)
//! instead of events is accepted: the message is replayed as the events above, so it yields the
//! same chunks.
//! Usage: `prompt_tokens` = input + cache-read + cache-creation tokens, `prompt_cached_tokens` =
//! cache-read tokens, `completion_tokens` = output tokens.

mod body;
mod parse;

use std::sync::Arc;

use bytes::Bytes;
use futures_core::Stream;
use power_loop_contracts::{
    BoxFuture, LlmRequest, LlmService, LlmStream, ProviderCapabilities, Result,
};

use crate::endpoint::{EndpointConfig, endpoint_setters, transport_config_new};
use crate::http;
use crate::util::with_cancel;

/// The `anthropic-version` header value sent by default.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// Configuration of the Anthropic transport.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct AnthropicConfig {
    /// Base URL (e.g. `https://api.anthropic.com`; a trailing `/v1` is tolerated), the
    /// `x-api-key` credential, model, request timeout and reply defaults (the API requires
    /// `max_tokens`, so it is always sent).
    pub endpoint: EndpointConfig,
    /// The `anthropic-version` header (default [`ANTHROPIC_VERSION`]).
    pub anthropic_version: String,
}

impl AnthropicConfig {
    transport_config_new!(
        /// A config with defaults.
    );
    /// A config for `endpoint` with the default `anthropic-version`.
    pub fn from_endpoint(endpoint: EndpointConfig) -> Self {
        AnthropicConfig {
            endpoint,
            anthropic_version: ANTHROPIC_VERSION.into(),
        }
    }
    endpoint_setters!(self => self.endpoint);
    /// Sets the `anthropic-version` header.
    pub fn with_anthropic_version(mut self, v: impl Into<String>) -> Self {
        self.anthropic_version = v.into();
        self
    }
}

/// The Anthropic Messages service.
#[derive(Debug, Clone)]
pub struct AnthropicLlm {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    cfg: AnthropicConfig,
    url: String,
    client: reqwest::Client,
}

/// `{base}/v1/messages` with a trailing `/` and `/v1` of `base` removed.
fn messages_url(base: &str) -> String {
    let b = base.trim_end_matches('/');
    let b = b.strip_suffix("/v1").unwrap_or(b);
    format!("{b}/v1/messages")
}

impl AnthropicLlm {
    /// Builds the service (no network I/O happens here).
    pub fn new(cfg: AnthropicConfig) -> Result<Self> {
        let client = http::client_for_timeout_s(cfg.endpoint.timeout_s)?;
        let url = messages_url(&cfg.endpoint.base_url);
        Ok(AnthropicLlm {
            inner: Arc::new(Inner { cfg, url, client }),
        })
    }

    /// The JSON body this service sends for `request`; an `llm.unsupported_content` error when
    /// the request holds a part the API cannot take.
    pub fn request_body(&self, request: &LlmRequest) -> Result<serde_json::Value> {
        body::build_body(&self.inner.cfg, request)
    }

    /// The endpoint URL.
    pub fn url(&self) -> &str {
        &self.inner.url
    }
}

/// Decodes a Messages API SSE byte stream into chunks. Public for replaying recorded streams and
/// for fuzzing.
pub fn decode_stream<S, E>(bytes: S) -> LlmStream
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    http::decode_fused("Anthropic", bytes, parse::AnthropicSseParser::default())
}

impl LlmService for AnthropicLlm {
    fn stream(&self, request: LlmRequest) -> BoxFuture<'_, Result<LlmStream>> {
        Box::pin(async move {
            let inner = &self.inner;
            let body = body::build_body(&inner.cfg, &request)?;
            let cancel = request.cancel.clone();
            let post = inner
                .client
                .post(&inner.url)
                .header("x-api-key", &inner.cfg.endpoint.api_key)
                .header("anthropic-version", &inner.cfg.anthropic_version);
            let resp =
                http::send_streaming("Anthropic", &inner.url, post, &body, cancel.as_ref()).await?;
            let stream = if http::is_json_response(&resp) {
                http::decode_json_body("Anthropic", resp, parse::AnthropicSseParser::default())
            } else {
                decode_stream(http::body_stream(resp))
            };
            Ok(with_cancel(stream, cancel))
        })
    }

    fn capabilities(&self) -> ProviderCapabilities {
        ProviderCapabilities::new("anthropic")
            .with_image_input(true)
            .with_pdf_input(true)
            .with_json_schema(false)
            .with_reasoning(true)
    }

    fn model_name(&self) -> String {
        self.inner.cfg.endpoint.model.clone()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn url_joining() {
        assert_eq!(
            super::messages_url("https://api.anthropic.com"),
            "https://api.anthropic.com/v1/messages"
        );
        assert_eq!(
            super::messages_url("https://api.anthropic.com/v1/"),
            "https://api.anthropic.com/v1/messages"
        );
        assert_eq!(
            super::messages_url("http://h:1/proxy"),
            "http://h:1/proxy/v1/messages"
        );
    }
}
