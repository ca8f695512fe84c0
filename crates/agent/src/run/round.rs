//! The round: session start (hooks, memory recall, pending calls of a resume), then per round the
//! start hooks, follow-ups, the compaction slot, the model call and what its answer leads to (a
//! final answer or a batch of tool calls).

use std::sync::Arc;

use power_loop_contracts::event::*;
use power_loop_contracts::hook::*;
use power_loop_contracts::{
    Error, ErrorCode, EventPayload, LlmResponse, Message, NormalizedUsage, Result, Role, ToolCall,
};
use power_loop_store::{PendingChange, PendingState, UsageRecord};

use super::state::{Extras, Run, Step};
use crate::budget::budget_exceeded;
use crate::convert::sanitize_calls;
use crate::memory::tag_as_memory;
use crate::result::{RunStatus, StatefulResult};
use crate::structured::corrective_message;

impl Run {
    /// Runs the pipeline; on an unexpected error: `agent_error`, finalize `error`, re-raise.
    pub(super) async fn run(&mut self) -> Result<StatefulResult> {
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
                if self.phase.started
                    && !self.phase.finished
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

    pub(super) async fn run_inner(&mut self) -> Result<StatefulResult> {
        if let Some(h) = self.hooks() {
            let mut ctx = SessionStartCtx {
                session_id: self.sid.clone(),
                scope: "main".into(),
                messages: self.window.history.to_vec(),
            };
            h.run_session_start(&mut ctx).await?;
            if ctx.messages != *self.window.history {
                self.replace_history(ctx.messages);
            }
        }
        self.emit(EventType::SessionStarted, None, || {
            EventPayload::SessionStarted(SessionStartedPayload {
                scope: "main".into(),
            })
        })?;
        self.phase.started = true;
        self.recall_memory().await?;
        if let Some((calls, round)) = self.phase.pending_calls.take()
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

    pub(super) async fn recall_memory(&mut self) -> Result<()> {
        let Some(mem) = self.cfg().memory.clone() else {
            return Ok(());
        };
        let budget = self.cfg().memory_budget_tokens;
        let items = match mem.recall(&self.sid, &self.window.history, budget).await {
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
            .window
            .history
            .iter()
            .take_while(|m| m.role == Role::System)
            .count();
        if !tagged.is_empty() {
            self.diverge();
            let history = Arc::make_mut(&mut self.window.history);
            for (i, m) in tagged.into_iter().enumerate() {
                history.insert(at + i, m);
                self.window.seqs.insert(at + i, None);
            }
        }
        if let Some(d) = self.window.deferred_user.as_mut()
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

    pub(super) async fn round(&mut self, idx: u32) -> Result<Step> {
        if self.cancel.is_cancelled() {
            return self.cancelled(idx, Some(idx)).await;
        }
        if idx > 0 && budget_exceeded(self.cfg().max_tokens_per_run, &self.tally.usage) {
            let budget = self.cfg().max_tokens_per_run.unwrap_or(0);
            let spent = self.tally.usage.spent();
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
                messages: self.window.history.to_vec(),
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
                    if ctx.messages != *self.window.history {
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

        // Runtime projections go after the history, for this request only.
        let runtime = self.runtime_messages(idx).await;
        // llm.before. The request shares the history and tool vectors (O(1)); hooks get copies.
        let mut messages = if runtime.is_empty() {
            Arc::clone(&self.window.history)
        } else {
            let mut m = self.window.history.to_vec();
            m.extend(runtime);
            Arc::new(m)
        };
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
                            messages: self.window.history.to_vec(),
                            output: resp,
                            directive: LlmAfterDirective::Continue,
                        };
                        h.run_llm_after(&mut ctx).await?;
                        if ctx.directive == LlmAfterDirective::Break {
                            let text = ctx.output.raw_text.trim().to_owned();
                            self.record_usage(idx, &ctx.output)?;
                            return self
                                .end_with_answer(RunStatus::Completed, text, idx, "hook_break")
                                .await;
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

    pub(super) async fn final_answer(
        &mut self,
        idx: u32,
        text: String,
        per_call: NormalizedUsage,
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
                Err(e)
                    if self.phase.structured_retries_left > 0
                        && idx + 1 < self.cfg().max_rounds =>
                {
                    self.phase.structured_retries_left -= 1;
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

    pub(super) async fn tool_round(
        &mut self,
        idx: u32,
        text: String,
        calls: Vec<ToolCall>,
    ) -> Result<Step> {
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
        // The assistant row's seq: a deferred user message is committed first, in the same
        // transaction, and takes `next_seq`.
        let assistant_seq = self.window.next_seq + i64::from(self.window.deferred_user.is_some());
        let pending = PendingState::from_tool_calls(assistant_seq, i64::from(idx), calls_json);
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
                messages: self.window.history.to_vec(),
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
            return self.cancelled(idx + 1, Some(idx)).await;
        }
        if let Some(h) = self.hooks() {
            let mut ctx = ToolsBatchAfterCtx {
                session_id: self.sid.clone(),
                round_index: idx,
                messages: self.window.history.to_vec(),
                used_todo: outcome.used_todo,
            };
            h.run_tools_batch_after(&mut ctx).await?;
        }
        self.round_end(idx, true, &text, outcome.used_todo).await?;
        Ok(Step::Next)
    }

    pub(super) async fn round_end(
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
                messages: self.window.history.to_vec(),
                has_tools,
                response_text: text.to_owned(),
                used_todo,
            };
            h.run_round_end(&mut ctx).await?;
        }
        Ok(())
    }

    pub(super) fn take_follow_ups(&self) -> Option<Message> {
        let items = self.ctx.follow_ups.take(&self.sid);
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

    pub(super) async fn drain_follow_ups(&mut self, idx: u32) -> Result<()> {
        if let Some(m) = self.take_follow_ups() {
            self.append(vec![m], Some(idx), Extras::default()).await?;
        }
        Ok(())
    }
}
