//! Capability detection for the OpenAI-compatible transport.

use power_loop_contracts::ProviderCapabilities;

use crate::overrides::CapabilityOverrides;

/// (prefixes, provider family, image input)
const RULES: &[(&[&str], &str, bool)] = &[
    (
        &["gpt-4o", "gpt-4.1", "gpt-4.5", "o1", "o3"],
        "openai",
        true,
    ),
    (
        &[
            "qwen3-vl",
            "qwen-vl",
            "qwen2-vl",
            "qwen2.5-vl",
            "qvq",
            "max-vl",
            "internvl",
            "qwen-omni",
        ],
        "dashscope",
        true,
    ),
    (&["glm-4v", "glm-4.1v", "glm-4.5v", "cogvlm"], "zhipu", true),
    (&["glm-4", "glm-zero-preview"], "zhipu", false),
    (&["deepseek-vl"], "deepseek", true),
    (
        &[
            "deepseek-chat",
            "deepseek-reasoner",
            "deepseek-coder",
            "deepseek-r1",
        ],
        "deepseek",
        false,
    ),
    (
        &["kimi-vl", "moonshot-v1-vision", "moonshot-vision"],
        "moonshot",
        true,
    ),
    (
        &[
            "kimi-k2",
            "kimi-latest",
            "moonshot-v1-8k",
            "moonshot-v1-32k",
            "moonshot-v1-128k",
            "moonshot-kimi",
        ],
        "moonshot",
        false,
    ),
    (
        &["minimax-vl", "abab-vision", "abab_vision", "minimax-vision"],
        "minimax",
        true,
    ),
    (
        &["abab6-chat", "abab6.5-chat", "minimax-text", "minimax-m1"],
        "minimax",
        false,
    ),
    (
        &["doubao-vision", "doubao-1.5-vision", "doubao-seed-vision"],
        "volcengine",
        true,
    ),
    (&["doubao", "seed"], "volcengine", false),
    (&["gemini"], "google", true),
    (
        &["claude-3", "claude-sonnet", "claude-opus", "claude-4"],
        "anthropic",
        true,
    ),
];

/// Resolves what `model` supports: the first matching case-insensitive prefix rule of the table
/// over `openai-compatible` defaults, then `overrides` field by field.
///
/// PDF input (`file` content parts) is flagged for OpenAI's own models only (the `openai` rows);
/// other servers get it through [`CapabilityOverrides::supports_pdf_input`].
///
/// Reasoning support is flagged for `o1`/`o3`/`o4`, `deepseek-reasoner`/`deepseek-r1` and
/// `qwq`/`qwen3` models (informational).
pub fn resolve_capabilities(model: &str, overrides: &CapabilityOverrides) -> ProviderCapabilities {
    let lower = model.trim().to_ascii_lowercase();
    let mut caps = ProviderCapabilities::new("openai-compatible");
    if let Some((_, provider, image)) = RULES
        .iter()
        .find(|(prefixes, _, _)| prefixes.iter().any(|p| lower.starts_with(p)))
    {
        // OpenAI's own models take PDFs as `file` parts of chat completions.
        caps = ProviderCapabilities::new(*provider)
            .with_image_input(*image)
            .with_pdf_input(*provider == "openai");
    }
    let reasoning = [
        "o1",
        "o3",
        "o4",
        "deepseek-reasoner",
        "deepseek-r1",
        "qwq",
        "qwen3",
    ]
    .iter()
    .any(|p| lower.starts_with(p));
    caps = caps.with_reasoning(reasoning);
    overrides.apply(caps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_table_and_overrides() {
        let none = CapabilityOverrides::default();
        let c = resolve_capabilities("GPT-4o-mini", &none);
        assert_eq!(c.provider, "openai");
        assert!(c.supports_image_input && c.supports_pdf_input);
        let c = resolve_capabilities("glm-4-plus", &none);
        assert_eq!(c.provider, "zhipu");
        assert!(!c.supports_image_input);
        let c = resolve_capabilities("glm-4v-plus", &none);
        assert!(c.supports_image_input);
        let c = resolve_capabilities("llama3", &none);
        assert_eq!(c.provider, "openai-compatible");
        assert!(!c.supports_image_input && c.supports_data_url && c.supports_tools);
        assert!(!c.supports_pdf_input);
        let o = CapabilityOverrides {
            supports_image_input: Some(true),
            supports_tools: Some(false),
            ..Default::default()
        };
        let c = resolve_capabilities("llama3", &o);
        assert!(c.supports_image_input && !c.supports_tools);
    }
}
