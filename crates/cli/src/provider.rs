//! Picks the LLM: the `POWER_LOOP_*` provider when configured, else the offline scripted model.

use std::sync::Arc;

use power_loop::{
    LlmService, Result, Role, ScriptedLlm, ScriptedStep, create_llm_service_from_env,
};

const PROVIDER_VARS: &[&str] = &[
    "POWER_LOOP_PROVIDER",
    "POWER_LOOP_BASE_URL",
    "POWER_LOOP_API_KEY",
    "POWER_LOOP_MODEL",
    "OPENAI_COMPAT_BASE_URL",
    "OPENAI_COMPAT_API_KEY",
];

/// Whether any provider variable is set (non-empty).
fn provider_configured() -> bool {
    PROVIDER_VARS
        .iter()
        .any(|v| std::env::var(v).is_ok_and(|s| !s.trim().is_empty()))
}

/// The offline model: a deterministic reply that shows how much history reached it.
pub(crate) fn offline_llm() -> Arc<dyn LlmService> {
    Arc::new(
        ScriptedLlm::from_fn(|req| {
            let history = req.messages.len();
            let users = req.messages.iter().filter(|m| m.role == Role::User).count();
            let last = req.messages.iter().rev().find(|m| m.role == Role::User).map(|m| m.text()).unwrap_or_default();
            ScriptedStep::text(format!(
                "[offline scripted model] This conversation has {history} message(s), {users} from you. You said: {last}"
            ))
        })
        .with_model("scripted-offline"),
    )
}

/// The configured provider, or the offline model with a banner on stderr.
pub(crate) fn choose(force_offline: bool) -> Result<(Arc<dyn LlmService>, bool)> {
    if !force_offline && provider_configured() {
        return Ok((create_llm_service_from_env()?, false));
    }
    eprintln!(
        "power-loop: OFFLINE — no POWER_LOOP_* provider is configured, so answers come from the built-in scripted model \
         (set POWER_LOOP_BASE_URL, POWER_LOOP_API_KEY and POWER_LOOP_MODEL to use a real one)."
    );
    Ok((offline_llm(), true))
}
