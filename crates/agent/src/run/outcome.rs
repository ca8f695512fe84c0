//! Terminal outcomes of a run: finishing (session-end hook, `session_ended`, memory), cancellation,
//! a failed model call (cancelled, degraded or the error path), the round limit, answering every
//! call of a batch, and recording a human-input interaction.

use std::sync::Arc;

use power_loop_contracts::event::*;
use power_loop_contracts::hook::SessionEndCtx;
use power_loop_contracts::{Error, ErrorCode, EventPayload, Message, Result, Role, ToolCall};
use power_loop_store::PendingInteraction;

use super::state::{Extras, Run, Step};
use crate::budget::usage_map;
use crate::memory::MemorySnapshot;
use crate::result::{RunStatus, StatefulResult};

/// The final text of a cancelled run, and the assistant turn recorded when the cancelled turn
/// had no answer yet.
pub(super) const CANCELLED_TEXT: &str = "[cancelled by user]";

/// Why a failed model call degrades the run instead of failing it, if it does.
pub(super) fn is_degraded(e: &Error) -> Option<&'static str> {
    match e.code() {
        ErrorCode::LlmRetryExhausted => Some("retry_exhausted"),
        ErrorCode::LlmTimeout => Some("timeout"),
        // A retryable model failure that reached the loop: no retry layer, or it gave up.
        c if c.is_retryable() && c.as_str().starts_with("llm.") => Some("retry_exhausted"),
        _ => None,
    }
}

impl Run {
    /// Persists `text` as the run's last assistant message of round `idx` (the terminal write)
    /// and finishes the run with `status` after `idx + 1` rounds.
    pub(super) async fn end_with_answer(
        &mut self,
        status: RunStatus,
        text: String,
        idx: u32,
        reason: &str,
    ) -> Result<Step> {
        let extras = Extras {
            terminal: true,
            ..Default::default()
        };
        self.append(vec![Message::assistant(text.clone())], Some(idx), extras)
            .await?;
        let r = self.finish(status, text, idx + 1, reason).await?;
        Ok(Step::Done(Box::new(r)))
    }

    /// Finalize: `session.end` hook, `session_ended`, memory `remember`; builds the result.
    pub(super) async fn finish(
        &mut self,
        status: RunStatus,
        final_text: String,
        rounds: u32,
        reason: &str,
    ) -> Result<StatefulResult> {
        self.flush_user().await?;
        self.phase.finished = true;
        if let Some(h) = self.hooks() {
            let mut ctx = SessionEndCtx {
                session_id: self.sid.clone(),
                scope: "main".into(),
                reason: reason.to_owned(),
                messages: self.window.history.to_vec(),
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
                messages: self.window.history.to_vec(),
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
        r.usage = self.tally.usage;
        r.tool_calls = self.tally.tool_calls;
        Ok(r)
    }

    /// Ends the run `cancelled` after `rounds` rounds: event `loop_cancelled` (the reason and
    /// the round it happened in, `None` for the round-limit call) then finalize.
    pub(super) async fn cancelled(&mut self, rounds: u32, round: Option<u32>) -> Result<Step> {
        Ok(Step::Done(Box::new(
            self.cancelled_result(rounds, round).await?,
        )))
    }

    /// [`cancelled`](Self::cancelled), returning the result.
    pub(super) async fn cancelled_result(
        &mut self,
        rounds: u32,
        round: Option<u32>,
    ) -> Result<StatefulResult> {
        let reason = self.cancel_reason();
        // A turn cancelled before any answer would leave the user's message unanswered, and the
        // next send would put two user turns in a row (which the Anthropic wire joins into one
        // message): record the cancellation as the assistant's turn.
        if self
            .window
            .history
            .last()
            .is_some_and(|m| m.role == Role::User)
        {
            let marker = Message::assistant(CANCELLED_TEXT);
            self.append(vec![marker], round, Extras::default()).await?;
        }
        let r2 = reason.clone();
        self.emit(EventType::LoopCancelled, round, || {
            EventPayload::LoopCancelled(LoopCancelledPayload {
                reason: r2,
                round_index: round,
            })
        })?;
        let mut r = self
            .finish(
                RunStatus::Cancelled,
                CANCELLED_TEXT.into(),
                rounds,
                "cancelled",
            )
            .await?;
        r.cancel_reason = Some(reason);
        Ok(r)
    }

    /// Cancellation → `loop_cancelled` + cancelled; give-up codes → degraded; else error path.
    pub(super) async fn llm_failed(&mut self, idx: u32, e: Error) -> Result<Step> {
        if e.code() == ErrorCode::Cancelled {
            // The round-limit call has no round of its own.
            let round = (idx < self.cfg().max_rounds).then_some(idx);
            return self.cancelled(idx, round).await;
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
        self.end_with_answer(RunStatus::Degraded, text, idx, "degraded")
            .await
    }

    /// The round cap (improved): the limit message and the summary reply are both
    /// persisted, no tools are offered, usage is counted.
    pub(super) async fn round_limit(&mut self) -> Result<StatefulResult> {
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
            return self.cancelled_result(max, None).await;
        }
        let req = self.request(
            Arc::clone(&self.window.history),
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
        let n = self.tally.usage.record(&resp.token_usage);
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

    /// Answers every call with `output` (one transaction; resolves pending).
    pub(super) async fn answer_all(
        &mut self,
        calls: &[ToolCall],
        output: &str,
        idx: u32,
    ) -> Result<()> {
        let msgs = calls
            .iter()
            .map(|c| Message::tool(c.id.clone(), output).with_name(c.name()))
            .collect();
        self.append_tool_results(msgs, idx).await
    }

    /// Records a human-input interaction in the pending state.
    pub(super) async fn record_interaction(
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
