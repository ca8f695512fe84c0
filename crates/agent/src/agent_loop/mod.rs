//! [`StatefulAgentLoop`]: a stateless, cheap-to-clone handle over a [`SessionStore`].
//!
//! Everything durable lives in the store; any number of loops (in any process) can drive the
//! same store and continue a session by id. Per session, runs are serialized in-process (an async
//! mutex per session id) and across processes (the store's session writer lease).
//!
//! This file holds the handle, its builder and its read-side methods; [`guard`] the one session
//! guard every entry point runs under; [`entry`] the entry points (send, resume, submit_input,
//! abort_pending, follow_up) that set up a [`Run`](crate::run::Run) and drive it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use power_loop_contracts::ErrorCode;
use power_loop_contracts::{Error, LlmService, Message, Result};
use power_loop_store::{
    BackendDescriptor, JsonMap, NewSession, PendingState, SessionStatsRow, SessionStore,
    StoreOptions, open_store, parse_dsn, redact_dsn,
};
use power_loop_tools::{RuntimeEnv, ToolRegistry};
use tokio::sync::OnceCell;

use crate::bus::AgentEventBus;
use crate::config::AgentLoopConfig;
use crate::convert::row_to_message;
use crate::hooks::AgentHooks;
use crate::prompt::{default_agent_system_prompt, format_tool_catalog, skills_section};
use crate::result::SendOptions;
use crate::run::{FollowUps, LoopContext};
use crate::window::{CacheStats, WindowCache};

enum StoreSource {
    Opened,
    Dsn {
        dsn: String,
        options: StoreOptions,
        backends: Vec<BackendDescriptor>,
    },
}

mod backends;
mod checks;
mod entry;
mod guard;

pub use backends::COMPILED_BACKENDS;

/// What the clones of one loop share.
pub(crate) struct Shared {
    /// What every run of this loop reads (model, config, hooks, environment, follow-ups).
    run_ctx: Arc<LoopContext>,
    source: StoreSource,
    store: OnceCell<SessionStore>,
    tools: Option<ToolRegistry>,
    bus: AgentEventBus,
    cache: WindowCache,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    closing: AtomicBool,
    in_flight: AtomicUsize,
    idle: tokio::sync::Notify,
    lease_wait: Duration,
}

impl Shared {
    fn lock_for(&self, sid: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut m = self
            .locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(m.entry(sid.to_owned()).or_default())
    }
}

/// Builds a [`StatefulAgentLoop`]: `StatefulAgentLoop::builder(llm).dsn("app.db").build()?`
/// is enough (the backends compiled in are found, options default).
#[must_use = "a builder does nothing until `build()` or `open()`"]
pub struct AgentLoopBuilder {
    llm: Arc<dyn LlmService>,
    source: Option<(StoreSource, Option<SessionStore>)>,
    store_options: Option<StoreOptions>,
    backends: Option<Vec<BackendDescriptor>>,
    config: AgentLoopConfig,
    tools: Option<ToolRegistry>,
    hooks: Option<AgentHooks>,
    bus: Option<AgentEventBus>,
    env: Option<Arc<RuntimeEnv>>,
    lease_wait: Duration,
    /// Store sources given (`store`, `dsn`), in call order: more than one kind is a conflict.
    given: Vec<&'static str>,
}

impl std::fmt::Debug for AgentLoopBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentLoopBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl AgentLoopBuilder {
    /// Uses an already-open store (may be shared between loops; the loop does not close it).
    pub fn store(mut self, store: SessionStore) -> Self {
        self.given.push("store");
        self.source = Some((StoreSource::Opened, Some(store)));
        self
    }

    /// Opens a store from a DSN lazily, once, on first use (the loop owns and closes it):
    /// `sqlite:///abs/path.db`, a file path such as `app.db`, `:memory:`, `postgres://…` or
    /// `mysql://…`. The backends compiled into this build are used ([`COMPILED_BACKENDS`];
    /// override with [`backends`](Self::backends)) with default [`StoreOptions`] (see
    /// [`store_options`](Self::store_options)). A malformed DSN, an unknown scheme or a
    /// backend that is not compiled in fails at [`build`](Self::build); [`open`](Self::open)
    /// also connects, so an unreachable server fails at start-up.
    pub fn dsn(mut self, dsn: impl Into<String>) -> Self {
        self.given.push("dsn");
        self.source = Some((
            StoreSource::Dsn {
                dsn: dsn.into(),
                options: StoreOptions::default(),
                backends: Vec::new(),
            },
            None,
        ));
        self
    }

    /// The store options a [`dsn`](Self::dsn) store is opened with (table prefix, schema
    /// policy, connection settings; default [`StoreOptions::default`]).
    pub fn store_options(mut self, options: StoreOptions) -> Self {
        self.store_options = Some(options);
        self
    }

    /// The backends a [`dsn`](Self::dsn) store may be opened on (default: those compiled in,
    /// [`COMPILED_BACKENDS`]).
    pub fn backends(mut self, backends: &[BackendDescriptor]) -> Self {
        self.backends = Some(backends.to_vec());
        self
    }

    /// Sets the configuration.
    pub fn config(mut self, config: AgentLoopConfig) -> Self {
        self.config = config;
        self
    }

    /// Sets the tools available to the model.
    pub fn tools(mut self, registry: ToolRegistry) -> Self {
        self.tools = Some(registry);
        self
    }

    /// Sets the hook registry (default: a fresh, empty one per loop).
    pub fn hooks(mut self, hooks: AgentHooks) -> Self {
        self.hooks = Some(hooks);
        self
    }

    /// Sets the event bus (default: a fresh inline bus per loop).
    pub fn event_bus(mut self, bus: AgentEventBus) -> Self {
        self.bus = Some(bus);
        self
    }

    /// Sets the runtime environment tools see (default: `RuntimeEnv::default()`).
    pub fn runtime_env(mut self, env: Arc<RuntimeEnv>) -> Self {
        self.env = Some(env);
        self
    }

    /// How long a run waits for another worker's session lease before `session.lease_held`
    /// (default 30 s).
    pub fn lease_wait(mut self, wait: Duration) -> Self {
        self.lease_wait = wait;
        self
    }

    /// Builds the loop (no I/O). Checks a [`dsn`](Self::dsn) now: a malformed DSN or an
    /// unknown scheme is `store.dsn_invalid`, a backend that is not compiled in
    /// `store.backend_unavailable`, bad options `invalid_argument`. Options that contradict
    /// each other are `config.invalid` (details `conflict`: the two option names): an opened
    /// [`store`](Self::store) together with a [`dsn`](Self::dsn), or with
    /// [`store_options`](Self::store_options) or [`backends`](Self::backends) (which only
    /// apply to a DSN-opened store).
    pub fn build(mut self) -> Result<StatefulAgentLoop> {
        self.check_conflicts()?;
        self.apply_env_overrides()?;
        let Some((mut source, opened)) = self.source.take() else {
            return Err(Error::config(
                "StatefulAgentLoop needs a store: call .dsn(\"app.db\") or .store(store)",
            ));
        };
        if let StoreSource::Dsn {
            dsn,
            options,
            backends,
        } = &mut source
        {
            if let Some(o) = self.store_options.take() {
                *options = o;
            }
            *backends = self
                .backends
                .take()
                .unwrap_or_else(|| COMPILED_BACKENDS.to_vec());
            options.validate()?;
            let parsed = parse_dsn(dsn)?;
            if !backends.iter().any(|b| b.name == parsed.backend) {
                return Err(Error::new(
                    ErrorCode::StoreBackendUnavailable,
                    format!(
                        "the DSN `{}` needs the {} backend, which is not compiled in; enable the `{}` cargo feature of power-loop",
                        redact_dsn(dsn),
                        parsed.backend,
                        parsed.backend
                    ),
                )
                .with_detail("backend", parsed.backend));
            }
        }
        Ok(self.assemble(source, opened))
    }

    /// Builds the loop and opens its store now ([`StatefulAgentLoop::connect`]): a service
    /// fails at start-up on an unreachable server or a missing schema, not at the first send.
    pub async fn open(self) -> Result<StatefulAgentLoop> {
        let lp = self.build()?;
        lp.connect().await?;
        Ok(lp)
    }

    fn assemble(self, source: StoreSource, opened: Option<SessionStore>) -> StatefulAgentLoop {
        let store = OnceCell::new();
        if let Some(s) = opened {
            let _ = store.set(s);
        }
        let cache = WindowCache::new(self.config.session_cache_size);
        StatefulAgentLoop {
            shared: Arc::new(Shared {
                run_ctx: Arc::new(LoopContext {
                    llm: self.llm,
                    config: self.config,
                    hooks: self.hooks.unwrap_or_default(),
                    env: self.env.unwrap_or_default(),
                    follow_ups: FollowUps::default(),
                }),
                source,
                store,
                tools: self.tools,
                bus: self.bus.unwrap_or_default(),
                cache,
                locks: Mutex::new(HashMap::new()),
                closing: AtomicBool::new(false),
                in_flight: AtomicUsize::new(0),
                idle: tokio::sync::Notify::new(),
                lease_wait: self.lease_wait,
            }),
        }
    }
}

/// The agent loop handle. Cheap to clone; clones share configuration, locks and cache.
#[derive(Clone)]
pub struct StatefulAgentLoop {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for StatefulAgentLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatefulAgentLoop")
            .field("config", &self.shared.run_ctx.config)
            .finish_non_exhaustive()
    }
}

/// Options of [`StatefulAgentLoop::new_session`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct NewSessionOptions {
    /// Session system prompt (wins over the loop config at send time).
    pub system_prompt: Option<String>,
    /// Free metadata.
    pub metadata: Option<JsonMap>,
}

impl NewSessionOptions {
    /// Sets the session system prompt.
    pub fn with_system_prompt(mut self, p: impl Into<String>) -> Self {
        self.system_prompt = Some(p.into());
        self
    }
    /// Sets the metadata.
    pub fn with_metadata(mut self, m: JsonMap) -> Self {
        self.metadata = Some(m);
        self
    }
}

impl StatefulAgentLoop {
    /// A builder over `llm`.
    pub fn builder(llm: Arc<dyn LlmService>) -> AgentLoopBuilder {
        AgentLoopBuilder {
            llm,
            source: None,
            store_options: None,
            backends: None,
            config: AgentLoopConfig::default(),
            tools: None,
            hooks: None,
            bus: None,
            env: None,
            lease_wait: Duration::from_secs(30),
            given: Vec::new(),
        }
    }

    /// A loop over an open store with the default configuration and no tools.
    pub fn new(llm: Arc<dyn LlmService>, store: SessionStore) -> Self {
        Self::builder(llm).assemble(StoreSource::Opened, Some(store))
    }

    /// The configuration.
    pub fn config(&self) -> &AgentLoopConfig {
        &self.shared.run_ctx.config
    }
    /// The hook registry.
    pub fn hooks(&self) -> &AgentHooks {
        &self.shared.run_ctx.hooks
    }
    /// The event bus.
    pub fn event_bus(&self) -> &AgentEventBus {
        &self.shared.bus
    }
    /// The tool registry.
    pub fn tool_registry(&self) -> Option<&ToolRegistry> {
        self.shared.tools.as_ref()
    }
    /// The model.
    pub fn llm(&self) -> &Arc<dyn LlmService> {
        &self.shared.run_ctx.llm
    }
    /// The runtime environment tools see (sub-agents inherit it).
    pub(crate) fn runtime_env(&self) -> &Arc<RuntimeEnv> {
        &self.shared.run_ctx.env
    }
    /// Active-window cache counters.
    pub fn cache_stats(&self) -> CacheStats {
        self.shared.cache.stats()
    }

    /// Opens the store now if it is not open yet (a DSN-built loop opens it lazily otherwise):
    /// call it at start-up to fail fast on an unreachable server or a missing schema.
    pub async fn connect(&self) -> Result<()> {
        self.store().await.map(|_| ())
    }

    /// The store (opened on first use for a DSN-built loop).
    pub async fn store(&self) -> Result<&SessionStore> {
        self.shared
            .store
            .get_or_try_init(|| async {
                match &self.shared.source {
                    StoreSource::Dsn {
                        dsn,
                        options,
                        backends,
                    } => open_store(dsn, options.clone(), backends).await,
                    StoreSource::Opened => Err(Error::internal("the loop's store is missing")),
                }
            })
            .await
    }

    /// Creates a root session; returns its id.
    pub async fn new_session(&self, options: NewSessionOptions) -> Result<String> {
        let store = self.store().await?;
        let c = &self.shared.run_ctx.config;
        let mut config = JsonMap::new();
        config.insert("max_rounds".into(), c.max_rounds.into());
        config.insert(
            "max_tokens".into(),
            c.max_tokens.map_or(serde_json::Value::Null, Into::into),
        );
        config.insert(
            "temperature".into(),
            c.temperature.map_or(serde_json::Value::Null, Into::into),
        );
        let mut new = NewSession::new().with_config(config);
        if let Some(p) = options.system_prompt.filter(|p| !p.trim().is_empty()) {
            new = new.with_system_prompt(p);
        }
        if let Some(m) = options.metadata {
            new = new.with_metadata(m);
        }
        store.create_session(new).await
    }

    /// The system prompt the next send would use (per-call > session > config > default, plus
    /// the tool catalog and, with `skills_dir` configured, the skills section).
    pub async fn resolve_system_prompt(&self, session_id: Option<&str>) -> Result<String> {
        let session_prompt = match session_id {
            Some(sid) => self
                .store()
                .await?
                .get_session(sid)
                .await?
                .and_then(|s| s.system_prompt),
            None => None,
        };
        Ok(self.build_prompt(None, session_prompt, self.shared.tools.as_ref()))
    }

    fn build_prompt(
        &self,
        per_call: Option<&str>,
        session: Option<String>,
        registry: Option<&ToolRegistry>,
    ) -> String {
        let c = &self.shared.run_ctx.config;
        let base = per_call
            .filter(|p| !p.trim().is_empty())
            .map(str::to_owned)
            .or(session.filter(|p| !p.trim().is_empty()))
            .or_else(|| c.system_prompt.clone().filter(|p| !p.trim().is_empty()))
            .unwrap_or_else(default_agent_system_prompt);
        let mut prompt = base.trim().to_owned();
        if c.inject_tool_descriptions
            && let Some(r) = registry
        {
            let cat = format_tool_catalog(&r.definitions(), &c.tool_catalog_header);
            if !cat.is_empty() {
                prompt.push_str("\n\n");
                prompt.push_str(&cat);
            }
        }
        if c.skills_dir.is_some()
            && let Some(dir) = self.shared.run_ctx.env.skills_dir.as_deref()
        {
            let section = skills_section(dir);
            if !section.is_empty() {
                prompt.push_str("\n\n");
                prompt.push_str(&section);
            }
        }
        prompt
    }

    fn registry_for(&self, opts: &SendOptions) -> Option<ToolRegistry> {
        if let Some(r) = &opts.tool_registry {
            return Some(r.clone());
        }
        let base = self.shared.tools.as_ref()?;
        match &opts.tools {
            Some(names) => {
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                Some(base.subset(&refs))
            }
            None => Some(base.clone()),
        }
    }

    /// Warms the active-window cache; `false` if the session does not exist.
    pub async fn prewarm(&self, session_id: &str) -> Result<bool> {
        let store = self.store().await?;
        if store.get_state(session_id).await?.is_none() {
            return Ok(false);
        }
        if self.shared.cache.enabled() {
            let (token, rows) = store.load_active_window(session_id).await?;
            let msgs = rows.iter().map(row_to_message).collect();
            let seqs = rows.iter().map(|r| Some(r.seq)).collect();
            self.shared
                .cache
                .put(session_id, token, (Arc::new(msgs), seqs));
        }
        Ok(true)
    }

    /// Inputs queued by `follow_up` and not yet drained.
    pub fn pending_follow_up_count(&self, session_id: &str) -> usize {
        self.shared.run_ctx.follow_ups.count(session_id)
    }

    /// The active window (or every row with `include_compacted`) as messages.
    pub async fn get_messages(
        &self,
        session_id: &str,
        include_compacted: bool,
    ) -> Result<Vec<Message>> {
        let store = self.store().await?;
        let rows = if include_compacted {
            store.load_all_messages(session_id).await?
        } else {
            store.load_active_messages(session_id, None).await?
        };
        Ok(rows.iter().map(row_to_message).collect())
    }

    /// The raw pending state, if any.
    pub async fn get_pending(&self, session_id: &str) -> Result<Option<PendingState>> {
        self.store().await?.get_pending(session_id).await
    }

    /// Cumulative stats of a session.
    pub async fn get_session_stats(&self, session_id: &str) -> Result<Option<SessionStatsRow>> {
        self.store().await?.get_session_stats(session_id).await
    }

    /// Deletes a session (and with `cascade` its linked subtree); drops its lock, queue and cache.
    pub async fn close_session(&self, session_id: &str, cascade: bool) -> Result<u64> {
        let n = self
            .store()
            .await?
            .close_session(session_id, cascade)
            .await?;
        self.shared.cache.invalidate(session_id);
        self.shared.run_ctx.follow_ups.forget(session_id);
        if let Ok(mut l) = self.shared.locks.lock() {
            l.remove(session_id);
        }
        Ok(n)
    }

    /// Graceful close: refuses new sends (`loop.closed`), waits (bounded) for in-flight runs,
    /// drains the event bus, then closes a store the loop opened itself. Idempotent. Returns
    /// whether everything drained within `timeout`.
    pub async fn close(&self, timeout: Duration) -> Result<bool> {
        self.shared.closing.store(true, Ordering::Release);
        let deadline = Instant::now() + timeout;
        let mut drained = true;
        while self.shared.in_flight.load(Ordering::Acquire) > 0 {
            let now = Instant::now();
            if now >= deadline {
                tracing::warn!(target: "power_loop::agent", "close: in-flight runs did not finish in time");
                drained = false;
                break;
            }
            let wait = self.shared.idle.notified();
            let _ =
                tokio::time::timeout((deadline - now).min(Duration::from_millis(20)), wait).await;
        }
        // Tools holding processes (MCP servers) stop with the loop.
        if let Some(tools) = &self.shared.tools {
            tools.close().await;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if !self.shared.bus.drain(Some(left)).await {
            drained = false;
        }
        if matches!(self.shared.source, StoreSource::Dsn { .. })
            && let Some(store) = self.shared.store.get()
        {
            store.close().await?;
        }
        Ok(drained)
    }
}
