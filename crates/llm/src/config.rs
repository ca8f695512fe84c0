//! Provider configuration, `from_env()` and the service factories.

use std::sync::Arc;
use std::time::Duration;

use power_loop_contracts::{Error, LlmService, Result};

pub use crate::overrides::CapabilityOverrides;

use crate::echo::EchoLlm;
use crate::endpoint::{EndpointConfig, endpoint_setters};
use crate::layers::LlmStack;
use crate::retry::RetryPolicy;
use crate::util::duration_from_secs;

/// Which transport a provider routing key selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProviderKind {
    /// `echo` / `stub` / `scripted`: the offline [`EchoLlm`] echoing the last user message.
    Echo,
    /// `anthropic` / `claude` / `dashscope-anthropic`: the native Anthropic transport.
    Anthropic,
    /// Anything else: the OpenAI-compatible transport.
    OpenAiCompatible,
}

/// The OpenAI-compatible routing keys [`ProviderKind::parse`] accepts (besides the echo and
/// Anthropic keys): hosted APIs speaking the chat-completions wire format and local servers.
pub const OPENAI_COMPATIBLE_PROVIDERS: &[&str] = &[
    "openai",
    "openai-compatible",
    "openai_compatible",
    "openai-compat",
    "compat",
    "azure",
    "deepseek",
    "dashscope",
    "qwen",
    "moonshot",
    "kimi",
    "zhipu",
    "glm",
    "groq",
    "together",
    "openrouter",
    "mistral",
    "xai",
    "gemini",
    "fireworks",
    "perplexity",
    "siliconflow",
    "ollama",
    "vllm",
    "sglang",
    "llamacpp",
    "llama.cpp",
    "llama-cpp",
    "lmstudio",
    "lm-studio",
    "localai",
    "local",
];

/// The echo routing keys.
const ECHO_PROVIDERS: &[&str] = &["echo", "stub", "scripted"];
/// The Anthropic routing keys.
const ANTHROPIC_PROVIDERS: &[&str] = &["anthropic", "claude", "dashscope-anthropic"];

impl ProviderKind {
    /// Routes a provider key (case- and whitespace-insensitive) without checking it: anything
    /// that is not an echo or Anthropic key is OpenAI-compatible (the reference behaviour).
    /// Configuration paths use [`ProviderKind::parse`], which refuses unknown keys.
    pub fn from_key(key: &str) -> ProviderKind {
        Self::parse(key).unwrap_or(ProviderKind::OpenAiCompatible)
    }

    /// Routes a provider key (case- and whitespace-insensitive); an unknown key is a
    /// `config.invalid` error naming it and listing the known keys.
    pub fn parse(key: &str) -> Result<ProviderKind> {
        let k = key.trim().to_ascii_lowercase();
        if ECHO_PROVIDERS.contains(&k.as_str()) {
            Ok(ProviderKind::Echo)
        } else if ANTHROPIC_PROVIDERS.contains(&k.as_str()) {
            Ok(ProviderKind::Anthropic)
        } else if OPENAI_COMPATIBLE_PROVIDERS.contains(&k.as_str()) {
            Ok(ProviderKind::OpenAiCompatible)
        } else {
            let known: Vec<&str> = ECHO_PROVIDERS
                .iter()
                .chain(ANTHROPIC_PROVIDERS)
                .chain(OPENAI_COMPATIBLE_PROVIDERS)
                .copied()
                .collect();
            Err(Error::config(format!(
                "unknown LLM provider `{}`; use one of: {} (any OpenAI-compatible server works as `openai` with its base URL)",
                key.trim(),
                known.join(", ")
            ))
            .with_detail("provider", key.trim()))
        }
    }
}

/// The one provider configuration shape callers target.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct LlmProviderConfig {
    /// Routing key (`openai` default; see [`ProviderKind::from_key`]).
    pub provider: String,
    /// Base URL, credential, model, request timeout and reply defaults. The credential is
    /// required by the Anthropic transport only.
    pub endpoint: EndpointConfig,
    /// Retries after the first attempt (default 3 → 4 attempts).
    pub max_retries: u32,
    /// Echo provider: fixed reply instead of echoing.
    pub echo_reply: Option<String>,
    /// Echo provider: text put before the echoed message (ignored with a fixed reply).
    pub echo_prefix: Option<String>,
    /// Echo provider: artificial latency in seconds.
    pub echo_sleep_s: Option<f64>,
    /// Capability overrides (OpenAI-compatible transport).
    pub capability_overrides: CapabilityOverrides,
    /// OpenAI-compatible transport: continuation requests per call when a stream breaks
    /// mid-answer (default 0: no stream resume; see `OpenAiConfig::with_stream_resume`).
    pub stream_max_restarts: u32,
}

impl Default for LlmProviderConfig {
    fn default() -> Self {
        LlmProviderConfig {
            provider: "openai".into(),
            endpoint: EndpointConfig::default(),
            max_retries: 3,
            echo_reply: None,
            echo_prefix: None,
            echo_sleep_s: None,
            capability_overrides: CapabilityOverrides::default(),
            stream_max_restarts: 0,
        }
    }
}

impl LlmProviderConfig {
    /// A config with the three required fields and defaults for the rest.
    pub fn new(
        provider: impl Into<String>,
        base_url: impl Into<String>,
        api_key: impl Into<String>,
        model: impl Into<String>,
    ) -> Self {
        LlmProviderConfig {
            provider: provider.into(),
            endpoint: EndpointConfig::new(base_url, api_key, model),
            ..Default::default()
        }
    }
    endpoint_setters!(self => self.endpoint);
    /// Sets the retry count.
    pub fn with_max_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }
    /// Sets capability overrides.
    pub fn with_capability_overrides(mut self, o: CapabilityOverrides) -> Self {
        self.capability_overrides = o;
        self
    }
    /// Sets the stream-resume restarts of the OpenAI-compatible transport (0: off).
    pub fn with_stream_max_restarts(mut self, n: u32) -> Self {
        self.stream_max_restarts = n;
        self
    }

    /// The transport the routing key selects.
    pub fn kind(&self) -> ProviderKind {
        ProviderKind::from_key(&self.provider)
    }

    /// Whether the three required fields are set.
    pub fn is_ready(&self) -> bool {
        self.missing_fields().is_empty()
    }

    fn missing_fields(&self) -> Vec<&'static str> {
        let mut missing = Vec::new();
        if self.endpoint.base_url.trim().is_empty() {
            missing.push("base_url");
        }
        if self.endpoint.api_key.trim().is_empty() && self.kind() == ProviderKind::Anthropic {
            missing.push("api_key");
        }
        if self.endpoint.model.trim().is_empty() {
            missing.push("model");
        }
        missing
    }

    /// Checks the config: `config.invalid` naming every missing required field, or a bad number.
    pub fn validate(&self) -> Result<()> {
        if ProviderKind::parse(&self.provider)? != ProviderKind::Echo {
            let missing = self.missing_fields();
            if !missing.is_empty() {
                return Err(Error::config(format!(
                    "LLM provider config is missing required field(s): {}; set them (or POWER_LOOP_BASE_URL / POWER_LOOP_API_KEY / POWER_LOOP_MODEL)",
                    missing.join(", ")
                ))
                .with_detail("missing", missing));
            }
        }
        duration_from_secs("timeout_s", self.endpoint.timeout_s)?;
        if !self.endpoint.temperature.is_finite() || self.endpoint.temperature < 0.0 {
            return Err(Error::config(format!(
                "temperature must be a finite number >= 0, got {}",
                self.endpoint.temperature
            ))
            .with_detail("field", "temperature"));
        }
        Ok(())
    }

    /// The retry policy this config implies (`max_retries + 1` attempts, default delays).
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy::default().with_max_attempts(self.max_retries.saturating_add(1))
    }

    /// Reads the config from the process environment (prefix `POWER_LOOP`, fallback prefix
    /// `OPENAI_COMPAT`); see [`from_lookup`](Self::from_lookup).
    pub fn from_env() -> Result<Self> {
        Self::from_lookup("POWER_LOOP", "OPENAI_COMPAT", |name| {
            std::env::var(name).ok()
        })
    }

    /// Reads the config through `lookup` (a variable name → value function, e.g. a map in tests).
    ///
    /// For each suffix, `{prefix}_{SUFFIX}` if set and non-empty, else `{fallback}_{SUFFIX}`, else
    /// the default. Suffixes: `BASE_URL`, `MODEL` (required unless the provider is
    /// `echo`/`stub`, which fills `echo://local` / `echo` / `echo`), `API_KEY` (when unset:
    /// `ANTHROPIC_API_KEY` for the Anthropic transport, `OPENAI_API_KEY` for the OpenAI-compatible
    /// one; an OpenAI-compatible server may have none), `PROVIDER` (an unknown key is an error
    /// naming it, see [`ProviderKind::parse`]), `TIMEOUT_S`,
    /// `MAX_TOKENS`, `TEMPERATURE`, `MAX_RETRIES`, `STREAM_MAX_RESTARTS`, `ECHO_REPLY`, `ECHO_PREFIX`,
    /// `ECHO_SLEEP`, and `SUPPORTS_IMAGE_INPUT` / `SUPPORTS_DATA_URL` / `SUPPORTS_PDF_INPUT_CHAT` /
    /// `SUPPORTS_TOOLS` / `SUPPORTS_STREAM`
    /// (`1/true/yes/on`, `0/false/no/off`). A missing required variable or an unparsable value is a
    /// `config.invalid` error naming the variable(s).
    pub fn from_lookup(
        prefix: &str,
        fallback_prefix: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self> {
        // The variable's value as set (untrimmed), when it is not blank.
        let get_raw = |suffix: &str| -> Option<(String, String)> {
            for p in [prefix, fallback_prefix] {
                if p.is_empty() {
                    continue;
                }
                let name = format!("{p}_{suffix}");
                if let Some(v) = lookup(&name).filter(|v| !v.trim().is_empty()) {
                    return Some((name, v));
                }
            }
            None
        };
        let get = |suffix: &str| get_raw(suffix).map(|(n, v)| (n, v.trim().to_owned()));
        let mut cfg = LlmProviderConfig::default();
        if let Some((name, v)) = get("PROVIDER") {
            ProviderKind::parse(&v).map_err(|e| {
                Error::config(format!("{} (from {name})", e.message()))
                    .with_detail("variable", name.as_str())
                    .with_source(e)
            })?;
            cfg.provider = v;
        }
        let kind = cfg.kind();
        let echo = kind == ProviderKind::Echo;
        // The vendor's own variable fills a missing key: ANTHROPIC_API_KEY for the Anthropic
        // transport, OPENAI_API_KEY for the OpenAI-compatible one.
        let vendor_key = match kind {
            ProviderKind::Anthropic => "ANTHROPIC_API_KEY",
            _ => "OPENAI_API_KEY",
        };
        let mut missing = Vec::new();
        for (suffix, default) in [
            ("BASE_URL", "echo://local"),
            ("API_KEY", "echo"),
            ("MODEL", "echo"),
        ] {
            let value = match get(suffix) {
                Some((_, v)) => v,
                None if echo => default.to_owned(),
                None if suffix == "API_KEY" => match lookup(vendor_key)
                    .map(|v| v.trim().to_owned())
                    .filter(|v| !v.is_empty())
                {
                    Some(v) => v,
                    // A key-less OpenAI-compatible server (llama.cpp, Ollama, vLLM) needs none.
                    None if kind == ProviderKind::OpenAiCompatible => String::new(),
                    None => {
                        missing.push(format!("{prefix}_API_KEY (or {vendor_key})"));
                        String::new()
                    }
                },
                None => {
                    missing.push(format!("{prefix}_{suffix}"));
                    String::new()
                }
            };
            match suffix {
                "BASE_URL" => cfg.endpoint.base_url = value,
                "API_KEY" => cfg.endpoint.api_key = value,
                _ => cfg.endpoint.model = value,
            }
        }
        if !missing.is_empty() {
            return Err(Error::config(format!(
                "missing environment variable(s): {} (or the {fallback_prefix}_* fallbacks); set them to configure the LLM provider",
                missing.join(", ")
            ))
            .with_detail("missing", missing));
        }
        if let Some((n, v)) = get("TIMEOUT_S") {
            cfg.endpoint.timeout_s = parse_num(&n, &v)?;
        }
        if let Some((n, v)) = get("MAX_TOKENS") {
            cfg.endpoint.max_tokens = parse_num(&n, &v)?;
        }
        if let Some((n, v)) = get("TEMPERATURE") {
            cfg.endpoint.temperature = parse_num(&n, &v)?;
        }
        if let Some((n, v)) = get("MAX_RETRIES") {
            cfg.max_retries = parse_num(&n, &v)?;
        }
        if let Some((n, v)) = get("STREAM_MAX_RESTARTS") {
            cfg.stream_max_restarts = parse_num(&n, &v)?;
        }
        cfg.echo_reply = get("ECHO_REPLY").map(|(_, v)| v);
        // Spaces matter in a prefix (`"echo: "`): kept as set.
        cfg.echo_prefix = get_raw("ECHO_PREFIX").map(|(_, v)| v);
        if let Some((n, v)) = get("ECHO_SLEEP") {
            cfg.echo_sleep_s = Some(parse_num(&n, &v)?);
        }
        let mut o = CapabilityOverrides::default();
        for (suffix, slot) in [
            ("SUPPORTS_IMAGE_INPUT", &mut o.supports_image_input),
            ("SUPPORTS_DATA_URL", &mut o.supports_data_url),
            ("SUPPORTS_PDF_INPUT_CHAT", &mut o.supports_pdf_input),
            ("SUPPORTS_TOOLS", &mut o.supports_tools),
            ("SUPPORTS_STREAM", &mut o.supports_stream),
        ] {
            if let Some((n, v)) = get(suffix) {
                *slot = Some(parse_bool(&n, &v)?);
            }
        }
        cfg.capability_overrides = o;
        cfg.validate().map_err(|e| {
            Error::config(format!("{} (from the environment)", e.message())).with_source(e)
        })?;
        Ok(cfg)
    }
}

fn parse_num<T: std::str::FromStr>(name: &str, value: &str) -> Result<T> {
    value.parse::<T>().map_err(|_| {
        Error::config(format!(
            "environment variable {name}={value:?} is not a valid number of the expected kind; fix or unset it"
        ))
        .with_detail("variable", name)
        .with_detail("value", value)
    })
}

fn parse_bool(name: &str, value: &str) -> Result<bool> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(Error::config(format!(
            "environment variable {name}={value:?} is not a boolean (use 1/true/yes/on or 0/false/no/off)"
        ))
        .with_detail("variable", name)
        .with_detail("value", value)),
    }
}

/// Builds the bare provider service for `cfg` (no retry/timeout layers).
pub fn create_raw_llm_service(cfg: &LlmProviderConfig) -> Result<Arc<dyn LlmService>> {
    cfg.validate()?;
    match cfg.kind() {
        ProviderKind::Echo => {
            let mut llm = EchoLlm::new().with_model(cfg.endpoint.model.clone());
            if let Some(r) = &cfg.echo_reply {
                llm = llm.with_reply(r.clone());
            }
            if let Some(p) = &cfg.echo_prefix {
                llm = llm.with_prefix(p.clone());
            }
            if let Some(s) = cfg.echo_sleep_s.filter(|s| *s > 0.0) {
                llm = llm.with_delay(duration_from_secs("echo_sleep_s", s)?);
            }
            Ok(Arc::new(llm))
        }
        ProviderKind::Anthropic => anthropic_service(cfg),
        ProviderKind::OpenAiCompatible => openai_service(cfg),
    }
}

#[cfg(feature = "anthropic")]
fn anthropic_service(cfg: &LlmProviderConfig) -> Result<Arc<dyn LlmService>> {
    let c = crate::anthropic::AnthropicConfig::from_endpoint(cfg.endpoint.clone());
    Ok(Arc::new(crate::anthropic::AnthropicLlm::new(c)?))
}

#[cfg(not(feature = "anthropic"))]
fn anthropic_service(cfg: &LlmProviderConfig) -> Result<Arc<dyn LlmService>> {
    Err(Error::config(format!(
        "provider `{}` needs the `anthropic` cargo feature of power-loop-llm (or power-loop); rebuild with it enabled",
        cfg.provider
    )))
}

#[cfg(feature = "openai")]
fn openai_service(cfg: &LlmProviderConfig) -> Result<Arc<dyn LlmService>> {
    let c = crate::openai::OpenAiConfig::from_endpoint(cfg.endpoint.clone())
        .with_capability_overrides(cfg.capability_overrides)
        .with_stream_resume(cfg.stream_max_restarts);
    Ok(Arc::new(crate::openai::OpenAiLlm::new(c)?))
}

#[cfg(not(feature = "openai"))]
fn openai_service(cfg: &LlmProviderConfig) -> Result<Arc<dyn LlmService>> {
    Err(Error::config(format!(
        "provider `{}` needs the `openai` cargo feature of power-loop-llm (or power-loop); rebuild with it enabled",
        cfg.provider
    )))
}

/// The old name of [`LlmProviderConfig::build`], kept as an alias.
#[deprecated(
    note = "use `cfg.build()` (LlmProviderConfig::build): one naming scheme for the provider entry points"
)]
pub fn create_llm_service_from_config(cfg: &LlmProviderConfig) -> Result<Arc<dyn LlmService>> {
    cfg.build()
}

impl LlmProviderConfig {
    /// Builds the provider for this config wrapped in the default stack: per-call timeout
    /// (`timeout_s × attempts`), one retry layer ([`LlmProviderConfig::retry_policy`]) and no
    /// concurrency limit. The echo provider is returned without layers.
    ///
    /// The provider entry points are this type's: `LlmProviderConfig::from_env()?.build()?`,
    /// or [`LlmProviderConfig::new`] / [`from_lookup`](Self::from_lookup) then `build()`.
    pub fn build(&self) -> Result<Arc<dyn LlmService>> {
        let raw = create_raw_llm_service(self)?;
        if self.kind() == ProviderKind::Echo {
            return Ok(raw);
        }
        let policy = self.retry_policy();
        let per_call = Duration::from_secs_f64(self.endpoint.timeout_s)
            .saturating_mul(policy.max_attempts.max(1))
            .saturating_add(policy.max_delay.saturating_mul(policy.max_attempts));
        Ok(LlmStack::new()
            .retry(policy)
            .call_timeout(per_call)
            .wrap(raw))
    }

    /// [`from_env`](Self::from_env) then [`build`](Self::build): the provider the
    /// `POWER_LOOP_*` variables describe.
    pub fn build_from_env() -> Result<Arc<dyn LlmService>> {
        Self::from_env()?.build()
    }
}

/// The old name of [`LlmProviderConfig::build_from_env`], kept as an alias.
#[deprecated(
    note = "use `LlmProviderConfig::build_from_env()` (or `from_env()?.build()`): one naming scheme for the provider entry points"
)]
pub fn create_llm_service_from_env() -> Result<Arc<dyn LlmService>> {
    LlmProviderConfig::build_from_env()
}
