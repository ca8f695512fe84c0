//! The two wire formats as provider configurations, and agent loops over them.

use std::sync::Arc;

use power_loop::{AgentLoopConfig, LlmProviderConfig, LlmService, StatefulAgentLoop};

use crate::{MODEL, TIMEOUT_S};

/// A wire format the kernel speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// OpenAI-compatible chat completions: `POST {base}/v1/chat/completions`.
    OpenAi,
    /// Native Anthropic Messages: `POST {base}/v1/messages`.
    Anthropic,
}

impl Wire {
    /// The `POWER_LOOP_PROVIDER` routing key.
    pub fn provider(self) -> &'static str {
        match self {
            Wire::OpenAi => "openai",
            Wire::Anthropic => "anthropic",
        }
    }

    /// The `POWER_LOOP_BASE_URL` for a server at `base` (`http://host:port`).
    pub fn base_url(self, base: &str) -> String {
        match self {
            Wire::OpenAi => format!("{base}/v1"),
            Wire::Anthropic => base.to_owned(),
        }
    }

    /// The request path of a model call on this wire.
    pub fn path(self) -> &'static str {
        match self {
            Wire::OpenAi => "/v1/chat/completions",
            Wire::Anthropic => "/v1/messages",
        }
    }

    /// A provider configuration for a server at `base`: the model alias, a generous timeout, one
    /// retry, and `max_tokens` as the provider default.
    pub fn config(self, base: &str, max_tokens: u32) -> LlmProviderConfig {
        LlmProviderConfig::new(self.provider(), self.base_url(base), "sk-local", MODEL)
            .with_timeout_s(TIMEOUT_S)
            .with_max_retries(1)
            .with_max_tokens(max_tokens)
            .with_temperature(0.0)
    }

    /// The provider for a server at `base`, wrapped in the default retry and timeout layers.
    pub fn llm(self, base: &str, max_tokens: u32) -> Arc<dyn LlmService> {
        self.config(base, max_tokens)
            .build()
            .expect("provider config")
    }

    /// An agent loop over the SQLite file `dsn`, `max_tokens` per call, temperature 0.
    pub fn agent(self, base: &str, dsn: &str, max_tokens: u32) -> StatefulAgentLoop {
        self.agent_with(base, dsn, max_tokens, AgentLoopConfig::new())
    }

    /// [`agent`](Self::agent) with a config of the caller's (its `max_tokens` is set here).
    pub fn agent_with(
        self,
        base: &str,
        dsn: &str,
        max_tokens: u32,
        config: AgentLoopConfig,
    ) -> StatefulAgentLoop {
        StatefulAgentLoop::builder(self.llm(base, max_tokens))
            .dsn(dsn)
            .config(
                config
                    .with_max_tokens(Some(max_tokens))
                    .with_temperature(Some(0.0)),
            )
            .build()
            .expect("agent loop")
    }

    /// The text of every message of a recorded request body, in order (system prompt first).
    pub fn request_texts(self, body: &serde_json::Value) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(s) = body.get("system") {
            out.push(text_of(s));
        }
        for m in body
            .get("messages")
            .and_then(|m| m.as_array())
            .into_iter()
            .flatten()
        {
            out.push(text_of(
                m.get("content").unwrap_or(&serde_json::Value::Null),
            ));
        }
        out
    }

    /// The roles of a recorded request's messages, in order (`system` first when present).
    pub fn request_roles(self, body: &serde_json::Value) -> Vec<String> {
        let mut out = Vec::new();
        if body.get("system").is_some() {
            out.push("system".to_owned());
        }
        for m in body
            .get("messages")
            .and_then(|m| m.as_array())
            .into_iter()
            .flatten()
        {
            out.push(
                m.get("role")
                    .and_then(|r| r.as_str())
                    .unwrap_or_default()
                    .to_owned(),
            );
        }
        out
    }
}

/// A message content on either wire as text: a string, or the `text` of its blocks.
fn text_of(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(|t| t.as_str()))
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

/// A fresh SQLite file store in `dir`, as a DSN.
pub fn sqlite_dsn(dir: &tempfile::TempDir) -> String {
    dir.path().join("real.db").display().to_string()
}
