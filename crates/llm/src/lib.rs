//! LLM providers for power-loop, and the middleware that wraps them.
//!
//! # Owns
//! - [`openai`] (feature `openai`): the OpenAI-compatible chat-completions transport for any base
//!   URL (OpenAI, vLLM, Ollama, LM Studio, DeepSeek, …), with capability detection.
//! - [`anthropic`] (feature `anthropic`): the native Anthropic Messages transport (streaming).
//! - [`scripted`]: [`ScriptedLlm`], an offline model driven by a script (tests, examples, the
//!   CLI's offline mode, benchmarks).
//! - [`echo`]: [`EchoLlm`], the offline stub provider of the `echo` / `stub` provider keys
//!   (echoes the last user message, fixed usage, no streamed deltas).
//! - [`config`]: [`LlmProviderConfig`], [`LlmProviderConfig::from_env`] and the factories
//!   [`LlmProviderConfig::build`] / [`LlmProviderConfig::build_from_env`] (the old
//!   `create_llm_service_from_*` names are deprecated aliases).
//! - [`retry`] and [`layers`]: provider-aware retry ([`RetryPolicy`]), per-call timeout and a
//!   concurrency limit as tower layers around `Arc<dyn LlmService>`, erased back into an
//!   `Arc<dyn LlmService>` by [`LlmStack`]. The outermost retry layer reports each attempt to the
//!   request's [`power_loop_contracts::LlmCallObserver`], so a caller (the agent loop) sees its
//!   retries without depending on this crate.
//! - [`json`]: extraction of a JSON object from model text (re-exported from the contracts crate).
//!
//! # Must not import
//! The store, tools, agent or workflow crates. Providers contain no retry code: retry lives in
//! [`retry`] only (one retry layer per call; the HTTP client never retries on its own).
//!
//! # Seams
//! Implements [`power_loop_contracts::LlmService`] for every provider; [`LlmTowerService`] adapts any
//! `Arc<dyn LlmService>` to `tower::Service<LlmRequest>` so callers can add their own layers.
//!
//! # Feature flags
//! - `openai` (default): OpenAI-compatible transport (reqwest + eventsource-stream, rustls/ring).
//! - `anthropic`: native Anthropic transport (same HTTP stack).
//! - the scripted model, config, retry and layers are always available (no HTTP dependency).
//!
//! # Stability
//! Internal crate: reach it through the `power-loop` façade, whose API is frozen in `api/`.
//! Option structs are `#[non_exhaustive]` with `Default` + builder methods.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod config;
pub mod echo;
mod endpoint;
pub mod json;
pub mod layers;
mod overrides;
pub mod retry;
pub mod scripted;
mod util;

#[cfg(feature = "http")]
mod http;

#[cfg(feature = "anthropic")]
pub mod anthropic;
#[cfg(feature = "openai")]
pub mod openai;

#[allow(deprecated)]
pub use config::{
    LlmProviderConfig, OPENAI_COMPATIBLE_PROVIDERS, ProviderKind, create_llm_service_from_config,
    create_llm_service_from_env, create_raw_llm_service,
};
pub use echo::EchoLlm;
pub use endpoint::EndpointConfig;
pub use layers::{LlmStack, LlmTowerService, with_retry};
pub use overrides::CapabilityOverrides;
pub use retry::{RetryEvent, RetryPolicy, is_retryable_code};
pub use scripted::{Fallback, ScriptedLlm, Step};

#[cfg(feature = "anthropic")]
pub use anthropic::{AnthropicConfig, AnthropicLlm};
#[cfg(feature = "openai")]
pub use openai::{OpenAiConfig, OpenAiLlm, resolve_capabilities};
