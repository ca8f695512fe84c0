//! The compaction slot of a round (before the model call): microcompaction of the run's history,
//! then the compactor's plan (hooks, the fold recorded in the store, the history rewritten, the
//! `auto_compact` `started` and `completed` events), and the soft-failure path of a summary call.
//! The compactor gets the loop's model instrumented like a main call (`llm_call_*` events) and a
//! [`CompactionContext`].

use std::sync::Arc;

use power_loop_contracts::event::{AutoCompactStatus, EventType, StatusChanged};
use power_loop_contracts::hook::{CompactAfterCtx, CompactBeforeCtx, CompactBeforeDirective};
use power_loop_contracts::{Error, ErrorCode, EventPayload, Message, Result};
use power_loop_store::CompactionRequest;

use super::state::Run;
use super::summary_llm;
use crate::budget::estimate_tokens;
use crate::compaction::{
    CompactRequest, CompactionContext, MicroConfig, microcompact, would_rewrite,
};

/// Microcompacts the run's in-memory history (store rows stay as they are). The history is
/// only touched (and its durable projection set aside first) when something gets rewritten.
fn run_microcompact(run: &mut Run) {
    let cfg = MicroConfig::from_env(run.ctx.env.home_dir.as_deref());
    if !would_rewrite(&run.window.history, &cfg) {
        return;
    }
    run.diverge();
    let history: &mut Vec<_> = Arc::make_mut(&mut run.window.history);
    let n = microcompact(history, &run.window.seqs, &run.sid, &cfg);
    if n > 0 {
        tracing::debug!(target: "power_loop::agent", session = %run.sid, spilled = n, "microcompacted large tool outputs");
    }
}

/// A failed summary call: logs it, emits `status_changed{kind:auto_compact, phase:failed}` and
/// lets the round go on with the unfolded history. The event's `trigger` is `summary_timeout`
/// when the summary call timed out (error detail `cause_code` = `llm.timeout`), else
/// `summary_failed`.
fn compaction_failed(run: &Run, idx: u32, e: &Error) -> Result<()> {
    let cause = e
        .detail("cause_code")
        .and_then(|v| v.as_str())
        .unwrap_or("");
    tracing::warn!(target: "power_loop::agent", session = %run.sid, round = idx, cause, error = %e.message(), "context compaction failed; continuing without folding");
    let trigger = if cause == ErrorCode::LlmTimeout.as_str() {
        "summary_timeout"
    } else {
        "summary_failed"
    };
    let tokens = estimate_tokens(&run.window.history);
    run.emitter
        .emit(EventType::StatusChanged, Some(idx), false, || {
            EventPayload::StatusChanged(StatusChanged::AutoCompact(AutoCompactStatus {
                phase: "failed".into(),
                round_index: idx,
                trigger: trigger.into(),
                before_tokens: tokens,
                after_tokens: tokens,
            }))
        })
}

impl Run {
    pub(super) async fn compaction_slot(&mut self, idx: u32) -> Result<()> {
        run_microcompact(self);
        let Some(compactor) = self.cfg().compactor.clone() else {
            return Ok(());
        };
        // The compactor plans by seq: give it the user message as a persisted row.
        self.flush_user().await?;
        if let Some(h) = self.hooks() {
            let mut ctx = CompactBeforeCtx {
                session_id: self.sid.clone(),
                round_index: idx,
                messages: self.window.history.to_vec(),
                directive: CompactBeforeDirective::Continue,
            };
            h.run_compact_before(&mut ctx).await?;
            if ctx.directive == CompactBeforeDirective::Skip {
                return Ok(());
            }
        }
        let instrument =
            summary_llm::instrument(self.emitter.clone(), idx, self.cfg().model.clone());
        let context = CompactionContext::for_session(self.store.clone(), self.sid.clone())
            .with_memory(self.cfg().memory.clone())
            .with_round_index(idx)
            .with_instrument(Arc::clone(&instrument));
        let plan = compactor
            .maybe_compact(CompactRequest {
                history: &self.window.history,
                seqs: &self.window.seqs,
                llm: instrument(Arc::clone(&self.ctx.llm)),
                max_tokens: self.cfg().max_tokens.unwrap_or(8000),
                round_index: idx,
                model: self.cfg().model.as_deref(),
                cancel: self.cancel.clone(),
                context,
            })
            .await;
        let plan = match plan {
            Err(e) if e.code() == ErrorCode::CompactionFailed => {
                return compaction_failed(self, idx, &e);
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
            self.tally.usage.record(u);
        }
        let mut idxs = plan.fold_indices.clone();
        idxs.sort_unstable();
        idxs.dedup();
        let fold_seqs: Option<Vec<i64>> = idxs
            .iter()
            .map(|i| self.window.seqs.get(*i).copied().flatten())
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
        let before = self.window.history.len();
        let req = CompactionRequest::fold(fold_seqs, plan.summary.clone())
            .with_tokens(
                Some(plan.before_tokens as i64),
                Some(plan.after_tokens as i64),
            )
            .with_round_index(i64::from(idx));
        let (compact_seq, note_seq) = self.store.record_compaction(&self.sid, req).await?;
        // A fold is never cached (`compacted`), so no durable copy is taken here.
        let history = Arc::make_mut(&mut self.window.history);
        for i in idxs.iter().rev() {
            history.remove(*i);
            self.window.seqs.remove(*i);
        }
        let note = Message::system(plan.summary.clone()).with_name("compact_note");
        history.insert(first, note);
        self.window.seqs.insert(first, Some(note_seq));
        self.window.last_compact_seq = compact_seq;
        self.window.next_seq = note_seq + 1;
        self.window.compacted = true;
        let after_tokens = estimate_tokens(&self.window.history);
        self.emit(EventType::StatusChanged, Some(idx), || {
            EventPayload::StatusChanged(StatusChanged::AutoCompact(AutoCompactStatus {
                phase: "completed".into(),
                round_index: idx,
                trigger: plan.trigger.clone(),
                before_tokens: plan.before_tokens,
                after_tokens,
            }))
        })?;
        if let Some(h) = self.hooks() {
            let mut ctx = CompactAfterCtx {
                session_id: self.sid.clone(),
                round_index: idx,
                messages: self.window.history.to_vec(),
                messages_before_count: before,
                messages_after_count: self.window.history.len(),
            };
            h.run_compact_after(&mut ctx).await?;
        }
        Ok(())
    }
}
