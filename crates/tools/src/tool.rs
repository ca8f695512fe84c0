//! The tool seam: the [`Tool`] trait, the per-call [`ToolContext`] and closure tools.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use power_loop_contracts::{BoxFuture, CancellationToken, Result, ToolDefinition, ToolOutput};

use crate::backend::{BoardBackend, ToolStore};
use crate::env::RuntimeEnv;

/// A tool the model can call.
///
/// Object-safe: registries hold `Arc<dyn Tool>`. `call` receives arguments that were already
/// validated against `definition().parameters`. Returning `Err` marks the call failed (the error
/// message goes to the model, the code to the events); returning `Ok(ToolOutput::failed(..))`
/// does the same without a code.
pub trait Tool: Send + Sync {
    /// Name, description and JSON schema of the arguments.
    fn definition(&self) -> &ToolDefinition;

    /// Runs the tool once with validated arguments.
    fn call<'a>(
        &'a self,
        ctx: ToolContext,
        args: serde_json::Value,
    ) -> BoxFuture<'a, Result<ToolOutput>>;

    /// Whether calls of this tool may run concurrently with other calls of the same round
    /// (read-only tools return `true`).
    fn concurrency_safe(&self) -> bool {
        false
    }

    /// Releases what the tool holds outside the process's memory (e.g. the server process of an
    /// MCP tool). Called by [`ToolRegistry::close`](crate::ToolRegistry::close) and so when an
    /// agent loop closes; must be idempotent. The default does nothing.
    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(std::future::ready(()))
    }
}

/// Forwards [`Tool`] through smart pointers, so `Arc<dyn Tool>` and `Box<dyn Tool>` are tools.
macro_rules! forward_tool {
    ($($ptr:ident),*) => {$(
        impl<T: Tool + ?Sized> Tool for $ptr<T> {
            fn definition(&self) -> &ToolDefinition {
                (**self).definition()
            }
            fn call<'a>(
                &'a self,
                ctx: ToolContext,
                args: serde_json::Value,
            ) -> BoxFuture<'a, Result<ToolOutput>> {
                (**self).call(ctx, args)
            }
            fn concurrency_safe(&self) -> bool {
                (**self).concurrency_safe()
            }
            fn close(&self) -> BoxFuture<'_, ()> {
                (**self).close()
            }
        }
    )*};
}

forward_tool!(Arc, Box);

/// A type map of host objects a tool may need (e.g. the agent loop handle for `spawn_agent`).
///
/// The loop inserts values before dispatching; tools fetch them with
/// [`ToolContext::extension`]. Cloning is cheap (values are `Arc`s).
#[derive(Clone, Default)]
pub struct Extensions {
    map: HashMap<TypeId, Arc<dyn Any + Send + Sync>>,
}

impl Extensions {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Inserts (or replaces) the value of type `T`.
    pub fn insert<T: Any + Send + Sync>(&mut self, value: Arc<T>) {
        self.map.insert(TypeId::of::<T>(), value);
    }

    /// The value of type `T`, if present.
    pub fn get<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        self.map
            .get(&TypeId::of::<T>())
            .and_then(|v| Arc::clone(v).downcast::<T>().ok())
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

impl fmt::Debug for Extensions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Extensions")
            .field("len", &self.map.len())
            .finish()
    }
}

/// Everything a tool call may use besides its arguments. Cheap to clone.
#[derive(Clone)]
pub struct ToolContext {
    /// The session the call belongs to (empty when run outside a session).
    pub session_id: String,
    /// The round (model turn) index within the run.
    pub round_index: u32,
    /// The provider's tool-call id.
    pub tool_call_id: String,
    /// Cancelled when the run is stopped; long tools must watch it.
    pub cancel: CancellationToken,
    /// Workspace root, skills dir, shell backend, command policy, board id…
    pub env: Arc<RuntimeEnv>,
    /// Session persistence for notes, todo, background tasks (absent outside a stateful loop).
    pub store: Option<Arc<dyn ToolStore>>,
    /// The shared board for the `board_*` tools (absent when no board is configured).
    pub blackboard: Option<Arc<dyn BoardBackend>>,
    /// Display name of the calling agent (board author); falls back to the session id.
    pub agent_name: Option<String>,
    /// Host objects (e.g. the loop handle used by sub-agent tools).
    pub extensions: Extensions,
}

impl ToolContext {
    /// A context for `env` with a fresh cancellation token and no store.
    pub fn new(env: Arc<RuntimeEnv>) -> Self {
        ToolContext {
            session_id: String::new(),
            round_index: 0,
            tool_call_id: String::new(),
            cancel: CancellationToken::new(),
            env,
            store: None,
            blackboard: None,
            agent_name: None,
            extensions: Extensions::new(),
        }
    }

    /// Sets the session id.
    pub fn with_session(mut self, session_id: impl Into<String>) -> Self {
        self.session_id = session_id.into();
        self
    }

    /// Sets the round index.
    pub fn with_round(mut self, round_index: u32) -> Self {
        self.round_index = round_index;
        self
    }

    /// Sets the tool-call id.
    pub fn with_tool_call_id(mut self, id: impl Into<String>) -> Self {
        self.tool_call_id = id.into();
        self
    }

    /// Sets the cancellation token.
    pub fn with_cancel(mut self, cancel: CancellationToken) -> Self {
        self.cancel = cancel;
        self
    }

    /// Sets the store.
    pub fn with_store(mut self, store: Arc<dyn ToolStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// Sets the blackboard.
    pub fn with_blackboard(mut self, board: Arc<dyn BoardBackend>) -> Self {
        self.blackboard = Some(board);
        self
    }

    /// Sets the agent display name.
    pub fn with_agent_name(mut self, name: impl Into<String>) -> Self {
        self.agent_name = Some(name.into());
        self
    }

    /// Adds a host object to the extensions.
    pub fn with_extension<T: Any + Send + Sync>(mut self, value: Arc<T>) -> Self {
        self.extensions.insert(value);
        self
    }

    /// A host object from the extensions.
    pub fn extension<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        self.extensions.get::<T>()
    }
}

impl fmt::Debug for ToolContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ToolContext")
            .field("session_id", &self.session_id)
            .field("round_index", &self.round_index)
            .field("tool_call_id", &self.tool_call_id)
            .field("env", &self.env)
            .field("store", &self.store.is_some())
            .field("blackboard", &self.blackboard.is_some())
            .field("extensions", &self.extensions)
            .finish()
    }
}

type Handler =
    dyn Fn(ToolContext, serde_json::Value) -> BoxFuture<'static, Result<ToolOutput>> + Send + Sync;

/// A tool made from a definition and an async closure (see [`tool_fn`]).
pub struct FnTool {
    definition: ToolDefinition,
    handler: Box<Handler>,
    concurrency_safe: bool,
}

impl FnTool {
    /// Marks the tool as safe to run concurrently (read-only).
    pub fn concurrent(mut self, safe: bool) -> Self {
        self.concurrency_safe = safe;
        self
    }
}

impl fmt::Debug for FnTool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnTool")
            .field("name", &self.definition.name)
            .finish()
    }
}

impl Tool for FnTool {
    fn definition(&self) -> &ToolDefinition {
        &self.definition
    }
    fn call<'a>(
        &'a self,
        ctx: ToolContext,
        args: serde_json::Value,
    ) -> BoxFuture<'a, Result<ToolOutput>> {
        (self.handler)(ctx, args)
    }
    fn concurrency_safe(&self) -> bool {
        self.concurrency_safe
    }
}

/// Builds a tool from a definition and an async closure.
///
/// ```
/// use power_loop_contracts::{ToolDefinition, ToolOutput};
/// let echo = power_loop_tools::tool_fn(
///     ToolDefinition::new("echo", "Echoes text", serde_json::json!({
///         "type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]})),
///     |_ctx, args| async move { Ok(ToolOutput::ok(args["text"].as_str().unwrap_or_default())) },
/// );
/// # let _ = echo;
/// ```
pub fn tool_fn<F, Fut>(definition: ToolDefinition, f: F) -> FnTool
where
    F: Fn(ToolContext, serde_json::Value) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<ToolOutput>> + Send + 'static,
{
    FnTool {
        definition,
        handler: Box::new(move |ctx, args| Box::pin(f(ctx, args))),
        concurrency_safe: false,
    }
}
