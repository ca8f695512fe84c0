//! What a fleet worker is given and how it is tuned: [`FleetHost`] (the model, the shared
//! store, the tools, injected by the binary that serves as the worker) and [`FleetOptions`].

use std::sync::Arc;
use std::time::Duration;

use power_loop_agent::StatefulAgentLoop;
use power_loop_contracts::{LlmService, Result};
use power_loop_store::SessionStore;
use power_loop_tools::{RuntimeEnv, ToolSelection, default_registry};

/// What a fleet worker runs leaves with: the model and the shared store (injected by the
/// hosting binary, as the CLI does), and optionally the default tools over a workspace.
#[derive(Clone)]
pub struct FleetHost {
    pub(crate) llm: Arc<dyn LlmService>,
    pub(crate) store: SessionStore,
    pub(crate) tools: Option<(String, std::path::PathBuf)>,
}

impl std::fmt::Debug for FleetHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FleetHost")
            .field("tools", &self.tools)
            .finish_non_exhaustive()
    }
}

impl FleetHost {
    /// A host running leaves with `llm` on `store` (the store the runs are journaled in).
    pub fn new(llm: Arc<dyn LlmService>, store: SessionStore) -> Self {
        FleetHost {
            llm,
            store,
            tools: None,
        }
    }

    /// Gives leaves the default tools of `preset` (`core`, `explore`, `full`) over
    /// `workspace`; each leaf's spec whitelist filters them. An unknown preset is
    /// `invalid_argument`.
    pub fn with_tools(
        mut self,
        preset: impl Into<String>,
        workspace: impl Into<std::path::PathBuf>,
    ) -> Result<Self> {
        let preset = preset.into();
        ToolSelection::preset(preset.clone()).names()?;
        self.tools = Some((preset, workspace.into()));
        Ok(self)
    }

    /// The store.
    pub fn store(&self) -> &SessionStore {
        &self.store
    }

    /// A loop over the host's model, store and tools.
    pub(crate) fn agent_loop(&self) -> Result<StatefulAgentLoop> {
        let mut b = StatefulAgentLoop::builder(Arc::clone(&self.llm)).store(self.store.clone());
        if let Some((preset, ws)) = &self.tools {
            let env = RuntimeEnv::new().with_workspace(ws)?;
            let reg = default_registry(&env, &ToolSelection::preset(preset.clone()))?;
            b = b.tools(reg).runtime_env(Arc::new(env));
        }
        b.build()
    }
}

/// How a fleet worker claims, leases, takes over and drains.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FleetOptions {
    /// This worker's name in the claims (default `{hostname-ish}-pid{pid}-{random}`).
    pub worker_id: String,
    /// Leaves run at once (default 4).
    pub concurrency: usize,
    /// A claim's lease (default 30 s), renewed every third of it while the leaf runs; a
    /// worker that died is detected when it runs out.
    pub lease: Duration,
    /// Pause between claim attempts when nothing is ready (default 200 ms).
    pub poll_interval: Duration,
    /// On shutdown, how long running leaves may still finish before they are stopped and
    /// released back to `ready` (default 30 s).
    pub drain_grace: Duration,
    /// Take over runs whose holder died (default true).
    pub takeover: bool,
    /// A `running` run whose heartbeat is older than this is orphaned (default 60 s; keep it
    /// well above the holders' heartbeat interval).
    pub stale_after: Duration,
    /// Heartbeat interval of the runs this worker takes over (default 10 s).
    pub run_heartbeat: Duration,
}

impl Default for FleetOptions {
    fn default() -> Self {
        FleetOptions {
            worker_id: format!(
                "fleet-pid{}-{:08x}",
                std::process::id(),
                rand::random::<u32>()
            ),
            concurrency: 4,
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_millis(200),
            drain_grace: Duration::from_secs(30),
            takeover: true,
            stale_after: Duration::from_secs(60),
            run_heartbeat: Duration::from_secs(10),
        }
    }
}

impl FleetOptions {
    /// The defaults.
    pub fn new() -> Self {
        FleetOptions::default()
    }
    /// Sets the worker name.
    pub fn with_worker_id(mut self, id: impl Into<String>) -> Self {
        self.worker_id = id.into();
        self
    }
    /// Sets how many leaves run at once (at least 1).
    pub fn with_concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }
    /// Sets the claim lease (at least 100 ms).
    pub fn with_lease(mut self, d: Duration) -> Self {
        self.lease = d.max(Duration::from_millis(100));
        self
    }
    /// Sets the idle pause between claim attempts (at least 10 ms).
    pub fn with_poll_interval(mut self, d: Duration) -> Self {
        self.poll_interval = d.max(Duration::from_millis(10));
        self
    }
    /// Sets the drain grace period.
    pub fn with_drain_grace(mut self, d: Duration) -> Self {
        self.drain_grace = d;
        self
    }
    /// Turns the takeover of orphaned runs on or off.
    pub fn with_takeover(mut self, on: bool) -> Self {
        self.takeover = on;
        self
    }
    /// Sets how old a run's heartbeat must be for the run to count as orphaned.
    pub fn with_stale_after(mut self, d: Duration) -> Self {
        self.stale_after = d;
        self
    }
    /// Sets the heartbeat interval of runs taken over (at least 10 ms).
    pub fn with_run_heartbeat(mut self, d: Duration) -> Self {
        self.run_heartbeat = d.max(Duration::from_millis(10));
        self
    }
}

/// What a fleet worker did before it stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FleetReport {
    /// Leaves whose result this worker recorded.
    pub leaves_recorded: u64,
    /// Leaves given back to `ready` by the drain.
    pub leaves_released: u64,
    /// Leaves whose claim was lost (their results were not recorded).
    pub claims_lost: u64,
    /// Orphaned runs this worker took over (and held until they finished or it stopped).
    pub runs_taken_over: u64,
    /// Runs taken over that finished while this worker held them.
    pub runs_finished: u64,
}
