//! [`AgentHooks`]: the typed hook registry.
//!
//! Hooks are [`Hook`] trait objects (one method per [`HookPoint`],
//! each with its own context and directive type), registered with an `order`. For every point,
//! **every** registered hook runs in ascending `order` (equal orders keep registration order);
//! each sees the context as the previous one left it, so the directive left by the last hook is
//! what the pipeline acts on. A hook error aborts the run through the error path.
//!
//! Closure helpers (`on_tool_before(order, |ctx| …)`, …) register a hook for one point without
//! implementing the trait. There is no string-keyed registration, so a hook cannot silently be
//! registered under a name that never fires.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use power_loop_contracts::hook::*;
use power_loop_contracts::{Hook, Result};

/// Handle of a registration; pass it to [`AgentHooks::unregister`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HookHandle(u64);

struct Entry {
    order: i32,
    id: u64,
    hook: Arc<dyn Hook>,
}

struct Inner {
    entries: RwLock<Vec<Entry>>,
    next_id: AtomicU64,
}

/// The hook registry. Cheap to clone (clones share registrations).
#[derive(Clone)]
pub struct AgentHooks {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AgentHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentHooks")
            .field("hooks", &self.len())
            .finish()
    }
}

impl Default for AgentHooks {
    fn default() -> Self {
        Self::new()
    }
}

macro_rules! runners {
    ($( $(#[$m:meta])* $run:ident => $method:ident($ctx:ty) ),* $(,)?) => {
        impl AgentHooks {
            $(
                $(#[$m])*
                pub async fn $run(&self, ctx: &mut $ctx) -> Result<()> {
                    for h in self.snapshot() {
                        h.$method(ctx).await?;
                    }
                    Ok(())
                }
            )*
        }
    };
}

runners! {
    /// Runs every `session.start` hook.
    run_session_start => session_start(SessionStartCtx),
    /// Runs every `session.end` hook.
    run_session_end => session_end(SessionEndCtx),
    /// Runs every `round.start` hook.
    run_round_start => round_start(RoundStartCtx),
    /// Runs every `round.end` hook.
    run_round_end => round_end(RoundEndCtx),
    /// Runs every `llm.before` hook.
    run_llm_before => llm_before(LlmBeforeCtx),
    /// Runs every `llm.after` hook.
    run_llm_after => llm_after(LlmAfterCtx),
    /// Runs every `round.decide` hook.
    run_round_decide => round_decide(RoundDecideCtx),
    /// Runs every `tools.batch.before` hook.
    run_tools_batch_before => tools_batch_before(ToolsBatchBeforeCtx),
    /// Runs every `tools.batch.after` hook.
    run_tools_batch_after => tools_batch_after(ToolsBatchAfterCtx),
    /// Runs every `tool.before` hook.
    run_tool_before => tool_before(ToolBeforeCtx),
    /// Runs every `tool.after` hook.
    run_tool_after => tool_after(ToolAfterCtx),
    /// Runs every `tool.error` hook.
    run_tool_error => tool_error(ToolErrorCtx),
    /// Runs every `compact.before` hook.
    run_compact_before => compact_before(CompactBeforeCtx),
    /// Runs every `compact.after` hook.
    run_compact_after => compact_after(CompactAfterCtx),
    /// Runs every `message.append` hook.
    run_message_append => message_append(MessageAppendCtx),
    /// Runs every `memory.recalled` hook.
    run_memory_recalled => memory_recalled(MemoryRecalledCtx),
    /// Runs every `timer.fire` hook.
    run_timer_fire => timer_fire(TimerFireCtx),
}

impl AgentHooks {
    /// An empty registry.
    pub fn new() -> Self {
        AgentHooks {
            inner: Arc::new(Inner {
                entries: RwLock::new(Vec::new()),
                next_id: AtomicU64::new(1),
            }),
        }
    }

    /// Registers a hook; lower `order` runs first, equal orders keep registration order.
    pub fn register(&self, order: i32, hook: Arc<dyn Hook>) -> HookHandle {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let mut entries = match self.inner.entries.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let at = entries.partition_point(|e| e.order <= order);
        entries.insert(at, Entry { order, id, hook });
        HookHandle(id)
    }

    /// Removes a registration; returns whether it existed.
    pub fn unregister(&self, handle: HookHandle) -> bool {
        let mut entries = match self.inner.entries.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let before = entries.len();
        entries.retain(|e| e.id != handle.0);
        before != entries.len()
    }

    /// Removes every registration.
    pub fn clear(&self) {
        match self.inner.entries.write() {
            Ok(mut g) => g.clear(),
            Err(p) => p.into_inner().clear(),
        }
    }

    /// Number of registered hooks.
    pub fn len(&self) -> usize {
        match self.inner.entries.read() {
            Ok(g) => g.len(),
            Err(p) => p.into_inner().len(),
        }
    }

    /// Whether no hook is registered (the pipeline then skips building hook contexts).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn snapshot(&self) -> Vec<Arc<dyn Hook>> {
        let entries = match self.inner.entries.read() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        entries.iter().map(|e| Arc::clone(&e.hook)).collect()
    }
}

macro_rules! closure_hooks {
    ($( $(#[$m:meta])* $on:ident, $ty:ident => $method:ident($ctx:ty) ),* $(,)?) => {
        $(
            struct $ty<F>(F);
            impl<F> Hook for $ty<F>
            where
                F: Fn(&mut $ctx) -> Result<()> + Send + Sync + 'static,
            {
                fn $method<'a>(&'a self, ctx: &'a mut $ctx) -> HookFuture<'a> {
                    Box::pin(std::future::ready((self.0)(ctx)))
                }
            }
        )*
        impl AgentHooks {
            $(
                $(#[$m])*
                pub fn $on<F>(&self, order: i32, f: F) -> HookHandle
                where
                    F: Fn(&mut $ctx) -> Result<()> + Send + Sync + 'static,
                {
                    self.register(order, Arc::new($ty(f)))
                }
            )*
        }
    };
}

closure_hooks! {
    /// Registers a closure for `session.start`.
    on_session_start, OnSessionStart => session_start(SessionStartCtx),
    /// Registers a closure for `session.end`.
    on_session_end, OnSessionEnd => session_end(SessionEndCtx),
    /// Registers a closure for `round.start`.
    on_round_start, OnRoundStart => round_start(RoundStartCtx),
    /// Registers a closure for `round.end`.
    on_round_end, OnRoundEnd => round_end(RoundEndCtx),
    /// Registers a closure for `llm.before`.
    on_llm_before, OnLlmBefore => llm_before(LlmBeforeCtx),
    /// Registers a closure for `llm.after`.
    on_llm_after, OnLlmAfter => llm_after(LlmAfterCtx),
    /// Registers a closure for `round.decide`.
    on_round_decide, OnRoundDecide => round_decide(RoundDecideCtx),
    /// Registers a closure for `tools.batch.before`.
    on_tools_batch_before, OnToolsBatchBefore => tools_batch_before(ToolsBatchBeforeCtx),
    /// Registers a closure for `tools.batch.after`.
    on_tools_batch_after, OnToolsBatchAfter => tools_batch_after(ToolsBatchAfterCtx),
    /// Registers a closure for `tool.before` (set `ctx.directive = Skip` to veto a call).
    on_tool_before, OnToolBefore => tool_before(ToolBeforeCtx),
    /// Registers a closure for `tool.after`.
    on_tool_after, OnToolAfter => tool_after(ToolAfterCtx),
    /// Registers a closure for `tool.error`.
    on_tool_error, OnToolError => tool_error(ToolErrorCtx),
    /// Registers a closure for `compact.before`.
    on_compact_before, OnCompactBefore => compact_before(CompactBeforeCtx),
    /// Registers a closure for `compact.after`.
    on_compact_after, OnCompactAfter => compact_after(CompactAfterCtx),
    /// Registers a closure for `message.append`.
    on_message_append, OnMessageAppend => message_append(MessageAppendCtx),
    /// Registers a closure for `memory.recalled`.
    on_memory_recalled, OnMemoryRecalled => memory_recalled(MemoryRecalledCtx),
    /// Registers a closure for `timer.fire`.
    on_timer_fire, OnTimerFire => timer_fire(TimerFireCtx),
}

#[cfg(test)]
mod tests {
    use super::*;
    use power_loop_contracts::Error;
    use std::sync::Mutex;

    #[tokio::test]
    async fn every_hook_runs_in_order_and_last_directive_wins() {
        let hooks = AgentHooks::new();
        let log = Arc::new(Mutex::new(Vec::new()));
        let l = log.clone();
        hooks.on_tool_before(10, move |ctx| {
            l.lock().unwrap().push(format!("10:{:?}", ctx.directive));
            ctx.directive = ToolBeforeDirective::Continue;
            Ok(())
        });
        let l = log.clone();
        hooks.on_tool_before(-1, move |ctx| {
            l.lock().unwrap().push("-1".to_owned());
            ctx.directive = ToolBeforeDirective::Skip;
            ctx.output = "vetoed".into();
            Ok(())
        });
        let l = log.clone();
        let h = hooks.on_tool_before(10, move |ctx| {
            l.lock().unwrap().push(format!("10b:{:?}", ctx.directive));
            ctx.directive = ToolBeforeDirective::Skip;
            Ok(())
        });
        hooks.on_round_end(0, |_| Ok(()));
        let mut ctx = ToolBeforeCtx::default();
        hooks.run_tool_before(&mut ctx).await.unwrap();
        assert_eq!(*log.lock().unwrap(), vec!["-1", "10:Skip", "10b:Continue"]);
        assert_eq!(ctx.directive, ToolBeforeDirective::Skip);
        assert_eq!(ctx.output, "vetoed");
        assert!(hooks.unregister(h));
        let mut ctx = ToolBeforeCtx::default();
        hooks.run_tool_before(&mut ctx).await.unwrap();
        assert_eq!(ctx.directive, ToolBeforeDirective::Continue);
        assert_eq!(hooks.len(), 3);
    }

    #[tokio::test]
    async fn a_failing_hook_returns_its_error() {
        let hooks = AgentHooks::new();
        hooks.on_round_start(0, |_| Err(Error::internal("nope")));
        let mut ctx = RoundStartCtx::default();
        assert!(hooks.run_round_start(&mut ctx).await.is_err());
        hooks.clear();
        assert!(hooks.is_empty());
    }
}
