//! The one error type of power-loop and its frozen string codes.
//!
//! Every fallible public function in the workspace returns [`Error`]. Its [`ErrorCode`] is a
//! machine-readable, frozen string (`err.code().as_str()`), so callers branch on codes, never on
//! message text. The codes of the reference kernel (`session.not_found`, `llm.timeout`, …) are kept
//! verbatim; codes added by this crate follow the same `area.condition` shape.

use std::fmt;

/// A boxed error usable as the `source` of an [`Error`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Shorthand for `std::result::Result<T, power_loop_contracts::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

macro_rules! error_codes {
    ($( $(#[$meta:meta])* $variant:ident => $code:literal, retryable: $retry:literal; )*) => {
        /// A frozen, machine-readable error code.
        ///
        /// The string form ([`ErrorCode::as_str`]) is part of the stable API: it never changes for
        /// an existing variant. New variants may be added in minor releases.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $( $(#[$meta])* $variant, )*
        }

        impl ErrorCode {
            /// Every code, in declaration order (written into the API baseline).
            pub const ALL: &'static [ErrorCode] = &[ $( ErrorCode::$variant, )* ];

            /// The frozen string form of the code, e.g. `"session.not_found"`.
            pub const fn as_str(self) -> &'static str {
                match self { $( ErrorCode::$variant => $code, )* }
            }

            /// Whether an operation that failed with this code may succeed when retried unchanged.
            pub const fn is_retryable(self) -> bool {
                match self { $( ErrorCode::$variant => $retry, )* }
            }

            /// Parses the string form back into a code (`None` for an unknown string).
            pub fn from_code_str(s: &str) -> Option<ErrorCode> {
                match s { $( $code => Some(ErrorCode::$variant), )* _ => None }
            }
        }
    };
}

error_codes! {
    // ---- codes of the reference kernel (frozen) ----
    /// Generic library error (base code of the reference).
    Internal => "power_loop.error", retryable: false;
    /// The session id is unknown to the store.
    SessionNotFound => "session.not_found", retryable: false;
    /// The session has unresolved tool calls or open interactions; heal, resume or abort it first.
    SessionPending => "session.pending", retryable: false;
    /// The LLM call crossed its deadline.
    LlmTimeout => "llm.timeout", retryable: true;
    /// Every retry attempt of an LLM call failed.
    LlmRetryExhausted => "llm.retry_exhausted", retryable: false;
    /// The operation was cancelled through a cancellation token.
    Cancelled => "cancelled", retryable: false;
    /// Compaction of the context failed.
    CompactionFailed => "compaction.failed", retryable: true;
    /// No tool with that name is registered.
    ToolNotFound => "tool.not_found", retryable: false;
    /// A tool's arguments do not match its JSON schema.
    ToolInvalidArgs => "tool.invalid_args", retryable: false;
    /// A spec (agent spec, workflow spec) is invalid.
    SpecInvalid => "spec.invalid", retryable: false;

    // ---- configuration ----
    /// A configuration value or environment variable is missing or malformed.
    ConfigInvalid => "config.invalid", retryable: false;
    /// An argument passed to an API is out of its allowed range or shape.
    InvalidArgument => "invalid_argument", retryable: false;

    // ---- store ----
    /// The DSN is malformed or names an unknown scheme.
    StoreDsnInvalid => "store.dsn_invalid", retryable: false;
    /// The backend named by the DSN was not compiled in (cargo feature off).
    StoreBackendUnavailable => "store.backend_unavailable", retryable: false;
    /// The database server could not be reached.
    StoreConnection => "store.connection", retryable: true;
    /// The database rejected the credentials.
    StoreAuth => "store.auth_failed", retryable: false;
    /// The database named in the DSN does not exist.
    StoreDatabaseMissing => "store.database_missing", retryable: false;
    /// The database user lacks a privilege the operation needs.
    StorePermissionDenied => "store.permission_denied", retryable: false;
    /// The file is not a database of the expected kind, or it is corrupt/truncated.
    StoreCorrupt => "store.corrupt", retryable: false;
    /// The store schema is absent (policy `Verify`); the error carries the provisioning DDL.
    StoreSchemaMissing => "store.schema_missing", retryable: false;
    /// The store schema is older than this build and auto-create is off; carries the DDL.
    StoreSchemaOutdated => "store.schema_outdated", retryable: false;
    /// The store schema is newer than this build supports; the store refuses to open it.
    StoreSchemaNewer => "store.schema_newer", retryable: false;
    /// Creating the schema failed (e.g. missing CREATE rights); carries the DDL.
    StoreSchemaCreateFailed => "store.schema_create_failed", retryable: false;
    /// A transient conflict (lock busy, serialization failure, deadlock): retry the operation.
    StoreConflict => "store.conflict", retryable: true;
    /// A uniqueness or integrity constraint was violated (e.g. the row already exists).
    StoreConstraint => "store.constraint", retryable: false;
    /// The session already exists (create with a taken id, import collision).
    SessionExists => "session.exists", retryable: false;
    /// The session writer lease is held by another worker.
    SessionLeaseHeld => "session.lease_held", retryable: true;
    /// The session writer lease was lost (another worker took the session over); the write was
    /// refused and nothing of it is visible. Not retryable by the same worker.
    SessionLeaseLost => "session.lease_lost", retryable: false;
    /// An export archive is malformed or newer than this build supports.
    StoreArchiveInvalid => "store.archive_invalid", retryable: false;
    /// The store (or loop) was closed.
    StoreClosed => "store.closed", retryable: false;
    /// Any other database error; the driver error is the source.
    StoreQuery => "store.query", retryable: false;
    /// A file-system I/O error in the store.
    StoreIo => "store.io", retryable: false;
    /// A stored value could not be decoded (bad JSON, unknown enum value).
    StoreDecode => "store.decode", retryable: false;
    /// A notes policy limit was hit.
    NotesFull => "notes.full", retryable: false;
    /// A blackboard rule was broken (e.g. posting to a closed board).
    BlackboardInvalid => "blackboard.invalid", retryable: false;
    /// A timer argument is invalid.
    TimerInvalid => "timer.invalid", retryable: false;
    /// The timer claim was lost (another runner claimed the firing again); the write or delivery
    /// was refused and nothing of it is visible.
    TimerClaimLost => "timer.claim_lost", retryable: false;

    // ---- LLM providers ----
    /// The provider rejected the request as malformed (400/422).
    LlmBadRequest => "llm.bad_request", retryable: false;
    /// The provider rejected the credentials (401/403).
    LlmAuth => "llm.auth", retryable: false;
    /// The model or endpoint does not exist (404).
    LlmNotFound => "llm.not_found", retryable: false;
    /// The provider is rate limiting (429).
    LlmRateLimited => "llm.rate_limited", retryable: true;
    /// The provider is overloaded (Anthropic 529 / `overloaded_error`).
    LlmOverloaded => "llm.overloaded", retryable: true;
    /// The provider answered with a server error (5xx, 408, 409).
    LlmServer => "llm.server", retryable: true;
    /// The connection to the provider failed.
    LlmConnection => "llm.connection", retryable: true;
    /// The provider's answer could not be parsed (malformed JSON, bad SSE).
    LlmProtocol => "llm.protocol", retryable: false;
    /// The stream ended before its documented end (no finish reason, no `[DONE]`/`message_stop`).
    LlmStreamIncomplete => "llm.stream_incomplete", retryable: true;
    /// The provider reported an error (e.g. an `error` event mid-stream).
    LlmProvider => "llm.provider_error", retryable: false;
    /// The request holds a content part the provider or model cannot take (a PDF for a model
    /// without document input, a file type or source the provider does not accept).
    LlmUnsupportedContent => "llm.unsupported_content", retryable: false;

    // ---- agent loop ----
    /// The structured answer did not parse or validate against its schema.
    StructuredOutputInvalid => "structured_output.invalid", retryable: false;
    /// A hard token budget was exceeded.
    BudgetExceeded => "budget.exceeded", retryable: false;
    /// A hook handler failed.
    HookFailed => "hook.failed", retryable: false;
    /// An event subscriber failed (only surfaced when the bus is told to propagate).
    SubscriberFailed => "event.subscriber_failed", retryable: false;
    /// The loop is closing or closed.
    LoopClosed => "loop.closed", retryable: false;
    /// A human answer is required before the run can continue.
    HumanInputRequired => "human_input.required", retryable: false;
    /// A runtime path (workspace root, skills dir…) is not configured.
    RuntimeEnvMissing => "runtime_env.missing", retryable: false;

    // ---- tools ----
    /// A tool handler failed.
    ToolFailed => "tool.failed", retryable: false;
    /// A tool ran past its time limit.
    ToolTimeout => "tool.timeout", retryable: true;
    /// A tool call was refused by a policy (command policy, path confinement).
    ToolDenied => "tool.denied", retryable: false;
    /// The sandbox a shell backend needs is missing or unusable (fails closed).
    SandboxUnavailable => "sandbox.unavailable", retryable: false;
    /// A sub-agent spawn would exceed the depth limit.
    SubagentDepthExceeded => "subagent.depth_exceeded", retryable: false;
    /// A sub-agent spawn would exceed the fan-out limit.
    SubagentFanoutExceeded => "subagent.fanout_exceeded", retryable: false;
    /// An MCP server failed or answered badly.
    McpFailed => "mcp.failed", retryable: false;
    /// An MCP server could not be started or reached, or it died; it is restarted (with backoff) on the next call.
    McpUnavailable => "mcp.unavailable", retryable: true;

    // ---- workflows ----
    /// A workflow run failed.
    WorkflowFailed => "workflow.failed", retryable: false;
    /// A workflow worker process could not be bootstrapped.
    WorkerBootstrap => "workflow.worker_bootstrap", retryable: false;
    /// A workflow worker process broke the worker protocol (garbage or partial output, another
    /// protocol version, a frame over the size limit).
    WorkerProtocol => "workflow.worker_protocol", retryable: false;
    /// A fleet worker's claim on a workflow leaf is no longer its own (its lease ran out and
    /// another worker took the leaf over, or it was released): its result is not recorded.
    WorkflowClaimLost => "workflow.claim_lost", retryable: false;

    // ---- generic ----
    /// A file-system or process I/O error outside the store.
    Io => "io", retryable: false;
    /// A value could not be serialized or deserialized.
    Serialization => "serialization", retryable: false;
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for ErrorCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
        ErrorCode::from_code_str(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown error code `{s}`")))
    }
}

/// The error type of power-loop.
///
/// It carries a frozen [`ErrorCode`], a message that says what failed and what to do about it,
/// structured `details` (e.g. the session id, the provisioning DDL), and the underlying cause as
/// [`std::error::Error::source`].
pub struct Error {
    code: ErrorCode,
    message: String,
    details: serde_json::Map<String, serde_json::Value>,
    source: Option<BoxError>,
}

impl Error {
    /// Creates an error with a code and a human message (what failed, and what to do).
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
            details: serde_json::Map::new(),
            source: None,
        }
    }

    /// Attaches the underlying cause.
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Attaches one structured detail (e.g. `session_id`).
    pub fn with_detail(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.details.insert(key.to_owned(), value.into());
        self
    }

    /// Attaches the provisioning DDL an operator must run (schema errors).
    pub fn with_ddl(self, ddl: Vec<String>) -> Self {
        let v = serde_json::Value::Array(ddl.into_iter().map(serde_json::Value::String).collect());
        self.with_detail("ddl", v)
    }

    /// The frozen code of this error.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    /// The human message, without details or DDL.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Structured details of this error (keys depend on the code).
    pub fn details(&self) -> &serde_json::Map<String, serde_json::Value> {
        &self.details
    }

    /// One structured detail by key.
    pub fn detail(&self, key: &str) -> Option<&serde_json::Value> {
        self.details.get(key)
    }

    /// The provisioning DDL attached to a schema error (empty when none).
    pub fn ddl(&self) -> Vec<String> {
        match self.details.get("ddl") {
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Whether retrying the same operation may succeed.
    pub fn is_retryable(&self) -> bool {
        self.code.is_retryable()
    }

    // ----- constructors for the common cases -----

    /// `session.not_found` for `session_id`.
    pub fn session_not_found(session_id: &str) -> Self {
        Error::new(
            ErrorCode::SessionNotFound,
            format!(
                "session `{session_id}` does not exist in this store; create it first or check the id and table prefix"
            ),
        )
        .with_detail("session_id", session_id)
    }

    /// `invalid_argument` with a message.
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Error::new(ErrorCode::InvalidArgument, message)
    }

    /// `config.invalid` with a message.
    pub fn config(message: impl Into<String>) -> Self {
        Error::new(ErrorCode::ConfigInvalid, message)
    }

    /// `cancelled` with a reason.
    pub fn cancelled(reason: impl Into<String>) -> Self {
        let reason = reason.into();
        Error::new(
            ErrorCode::Cancelled,
            format!("the operation was cancelled: {reason}"),
        )
        .with_detail("reason", reason)
    }

    /// `power_loop.error` for an internal invariant failure.
    pub fn internal(message: impl Into<String>) -> Self {
        Error::new(ErrorCode::Internal, message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Error");
        d.field("code", &self.code.as_str())
            .field("message", &self.message);
        if !self.details.is_empty() {
            d.field("details", &self.details);
        }
        if let Some(src) = &self.source {
            d.field("source", &format_args!("{src}"));
        }
        d.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", self.code.as_str(), self.message)?;
        let ddl = self.ddl();
        if !ddl.is_empty() {
            writeln!(f)?;
            writeln!(f)?;
            writeln!(
                f,
                "Run this script as a database user with DDL rights, then reopen the store with SchemaPolicy::Verify:"
            )?;
            for stmt in ddl {
                writeln!(f, "{stmt};")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::new(ErrorCode::Serialization, format!("invalid JSON: {e}")).with_source(e)
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::new(ErrorCode::Io, format!("I/O error: {e}")).with_source(e)
    }
}
