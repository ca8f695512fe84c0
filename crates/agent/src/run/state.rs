//! The state of one run and its durable writes.
//!
//! A [`Run`] is what one send, resume or answered interaction works on. Its mutable state is
//! grouped by the stage that changes it: the [`WindowState`] (the working history, its seqs and
//! the durable projection) changes only through the writes in this file and the compaction slot's
//! fold; the [`Tally`] (usage, tool calls) through the model call and the tool dispatch; the
//! [`Phase`] (started, finished, repair rounds left) through the round and its terminal outcomes.

use std::sync::Arc;

use power_loop_contracts::event::EventType;
use power_loop_contracts::hook::MessageAppendCtx;
use power_loop_contracts::{Error, EventPayload, Message, Result, ToolCall, ToolDefinition};
use power_loop_store::{
    NewMessage, PendingChange, SessionStore, StatsDelta, TurnCommit, UsageRecord, WindowToken,
};
use power_loop_tools::{Extensions, ToolRegistry};
use tokio_util::sync::CancellationToken;

use super::context::LoopContext;
use crate::budget::RunUsage;
use crate::cancel::CancelHandle;
use crate::convert::{stored_view, to_new_message};
use crate::emit::Emitter;
use crate::result::StatefulResult;
use crate::window::Window;

/// Extra durable effects of an append.
#[derive(Default)]
pub(super) struct Extras {
    pub(super) pending: PendingChange,
    pub(super) usage: Option<UsageRecord>,
    /// This is the run's terminal write: add the send's stats.
    pub(super) terminal: bool,
}

/// The send's user message, not yet committed: it is written in the same transaction as the
/// run's first durable write (normally the assistant message with its usage, stats or pending
/// record), or alone before the run returns when nothing else is written. It is in `history`
/// at `idx` (with a `None` seq) so the prompt contains it.
pub(super) struct DeferredUser {
    pub(super) msg: NewMessage,
    /// Its position in `history`; `None` once a hook replaced the history.
    pub(super) idx: Option<usize>,
}

/// The session's durable projection (what a cold load of the active window would return) once
/// the run's working `history` stopped being it: a hook replaced the messages, memory was
/// recalled into them, or large tool outputs were microcompacted. Taken when the first such
/// change happens (sharing the vector until then) and kept up to date by `append`, so the window
/// cache gets the durable projection, never transient content.
pub(super) struct Durable {
    messages: Arc<Vec<Message>>,
    seqs: Vec<Option<i64>>,
    /// The deferred user message's position in `messages` while it has no seq yet.
    user_idx: Option<usize>,
}

/// The run's view of the session: the working history and where the store stands.
pub(super) struct WindowState {
    /// The working history. Each model request shares this vector (no copy); the request is
    /// dropped before the next append, so `Arc::make_mut` appends in place.
    pub(super) history: Arc<Vec<Message>>,
    pub(super) seqs: Vec<Option<i64>>,
    /// The durable projection once `history` diverged from it (see [`Durable`]).
    pub(super) durable: Option<Durable>,
    /// The window token the run started from (where `appended` must continue).
    pub(super) start_token: WindowToken,
    pub(super) next_seq: i64,
    pub(super) last_compact_seq: i64,
    /// Seqs this run wrote, in commit order.
    pub(super) appended: Vec<i64>,
    /// The run folded part of the history (its window is then never cached).
    pub(super) compacted: bool,
    /// The user message of this send while it is not yet committed.
    pub(super) deferred_user: Option<DeferredUser>,
}

/// What the run spent: counted by the model call and the tool dispatch.
#[derive(Default)]
pub(super) struct Tally {
    pub(super) usage: RunUsage,
    pub(super) tool_calls: u32,
    /// The terminal write already carried the send's stats.
    pub(super) stats_written: bool,
}

/// Where the run is in its life: changed by the round and its terminal outcomes.
pub(super) struct Phase {
    pub(super) started: bool,
    pub(super) finished: bool,
    pub(super) structured_retries_left: u32,
    /// Pending calls to execute before round 0 (resume).
    pub(super) pending_calls: Option<(Vec<ToolCall>, u32)>,
    /// Hooks run (false for a resume that only answers).
    pub(super) hooks_on: bool,
}

/// Everything a run starts from (built by the loop's entry points).
pub(crate) struct RunSetup {
    pub(crate) ctx: Arc<LoopContext>,
    pub(crate) store: SessionStore,
    pub(crate) sid: String,
    pub(crate) emitter: Emitter,
    pub(crate) registry: Option<ToolRegistry>,
    pub(crate) system_prompt: String,
    pub(crate) cancel: Option<CancellationToken>,
    /// Host objects every tool call of the run sees (the loop handle for sub-agent and timer
    /// tools).
    pub(crate) extensions: Extensions,
    pub(crate) history: Arc<Vec<Message>>,
    pub(crate) seqs: Vec<Option<i64>>,
    pub(crate) token: WindowToken,
}

/// One run of the round pipeline.
pub(crate) struct Run {
    /// What the run reads from its loop (model, config, hooks, environment, follow-ups).
    pub(super) ctx: Arc<LoopContext>,
    pub(super) store: SessionStore,
    pub(super) sid: String,
    pub(super) emitter: Emitter,
    pub(super) registry: Option<ToolRegistry>,
    pub(super) system_prompt: String,
    /// Shared with every request of the run (cloned per round in O(1)).
    pub(super) tool_defs: Arc<Vec<ToolDefinition>>,
    pub(super) cancel: CancellationToken,
    /// Where the reason of a cancellation comes from, when the caller gave one.
    pub(super) cancel_handle: Option<CancelHandle>,
    pub(super) extensions: Extensions,
    pub(super) window: WindowState,
    pub(super) tally: Tally,
    pub(super) phase: Phase,
}

/// How a round ended.
pub(super) enum Step {
    Next,
    Done(Box<StatefulResult>),
}

/// How a run ended, for the loop: the result, the window to cache and the stats still to add.
pub(crate) struct RunEnd {
    pub(crate) result: Result<StatefulResult>,
    /// The durable window to put back in the cache (`None`: invalidate).
    pub(crate) window: Option<(WindowToken, Window)>,
    /// Stats of a successful run whose terminal write did not carry them.
    pub(crate) stats: Option<StatsDelta>,
}

impl Run {
    /// A run over `setup`'s window.
    pub(crate) fn new(setup: RunSetup) -> Run {
        let tool_defs = Arc::new(
            setup
                .registry
                .as_ref()
                .map(ToolRegistry::definitions)
                .unwrap_or_default(),
        );
        let retries = setup.ctx.config.structured_output_retries;
        Run {
            ctx: setup.ctx,
            store: setup.store,
            sid: setup.sid,
            emitter: setup.emitter,
            registry: setup.registry,
            system_prompt: setup.system_prompt,
            tool_defs,
            cancel: setup.cancel.unwrap_or_default(),
            cancel_handle: None,
            extensions: setup.extensions,
            window: WindowState {
                history: setup.history,
                seqs: setup.seqs,
                durable: None,
                start_token: setup.token,
                next_seq: setup.token.next_seq,
                last_compact_seq: setup.token.last_compact_seq,
                appended: Vec::new(),
                compacted: false,
                deferred_user: None,
            },
            tally: Tally::default(),
            phase: Phase {
                started: false,
                finished: false,
                structured_retries_left: retries,
                pending_calls: None,
                hooks_on: true,
            },
        }
    }

    /// Adds the send's user message to the history, to be committed with the run's first write.
    pub(crate) fn defer_user(&mut self, msg: NewMessage) {
        let view = stored_view(&msg);
        Arc::make_mut(&mut self.window.history).push(view);
        let idx = self.window.history.len().saturating_sub(1);
        self.window.seqs.push(None);
        self.window.deferred_user = Some(DeferredUser {
            msg,
            idx: Some(idx),
        });
    }

    /// The handle whose reason a cancellation of this run reports.
    pub(crate) fn with_cancel_handle(mut self, handle: Option<CancelHandle>) -> Self {
        self.cancel_handle = handle;
        self
    }

    /// Why the run was cancelled: the handle's reason, else `cancelled`.
    pub(super) fn cancel_reason(&self) -> String {
        self.cancel_handle
            .as_ref()
            .and_then(CancelHandle::reason)
            .unwrap_or_else(|| crate::cancel::DEFAULT_CANCEL_REASON.to_owned())
    }

    /// Pending tool calls to run (through the normal dispatch) before the first round.
    pub(crate) fn with_pending_calls(mut self, calls: Vec<ToolCall>, round: u32) -> Self {
        self.phase.pending_calls = Some((calls, round));
        self
    }

    /// Runs the pipeline to its end; `keep_window` asks for the window to cache.
    pub(crate) async fn run_to_end(mut self, keep_window: bool) -> RunEnd {
        let result = self.run().await;
        let window = if keep_window && result.is_ok() {
            self.take_window()
        } else {
            None
        };
        let stats = match &result {
            Ok(r) if !self.tally.stats_written => Some(self.stats_delta(r.rounds)),
            _ => None,
        };
        RunEnd {
            result,
            window,
            stats,
        }
    }

    pub(super) fn cfg(&self) -> &crate::AgentLoopConfig {
        &self.ctx.config
    }

    pub(super) fn emit(
        &self,
        t: EventType,
        round: Option<u32>,
        payload: impl FnOnce() -> EventPayload,
    ) -> Result<()> {
        self.emitter.emit(t, round, false, payload)
    }

    pub(super) fn hooks(&self) -> Option<&crate::AgentHooks> {
        (self.phase.hooks_on && !self.ctx.hooks.is_empty()).then_some(&self.ctx.hooks)
    }

    /// Appends the `tool` result messages of round `idx`, removing their call ids from the
    /// pending state in the same transaction.
    pub(super) async fn append_tool_results(&mut self, msgs: Vec<Message>, idx: u32) -> Result<()> {
        let extras = Extras {
            pending: power_loop_store::PendingChange::ResolveToolResults,
            ..Default::default()
        };
        self.append(msgs, Some(idx), extras).await.map(|_| ())
    }

    /// Appends messages through the `message.append` hook and persists them (with `extras`) in
    /// ONE transaction. Returns the seqs.
    pub(super) async fn append(
        &mut self,
        msgs: Vec<Message>,
        round: Option<u32>,
        extras: Extras,
    ) -> Result<Vec<i64>> {
        let mut news = Vec::with_capacity(msgs.len());
        for m in msgs {
            let m = match self.hooks() {
                Some(h) => {
                    let mut ctx = MessageAppendCtx {
                        session_id: self.sid.clone(),
                        round_index: round.unwrap_or(0),
                        message: Some(m.clone()),
                    };
                    h.run_message_append(&mut ctx).await?;
                    ctx.message.unwrap_or(m)
                }
                None => m,
            };
            news.push(to_new_message(&m, round.map(i64::from)));
        }
        let views: Vec<Message> = news.iter().map(stored_view).collect();
        let deferred = self.window.deferred_user.take();
        if let Some(d) = &deferred {
            news.insert(0, d.msg.clone());
        }
        let mut turn = TurnCommit::new(news).with_pending(extras.pending);
        if let Some(r) = round {
            turn = turn.with_round_index(i64::from(r));
        }
        if let Some(u) = extras.usage {
            turn = turn.with_usage(u);
        }
        if extras.terminal {
            turn = turn.with_stats(self.stats_delta(round.map_or(0, |r| r + 1)));
            self.tally.stats_written = true;
        }
        let mut seqs = match self.store.commit_turn(&self.sid, turn).await {
            Ok(seqs) => seqs,
            Err(e) => {
                self.window.deferred_user = deferred;
                return Err(e);
            }
        };
        if let Some(d) = deferred {
            if seqs.is_empty() {
                return Err(Error::internal("the user message got no seq"));
            }
            let seq = seqs.remove(0);
            self.user_committed(d, seq);
        }
        for (seq, m) in seqs.iter().zip(views) {
            if *seq != self.window.next_seq {
                tracing::warn!(target: "power_loop::agent", session = %self.sid, expected = self.window.next_seq, got = seq, "another writer appended to this session during the run");
            }
            self.window.next_seq = seq + 1;
            if let Some(d) = self.window.durable.as_mut() {
                Arc::make_mut(&mut d.messages).push(m.clone());
                d.seqs.push(Some(*seq));
            }
            Arc::make_mut(&mut self.window.history).push(m);
            self.window.seqs.push(Some(*seq));
            self.window.appended.push(*seq);
        }
        Ok(seqs)
    }

    /// Records the durable projection before `history` changes other than by an append of
    /// persisted messages (a no-op when it already diverged).
    pub(super) fn diverge(&mut self) {
        if self.window.durable.is_none() {
            self.window.durable = Some(Durable {
                messages: Arc::clone(&self.window.history),
                seqs: self.window.seqs.clone(),
                user_idx: self.window.deferred_user.as_ref().and_then(|d| d.idx),
            });
        }
    }

    /// A hook replaced the messages: they become the working history, with no known seqs.
    pub(super) fn replace_history(&mut self, messages: Vec<Message>) {
        self.diverge();
        self.window.seqs = vec![None; messages.len()];
        self.window.history = Arc::new(messages);
        if let Some(d) = self.window.deferred_user.as_mut() {
            d.idx = None;
        }
    }

    /// The window to cache after a successful run: the durable projection, its seqs and the
    /// token it corresponds to. `None` when it cannot be trusted: the run folded (compaction),
    /// another writer appended in between (seqs not contiguous), or the user message has no
    /// seq. Leaves the run's history empty.
    pub(super) fn take_window(&mut self) -> Option<(WindowToken, Window)> {
        if self.window.compacted || self.window.deferred_user.is_some() {
            return None;
        }
        let mut next = self.window.start_token.next_seq;
        for seq in &self.window.appended {
            if *seq != next {
                return None;
            }
            next += 1;
        }
        let window = match self.window.durable.take() {
            Some(d) => (d.messages, d.seqs),
            None => (
                std::mem::take(&mut self.window.history),
                std::mem::take(&mut self.window.seqs),
            ),
        };
        Some((
            WindowToken {
                next_seq: next,
                last_compact_seq: self.window.start_token.last_compact_seq,
            },
            window,
        ))
    }

    /// Bookkeeping once the deferred user message got `seq`.
    pub(super) fn user_committed(&mut self, d: DeferredUser, seq: i64) {
        if seq != self.window.next_seq {
            tracing::warn!(target: "power_loop::agent", session = %self.sid, expected = self.window.next_seq, got = seq, "another writer appended to this session during the run");
        }
        self.window.next_seq = seq + 1;
        if let Some(slot) = d.idx.and_then(|i| self.window.seqs.get_mut(i)) {
            *slot = Some(seq);
        }
        if let Some(du) = self.window.durable.as_mut()
            && let Some(slot) = du.user_idx.take().and_then(|i| du.seqs.get_mut(i))
        {
            *slot = Some(seq);
        }
        self.window.appended.push(seq);
    }

    /// Commits the deferred user message alone (before a write that is not an append, or when
    /// the run ends without another write).
    pub(crate) async fn flush_user(&mut self) -> Result<()> {
        let Some(d) = self.window.deferred_user.take() else {
            return Ok(());
        };
        let turn = TurnCommit::new(vec![d.msg.clone()]).with_round_index(0);
        let seqs = match self.store.commit_turn(&self.sid, turn).await {
            Ok(seqs) => seqs,
            Err(e) => {
                self.window.deferred_user = Some(d);
                return Err(e);
            }
        };
        let seq = seqs
            .first()
            .copied()
            .ok_or_else(|| Error::internal("the user message got no seq"))?;
        self.user_committed(d, seq);
        Ok(())
    }

    pub(super) fn stats_delta(&self, rounds: u32) -> StatsDelta {
        let u = &self.tally.usage;
        StatsDelta::new(
            i64::from(rounds),
            u.calls as i64,
            i64::from(self.tally.tool_calls),
            u.prompt_tokens as i64,
            u.completion_tokens as i64,
            u.total_tokens as i64,
        )
    }
}
