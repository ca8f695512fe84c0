//! The shared language of power-loop.
//!
//! # Owns
//! Messages and content parts ([`message`]), tool definitions and results ([`tool`]), the LLM
//! contract ([`llm`]: [`LlmService`], request, response, stream chunk, token usage,
//! capabilities, the [`LlmCallObserver`] a retry layer reports attempts to, and reading JSON out of
//! model text), agent events with typed payloads ([`event`]), hook points with their context
//! types and directives ([`hook`]), the [`Error`] type with stable codes ([`error`]), and the
//! wall clock with civil-date helpers shared by the store and the agent ([`clock`]).
//!
//! # Must not import
//! Any other power-loop crate, any database driver, any HTTP client. Dependencies: serde,
//! serde_json, thiserror, tokio-util (cancellation), futures-core.
//!
//! # Seams
//! Defines [`LlmService`] (providers implement it) and [`Hook`] (hosts implement it).
//!
//! # Feature flags
//! None.
//!
//! # Stability
//! Frozen by convention: every seam of the workspace lives here. Additions only within a major;
//! option structs are `#[non_exhaustive]` with builders so they can grow.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod clock;
pub mod error;
pub mod event;
pub mod hook;
pub mod llm;
pub mod message;
pub mod tool;

pub use error::{BoxError, Error, ErrorCode, Result};
pub use event::{AgentEvent, EventPayload, EventSink, EventType, StatusChanged};
pub use hook::{Hook, HookFuture, HookPoint};
pub use llm::{
    BoxFuture, BoxStream, FinishReason, JsonSchemaFormat, LlmCallObserver, LlmRequest, LlmResponse,
    LlmService, LlmStream, NormalizedUsage, ProviderCapabilities, ResponseFormat, RetryAttempt,
    StreamAggregator, StreamChunk, TokenUsage, ToolCallDelta, ToolChoice,
};
pub use message::{
    Content, ContentPart, FileInput, FunctionCall, ImageUrl, Message, Role, ToolCall, ToolCallKind,
};
pub use tokio_util::sync::CancellationToken;
pub use tool::{ToolDefinition, ToolOutput, ToolResult};
