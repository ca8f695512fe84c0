//! Token usage: what a provider reports ([`TokenUsage`]) and its normalized form
//! ([`NormalizedUsage`]) that budgets, stats and events use.

use serde::{Deserialize, Serialize};

/// Token usage reported by a provider (every field optional, as providers differ).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[allow(missing_docs)] // field names are the providers' own usage keys
pub struct TokenUsage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_audio_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_cached_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_cache_miss_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_text_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_image_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_reasoning_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_audio_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_text_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_image_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_prediction_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_prediction_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_hit_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_miss_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_tokens: Option<u64>,
}

/// Usage normalized across providers (what budgets, stats and events use).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NormalizedUsage {
    /// Input tokens.
    pub prompt_tokens: u64,
    /// Output tokens.
    pub completion_tokens: u64,
    /// Input tokens served from a prompt cache.
    pub cache_read_tokens: u64,
    /// Reasoning tokens.
    pub reasoning_tokens: u64,
    /// Total tokens (prompt + completion when the provider gave none).
    pub total_tokens: u64,
}

impl NormalizedUsage {
    /// Adds another usage into this one.
    pub fn add(&mut self, o: &NormalizedUsage) {
        self.prompt_tokens += o.prompt_tokens;
        self.completion_tokens += o.completion_tokens;
        self.cache_read_tokens += o.cache_read_tokens;
        self.reasoning_tokens += o.reasoning_tokens;
        self.total_tokens += o.total_tokens;
    }
}

impl TokenUsage {
    /// Normalizes the provider fields (first present of each alias group).
    pub fn normalized(&self) -> NormalizedUsage {
        let prompt = self.prompt_tokens.unwrap_or(0);
        let completion = self.completion_tokens.unwrap_or(0);
        let cache_read = self
            .prompt_cached_tokens
            .or(self.cached_tokens)
            .or(self.cache_hit_tokens)
            .unwrap_or(0);
        let reasoning = self
            .completion_reasoning_tokens
            .or(self.reasoning_tokens)
            .unwrap_or(0);
        let total = match self.total_tokens {
            Some(t) if t > 0 => t,
            _ => prompt + completion,
        };
        NormalizedUsage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            cache_read_tokens: cache_read,
            reasoning_tokens: reasoning,
            total_tokens: total,
        }
    }

    /// Field-wise merge: values present in `other` replace this one's.
    pub fn merge_from(&mut self, other: &TokenUsage) {
        macro_rules! m { ($($f:ident),*) => { $( if other.$f.is_some() { self.$f = other.$f; } )* } }
        m!(
            prompt_tokens,
            completion_tokens,
            total_tokens,
            prompt_audio_tokens,
            prompt_cached_tokens,
            prompt_cache_miss_tokens,
            prompt_text_tokens,
            prompt_image_tokens,
            completion_reasoning_tokens,
            completion_audio_tokens,
            completion_text_tokens,
            completion_image_tokens,
            accepted_prediction_tokens,
            rejected_prediction_tokens,
            cached_tokens,
            cache_hit_tokens,
            cache_miss_tokens,
            reasoning_tokens,
            accepted_tokens,
            rejected_tokens
        );
    }

    /// Whether no field is set.
    pub fn is_empty(&self) -> bool {
        *self == TokenUsage::default()
    }
}
