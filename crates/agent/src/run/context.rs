//! What a run reads from its loop: the model, the configuration, the hooks, the tool environment
//! and the follow-up queue. The loop owns one [`LoopContext`] and hands each run an `Arc` of it,
//! so the run never reaches back into the loop handle.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use power_loop_contracts::LlmService;
use power_loop_tools::RuntimeEnv;

use crate::config::AgentLoopConfig;
use crate::hooks::AgentHooks;
use crate::result::UserInput;

/// The loop-wide parts a run uses (read-only, except the follow-up queue).
pub(crate) struct LoopContext {
    pub(crate) llm: Arc<dyn LlmService>,
    pub(crate) config: AgentLoopConfig,
    pub(crate) hooks: AgentHooks,
    pub(crate) env: Arc<RuntimeEnv>,
    pub(crate) follow_ups: FollowUps,
}

/// Inputs queued by `follow_up` while a run was in progress, per session (in-process).
#[derive(Default)]
pub(crate) struct FollowUps(Mutex<HashMap<String, Vec<UserInput>>>);

impl FollowUps {
    /// Queues `input` for session `sid`; returns the queue depth.
    pub(crate) fn push(&self, sid: &str, input: UserInput) -> usize {
        let mut q = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let v = q.entry(sid.to_owned()).or_default();
        v.push(input);
        v.len()
    }

    /// Takes every input queued for `sid`.
    pub(crate) fn take(&self, sid: &str) -> Vec<UserInput> {
        self.0
            .lock()
            .map(|mut m| m.remove(sid).unwrap_or_default())
            .unwrap_or_default()
    }

    /// How many inputs wait for `sid`.
    pub(crate) fn count(&self, sid: &str) -> usize {
        self.0
            .lock()
            .map(|m| m.get(sid).map_or(0, Vec::len))
            .unwrap_or(0)
    }

    /// Drops the queue of `sid`.
    pub(crate) fn forget(&self, sid: &str) {
        if let Ok(mut q) = self.0.lock() {
            q.remove(sid);
        }
    }
}
