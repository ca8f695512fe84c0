//! The LLM contract: [`LlmService`] and its request, response, stream-chunk and usage types.
//!
//! A provider implements [`LlmService::stream`] (and may override [`LlmService::complete`]);
//! retry, timeouts and concurrency limits wrap a service from outside (see `power-loop-llm`), they
//! do not live in providers. [`StreamAggregator`] turns a chunk stream into one [`LlmResponse`] and
//! refuses a stream that ended without its final chunk.
//!
//! Files follow a call: [`request`] (what is asked), [`service`] (the provider seam and its
//! capabilities), [`stream`] (chunks and their aggregation), [`response`] (the answer),
//! [`usage`] (token counts), [`observer`] (what a retry layer reports back to the caller) and
//! [`json`] (reading a JSON object out of model text).

pub mod json;
pub mod observer;
pub mod request;
pub mod response;
pub mod service;
pub mod stream;
pub mod usage;

pub use observer::{LlmCallObserver, RetryAttempt};
pub use request::{JsonSchemaFormat, LlmRequest, ResponseFormat, ToolChoice};
pub use response::{FinishReason, LlmResponse};
pub use service::{BoxFuture, BoxStream, LlmService, LlmStream, ProviderCapabilities};
pub use stream::{StreamAggregator, StreamChunk, ToolCallDelta};
pub use usage::{NormalizedUsage, TokenUsage};
