//! Picks the LLM: the `POWER_LOOP_*` provider when one is selected (`POWER_LOOP_BASE_URL` or
//! `POWER_LOOP_PROVIDER` set), else the offline scripted model.

use std::sync::Arc;

use power_loop::{LlmProviderConfig, LlmService, Result, Role, ScriptedLlm, ScriptedStep};

/// The variables that select a provider (with their `OPENAI_COMPAT_*` fallbacks).
const SELECTING_VARS: &[&str] = &[
    "POWER_LOOP_PROVIDER",
    "POWER_LOOP_BASE_URL",
    "OPENAI_COMPAT_PROVIDER",
    "OPENAI_COMPAT_BASE_URL",
];

fn env_set(name: &str) -> bool {
    std::env::var(name).is_ok_and(|s| !s.trim().is_empty())
}

/// Whether a provider is selected by the environment.
fn provider_configured() -> bool {
    SELECTING_VARS.iter().any(|v| env_set(v))
}

/// The offline model: a deterministic reply that shows how much history reached it.
pub(crate) fn offline_llm() -> Arc<dyn LlmService> {
    Arc::new(
        ScriptedLlm::from_fn(|req| {
            let history = req.messages.len();
            let users = req.messages.iter().filter(|m| m.role == Role::User).count();
            let last = req.last_user_text();
            ScriptedStep::text(format!(
                "[offline scripted model] This conversation has {history} message(s), {users} from you. You said: {last}"
            ))
        })
        .with_model("scripted-offline"),
    )
}

/// The configured provider (with its retry and timeout layers), or the offline model with a
/// banner on stderr. Returns whether it is the offline model.
pub(crate) fn choose(force_offline: bool) -> Result<(Arc<dyn LlmService>, bool)> {
    choose_with(force_offline, None)
}

/// Like [`choose`]; `model` (`-m/--model`) replaces `POWER_LOOP_MODEL`.
pub(crate) fn choose_with(
    force_offline: bool,
    model: Option<&str>,
) -> Result<(Arc<dyn LlmService>, bool)> {
    if !force_offline && provider_configured() {
        let model = model.map(str::to_owned);
        let cfg = LlmProviderConfig::from_lookup("POWER_LOOP", "OPENAI_COMPAT", |name| {
            if name == "POWER_LOOP_MODEL"
                && let Some(m) = &model
            {
                return Some(m.clone());
            }
            std::env::var(name).ok()
        })?;
        tracing::info!(
            provider = %cfg.provider,
            base_url = %cfg.endpoint.base_url,
            model = %cfg.endpoint.model,
            max_tokens = cfg.endpoint.max_tokens,
            temperature = cfg.endpoint.temperature,
            "power-loop: provider configured from the environment"
        );
        return Ok((cfg.build()?, false));
    }
    eprintln!(
        "power-loop: OFFLINE — no provider configured; the built-in scripted model answers \
         (set POWER_LOOP_BASE_URL and POWER_LOOP_MODEL, or POWER_LOOP_PROVIDER; see `power-loop --help`)."
    );
    Ok((offline_llm(), true))
}
