//! The builder's checks at `build()`: options that contradict each other, and the parts of the
//! loop configuration that override the tools' runtime environment (skills dir, notes policy).

use std::sync::Arc;

use power_loop_contracts::{Error, Result};
use power_loop_tools::RuntimeEnv;

use super::AgentLoopBuilder;

fn conflict(a: &str, b: &str, why: &str) -> Error {
    Error::config(format!(
        "AgentLoopBuilder: `{a}` and `{b}` cannot be used together: {why}"
    ))
    .with_detail("conflict", serde_json::json!([a, b]))
}

impl AgentLoopBuilder {
    /// Fails with `config.invalid` when two options contradict each other: an opened store and
    /// a DSN (which store would the loop use?), or an opened store with options that only apply
    /// to a DSN-opened store (they would be silently ignored).
    pub(super) fn check_conflicts(&self) -> Result<()> {
        let store = self.given.contains(&"store");
        if store && self.given.contains(&"dsn") {
            return Err(conflict(
                "store",
                "dsn",
                "pass either an opened store or a DSN for the loop to open",
            ));
        }
        if store && self.store_options.is_some() {
            return Err(conflict(
                "store",
                "store_options",
                "store options apply only to a store the loop opens from a DSN",
            ));
        }
        if store && self.backends.is_some() {
            return Err(conflict(
                "store",
                "backends",
                "backends apply only to a store the loop opens from a DSN",
            ));
        }
        Ok(())
    }

    /// Applies the configuration's `skills_dir` and `notes_policy` to the runtime environment
    /// the loop's tools see. A skills dir that does not exist is `runtime_env.missing`.
    pub(super) fn apply_env_overrides(&mut self) -> Result<()> {
        let c = &self.config;
        if c.skills_dir.is_none() && c.notes_policy.is_none() {
            return Ok(());
        }
        let mut env: RuntimeEnv = self.env.as_deref().cloned().unwrap_or_default();
        if let Some(dir) = &c.skills_dir {
            env = env.with_skills_dir(dir)?;
        }
        if let Some(p) = &c.notes_policy {
            env.notes_policy = p.clone();
        }
        self.env = Some(Arc::new(env));
        Ok(())
    }
}
