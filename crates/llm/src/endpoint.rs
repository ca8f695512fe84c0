//! [`EndpointConfig`]: the settings every provider configuration shares (where the model is, the
//! credential, the model name, the request timeout and the reply defaults), written once and
//! embedded by [`crate::LlmProviderConfig`] and the transport configurations.

/// Writes the setters of the [`EndpointConfig`] fields on a type: `$slot` is the path from
/// `self` to its `EndpointConfig` (`self` for the endpoint itself, `self.endpoint` for a config
/// embedding one).
macro_rules! endpoint_setters {
    ($s:ident => $($slot:tt)+) => {
        /// Sets the per-request timeout (seconds).
        pub fn with_timeout_s(mut $s, s: f64) -> Self {
            $($slot)+.timeout_s = s;
            $s
        }
        /// Sets the default reply token cap (the OpenAI-compatible transport omits it when 0).
        pub fn with_max_tokens(mut $s, n: u32) -> Self {
            $($slot)+.max_tokens = n;
            $s
        }
        /// Sets the default temperature.
        pub fn with_temperature(mut $s, t: f64) -> Self {
            $($slot)+.temperature = t;
            $s
        }
    };
}
pub(crate) use endpoint_setters;

/// The `new(base_url, api_key, model)` constructor of a transport config (one with a
/// `from_endpoint(EndpointConfig)` constructor): the config of a fresh [`EndpointConfig`].
/// Takes the constructor's doc comment.
#[cfg(feature = "http")]
macro_rules! transport_config_new {
    ($(#[$doc:meta])*) => {
        $(#[$doc])*
        pub fn new(
            base_url: impl Into<String>,
            api_key: impl Into<String>,
            model: impl Into<String>,
        ) -> Self {
            Self::from_endpoint($crate::endpoint::EndpointConfig::new(base_url, api_key, model))
        }
    };
}
#[cfg(feature = "http")]
pub(crate) use transport_config_new;

/// The default connect / idle-read timeout of one HTTP request, in seconds.
pub(crate) const DEFAULT_TIMEOUT_S: f64 = 180.0;
/// The default reply token cap.
pub(crate) const DEFAULT_MAX_TOKENS: u32 = 8000;

/// Where a model is served and the defaults of its requests: the shared core of
/// [`crate::LlmProviderConfig`] and of the OpenAI-compatible and Anthropic transport configs.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct EndpointConfig {
    /// Endpoint base URL (required). The OpenAI-compatible transport normally wants it to end in
    /// `/v1`; the Anthropic transport tolerates a trailing `/v1`.
    pub base_url: String,
    /// Credential: the bearer token of the OpenAI-compatible transport (may be empty for a
    /// server that needs none, e.g. a local llama.cpp or Ollama: no `Authorization` header is
    /// sent then) or the `x-api-key` of the Anthropic transport (required there).
    pub api_key: String,
    /// Model used when the request names none (required).
    pub model: String,
    /// Connect / idle-read timeout of one HTTP request, in seconds (default 180).
    pub timeout_s: f64,
    /// Reply token cap used when the request sets none (default 8000); the OpenAI-compatible
    /// transport omits the field when it is 0.
    pub max_tokens: u32,
    /// Temperature used when the request sets none (default 0.0).
    pub temperature: f64,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        EndpointConfig::new("", "", "")
    }
}

impl EndpointConfig {
    /// An endpoint with the three required fields and the defaults: 180 s timeout, 8000 max
    /// tokens, temperature 0.
    pub fn new(
        base_url: impl Into<String>,
        api_key: impl Into<String>,
        model: impl Into<String>,
    ) -> Self {
        EndpointConfig {
            base_url: base_url.into(),
            api_key: api_key.into(),
            model: model.into(),
            timeout_s: DEFAULT_TIMEOUT_S,
            max_tokens: DEFAULT_MAX_TOKENS,
            temperature: 0.0,
        }
    }
    endpoint_setters!(self => self);
}
