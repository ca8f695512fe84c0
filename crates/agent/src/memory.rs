//! The memory-provider seam: `recall` once per run before round 0 (recalled messages
//! are injected as `system` messages named `memory_*`, never persisted), `remember` at the end of
//! every run.

use power_loop_contracts::{BoxFuture, Message, Result, Role};

/// What a run leaves for [`MemoryProvider::remember`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct MemorySnapshot {
    /// Session id.
    pub session_id: String,
    /// The final working history.
    pub messages: Vec<Message>,
    /// The final text.
    pub final_text: String,
    /// Rounds run.
    pub rounds: u32,
    /// Terminal status (the finalize reason).
    pub status: String,
}

/// A long-term memory. Object-safe (stored as `Arc<dyn MemoryProvider>`).
pub trait MemoryProvider: Send + Sync {
    /// Returns messages to inject for this run (within about `budget_tokens`).
    fn recall<'a>(
        &'a self,
        session_id: &'a str,
        messages: &'a [Message],
        budget_tokens: u64,
    ) -> BoxFuture<'a, Result<Vec<Message>>>;

    /// Stores what the run produced.
    fn remember<'a>(&'a self, snapshot: MemorySnapshot) -> BoxFuture<'a, Result<()>>;
}

/// Turns recalled items into `system` messages named `memory_<name>` (or `memory_<index>`).
pub fn tag_as_memory(items: Vec<Message>) -> Vec<Message> {
    items
        .into_iter()
        .enumerate()
        .map(|(i, mut m)| {
            m.role = Role::System;
            m.tool_calls.clear();
            m.tool_call_id = None;
            m.name = Some(match m.name.take() {
                Some(n) if n.starts_with("memory_") => n,
                Some(n) if !n.is_empty() => format!("memory_{n}"),
                _ => format!("memory_{i}"),
            });
            m
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_names() {
        let out = tag_as_memory(vec![
            Message::user("a"),
            Message::user("b").with_name("fact"),
            Message::user("c").with_name("memory_x"),
        ]);
        let names: Vec<_> = out.iter().map(|m| m.name.clone().unwrap()).collect();
        assert_eq!(names, vec!["memory_0", "memory_fact", "memory_x"]);
        assert!(out.iter().all(|m| m.role == Role::System));
    }
}
