//! power-loop: an embeddable, durable agent execution kernel.
//!
//! A [`StatefulAgentLoop`] is a cheap, stateless handle over a durable [`SessionStore`]
//! (SQLite by default, PostgreSQL or MySQL by DSN). It runs LLM agents with tool calling, typed
//! hooks and events, budgets, cancellation and crash recovery; everything it knows lives in the
//! store, so any process can pick a session up by id.
//!
//! ```no_run
//! # async fn demo() -> power_loop::Result<()> {
//! use std::sync::Arc;
//! use power_loop::{NewSessionOptions, ScriptedLlm, StatefulAgentLoop, StoreOptions};
//!
//! let llm = Arc::new(ScriptedLlm::new().text("Hello! How can I help?"));
//! let agent = StatefulAgentLoop::builder(llm)
//!     .dsn("sqlite://:memory:")
//!     .build()?;
//! let session = agent.new_session(NewSessionOptions::default()).await?;
//! let result = agent.send(&session, "hi").await?;
//! assert_eq!(result.final_text, "Hello! How can I help?");
//! # Ok(()) }
//! ```
//!
//! # Owns
//! Nothing of its own: it re-exports the stable API of the power-loop crates item by item, and
//! wires the backends, providers and sinks chosen by cargo features ([`BACKENDS`], [`open_store`]).
//!
//! # Must not import
//! Nothing is off limits; it must simply add no logic beyond wiring features.
//!
//! # Feature flags
//! - `sqlite` (default): the embedded SQLite backend (rusqlite, bundled).
//! - `postgres`: the PostgreSQL backend (tokio-postgres + deadpool).
//! - `mysql`: the MySQL / MariaDB backend (mysql_async).
//! - `openai` (default): the OpenAI-compatible provider. `anthropic`: the native Anthropic provider.
//! - `prometheus`, `statsd`, `otel`: metrics and tracing sinks.
//! - `mcp`: tools from MCP servers ([`mcp`], the `power-loop-mcp` crate on rmcp).
//! - `full`: everything.
//!
//! # Stability
//! Everything re-exported here is listed in the committed baseline under `api/` and guarded by
//! `cargo xtask api-check`; error codes ([`ErrorCode`]) are frozen too.

// docs.rs builds with `--cfg docsrs` on nightly: label items that need a cargo feature.
#![cfg_attr(docsrs, feature(doc_cfg))]

// ===== the shared language (contracts) =====
/// Wall-clock helpers: epoch milliseconds and calendar dates (UTC).
pub use power_loop_contracts::clock::{CivilDateTime, iso8601_utc_ms, now_ms};
pub use power_loop_contracts::{
    AgentEvent, BoxFuture, BoxStream, CancellationToken, Content, ContentPart, Error, ErrorCode,
    EventPayload, EventSink, EventType, FileInput, FinishReason, FunctionCall, Hook, HookFuture,
    HookPoint, ImageUrl, JsonSchemaFormat, LlmCallObserver, LlmRequest, LlmResponse, LlmService,
    LlmStream, Message, NormalizedUsage, ProviderCapabilities, ResponseFormat, Result,
    RetryAttempt, Role, StatusChanged, StreamAggregator, StreamChunk, TokenUsage, ToolCall,
    ToolCallDelta, ToolCallKind, ToolChoice, ToolDefinition, ToolOutput, ToolResult,
};

/// Typed event payloads (one struct per event type).
pub mod events {
    pub use power_loop_contracts::event::{
        AgentErrorPayload, AgentEvent, AutoCompactStatus, BudgetExceededStatus, EventPayload,
        EventSink, EventType, HitRoundLimitStatus, LlmCallCompletedPayload, LlmCallStartedPayload,
        LlmDegradedPayload, LlmRetryAttemptedPayload, LoopCancelledPayload, MemoryFailedPayload,
        MemoryRecalledPayload, RoundCompletedPayload, RoundStartedPayload,
        RoundToolsPresentPayload, RoundUsageStatus, SessionEndedPayload, SessionStartedPayload,
        StatusChanged, StreamCompletedPayload, StreamDeltaPayload, StreamStartedPayload,
        SubagentCompletedPayload, SubagentLimitPayload, SubagentTaskStartPayload,
        SubagentTextPayload, SystemLogPayload, TimerFiredPayload, TodoUpdatedPayload,
        ToolCallCompletedPayload, ToolCallFailedPayload, ToolCallStartedPayload,
        UsageUpdatedPayload, UserNotificationPayload, WorkflowLeafCompletedPayload,
        WorkflowRunCompletedPayload, WorkflowRunStartedPayload, monotonic_seconds, next_event_seq,
        wall_seconds,
    };
}

/// Hook contexts and per-point directives.
pub mod hooks {
    pub use power_loop_contracts::hook::{
        CompactAfterCtx, CompactBeforeCtx, CompactBeforeDirective, Hook, HookFuture, HookPoint,
        LlmAfterCtx, LlmAfterDirective, LlmBeforeCtx, LlmBeforeDirective, MemoryRecalledCtx,
        MemoryRecalledDirective, MessageAppendCtx, RoundDecideCtx, RoundDecideDirective,
        RoundEndCtx, RoundStartCtx, RoundStartDirective, SessionEndCtx, SessionStartCtx,
        TimerFireCtx, TimerFireDirective, ToolAfterCtx, ToolAfterDirective, ToolBeforeCtx,
        ToolBeforeDirective, ToolCallSite, ToolErrorCtx, ToolErrorDirective, ToolsBatchAfterCtx,
        ToolsBatchBeforeCtx, ToolsBatchDirective,
    };
}

// ===== store =====
pub use power_loop_store::{
    BackendDescriptor, BackgroundTaskRow, BackgroundTaskUpdate, Blackboard, BoardDocument,
    BoardEntry, CHECKPOINT_MODES, CURRENT_SCHEMA_VERSION, CompactionRequest, CompactionRow,
    ConnectOptions, DEFAULT_MAX_SPAWN_DEPTH, DEFAULT_TABLE_PREFIX, DsnTarget, JsonMap,
    MAX_SESSION_ID_LEN, MessageRow, MessageState, NewMessage, NewSession, NoteRow, ParsedDsn,
    PendingChange, PendingInteraction, PendingState, SchemaPolicy, SessionArchive, SessionKind,
    SessionLease, SessionRow, SessionStateRow, SessionStatsRow, SessionStatus, SessionStore,
    SqliteSync, StatsDelta, StoreOptions, StoreStats, SubagentLifecycle, TimerRow, TurnCommit,
    UsageRecord, UsageRoundRow, WindowToken, WorkflowLeafRow, WorkflowLeafState, backend_for_dsn,
    new_session_id, parse_dsn, provisioning_ddl, redact_dsn, validate_session_id,
};

/// Timer status strings (`armed`, `firing`, `fired`, `cancelled`) as stored in [`TimerRow`].
pub use power_loop_store::timer_status;

pub use power_loop_store::db::{Database, Dialect};

#[cfg(feature = "mysql")]
#[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
pub use power_loop_store_mysql::{MySqlDatabase, MySqlDialect};
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use power_loop_store_postgres::{PostgresDatabase, PostgresDialect};
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use power_loop_store_sqlite::{GroupCommitStats, SqliteDatabase, SqliteDialect};

/// The store backends compiled into this build (chosen by cargo features; the same list
/// `StatefulAgentLoop::builder(llm).dsn(..)` opens a DSN on).
pub const BACKENDS: &[BackendDescriptor] = power_loop_agent::COMPILED_BACKENDS;

/// Opens a store by DSN on the backends compiled into this build.
///
/// `sqlite:///abs/path.db`, `sqlite://rel.db`, a bare path such as `app.db`, or `:memory:` pick
/// SQLite; `postgres://…` PostgreSQL; `mysql://…` / `mariadb://…` MySQL. An unknown scheme is a
/// `store.dsn_invalid` error; a backend whose cargo feature is off is `store.backend_unavailable`.
pub async fn open_store(dsn: &str, options: StoreOptions) -> Result<SessionStore> {
    power_loop_store::open_store(dsn, options, BACKENDS).await
}

// ===== LLM providers =====
#[cfg(feature = "anthropic")]
#[cfg_attr(docsrs, doc(cfg(feature = "anthropic")))]
pub use power_loop_llm::{AnthropicConfig, AnthropicLlm};
pub use power_loop_llm::{
    EchoLlm, EndpointConfig, LlmProviderConfig, LlmStack, ProviderKind, RetryEvent, RetryPolicy,
    ScriptedLlm, Step as ScriptedStep, with_retry,
};
/// Deprecated aliases of [`LlmProviderConfig::build`] and [`LlmProviderConfig::build_from_env`].
#[allow(deprecated)]
pub use power_loop_llm::{create_llm_service_from_config, create_llm_service_from_env};

/// The old name of [`ScriptedStep`] (one scripted-model answer), kept for compatibility.
#[deprecated(
    note = "renamed to `ScriptedStep`: it is one answer of the scripted model, not a run step"
)]
pub type Step = ScriptedStep;
#[cfg(feature = "openai")]
#[cfg_attr(docsrs, doc(cfg(feature = "openai")))]
pub use power_loop_llm::{OpenAiConfig, OpenAiLlm};

// ===== tools =====
pub use power_loop_tools::{
    BubblewrapShell, CommandPolicy, FnTool, HumanInputRequest, LocalShell, PolicyRule, RuntimeEnv,
    ShellBackend, Tool, ToolContext, ToolOutcome, ToolRegistry, ToolSelection, default_registry,
    tool_fn,
};

// ===== MCP servers as tools =====
/// Tools from Model Context Protocol servers (stdio and Streamable HTTP), registered into a
/// [`ToolRegistry`]; the standard `mcpServers` configuration file. See `docs/mcp.md`.
#[cfg(feature = "mcp")]
pub mod mcp {
    pub use power_loop_mcp::{
        DEFAULT_CALL_TIMEOUT, DEFAULT_INHERITED_ENV, DEFAULT_STARTUP_TIMEOUT, HttpConfig,
        MAX_TOOL_NAME_LEN, McpConfig, McpServer, McpServerConfig, McpTool, McpToolInfo, McpToolset,
        McpTransport, StdioConfig, expand_env_vars, is_portable_tool_name, map_call_result,
        normalize_input_schema, sanitize_tool_name,
    };
}

// ===== the agent loop =====
pub use power_loop_agent::{
    AgentEventBus, AgentHooks, AgentLoopBuilder, AgentLoopConfig, AgentSpec, BusOptions, Compactor,
    EventFilter, FollowUpOutcome, FollowUpQueued, MemoryProvider, MemorySnapshot,
    NewSessionOptions, OverflowPolicy, RunStatus, RunUsage, SendOptions, StatefulAgentLoop,
    StatefulResult, StructuredOutputSpec, SystemPromptBuilder, UserInput, parse_structured,
};

// ===== compaction and durable timers =====
pub use power_loop_agent::{
    BackgroundProjector, CancelHandle, CompactionContext, ProjectionContext, RuntimeProjector,
    TodoProjector,
};
pub use power_loop_agent::{
    CompactRequest, CompactionPlan, DefaultCompactor, FiringOutcome, TimerDue, TimerFiring,
    TimerRunner, TimerRunnerOptions, recall_compacted_tool, register_timer_tools, timer_tools,
};

// ===== workflows =====
pub use power_loop_workflow::{
    AgentNode, AgentResult, BranchNode, BudgetSpec, DEFAULT_AGENT_INPUT, DEFAULT_MAX_CONCURRENCY,
    ForeachItems, ForeachNode, LeafStatus, MAX_NODE_DEPTH, Node, OnError, OutputSchema,
    ParallelNode, Reference, ResultMap, RunStatus as WorkflowRunStatus, SequenceNode, SharedBudget,
    SpecProblem, WorkflowResult, WorkflowSpec, WorkflowSpecError, render_template,
    resolve_reference,
};
pub use power_loop_workflow::{
    BUDGET_EXHAUSTED, CANCELLED_BEFORE_START, InProcessExecutor, LeafExecutor, LeafOutcome,
    LeafReport, LeafRequest, Progress as WorkflowProgress, ProgressFn as WorkflowProgressFn,
    RunHandle, RunOptions as WorkflowRunOptions, RunOutcome as WorkflowRunOutcome, RunStatusView,
    RunSummary, StepView, WAKE_NOTE_PREFIX, WorkflowEngine, WorkflowEngineBuilder,
    get_run as get_workflow_run, list_runs as list_workflow_runs, new_run_id, register_wake_guard,
    resume_detached, resume_run, start_detached, wake_note,
};

// ===== workflow leaves in worker processes =====
pub use power_loop_workflow::{
    BubblewrapLauncher, FirejailLauncher, KeepLeafDirs, LaunchPlan, LauncherChoice, LeafStoreMode,
    PlainLauncher, SubprocessExecutor, SubprocessExecutorBuilder, WorkerHost, WorkerLauncher,
    cleanup_run as cleanup_workflow_run, reap_runs as reap_workflow_runs, serve_worker,
};

// ===== a fleet of workflow workers =====
pub use power_loop_workflow::{
    FLEET_JOB_VERSION, FleetExecutor, FleetHost, FleetJob, FleetOptions, FleetReport, FleetResult,
    serve_fleet,
};

// ===== workflow tools =====
pub use power_loop_workflow::{
    WORKFLOW_TOOL_NAMES, create_workflow_tool, register_workflow_tools, validate_workflow_tool,
    workflow_status_tool,
};

// ===== sinks =====
#[cfg(feature = "prometheus")]
#[cfg_attr(docsrs, doc(cfg(feature = "prometheus")))]
pub use power_loop_sinks::metrics::PrometheusBackend;
#[cfg(feature = "statsd")]
#[cfg_attr(docsrs, doc(cfg(feature = "statsd")))]
pub use power_loop_sinks::metrics::{StatsdBackend, StatsdLabels, StatsdOptions};
#[cfg(feature = "otel")]
#[cfg_attr(docsrs, doc(cfg(feature = "otel")))]
pub use power_loop_sinks::otel::OtelBridge;
#[cfg(feature = "otel")]
#[cfg_attr(docsrs, doc(cfg(feature = "otel")))]
pub use power_loop_sinks::otlp::{OtlpOptions, OtlpPipeline};
pub use power_loop_sinks::{
    BadLine, BadLineKind, JsonlOptions, JsonlSink, LogSink, MetricsBackend, MetricsSink,
    QueueOptions, QueuedSink, Replay, TraceOptions, TracingSink, replay, replay_report,
};

/// The README's Rust blocks, compiled and run as doctests so they cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
