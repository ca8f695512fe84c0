//! One run of the round pipeline (spec §2.2–§2.7): session start, rounds, terminal outcomes,
//! the error path, and the durable writes of the run.

use std::sync::Arc;

use power_loop_contracts::event::*;
use power_loop_contracts::hook::*;
use power_loop_contracts::{
    Error, ErrorCode, EventPayload, LlmRequest, LlmResponse, Message, Result, Role, ToolCall,
    ToolChoice, ToolDefinition,
};
use power_loop_store::{
    CompactionRequest, NewMessage, PendingChange, PendingInteraction, PendingState, SessionStore,
    StatsDelta, TurnCommit, UsageRecord, WindowToken,
};
use power_loop_tools::ToolRegistry;
use tokio_util::sync::CancellationToken;

use crate::agent_loop::Shared;
use crate::budget::{RunUsage, budget_exceeded, usage_map};
use crate::compaction::CompactRequest;
use crate::convert::{sanitize_calls, stored_view, to_new_message};
use crate::emit::Emitter;
use crate::memory::{MemorySnapshot, tag_as_memory};
use crate::result::{RunStatus, StatefulResult};
use crate::structured::corrective_message;

/// Extra durable effects of an append.
#[derive(Default)]
pub(crate) struct Extras {
    pub(crate) pending: PendingChange,
    pub(crate) usage: Option<UsageRecord>,
    /// This is the run's terminal write: add the send's stats.
    pub(crate) terminal: bool,
}

/// The send's user message, not yet committed: it is written in the same transaction as the
/// run's first durable write (normally the assistant message with its usage, stats or pending
/// record), or alone before the run returns when nothing else is written. It is in `history`
/// at `idx` (with a `None` seq) so the prompt contains it.
pub(crate) struct DeferredUser {
    pub(crate) msg: NewMessage,
    /// Its position in `history`; `None` once a hook replaced the history.
    pub(crate) idx: Option<usize>,
}

/// The session's durable projection (what a cold load of the active window would return) once
/// the run's working `history` stopped being it: a hook replaced the messages, memory was
/// recalled into them, or large tool outputs were microcompacted. Taken when the first such
/// change happens (sharing the vector until then) and kept up to date by `append`, so the window
/// cache gets the durable projection, never transient content.
pub(crate) struct Durable {
    messages: Arc<Vec<Message>>,
    seqs: Vec<Option<i64>>,
    /// The deferred user message's position in `messages` while it has no seq yet.
    user_idx: Option<usize>,
}

pub(crate) struct Run {
    pub(crate) shared: Arc<Shared>,
    pub(crate) store: SessionStore,
    pub(crate) sid: String,
    pub(crate) emitter: Emitter,
    pub(crate) registry: Option<ToolRegistry>,
    pub(crate) system_prompt: String,
    /// Shared with every request of the run (cloned per round in O(1)).
    pub(crate) tool_defs: Arc<Vec<ToolDefinition>>,
    pub(crate) cancel: CancellationToken,
    /// The working history. Each model request shares this vector (no copy); the request is
    /// dropped before the next append, so `Arc::make_mut` appends in place.
    pub(crate) history: Arc<Vec<Message>>,
    pub(crate) seqs: Vec<Option<i64>>,
    /// The durable projection once `history` diverged from it (see [`Durable`]).
    pub(crate) durable: Option<Durable>,
    /// The window token the run started from (where `appended` must continue).
    pub(crate) start_token: WindowToken,
    pub(crate) next_seq: i64,
    pub(crate) last_compact_seq: i64,
    /// Seqs this run wrote, in commit order.
    pub(crate) appended: Vec<i64>,
    pub(crate) compacted: bool,
    pub(crate) usage: RunUsage,
    pub(crate) tool_calls: u32,
    pub(crate) started: bool,
    pub(crate) finished: bool,
    pub(crate) stats_written: bool,
    pub(crate) structured_retries_left: u32,
    /// Pending calls to execute before round 0 (resume).
    pub(crate) pending_calls: Option<(Vec<ToolCall>, u32)>,
    /// Run rounds after the prelude (false for a resume that only answers).
    pub(crate) hooks_on: bool,
    /// The user message of this send while it is not yet committed.
    pub(crate) deferred_user: Option<DeferredUser>,
}

/// How a round ended.
pub(crate) enum Step {
    Next,
    Done(Box<StatefulResult>),
}

pub(crate) fn is_degraded(e: &Error) -> Option<&'static str> {
    match e.code() {
        ErrorCode::LlmRetryExhausted => Some("retry_exhausted"),
        ErrorCode::LlmTimeout => Some("timeout"),
        c if power_loop_llm::is_retryable_code(c) => Some("retry_exhausted"),
        _ => None,
    }
}

impl Run {
    fn cfg(&self) -> &crate::AgentLoopConfig {
        &self.shared.config
    }

    fn emit(
        &self,
        t: EventType,
        round: Option<u32>,
        payload: impl FnOnce() -> EventPayload,
    ) -> Result<()> {
        self.emitter.emit(t, round, false, payload)
    }

    fn hooks(&self) -> Option<&crate::AgentHooks> {
        (self.hooks_on && !self.shared.hooks.is_empty()).then_some(&self.shared.hooks)
    }

    /// Runs the pipeline; on an unexpected error: `agent_error`, finalize `error`, re-raise.
    pub(crate) async fn run(&mut self) -> Result<StatefulResult> {
        match self.run_inner().await {
            Ok(r) => self.flush_user().await.map(|()| r),
            Err(e) => {
                if let Err(fe) = self.flush_user().await {
                    tracing::warn!(target: "power_loop::agent", session = %self.sid, error = %fe, "persisting the user message after a failed run failed");
                }
                let _ = self.emit(EventType::AgentError, None, || {
                    EventPayload::AgentError(AgentErrorPayload {
                        error: e.message().to_owned(),
                        error_type: e.code().as_str().to_owned(),
                        details: String::new(),
                    })
                });
                if self.started
                    && !self.finished
                    && self
                        .finish(RunStatus::Completed, String::new(), 0, "error")
                        .await
                        .is_err()
                {
                    let _ = self.emit(EventType::SessionEnded, None, || {
                        EventPayload::SessionEnded(SessionEndedPayload {
                            reason: "error".into(),
                        })
                    });
                }
                Err(e)
            }
        }
    }

    async fn run_inner(&mut self) -> Result<StatefulResult> {
        if let Some(h) = self.hooks() {
            let mut ctx = SessionStartCtx {
                session_id: self.sid.clone(),
                scope: "main".into(),
                messages: self.history.to_vec(),
            };
            h.run_session_start(&mut ctx).await?;
            if ctx.messages != *self.history {
                self.replace_history(ctx.messages);
            }
        }
        self.emit(EventType::SessionStarted, None, || {
            EventPayload::SessionStarted(SessionStartedPayload {
                scope: "main".into(),
            })
        })?;
        self.started = true;
        self.recall_memory().await?;
        if let Some((calls, round)) = self.pending_calls.take()
            && let Some(done) = self.run_pending_calls(calls, round).await?
        {
            return Ok(done);
        }
        let max = self.cfg().max_rounds;
        for idx in 0..max {
            if let Step::Done(r) = self.round(idx).await? {
                return Ok(*r);
            }
        }
        self.round_limit().await
    }

    async fn recall_memory(&mut self) -> Result<()> {
        let Some(mem) = self.cfg().memory.clone() else {
            return Ok(());
        };
        let budget = self.cfg().memory_budget_tokens;
        let items = match mem.recall(&self.sid, &self.history, budget).await {
            Ok(items) => items,
            Err(e) => {
                let msg: String = e.message().chars().take(500).collect();
                return self.emit(EventType::MemoryFailed, None, || {
                    EventPayload::MemoryFailed(MemoryFailedPayload {
                        phase: "recall".into(),
                        error_type: e.code().as_str().into(),
                        error_message: msg,
                    })
                });
            }
        };
        let returned = items.len() as u32;
        let mut recalled = items;
        if let Some(h) = self.hooks() {
            let mut ctx = MemoryRecalledCtx {
                session_id: self.sid.clone(),
                recalled,
                budget_tokens: budget,
                directive: MemoryRecalledDirective::Continue,
            };
            h.run_memory_recalled(&mut ctx).await?;
            recalled = if ctx.directive == MemoryRecalledDirective::Skip {
                Vec::new()
            } else {
                ctx.recalled
            };
        }
        let tagged = tag_as_memory(recalled);
        let injected = tagged.len() as u32;
        let at = self
            .history
            .iter()
            .take_while(|m| m.role == Role::System)
            .count();
        if !tagged.is_empty() {
            self.diverge();
            let history = Arc::make_mut(&mut self.history);
            for (i, m) in tagged.into_iter().enumerate() {
                history.insert(at + i, m);
                self.seqs.insert(at + i, None);
            }
        }
        if let Some(d) = self.deferred_user.as_mut()
            && let Some(i) = d.idx.as_mut()
            && *i >= at
        {
            *i += injected as usize;
        }
        self.emit(EventType::MemoryRecalled, None, || {
            EventPayload::MemoryRecalled(MemoryRecalledPayload {
                returned,
                injected,
                budget_tokens: budget,
            })
        })
    }

    /// Appends messages through the `message.append` hook and persists them (with `extras`) in
    /// ONE transaction. Returns the seqs.
    pub(crate) async fn append(
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
        let deferred = self.deferred_user.take();
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
            self.stats_written = true;
        }
        let mut seqs = match self.store.commit_turn(&self.sid, turn).await {
            Ok(seqs) => seqs,
            Err(e) => {
                self.deferred_user = deferred;
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
            if *seq != self.next_seq {
                tracing::warn!(target: "power_loop::agent", session = %self.sid, expected = self.next_seq, got = seq, "another writer appended to this session during the run");
            }
            self.next_seq = seq + 1;
            if let Some(d) = self.durable.as_mut() {
                Arc::make_mut(&mut d.messages).push(m.clone());
                d.seqs.push(Some(*seq));
            }
            Arc::make_mut(&mut self.history).push(m);
            self.seqs.push(Some(*seq));
            self.appended.push(*seq);
        }
        Ok(seqs)
    }

    /// Records the durable projection before `history` changes other than by an append of
    /// persisted messages (a no-op when it already diverged).
    pub(crate) fn diverge(&mut self) {
        if self.durable.is_none() {
            self.durable = Some(Durable {
                messages: Arc::clone(&self.history),
                seqs: self.seqs.clone(),
                user_idx: self.deferred_user.as_ref().and_then(|d| d.idx),
            });
        }
    }

    /// A hook replaced the messages: they become the working history, with no known seqs.
    fn replace_history(&mut self, messages: Vec<Message>) {
        self.diverge();
        self.seqs = vec![None; messages.len()];
        self.history = Arc::new(messages);
        if let Some(d) = self.deferred_user.as_mut() {
            d.idx = None;
        }
    }

    /// The window to cache after a successful run: the durable projection, its seqs and the
    /// token it corresponds to. `None` when it cannot be trusted: the run folded (compaction),
    /// another writer appended in between (seqs not contiguous), or the user message has no
    /// seq. Leaves the run's history empty.
    pub(crate) fn take_window(&mut self) -> Option<(WindowToken, crate::window::Window)> {
        if self.compacted || self.deferred_user.is_some() {
            return None;
        }
        let mut next = self.start_token.next_seq;
        for seq in &self.appended {
            if *seq != next {
                return None;
            }
            next += 1;
        }
        let window = match self.durable.take() {
            Some(d) => (d.messages, d.seqs),
            None => (
                std::mem::take(&mut self.history),
                std::mem::take(&mut self.seqs),
            ),
        };
        Some((
            WindowToken {
                next_seq: next,
                last_compact_seq: self.start_token.last_compact_seq,
            },
            window,
        ))
    }

    /// Bookkeeping once the deferred user message got `seq`.
    fn user_committed(&mut self, d: DeferredUser, seq: i64) {
        if seq != self.next_seq {
            tracing::warn!(target: "power_loop::agent", session = %self.sid, expected = self.next_seq, got = seq, "another writer appended to this session during the run");
        }
        self.next_seq = seq + 1;
        if let Some(slot) = d.idx.and_then(|i| self.seqs.get_mut(i)) {
            *slot = Some(seq);
        }
        if let Some(du) = self.durable.as_mut()
            && let Some(slot) = du.user_idx.take().and_then(|i| du.seqs.get_mut(i))
        {
            *slot = Some(seq);
        }
        self.appended.push(seq);
    }

    /// Commits the deferred user message alone (before a write that is not an append, or when
    /// the run ends without another write).
    pub(crate) async fn flush_user(&mut self) -> Result<()> {
        let Some(d) = self.deferred_user.take() else {
            return Ok(());
        };
        let turn = TurnCommit::new(vec![d.msg.clone()]).with_round_index(0);
        let seqs = match self.store.commit_turn(&self.sid, turn).await {
            Ok(seqs) => seqs,
            Err(e) => {
                self.deferred_user = Some(d);
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

    pub(crate) fn stats_delta(&self, rounds: u32) -> StatsDelta {
        let u = &self.usage;
        StatsDelta::new(
            i64::from(rounds),
            u.calls as i64,
            i64::from(self.tool_calls),
            u.prompt_tokens as i64,
            u.completion_tokens as i64,
            u.total_tokens as i64,
        )
    }

    /// Finalize: `session.end` hook, `session_ended`, memory `remember`; builds the result.
    pub(crate) async fn finish(
        &mut self,
        status: RunStatus,
        final_text: String,
        rounds: u32,
        reason: &str,
    ) -> Result<StatefulResult> {
        self.flush_user().await?;
        self.finished = true;
        if let Some(h) = self.hooks() {
            let mut ctx = SessionEndCtx {
                session_id: self.sid.clone(),
                scope: "main".into(),
                reason: reason.to_owned(),
                messages: self.history.to_vec(),
                final_text: Some(final_text.clone()),
            };
            h.run_session_end(&mut ctx).await?;
        }
        self.emit(EventType::SessionEnded, None, || {
            EventPayload::SessionEnded(SessionEndedPayload {
                reason: reason.to_owned(),
            })
        })?;
        if let Some(mem) = self.cfg().memory.clone() {
            let snap = MemorySnapshot {
                session_id: self.sid.clone(),
                messages: self.history.to_vec(),
                final_text: final_text.clone(),
                rounds,
                status: reason.to_owned(),
            };
            if let Err(e) = mem.remember(snap).await {
                let msg: String = e.message().chars().take(500).collect();
                let _ = self.emit(EventType::MemoryFailed, None, || {
                    EventPayload::MemoryFailed(MemoryFailedPayload {
                        phase: "remember".into(),
                        error_type: e.code().as_str().into(),
                        error_message: msg,
                    })
                });
            }
        }
        let mut r = StatefulResult::new(&self.sid, status);
        r.final_text = final_text;
        r.rounds = rounds;
        r.usage = self.usage;
        r.tool_calls = self.tool_calls;
        Ok(r)
    }

    async fn cancelled(&mut self, rounds: u32) -> Result<Step> {
        Ok(Step::Done(Box::new(
            self.finish(
                RunStatus::Cancelled,
                "[cancelled by user]".into(),
                rounds,
                "cancelled",
            )
            .await?,
        )))
    }

    async fn round(&mut self, idx: u32) -> Result<Step> {
        if self.cancel.is_cancelled() {
            return self.cancelled(idx).await;
        }
        if idx > 0 && budget_exceeded(self.cfg().max_tokens_per_run, &self.usage) {
            let budget = self.cfg().max_tokens_per_run.unwrap_or(0);
            let spent = self.usage.spent();
            self.emit(EventType::StatusChanged, Some(idx), || {
                EventPayload::StatusChanged(StatusChanged::BudgetExceeded(BudgetExceededStatus {
                    budget_tokens: budget,
                    spent_tokens: spent,
                    rounds: idx,
                }))
            })?;
            let r = self
                .finish(
                    RunStatus::BudgetExceeded,
                    "[budget_exceeded]".into(),
                    idx,
                    "budget_exceeded",
                )
                .await?;
            return Ok(Step::Done(Box::new(r)));
        }
        if let Some(h) = self.hooks() {
            let mut ctx = RoundStartCtx {
                session_id: self.sid.clone(),
                round_index: idx,
                messages: self.history.to_vec(),
                reason: String::new(),
                directive: RoundStartDirective::Continue,
            };
            h.run_round_start(&mut ctx).await?;
            match ctx.directive {
                RoundStartDirective::Break => {
                    let reason = if ctx.reason.is_empty() {
                        "hook_break".to_owned()
                    } else {
                        ctx.reason
                    };
                    let r = self
                        .finish(RunStatus::Completed, String::new(), idx, &reason)
                        .await?;
                    return Ok(Step::Done(Box::new(r)));
                }
                RoundStartDirective::Skip => return Ok(Step::Next),
                RoundStartDirective::Continue => {
                    if ctx.messages != *self.history {
                        self.replace_history(ctx.messages);
                    }
                }
            }
        }
        self.drain_follow_ups(idx).await?;
        if let Err(e) = self.compaction_slot(idx).await {
            // A cancel during compaction ends the send like a cancel during the model call.
            if e.code() == ErrorCode::Cancelled && self.cancel.is_cancelled() {
                return self.llm_failed(idx, e).await;
            }
            return Err(e);
        }
        self.emit(EventType::RoundStarted, Some(idx), || {
            EventPayload::RoundStarted(RoundStartedPayload { round_index: idx })
        })?;

        // llm.before. The request shares the history and tool vectors (O(1)); hooks get copies.
        let mut messages = Arc::clone(&self.history);
        let mut system_prompt = self.system_prompt.clone();
        let mut tools = Arc::clone(&self.tool_defs);
        let mut max_tokens = self.cfg().max_tokens;
        let mut temperature = self.cfg().temperature;
        let mut short_circuit: Option<LlmResponse> = None;
        if let Some(h) = self.hooks() {
            let mut ctx = LlmBeforeCtx {
                session_id: self.sid.clone(),
                round_index: idx,
                messages: messages.to_vec(),
                system_prompt,
                tools: tools.to_vec(),
                max_tokens: max_tokens.unwrap_or(8000),
                temperature: temperature.unwrap_or(0.0),
                output: None,
                directive: LlmBeforeDirective::Continue,
            };
            h.run_llm_before(&mut ctx).await?;
            match ctx.directive {
                LlmBeforeDirective::Break => {
                    let r = self
                        .finish(RunStatus::Completed, String::new(), idx, "hook_break")
                        .await?;
                    return Ok(Step::Done(Box::new(r)));
                }
                LlmBeforeDirective::ShortCircuit => {
                    short_circuit = Some(ctx.output.take().ok_or_else(|| {
                        Error::new(
                            ErrorCode::HookFailed,
                            "an llm.before hook asked to short-circuit but left no output; set ctx.output to the response to use",
                        )
                    })?);
                }
                LlmBeforeDirective::Continue => {}
            }
            messages = Arc::new(ctx.messages);
            system_prompt = ctx.system_prompt;
            tools = Arc::new(ctx.tools);
            max_tokens = max_tokens.map(|_| ctx.max_tokens);
            temperature = temperature.map(|_| ctx.temperature);
        }
        let response = match short_circuit {
            Some(r) => {
                // Release the shared history so the next append does not copy it.
                drop((messages, tools));
                r
            }
            None => {
                let req = self.request(messages, system_prompt, tools, max_tokens, temperature);
                let resp = match self.call(idx, req).await {
                    Ok(r) => r,
                    Err(e) => return self.llm_failed(idx, e).await,
                };
                match self.hooks() {
                    Some(h) => {
                        let mut ctx = LlmAfterCtx {
                            session_id: self.sid.clone(),
                            round_index: idx,
                            messages: self.history.to_vec(),
                            output: resp,
                            directive: LlmAfterDirective::Continue,
                        };
                        h.run_llm_after(&mut ctx).await?;
                        if ctx.directive == LlmAfterDirective::Break {
                            let text = ctx.output.raw_text.trim().to_owned();
                            self.record_usage(idx, &ctx.output)?;
                            self.append(
                                vec![Message::assistant(text.clone())],
                                Some(idx),
                                Extras {
                                    terminal: true,
                                    ..Default::default()
                                },
                            )
                            .await?;
                            let r = self
                                .finish(RunStatus::Completed, text, idx + 1, "hook_break")
                                .await?;
                            return Ok(Step::Done(Box::new(r)));
                        }
                        ctx.output
                    }
                    None => resp,
                }
            }
        };
        let per_call = self.record_usage(idx, &response)?;
        let raw = if response.raw_text.trim().is_empty() {
            &response.content_text
        } else {
            &response.raw_text
        };
        let text = raw.trim().to_owned();
        let calls = response.tool_calls.clone();
        self.emit(EventType::RoundToolsPresent, Some(idx), || {
            EventPayload::RoundToolsPresent(RoundToolsPresentPayload {
                has_tools: !calls.is_empty(),
            })
        })?;
        if calls.is_empty() {
            self.final_answer(idx, text, per_call).await
        } else {
            self.tool_round(idx, text, calls).await
        }
    }

    fn request(
        &self,
        messages: Arc<Vec<Message>>,
        system_prompt: String,
        tools: Arc<Vec<ToolDefinition>>,
        max_tokens: Option<u32>,
        temperature: Option<f64>,
    ) -> LlmRequest {
        let mut req = LlmRequest::shared(messages);
        if !system_prompt.is_empty() {
            req.system_prompt = Some(system_prompt);
        }
        if !tools.is_empty() {
            req.tool_choice = Some(ToolChoice::Auto);
        }
        req.tools = tools;
        req.max_tokens = max_tokens;
        req.temperature = temperature;
        req.model = self.cfg().model.clone();
        req.response_format = self.cfg().effective_response_format();
        req
    }

    async fn call(&self, idx: u32, req: LlmRequest) -> Result<LlmResponse> {
        let model = self
            .cfg()
            .model
            .clone()
            .unwrap_or_else(|| self.shared.llm.model_name());
        crate::llm_call::call_llm(
            &self.shared.llm,
            self.cfg().retry_policy.as_ref(),
            &self.emitter,
            idx,
            model,
            req,
            &self.cancel,
        )
        .await
    }

    /// Cancellation → `loop_cancelled` + cancelled; give-up codes → degraded; else error path.
    async fn llm_failed(&mut self, idx: u32, e: Error) -> Result<Step> {
        if e.code() == ErrorCode::Cancelled {
            self.emit(EventType::LoopCancelled, Some(idx), || {
                EventPayload::LoopCancelled(LoopCancelledPayload {
                    reason: "cancelled".into(),
                    round_index: Some(idx),
                })
            })?;
            return self.cancelled(idx).await;
        }
        let Some(reason) = is_degraded(&e) else {
            return Err(e);
        };
        let attempts = e
            .detail("attempts")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(1) as u32;
        let (code, msg) = match e.detail("last_error_code").and_then(|v| v.as_str()) {
            Some(c) => (c.to_owned(), e.message().to_owned()),
            None => (e.code().as_str().to_owned(), e.message().to_owned()),
        };
        let short: String = msg.chars().take(200).collect();
        let long: String = msg.chars().take(500).collect();
        self.emit(EventType::LlmDegraded, Some(idx), || {
            EventPayload::LlmDegraded(LlmDegradedPayload {
                reason: reason.into(),
                attempts,
                error_type: code.clone(),
                error_message: long,
            })
        })?;
        let text = format!("[degraded: LLM {reason} — {code}: {short}]");
        self.append(
            vec![Message::assistant(text.clone())],
            Some(idx),
            Extras {
                terminal: true,
                ..Default::default()
            },
        )
        .await?;
        let r = self
            .finish(RunStatus::Degraded, text, idx + 1, "degraded")
            .await?;
        Ok(Step::Done(Box::new(r)))
    }

    fn record_usage(
        &mut self,
        idx: u32,
        resp: &LlmResponse,
    ) -> Result<power_loop_contracts::NormalizedUsage> {
        let n = self.usage.record(&resp.token_usage);
        let max_rounds = self.cfg().max_rounds;
        let u = resp.token_usage;
        self.emit(EventType::StatusChanged, Some(idx), || {
            EventPayload::StatusChanged(StatusChanged::RoundUsage(RoundUsageStatus {
                time_iso: crate::agent_loop::now_iso(),
                round_index: idx,
                round_number: idx + 1,
                max_rounds,
                prompt_tokens: u.prompt_tokens,
                completion_tokens: u.completion_tokens,
                cache_read_tokens: u.prompt_cached_tokens.or(u.cached_tokens),
                reasoning_tokens: u.completion_reasoning_tokens.or(u.reasoning_tokens),
            }))
        })?;
        self.emit(EventType::UsageUpdated, Some(idx), || {
            EventPayload::UsageUpdated(UsageUpdatedPayload {
                usage: usage_map(&n),
            })
        })?;
        Ok(n)
    }

    async fn round_end(
        &mut self,
        idx: u32,
        has_tools: bool,
        text: &str,
        used_todo: bool,
    ) -> Result<()> {
        self.emit(EventType::RoundCompleted, Some(idx), || {
            EventPayload::RoundCompleted(RoundCompletedPayload {
                round_index: idx,
                has_tools,
                used_todo,
            })
        })?;
        if let Some(h) = self.hooks() {
            let mut ctx = RoundEndCtx {
                session_id: self.sid.clone(),
                round_index: idx,
                messages: self.history.to_vec(),
                has_tools,
                response_text: text.to_owned(),
                used_todo,
            };
            h.run_round_end(&mut ctx).await?;
        }
        Ok(())
    }

    async fn final_answer(
        &mut self,
        idx: u32,
        text: String,
        per_call: power_loop_contracts::NormalizedUsage,
    ) -> Result<Step> {
        let assistant = Message::assistant(text.clone());
        // Follow-ups that arrived during the call: keep going instead of ending.
        if let Some(fu) = self.take_follow_ups() {
            self.append(vec![assistant, fu], Some(idx), Extras::default())
                .await?;
            self.round_end(idx, false, &text, false).await?;
            return Ok(Step::Next);
        }
        let mut structured = None;
        let mut structured_error = None;
        if let Some(spec) = self.cfg().structured_output.clone() {
            match spec.parse(&text) {
                Ok(v) => structured = Some(v),
                Err(e) if self.structured_retries_left > 0 && idx + 1 < self.cfg().max_rounds => {
                    self.structured_retries_left -= 1;
                    let fix =
                        Message::user(corrective_message(&e)).with_name("structured_output_retry");
                    self.append(vec![assistant, fix], Some(idx), Extras::default())
                        .await?;
                    self.round_end(idx, false, &text, false).await?;
                    return Ok(Step::Next);
                }
                Err(e) => structured_error = Some(e.message().to_owned()),
            }
        }
        let usage = UsageRecord::new(
            i64::from(idx),
            Some(per_call.prompt_tokens as i64),
            Some(per_call.completion_tokens as i64),
            Some(per_call.total_tokens as i64),
        );
        self.append(
            vec![assistant],
            Some(idx),
            Extras {
                usage: Some(usage),
                terminal: true,
                ..Default::default()
            },
        )
        .await?;
        self.round_end(idx, false, &text, false).await?;
        let mut r = self
            .finish(RunStatus::Completed, text, idx + 1, "completed")
            .await?;
        r.structured = structured;
        r.structured_error = structured_error;
        Ok(Step::Done(Box::new(r)))
    }

    async fn tool_round(&mut self, idx: u32, text: String, calls: Vec<ToolCall>) -> Result<Step> {
        let calls = sanitize_calls(&calls)
            .into_iter()
            .enumerate()
            .map(|(i, mut c)| {
                if c.id.is_empty() {
                    c.id = format!("call_r{idx}_{i}");
                }
                c
            })
            .collect::<Vec<_>>();
        let assistant = Message::assistant_tool_calls(text.clone(), calls.clone());
        let calls_json: Vec<serde_json::Value> = calls
            .iter()
            .filter_map(|c| serde_json::to_value(c).ok())
            .collect();
        let pending = PendingState::from_tool_calls(self.next_seq, i64::from(idx), calls_json);
        self.append(
            vec![assistant],
            Some(idx),
            Extras {
                pending: PendingChange::Set(pending),
                ..Default::default()
            },
        )
        .await?;
        if let Some(h) = self.hooks() {
            let mut ctx = RoundDecideCtx {
                session_id: self.sid.clone(),
                round_index: idx,
                messages: self.history.to_vec(),
                tool_calls: calls.clone(),
                assistant_text: text.clone(),
                output: "[skipped by round_decide hook]".into(),
                directive: RoundDecideDirective::Continue,
            };
            h.run_round_decide(&mut ctx).await?;
            match ctx.directive {
                RoundDecideDirective::Break => {
                    // Unlike the reference, never leave the session stuck pending.
                    self.answer_all(&calls, "[skipped: round.decide hook stopped the run]", idx)
                        .await?;
                    let r = self
                        .finish(RunStatus::Completed, text, idx + 1, "hook_break")
                        .await?;
                    return Ok(Step::Done(Box::new(r)));
                }
                RoundDecideDirective::Skip => {
                    self.answer_all(&calls, &ctx.output, idx).await?;
                    return Ok(Step::Next);
                }
                RoundDecideDirective::Continue => {}
            }
        }
        let Some(registry) = self.registry.clone() else {
            let mut r = self
                .finish(RunStatus::PendingTools, text, idx + 1, "pending_tools")
                .await?;
            r.pending_tool_calls = calls;
            return Ok(Step::Done(Box::new(r)));
        };
        let outcome = self.run_batch(idx, &calls, &registry).await?;
        if let Some(interaction) = outcome.waiting {
            let mut r = self
                .finish(
                    RunStatus::WaitingForInput,
                    text,
                    idx + 1,
                    "waiting_for_input",
                )
                .await?;
            r.pending_tool_calls = calls;
            r.pending_interactions = vec![interaction];
            return Ok(Step::Done(Box::new(r)));
        }
        if outcome.cancelled {
            return self.cancelled(idx + 1).await;
        }
        if let Some(h) = self.hooks() {
            let mut ctx = ToolsBatchAfterCtx {
                session_id: self.sid.clone(),
                round_index: idx,
                messages: self.history.to_vec(),
                used_todo: outcome.used_todo,
            };
            h.run_tools_batch_after(&mut ctx).await?;
        }
        self.round_end(idx, true, &text, outcome.used_todo).await?;
        Ok(Step::Next)
    }

    /// Answers every call with `output` (one transaction; resolves pending).
    pub(crate) async fn answer_all(
        &mut self,
        calls: &[ToolCall],
        output: &str,
        idx: u32,
    ) -> Result<()> {
        let msgs = calls
            .iter()
            .map(|c| Message::tool(c.id.clone(), output).with_name(c.name()))
            .collect();
        self.append(
            msgs,
            Some(idx),
            Extras {
                pending: PendingChange::ResolveToolResults,
                ..Default::default()
            },
        )
        .await
        .map(|_| ())
    }

    fn take_follow_ups(&self) -> Option<Message> {
        let items = self.shared.take_follow_ups(&self.sid);
        let texts: Vec<String> = items
            .iter()
            .map(|i| i.merge_text())
            .filter(|t| !t.is_empty())
            .collect();
        if texts.is_empty() {
            return None;
        }
        Some(
            Message::user(format!("<follow_up>\n{}\n</follow_up>", texts.join("\n\n")))
                .with_name("follow_up"),
        )
    }

    async fn drain_follow_ups(&mut self, idx: u32) -> Result<()> {
        if let Some(m) = self.take_follow_ups() {
            self.append(vec![m], Some(idx), Extras::default()).await?;
        }
        Ok(())
    }

    async fn compaction_slot(&mut self, idx: u32) -> Result<()> {
        crate::compaction::pipeline::run_microcompact(self);
        let Some(compactor) = self.cfg().compactor.clone() else {
            return Ok(());
        };
        // The compactor plans by seq: give it the user message as a persisted row.
        self.flush_user().await?;
        if let Some(h) = self.hooks() {
            let mut ctx = CompactBeforeCtx {
                session_id: self.sid.clone(),
                round_index: idx,
                messages: self.history.to_vec(),
                directive: CompactBeforeDirective::Continue,
            };
            h.run_compact_before(&mut ctx).await?;
            if ctx.directive == CompactBeforeDirective::Skip {
                return Ok(());
            }
        }
        let plan = compactor
            .maybe_compact(CompactRequest {
                history: &self.history,
                seqs: &self.seqs,
                llm: Arc::clone(&self.shared.llm),
                max_tokens: self.cfg().max_tokens.unwrap_or(8000),
                round_index: idx,
                model: self.cfg().model.as_deref(),
                cancel: self.cancel.clone(),
            })
            .await;
        let plan = match plan {
            Err(e) if e.code() == ErrorCode::CompactionFailed => {
                return crate::compaction::pipeline::compaction_failed(self, idx, &e);
            }
            // Cancelled while the compactor worked: record nothing.
            Ok(Some(_)) if self.cancel.is_cancelled() => {
                return Err(Error::cancelled("during context compaction"));
            }
            other => other?,
        };
        let Some(plan) = plan else {
            return Ok(());
        };
        if let Some(u) = &plan.usage {
            self.usage.record(u);
        }
        let mut idxs = plan.fold_indices.clone();
        idxs.sort_unstable();
        idxs.dedup();
        let fold_seqs: Option<Vec<i64>> = idxs
            .iter()
            .map(|i| self.seqs.get(*i).copied().flatten())
            .collect();
        let (Some(fold_seqs), Some(&first)) = (fold_seqs, idxs.first()) else {
            tracing::warn!(target: "power_loop::agent", session = %self.sid, "compaction plan folds non-persisted messages; skipped");
            return Ok(());
        };
        self.emit(EventType::StatusChanged, Some(idx), || {
            EventPayload::StatusChanged(StatusChanged::AutoCompact(AutoCompactStatus {
                phase: "started".into(),
                round_index: idx,
                trigger: plan.trigger.clone(),
                before_tokens: plan.before_tokens,
                after_tokens: plan.after_tokens,
            }))
        })?;
        let before = self.history.len();
        let req = CompactionRequest::fold(fold_seqs, plan.summary.clone())
            .with_tokens(
                Some(plan.before_tokens as i64),
                Some(plan.after_tokens as i64),
            )
            .with_round_index(i64::from(idx));
        let (compact_seq, note_seq) = self.store.record_compaction(&self.sid, req).await?;
        // A fold is never cached (`compacted`), so no durable copy is taken here.
        let history = Arc::make_mut(&mut self.history);
        for i in idxs.iter().rev() {
            history.remove(*i);
            self.seqs.remove(*i);
        }
        let note = Message::system(plan.summary.clone()).with_name("compact_note");
        history.insert(first, note);
        self.seqs.insert(first, Some(note_seq));
        self.last_compact_seq = compact_seq;
        self.next_seq = note_seq + 1;
        self.compacted = true;
        if let Some(h) = self.hooks() {
            let mut ctx = CompactAfterCtx {
                session_id: self.sid.clone(),
                round_index: idx,
                messages: self.history.to_vec(),
                messages_before_count: before,
                messages_after_count: self.history.len(),
            };
            h.run_compact_after(&mut ctx).await?;
        }
        Ok(())
    }

    /// The round cap (spec §2.7, improved): the limit message and the summary reply are both
    /// persisted, no tools are offered, usage is counted.
    async fn round_limit(&mut self) -> Result<StatefulResult> {
        let max = self.cfg().max_rounds;
        let note = format!(
            "You have reached the maximum of {max} rounds for this request. Do not call tools. Summarize what was done and what remains."
        );
        self.append(vec![Message::user(note)], None, Extras::default())
            .await?;
        self.emit(EventType::StatusChanged, None, || {
            EventPayload::StatusChanged(StatusChanged::HitRoundLimit(HitRoundLimitStatus {
                max_rounds: max,
            }))
        })?;
        if self.cancel.is_cancelled() {
            return self
                .finish(
                    RunStatus::Cancelled,
                    "[cancelled by user]".into(),
                    max,
                    "cancelled",
                )
                .await;
        }
        let req = self.request(
            Arc::clone(&self.history),
            self.system_prompt.clone(),
            Arc::default(),
            self.cfg().max_tokens,
            self.cfg().temperature,
        );
        let resp = match self.call(max, req).await {
            Ok(r) => r,
            Err(e) => {
                return match self.llm_failed(max, e).await? {
                    Step::Done(mut r) => {
                        r.rounds = max;
                        Ok(*r)
                    }
                    Step::Next => Err(Error::internal("round-limit call ended without a result")),
                };
            }
        };
        let n = self.usage.record(&resp.token_usage);
        self.emit(EventType::UsageUpdated, None, || {
            EventPayload::UsageUpdated(UsageUpdatedPayload {
                usage: usage_map(&n),
            })
        })?;
        let summary = resp.raw_text.trim().to_owned();
        self.append(
            vec![Message::assistant(summary.clone())],
            Some(max),
            Extras {
                terminal: true,
                ..Default::default()
            },
        )
        .await?;
        self.finish(
            RunStatus::HitRoundLimit,
            format!("[hit_round_limit]\n{summary}"),
            max,
            "hit_round_limit",
        )
        .await
    }

    /// Records a human-input interaction in the pending state.
    pub(crate) async fn record_interaction(
        &mut self,
        interaction: PendingInteraction,
        idx: u32,
    ) -> Result<()> {
        self.flush_user().await?;
        let i2 = interaction.clone();
        let r = i64::from(idx);
        self.store
            .update_pending(&self.sid, move |cur| {
                let mut p = cur.unwrap_or_default();
                p.pending_interactions.push(i2);
                p.round_index = r;
                Some(p)
            })
            .await?;
        Ok(())
    }
}
