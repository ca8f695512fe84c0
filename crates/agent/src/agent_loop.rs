//! [`StatefulAgentLoop`]: a stateless, cheap-to-clone handle over a [`SessionStore`].
//!
//! Everything durable lives in the store; any number of loops (in any process) can drive the
//! same store and continue a session by id. Per session, runs are serialized in-process (an async
//! mutex per session id) and across processes (the store's session writer lease).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use power_loop_contracts::{Error, ErrorCode, LlmService, Message, Result, ToolCall};
use power_loop_store::{
    BackendDescriptor, JsonMap, NewSession, PendingChange, PendingState, SessionLease,
    SessionStatsRow, SessionStore, StoreOptions, TurnCommit, open_store,
};
use power_loop_tools::{RuntimeEnv, ToolRegistry};
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

use crate::bus::AgentEventBus;
use crate::config::AgentLoopConfig;
use crate::convert::{row_to_message, stored_view, to_new_message};
use crate::emit::Emitter;
use crate::hooks::AgentHooks;
use crate::prompt::{default_agent_system_prompt, format_tool_catalog};
use crate::result::{
    FollowUpOutcome, FollowUpQueued, RunStatus, SendOptions, StatefulResult, UserInput,
};
use crate::run::Run;
use crate::window::{CacheStats, WindowCache};

enum StoreSource {
    Opened,
    Dsn {
        dsn: String,
        options: StoreOptions,
        backends: Vec<BackendDescriptor>,
    },
}

pub(crate) struct Shared {
    pub(crate) llm: Arc<dyn LlmService>,
    source: StoreSource,
    store: OnceCell<SessionStore>,
    pub(crate) config: AgentLoopConfig,
    pub(crate) tools: Option<ToolRegistry>,
    pub(crate) hooks: AgentHooks,
    pub(crate) bus: AgentEventBus,
    pub(crate) env: Arc<RuntimeEnv>,
    cache: WindowCache,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    follow_ups: Mutex<HashMap<String, Vec<UserInput>>>,
    closing: AtomicBool,
    in_flight: AtomicUsize,
    idle: tokio::sync::Notify,
    lease_wait: Duration,
}

impl Shared {
    pub(crate) fn take_follow_ups(&self, sid: &str) -> Vec<UserInput> {
        self.follow_ups
            .lock()
            .map(|mut m| m.remove(sid).unwrap_or_default())
            .unwrap_or_default()
    }

    fn lock_for(&self, sid: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut m = self
            .locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(m.entry(sid.to_owned()).or_default())
    }
}

/// Builds a [`StatefulAgentLoop`].
pub struct AgentLoopBuilder {
    llm: Arc<dyn LlmService>,
    source: Option<(StoreSource, Option<SessionStore>)>,
    config: AgentLoopConfig,
    tools: Option<ToolRegistry>,
    hooks: Option<AgentHooks>,
    bus: Option<AgentEventBus>,
    env: Option<Arc<RuntimeEnv>>,
    lease_wait: Duration,
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
        self.source = Some((StoreSource::Opened, Some(store)));
        self
    }

    /// Opens a store from a DSN lazily, once, on first use (the loop owns and closes it).
    /// `backends` are the compiled-in backend descriptors (e.g. `power_loop_store_sqlite::BACKEND`).
    pub fn dsn(
        mut self,
        dsn: impl Into<String>,
        options: StoreOptions,
        backends: &[BackendDescriptor],
    ) -> Self {
        self.source = Some((
            StoreSource::Dsn {
                dsn: dsn.into(),
                options,
                backends: backends.to_vec(),
            },
            None,
        ));
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

    /// Builds the loop (no I/O).
    pub fn build(mut self) -> Result<StatefulAgentLoop> {
        let Some((source, opened)) = self.source.take() else {
            return Err(Error::config(
                "StatefulAgentLoop needs a store: call .store(store) or .dsn(dsn, options, backends)",
            ));
        };
        Ok(self.assemble(source, opened))
    }

    fn assemble(self, source: StoreSource, opened: Option<SessionStore>) -> StatefulAgentLoop {
        let store = OnceCell::new();
        if let Some(s) = opened {
            let _ = store.set(s);
        }
        let cache = WindowCache::new(self.config.session_cache_size);
        StatefulAgentLoop {
            shared: Arc::new(Shared {
                llm: self.llm,
                source,
                store,
                config: self.config,
                tools: self.tools,
                hooks: self.hooks.unwrap_or_default(),
                bus: self.bus.unwrap_or_default(),
                env: self.env.unwrap_or_default(),
                cache,
                locks: Mutex::new(HashMap::new()),
                follow_ups: Mutex::new(HashMap::new()),
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
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for StatefulAgentLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatefulAgentLoop")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

struct InFlight(Arc<Shared>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
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

pub(crate) fn now_iso() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // civil-from-days (UTC)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn pending_error(sid: &str, p: &PendingState) -> Error {
    let names: Vec<String> = p
        .tool_calls
        .iter()
        .filter_map(|c| c.pointer("/function/name").and_then(|n| n.as_str()))
        .map(str::to_owned)
        .collect();
    let count = p.unresolved_ids().len().max(p.tool_calls.len());
    let waiting = if p.pending_interactions.is_empty() {
        String::new()
    } else {
        format!(
            " and {} open user-input request(s)",
            p.pending_interactions.len()
        )
    };
    Error::new(
        ErrorCode::SessionPending,
        format!(
            "session `{sid}` has {count} unresolved tool call(s) [{}]{waiting}; recover with resume(), abort_pending() (or heal_pending()), or send with heal_pending=true",
            names.join(", ")
        ),
    )
    .with_detail("session_id", sid)
    .with_detail("assistant_seq", p.assistant_seq)
    .with_detail("pending_tool_calls", serde_json::Value::Array(p.tool_calls.clone()))
}

fn calls_of(p: &PendingState) -> Vec<ToolCall> {
    p.tool_calls
        .iter()
        .filter_map(|c| serde_json::from_value::<ToolCall>(c.clone()).ok())
        .collect()
}

impl StatefulAgentLoop {
    /// A builder over `llm`.
    pub fn builder(llm: Arc<dyn LlmService>) -> AgentLoopBuilder {
        AgentLoopBuilder {
            llm,
            source: None,
            config: AgentLoopConfig::default(),
            tools: None,
            hooks: None,
            bus: None,
            env: None,
            lease_wait: Duration::from_secs(30),
        }
    }

    /// A loop over an open store with the default configuration and no tools.
    pub fn new(llm: Arc<dyn LlmService>, store: SessionStore) -> Self {
        Self::builder(llm).assemble(StoreSource::Opened, Some(store))
    }

    pub(crate) fn from_shared(shared: Arc<Shared>) -> Self {
        StatefulAgentLoop { shared }
    }

    /// The configuration.
    pub fn config(&self) -> &AgentLoopConfig {
        &self.shared.config
    }
    /// The hook registry.
    pub fn hooks(&self) -> &AgentHooks {
        &self.shared.hooks
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
        &self.shared.llm
    }
    /// Active-window cache counters.
    pub fn cache_stats(&self) -> CacheStats {
        self.shared.cache.stats()
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

    fn check_open(&self) -> Result<()> {
        if self.shared.closing.load(Ordering::Acquire) {
            return Err(Error::new(
                ErrorCode::LoopClosed,
                "the agent loop is closing or closed; build a new loop to send more",
            ));
        }
        Ok(())
    }

    fn enter(&self) -> InFlight {
        self.shared.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(Arc::clone(&self.shared))
    }

    async fn lease(&self, store: &SessionStore, sid: &str) -> Result<Option<SessionLease>> {
        if !self.shared.config.use_session_lease {
            return Ok(None);
        }
        let deadline = Instant::now() + self.shared.lease_wait;
        let mut pause = Duration::from_millis(2);
        loop {
            if let Some(l) = store.try_acquire_session_lease(sid).await? {
                return Ok(Some(l));
            }
            if Instant::now() >= deadline {
                return store.acquire_session_lease(sid).await.map(Some);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }

    /// Creates a root session; returns its id.
    pub async fn new_session(&self, options: NewSessionOptions) -> Result<String> {
        let store = self.store().await?;
        let c = &self.shared.config;
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
    /// the tool catalog).
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
        let c = &self.shared.config;
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

    /// Sends user input (text, parts or a message) and runs the loop to a terminal outcome.
    pub async fn send(
        &self,
        session_id: &str,
        input: impl Into<UserInput>,
    ) -> Result<StatefulResult> {
        self.send_with(session_id, input, SendOptions::default())
            .await
    }

    /// [`send`](Self::send) with options (cancellation, tool selection, prompt override, heal).
    pub async fn send_with(
        &self,
        session_id: &str,
        input: impl Into<UserInput>,
        opts: SendOptions,
    ) -> Result<StatefulResult> {
        self.check_open()?;
        let _in = self.enter();
        let store = self.store().await?.clone();
        let lock = self.shared.lock_for(session_id);
        let _g = lock.lock().await;
        let lease = self.lease(&store, session_id).await?;
        let out = self
            .send_locked(&store, session_id, input.into(), opts)
            .await;
        if let Some(l) = lease
            && let Err(e) = l.release().await
        {
            tracing::warn!(target: "power_loop::agent", session = session_id, error = %e, "releasing the session lease failed");
        }
        out
    }

    async fn send_locked(
        &self,
        store: &SessionStore,
        sid: &str,
        input: UserInput,
        opts: SendOptions,
    ) -> Result<StatefulResult> {
        let (session, state) = store.get_session_and_state(sid).await?;
        let session = session.ok_or_else(|| Error::session_not_found(sid))?;
        let mut state = state.ok_or_else(|| Error::session_not_found(sid))?;
        if let Some(p) = state.pending.as_ref().filter(|p| !p.is_empty()) {
            if !opts.heal_pending {
                return Err(pending_error(sid, p));
            }
            let n = self
                .abort_locked(store, sid, "auto-healed by send(heal_pending=True)")
                .await?;
            tracing::warn!(target: "power_loop::agent", session = sid, aborted = n, "healed a pending session before sending");
            state = store
                .get_state(sid)
                .await?
                .ok_or_else(|| Error::session_not_found(sid))?;
        }
        // The user message is committed with the run's first durable write (one transaction
        // for a no-tool send), or alone before the run returns; see `run::DeferredUser`.
        let persist_first = opts.persist_input_first;
        let new = to_new_message(&input.0, None);
        let user_view = stored_view(&new);
        let before = power_loop_store::WindowToken {
            next_seq: state.next_seq,
            last_compact_seq: state.last_compact_seq,
        };
        // The run owns the window while it runs (taken out of the cache, put back updated by
        // `finish_run`), so appending to the history never copies it.
        let (mut history, seqs, token) = match self.shared.cache.take(sid, before) {
            Some((msgs, seqs)) => (msgs, seqs, before),
            None => self.load_fresh(store, sid).await?,
        };
        Arc::make_mut(&mut history).push(user_view);
        let registry = self.registry_for(&opts);
        let system_prompt = self.build_prompt(
            opts.system_prompt.as_deref(),
            session.system_prompt,
            registry.as_ref(),
        );
        let mut run = self.new_run(
            store,
            sid,
            registry,
            system_prompt,
            opts.cancel,
            history,
            seqs,
            token,
        );
        let idx = run.history.len().saturating_sub(1);
        run.seqs.push(None);
        run.deferred_user = Some(crate::run::DeferredUser {
            msg: new,
            idx: Some(idx),
        });
        if persist_first {
            run.flush_user().await?;
        }
        self.finish_run(store, sid, run, true).await
    }

    #[allow(clippy::too_many_arguments)]
    fn new_run(
        &self,
        store: &SessionStore,
        sid: &str,
        registry: Option<ToolRegistry>,
        system_prompt: String,
        cancel: Option<CancellationToken>,
        history: Arc<Vec<Message>>,
        seqs: Vec<Option<i64>>,
        token: power_loop_store::WindowToken,
    ) -> Run {
        let tool_defs = Arc::new(
            registry
                .as_ref()
                .map(ToolRegistry::definitions)
                .unwrap_or_default(),
        );
        Run {
            shared: Arc::clone(&self.shared),
            store: store.clone(),
            sid: sid.to_owned(),
            emitter: Emitter {
                bus: self.shared.bus.clone(),
                sid: Arc::from(sid),
            },
            registry,
            system_prompt,
            tool_defs,
            cancel: cancel.unwrap_or_default(),
            seqs,
            history,
            durable: None,
            start_token: token,
            next_seq: token.next_seq,
            last_compact_seq: token.last_compact_seq,
            appended: Vec::new(),
            compacted: false,
            usage: Default::default(),
            tool_calls: 0,
            started: false,
            finished: false,
            stats_written: false,
            structured_retries_left: self.shared.config.structured_output_retries,
            pending_calls: None,
            hooks_on: true,
            deferred_user: None,
        }
    }

    async fn finish_run(
        &self,
        store: &SessionStore,
        sid: &str,
        mut run: Run,
        use_cache: bool,
    ) -> Result<StatefulResult> {
        let out = run.run().await;
        let window = if use_cache && out.is_ok() {
            run.take_window()
        } else {
            None
        };
        match window {
            Some((token, window)) => self.shared.cache.put(sid, token, window),
            None => self.shared.cache.invalidate(sid),
        }
        if let Ok(r) = &out
            && !run.stats_written
            && let Err(e) = store
                .bump_session_stats(sid, run.stats_delta(r.rounds))
                .await
        {
            tracing::warn!(target: "power_loop::agent", session = sid, error = %e, "updating session stats failed");
        }
        out
    }

    async fn load_fresh(
        &self,
        store: &SessionStore,
        sid: &str,
    ) -> Result<(
        Arc<Vec<Message>>,
        Vec<Option<i64>>,
        power_loop_store::WindowToken,
    )> {
        let (token, rows) = store.load_active_window(sid).await?;
        Ok((
            Arc::new(rows.iter().map(row_to_message).collect()),
            rows.iter().map(|r| Some(r.seq)).collect(),
            token,
        ))
    }

    /// Continues a session: answers waiting interactions with `waiting_for_input`, else runs the
    /// pending tool calls through the normal dispatch (hooks, events, counted) and then the
    /// loop; with nothing pending, runs one more loop on the history.
    pub async fn resume(
        &self,
        session_id: &str,
        cancel: Option<CancellationToken>,
    ) -> Result<StatefulResult> {
        let _in = self.enter();
        let store = self.store().await?.clone();
        let lock = self.shared.lock_for(session_id);
        let _g = lock.lock().await;
        let lease = self.lease(&store, session_id).await?;
        let out = self.resume_locked(&store, session_id, cancel).await;
        self.shared.cache.invalidate(session_id);
        if let Some(l) = lease {
            let _ = l.release().await;
        }
        out
    }

    async fn resume_locked(
        &self,
        store: &SessionStore,
        sid: &str,
        cancel: Option<CancellationToken>,
    ) -> Result<StatefulResult> {
        let session = store
            .get_session(sid)
            .await?
            .ok_or_else(|| Error::session_not_found(sid))?;
        let pending = store.get_pending(sid).await?;
        if let Some(p) = pending
            .as_ref()
            .filter(|p| !p.pending_interactions.is_empty())
        {
            let mut r = StatefulResult::new(sid, RunStatus::WaitingForInput);
            r.pending_tool_calls = calls_of(p);
            r.pending_interactions = p.pending_interactions.clone();
            return Ok(r);
        }
        let (history, seqs, token) = self.load_fresh(store, sid).await?;
        let registry = self.shared.tools.clone();
        let prompt = self.build_prompt(None, session.system_prompt, registry.as_ref());
        let mut run = self.new_run(store, sid, registry, prompt, cancel, history, seqs, token);
        if let Some(p) = pending.filter(|p| p.has_unresolved()) {
            let mut calls = calls_of(&p);
            for id in &p.tool_call_ids {
                if !calls.iter().any(|c| &c.id == id) {
                    calls.push(ToolCall::new(id.clone(), "unknown", "{}"));
                }
            }
            let round = u32::try_from(p.round_index).unwrap_or(0);
            run.pending_calls = Some((calls, round));
        }
        self.finish_run(store, sid, run, false).await
    }

    /// Answers a pending human-input interaction and continues the run when none remain.
    pub async fn submit_input(
        &self,
        session_id: &str,
        interaction_id: &str,
        value: serde_json::Value,
        cancel: Option<CancellationToken>,
    ) -> Result<StatefulResult> {
        let _in = self.enter();
        let store = self.store().await?.clone();
        let lock = self.shared.lock_for(session_id);
        let _g = lock.lock().await;
        let lease = self.lease(&store, session_id).await?;
        let out = self
            .submit_locked(&store, session_id, interaction_id, value, cancel)
            .await;
        self.shared.cache.invalidate(session_id);
        if let Some(l) = lease {
            let _ = l.release().await;
        }
        out
    }

    async fn submit_locked(
        &self,
        store: &SessionStore,
        sid: &str,
        interaction_id: &str,
        value: serde_json::Value,
        cancel: Option<CancellationToken>,
    ) -> Result<StatefulResult> {
        let session = store
            .get_session(sid)
            .await?
            .ok_or_else(|| Error::session_not_found(sid))?;
        let pending = store.get_pending(sid).await?.unwrap_or_default();
        let Some(interaction) = pending
            .pending_interactions
            .iter()
            .find(|i| i.interaction_id == interaction_id)
            .cloned()
        else {
            return Err(Error::invalid_argument(format!(
                "pending interaction not found: {interaction_id}"
            )));
        };
        let content = crate::convert::json_text(&value);
        let name = interaction
            .tool_name
            .clone()
            .unwrap_or_else(|| "request_user_input".to_owned());
        let msg = Message::tool(interaction.tool_call_id.clone(), content).with_name(name);
        let iid = interaction_id.to_owned();
        let call_id = interaction.tool_call_id.clone();
        let round = pending.round_index;
        let update = PendingChange::Update(Box::new(move |cur| {
            let mut p = cur?;
            p.pending_interactions.retain(|i| i.interaction_id != iid);
            p.resolve(&call_id, Some(round));
            (!p.is_empty()).then_some(p)
        }));
        store
            .commit_turn(
                sid,
                TurnCommit::new(vec![to_new_message(&msg, Some(round))]).with_pending(update),
            )
            .await?;
        let left = store.get_pending(sid).await?;
        if let Some(p) = left.as_ref().filter(|p| !p.pending_interactions.is_empty()) {
            let mut r = StatefulResult::new(sid, RunStatus::WaitingForInput);
            r.pending_tool_calls = calls_of(p);
            r.pending_interactions = p.pending_interactions.clone();
            return Ok(r);
        }
        let (history, seqs, token) = self.load_fresh(store, sid).await?;
        let registry = self.shared.tools.clone();
        let prompt = self.build_prompt(None, session.system_prompt, registry.as_ref());
        let mut run = self.new_run(store, sid, registry, prompt, cancel, history, seqs, token);
        if let Some(p) = left.filter(|p| p.has_unresolved()) {
            run.pending_calls = Some((calls_of(&p), u32::try_from(p.round_index).unwrap_or(0)));
        }
        self.finish_run(store, sid, run, false).await
    }

    /// Answers every unresolved tool call with `<aborted: reason>` (one transaction, which also
    /// clears the pending state, including id-less calls). Takes the session lock and lease.
    /// Returns the number of calls aborted.
    pub async fn abort_pending(&self, session_id: &str, reason: &str) -> Result<usize> {
        let store = self.store().await?.clone();
        let lock = self.shared.lock_for(session_id);
        let _g = lock.lock().await;
        let lease = self.lease(&store, session_id).await?;
        let out = async {
            if store.get_state(session_id).await?.is_none() {
                return Err(Error::session_not_found(session_id));
            }
            self.abort_locked(&store, session_id, reason).await
        }
        .await;
        if let Some(l) = lease {
            let _ = l.release().await;
        }
        out
    }

    /// `abort_pending` with the reason `healed by heal_pending()`.
    pub async fn heal_pending(&self, session_id: &str) -> Result<usize> {
        self.abort_pending(session_id, "healed by heal_pending()")
            .await
    }

    async fn abort_locked(&self, store: &SessionStore, sid: &str, reason: &str) -> Result<usize> {
        let Some(p) = store.get_pending(sid).await? else {
            return Ok(0);
        };
        let mut calls = calls_of(&p);
        for id in &p.tool_call_ids {
            if !calls.iter().any(|c| &c.id == id) {
                calls.push(ToolCall::new(id.clone(), "", "{}"));
            }
        }
        let text = format!("<aborted: {reason}>");
        let msgs: Vec<_> = calls
            .iter()
            .filter(|c| !c.id.is_empty())
            .map(|c| {
                let mut m = Message::tool(c.id.clone(), text.clone());
                if !c.name().is_empty() {
                    m = m.with_name(c.name());
                }
                to_new_message(&m, Some(p.round_index))
            })
            .collect();
        let n = calls.len();
        store
            .commit_turn(
                sid,
                TurnCommit::new(msgs).with_pending(PendingChange::Clear),
            )
            .await?;
        self.shared.cache.invalidate(sid);
        Ok(n)
    }

    /// Like `send`, but when a run is in progress on the session the input is queued and merged
    /// into that run's next round (in-process queue).
    pub async fn follow_up(
        &self,
        session_id: &str,
        input: impl Into<UserInput>,
        opts: SendOptions,
    ) -> Result<FollowUpOutcome> {
        self.check_open()?;
        let input = input.into();
        let lock = self.shared.lock_for(session_id);
        if lock.try_lock().is_err() {
            let store = self.store().await?;
            if store.get_state(session_id).await?.is_none() {
                return Err(Error::session_not_found(session_id));
            }
            let mut q = self
                .shared
                .follow_ups
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let v = q.entry(session_id.to_owned()).or_default();
            v.push(input);
            return Ok(FollowUpOutcome::Queued(FollowUpQueued {
                session_id: session_id.to_owned(),
                queue_depth: v.len(),
            }));
        }
        let opts = SendOptions {
            heal_pending: false,
            ..opts
        };
        self.send_with(session_id, input, opts)
            .await
            .map(|r| FollowUpOutcome::Ran(Box::new(r)))
    }

    /// Inputs queued by `follow_up` and not yet drained.
    pub fn pending_follow_up_count(&self, session_id: &str) -> usize {
        self.shared
            .follow_ups
            .lock()
            .map(|m| m.get(session_id).map_or(0, Vec::len))
            .unwrap_or(0)
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
        if let Ok(mut q) = self.shared.follow_ups.lock() {
            q.remove(session_id);
        }
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
