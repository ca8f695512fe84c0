//! Long-term memory: a `MemoryProvider` recalls facts before a run and remembers after it.
//!
//! Shows: implementing the two-method `MemoryProvider` seam (here an in-process fact list; a
//! real one would be a vector store or a database), recalled facts injected as `system`
//! messages named `memory_*` for the run only (never persisted in the session), facts shared
//! across sessions, and the `memory.recalled` hook that can inspect or drop what is injected.
//!
//! Run: `cargo run -p examples --example memory-provider`

use std::sync::{Arc, Mutex};

use power_loop::{
    AgentHooks, AgentLoopConfig, BoxFuture, MemoryProvider, MemorySnapshot, Message,
    NewSessionOptions, Role, ScriptedLlm, ScriptedStep, StatefulAgentLoop,
};

/// Remembers every sentence the user starts with "remember", recalls them all.
#[derive(Default)]
struct FactMemory {
    facts: Mutex<Vec<String>>,
}

impl MemoryProvider for FactMemory {
    fn recall<'a>(
        &'a self,
        _session_id: &'a str,
        _messages: &'a [Message],
        _budget_tokens: u64,
    ) -> BoxFuture<'a, power_loop::Result<Vec<Message>>> {
        Box::pin(async move {
            let facts = self.facts.lock().map(|f| f.clone()).unwrap_or_default();
            Ok(facts
                .into_iter()
                .map(|f| Message::system(format!("Known fact: {f}")).with_name("fact"))
                .collect())
        })
    }

    fn remember<'a>(&'a self, snapshot: MemorySnapshot) -> BoxFuture<'a, power_loop::Result<()>> {
        Box::pin(async move {
            let new: Vec<String> = snapshot
                .messages
                .iter()
                .filter(|m| m.role == Role::User)
                .filter_map(|m| m.text().strip_prefix("Remember: ").map(str::to_owned))
                .collect();
            if let Ok(mut f) = self.facts.lock() {
                for fact in new {
                    if !f.contains(&fact) {
                        f.push(fact);
                    }
                }
            }
            Ok(())
        })
    }
}

#[tokio::main]
async fn main() -> power_loop::Result<()> {
    // The model answers from the memory messages it is given.
    let llm = Arc::new(ScriptedLlm::from_fn(|req| {
        let memories: Vec<String> = req
            .messages
            .iter()
            .filter(|m| m.name.as_deref().is_some_and(|n| n.starts_with("memory_")))
            .map(|m| m.text())
            .collect();
        ScriptedStep::text(if memories.is_empty() {
            "I know nothing yet.".to_owned()
        } else {
            memories.join(" ")
        })
    }));
    let memory = Arc::new(FactMemory::default());
    let hooks = AgentHooks::new();
    hooks.on_memory_recalled(0, |ctx| {
        println!(
            "  memory.recalled: {} message(s) for session {}",
            ctx.recalled.len(),
            ctx.session_id
        );
        Ok(())
    });
    let agent = StatefulAgentLoop::builder(llm)
        .dsn("sqlite://:memory:")
        .config(AgentLoopConfig::new().with_memory(Some(memory.clone())))
        .hooks(hooks)
        .build()?;

    let a = agent.new_session(NewSessionOptions::default()).await?;
    println!(
        "a: {}",
        agent
            .send(&a, "Remember: the deploy window is Tuesday 10:00.")
            .await?
            .final_text
    );
    // Another session sees the fact: memory is not tied to one conversation.
    let b = agent.new_session(NewSessionOptions::default()).await?;
    let r = agent.send(&b, "When can we deploy?").await?;
    println!("b: {}", r.final_text);
    assert!(r.final_text.contains("Tuesday 10:00"));
    // Memories were injected for the run only: session b stores just its own two messages.
    let stored = agent.get_messages(&b, false).await?;
    println!("session b stores {} messages", stored.len());
    assert_eq!(stored.len(), 2);
    agent.close(std::time::Duration::from_secs(5)).await?;
    Ok(())
}
