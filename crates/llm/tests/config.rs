//! `LlmProviderConfig` validation, `from_env` (through a lookup function) and the factories.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;

use power_loop_contracts::{ErrorCode, LlmRequest};
use power_loop_llm::{LlmProviderConfig, ProviderKind};

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let m: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |k| m.get(k).cloned()
}

fn from(pairs: &[(&str, &str)]) -> power_loop_contracts::Result<LlmProviderConfig> {
    LlmProviderConfig::from_lookup("POWER_LOOP", "OPENAI_COMPAT", env(pairs))
}

#[test]
fn missing_variables_are_all_named() {
    let err = from(&[]).unwrap_err();
    assert_eq!(err.code(), ErrorCode::ConfigInvalid);
    for v in ["POWER_LOOP_BASE_URL", "POWER_LOOP_MODEL"] {
        assert!(
            err.message().contains(v),
            "{v} not named in: {}",
            err.message()
        );
    }
    // An OpenAI-compatible server may need no key (a local llama.cpp, Ollama): none is sent.
    let c = from(&[
        ("POWER_LOOP_BASE_URL", "http://127.0.0.1:8080/v1"),
        ("POWER_LOOP_MODEL", "m"),
    ])
    .unwrap();
    assert_eq!(c.endpoint.api_key, "");
    // The Anthropic transport needs one; ANTHROPIC_API_KEY fills it.
    let err = from(&[
        ("POWER_LOOP_BASE_URL", "http://x/v1"),
        ("POWER_LOOP_MODEL", "m"),
        ("POWER_LOOP_PROVIDER", "anthropic"),
    ])
    .unwrap_err();
    assert!(err.message().contains("POWER_LOOP_API_KEY"), "{err}");
    assert!(err.message().contains("ANTHROPIC_API_KEY"), "{err}");
    assert!(!err.message().contains("POWER_LOOP_MODEL"));
    // Empty counts as missing.
    let err = from(&[
        ("POWER_LOOP_BASE_URL", "  "),
        ("POWER_LOOP_API_KEY", "k"),
        ("POWER_LOOP_MODEL", "m"),
    ])
    .unwrap_err();
    assert!(err.message().contains("POWER_LOOP_BASE_URL"));
}

#[test]
fn every_variable_is_read_with_defaults() {
    let c = from(&[
        ("POWER_LOOP_BASE_URL", "http://x/v1"),
        ("POWER_LOOP_API_KEY", "k"),
        ("POWER_LOOP_MODEL", "m"),
    ])
    .unwrap();
    assert_eq!(c.provider, "openai");
    assert_eq!(c.endpoint.timeout_s, 180.0);
    assert_eq!(c.endpoint.max_tokens, 8000);
    assert_eq!(c.endpoint.temperature, 0.0);
    assert_eq!(c.max_retries, 3);
    assert_eq!(c.kind(), ProviderKind::OpenAiCompatible);

    let c = from(&[
        ("POWER_LOOP_BASE_URL", "https://api.anthropic.com"),
        ("POWER_LOOP_API_KEY", "k"),
        ("POWER_LOOP_MODEL", "claude"),
        ("POWER_LOOP_PROVIDER", " Claude "),
        ("POWER_LOOP_TIMEOUT_S", "12.5"),
        ("POWER_LOOP_MAX_TOKENS", "1024"),
        ("POWER_LOOP_TEMPERATURE", "0.7"),
        ("POWER_LOOP_MAX_RETRIES", "0"),
        ("POWER_LOOP_SUPPORTS_IMAGE_INPUT", "yes"),
        ("POWER_LOOP_SUPPORTS_TOOLS", "off"),
    ])
    .unwrap();
    assert_eq!(c.kind(), ProviderKind::Anthropic);
    assert_eq!(c.endpoint.timeout_s, 12.5);
    assert_eq!(c.endpoint.max_tokens, 1024);
    assert_eq!(c.endpoint.temperature, 0.7);
    assert_eq!(c.max_retries, 0);
    assert_eq!(c.retry_policy().max_attempts, 1);
    assert_eq!(c.capability_overrides.supports_image_input, Some(true));
    assert_eq!(c.capability_overrides.supports_tools, Some(false));
}

#[test]
fn fallback_prefix_is_used_when_primary_is_unset_or_empty() {
    let c = from(&[
        ("OPENAI_COMPAT_BASE_URL", "http://fallback/v1"),
        ("POWER_LOOP_API_KEY", ""),
        ("OPENAI_COMPAT_API_KEY", "fk"),
        ("POWER_LOOP_MODEL", "primary"),
        ("OPENAI_COMPAT_MODEL", "ignored"),
        ("OPENAI_COMPAT_MAX_TOKENS", "77"),
    ])
    .unwrap();
    assert_eq!(c.endpoint.base_url, "http://fallback/v1");
    assert_eq!(c.endpoint.api_key, "fk");
    assert_eq!(c.endpoint.model, "primary");
    assert_eq!(c.endpoint.max_tokens, 77);
}

#[test]
fn malformed_variables_are_named() {
    let base = [
        ("POWER_LOOP_BASE_URL", "http://x/v1"),
        ("POWER_LOOP_API_KEY", "k"),
        ("POWER_LOOP_MODEL", "m"),
    ];
    for (name, value) in [
        ("POWER_LOOP_TIMEOUT_S", "abc"),
        ("POWER_LOOP_MAX_TOKENS", "-5"),
        ("POWER_LOOP_MAX_TOKENS", "1.5"),
        ("POWER_LOOP_TEMPERATURE", "hot"),
        ("POWER_LOOP_MAX_RETRIES", "three"),
        ("POWER_LOOP_ECHO_SLEEP", "soon"),
        ("POWER_LOOP_SUPPORTS_STREAM", "maybe"),
    ] {
        let mut pairs = base.to_vec();
        pairs.push((name, value));
        let err = from(&pairs).unwrap_err();
        assert_eq!(err.code(), ErrorCode::ConfigInvalid);
        assert!(
            err.message().contains(name),
            "{name} not named: {}",
            err.message()
        );
        assert_eq!(err.detail("variable").and_then(|v| v.as_str()), Some(name));
    }
    // Parsable but out of range.
    let mut pairs = base.to_vec();
    pairs.push(("POWER_LOOP_TIMEOUT_S", "0"));
    let err = from(&pairs).unwrap_err();
    assert_eq!(err.code(), ErrorCode::ConfigInvalid);
    assert!(err.message().contains("timeout_s"));
}

#[test]
fn echo_provider_fills_defaults_and_works_offline() {
    let c = from(&[
        ("POWER_LOOP_PROVIDER", "echo"),
        ("POWER_LOOP_ECHO_REPLY", "pong"),
    ])
    .unwrap();
    assert_eq!(c.endpoint.base_url, "echo://local");
    assert_eq!(c.endpoint.api_key, "echo");
    assert_eq!(c.endpoint.model, "echo");
    let svc = c.build().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let r = rt
        .block_on(svc.complete(LlmRequest::from_prompt("ping")))
        .unwrap();
    assert_eq!(r.raw_text, "pong");
    let c = from(&[("POWER_LOOP_PROVIDER", "stub")]).unwrap();
    let svc = c.build().unwrap();
    let r = rt
        .block_on(svc.complete(LlmRequest::from_prompt("say this")))
        .unwrap();
    assert_eq!(r.raw_text, "say this");
}

#[test]
fn validate_names_every_missing_field() {
    let err = LlmProviderConfig::default().validate().unwrap_err();
    assert_eq!(err.code(), ErrorCode::ConfigInvalid);
    for f in ["base_url", "model"] {
        assert!(err.message().contains(f));
    }
    let err = LlmProviderConfig::new("anthropic", "", "", "")
        .validate()
        .unwrap_err();
    assert!(err.message().contains("api_key"), "{err}");
    assert!(!LlmProviderConfig::default().is_ready());
    let ok = LlmProviderConfig::new("openai", "http://x/v1", "k", "m");
    assert!(ok.is_ready());
    ok.validate().unwrap();
    let err = (LlmProviderConfig::default().build()).err().unwrap();
    assert_eq!(err.code(), ErrorCode::ConfigInvalid);
}

#[cfg(feature = "openai")]
#[test]
fn factory_builds_a_layered_openai_service() {
    let c = LlmProviderConfig::new("deepseek", "http://127.0.0.1:9/v1", "k", "deepseek-chat");
    let svc = c.build().unwrap();
    assert_eq!(svc.model_name(), "deepseek-chat");
    assert_eq!(svc.capabilities().provider, "deepseek");
}

#[cfg(not(feature = "anthropic"))]
#[test]
fn anthropic_without_feature_is_a_config_error() {
    let c = LlmProviderConfig::new("anthropic", "http://x", "k", "m");
    let err = c.build().err().unwrap();
    assert_eq!(err.code(), ErrorCode::ConfigInvalid);
    assert!(err.message().contains("anthropic"));
}

#[test]
fn vendor_keys_fill_a_missing_key() {
    let c = from(&[
        ("POWER_LOOP_BASE_URL", "https://api.openai.com/v1"),
        ("POWER_LOOP_MODEL", "gpt-4o-mini"),
        ("OPENAI_API_KEY", "sk-openai"),
        ("ANTHROPIC_API_KEY", "sk-ant"),
    ])
    .unwrap();
    assert_eq!(c.endpoint.api_key, "sk-openai");
    let c = from(&[
        ("POWER_LOOP_BASE_URL", "https://api.anthropic.com"),
        ("POWER_LOOP_MODEL", "claude-x"),
        ("POWER_LOOP_PROVIDER", "anthropic"),
        ("OPENAI_API_KEY", "sk-openai"),
        ("ANTHROPIC_API_KEY", "sk-ant"),
    ])
    .unwrap();
    assert_eq!(c.endpoint.api_key, "sk-ant");
    // An explicit key wins over the vendor's variable.
    let c = from(&[
        ("POWER_LOOP_BASE_URL", "https://api.openai.com/v1"),
        ("POWER_LOOP_MODEL", "m"),
        ("POWER_LOOP_API_KEY", "mine"),
        ("OPENAI_API_KEY", "sk-openai"),
    ])
    .unwrap();
    assert_eq!(c.endpoint.api_key, "mine");
}

#[test]
fn unknown_providers_are_named_in_the_error() {
    let err = from(&[
        ("POWER_LOOP_BASE_URL", "http://x/v1"),
        ("POWER_LOOP_MODEL", "m"),
        ("POWER_LOOP_PROVIDER", "opnai"),
    ])
    .unwrap_err();
    assert_eq!(err.code(), ErrorCode::ConfigInvalid);
    assert!(err.message().contains("`opnai`"), "{err}");
    assert!(err.message().contains("POWER_LOOP_PROVIDER"), "{err}");
    assert!(err.message().contains("anthropic"), "{err}");
    let err = LlmProviderConfig::new("nope", "http://x/v1", "k", "m")
        .validate()
        .unwrap_err();
    assert!(err.message().contains("`nope`"), "{err}");
    assert_eq!(
        ProviderKind::parse(" Ollama ").unwrap(),
        ProviderKind::OpenAiCompatible
    );
    assert_eq!(
        ProviderKind::parse("CLAUDE").unwrap(),
        ProviderKind::Anthropic
    );
    assert_eq!(ProviderKind::parse("stub").unwrap(), ProviderKind::Echo);
    assert!(ProviderKind::parse("").is_err());
}

#[test]
#[allow(deprecated)]
fn the_old_factory_names_are_aliases() {
    let c = LlmProviderConfig::new("echo", "", "", "");
    let svc = power_loop_llm::create_llm_service_from_config(&c).unwrap();
    assert_eq!(svc.model_name(), c.build().unwrap().model_name());
}
