//! Per-run usage accounting and the hard token budget.

use power_loop_contracts::{NormalizedUsage, TokenUsage};
use serde::{Deserialize, Serialize};

/// Cumulative usage of one run (every main-loop LLM call that produced a processed response).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunUsage {
    /// LLM calls counted.
    pub calls: u64,
    /// Prompt tokens.
    pub prompt_tokens: u64,
    /// Completion tokens.
    pub completion_tokens: u64,
    /// Prompt tokens served from a cache.
    pub cache_read_tokens: u64,
    /// Reasoning tokens.
    pub reasoning_tokens: u64,
    /// Total tokens.
    pub total_tokens: u64,
}

impl RunUsage {
    /// Adds one response's usage; returns the per-call normalized usage.
    pub fn record(&mut self, usage: &TokenUsage) -> NormalizedUsage {
        let n = usage.normalized();
        self.calls += 1;
        self.prompt_tokens += n.prompt_tokens;
        self.completion_tokens += n.completion_tokens;
        self.cache_read_tokens += n.cache_read_tokens;
        self.reasoning_tokens += n.reasoning_tokens;
        self.total_tokens += n.total_tokens;
        n
    }

    /// Tokens that count against a budget: prompt + completion.
    pub fn spent(&self) -> u64 {
        self.prompt_tokens + self.completion_tokens
    }

    /// Whether nothing was recorded (the result's `usage` is then empty).
    pub fn is_empty(&self) -> bool {
        self.calls == 0
    }
}

/// The per-call usage map of `usage_updated`: the five `…_tokens` keys plus the aliases
/// `input`, `output`, `cache_read`, `reasoning`.
pub fn usage_map(n: &NormalizedUsage) -> serde_json::Map<String, serde_json::Value> {
    let mut m = serde_json::Map::new();
    m.insert("prompt_tokens".into(), n.prompt_tokens.into());
    m.insert("completion_tokens".into(), n.completion_tokens.into());
    m.insert("cache_read_tokens".into(), n.cache_read_tokens.into());
    m.insert("reasoning_tokens".into(), n.reasoning_tokens.into());
    m.insert("total_tokens".into(), n.total_tokens.into());
    m.insert("input".into(), n.prompt_tokens.into());
    m.insert("output".into(), n.completion_tokens.into());
    m.insert("cache_read".into(), n.cache_read_tokens.into());
    m.insert("reasoning".into(), n.reasoning_tokens.into());
    m
}

/// Whether `usage` has reached `budget` (prompt + completion ≥ budget). `None` never stops.
pub fn budget_exceeded(budget: Option<u64>, usage: &RunUsage) -> bool {
    budget.is_some_and(|b| usage.spent() >= b)
}

/// Heuristic token estimate of a text (`max(1, chars / 4)`, 0 when empty); never used for billing.
pub fn estimate_text_tokens(text: &str) -> u64 {
    if text.is_empty() {
        0
    } else {
        (text.chars().count() as u64 / 4).max(1)
    }
}

/// Heuristic token estimate of a message list (4 per message + content + tool calls + name).
pub fn estimate_tokens(messages: &[power_loop_contracts::Message]) -> u64 {
    messages
        .iter()
        .map(|m| {
            let mut t = 4 + estimate_text_tokens(&m.text());
            if !m.tool_calls.is_empty() {
                t +=
                    estimate_text_tokens(&serde_json::to_string(&m.tool_calls).unwrap_or_default());
            }
            if let Some(n) = &m.name {
                t += estimate_text_tokens(n);
            }
            t
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_and_checks_budget() {
        let mut u = RunUsage::default();
        let n = u.record(&TokenUsage {
            prompt_tokens: Some(10),
            completion_tokens: Some(5),
            ..Default::default()
        });
        assert_eq!(n.total_tokens, 15);
        assert_eq!(u.calls, 1);
        assert!(budget_exceeded(Some(15), &u));
        assert!(!budget_exceeded(Some(16), &u));
        assert!(!budget_exceeded(None, &u));
        assert_eq!(usage_map(&n).get("input"), Some(&serde_json::json!(10)));
        assert_eq!(estimate_text_tokens("abcdefgh"), 2);
    }
}
