//! Pipeline glue of the compaction slot (called from the round pipeline): microcompaction of the
//! run's history and the soft-failure path of a summary call.

use power_loop_contracts::event::{AutoCompactStatus, EventType, StatusChanged};
use power_loop_contracts::{Error, ErrorCode, EventPayload, Result};

use std::sync::Arc;

use super::micro::{MicroConfig, microcompact, would_rewrite};
use crate::budget::estimate_tokens;
use crate::run::Run;

/// Microcompacts the run's in-memory history (store rows stay as they are). The history is
/// only touched (and its durable projection set aside first) when something gets rewritten.
pub(crate) fn run_microcompact(run: &mut Run) {
    let cfg = MicroConfig::from_env(run.shared.env.home_dir.as_deref());
    if !would_rewrite(&run.history, &cfg) {
        return;
    }
    run.diverge();
    let history: &mut Vec<_> = Arc::make_mut(&mut run.history);
    let n = microcompact(history, &run.seqs, &run.sid, &cfg);
    if n > 0 {
        tracing::debug!(target: "power_loop::agent", session = %run.sid, spilled = n, "microcompacted large tool outputs");
    }
}

/// A failed summary call: logs it, emits `status_changed{kind:auto_compact, phase:failed}` and
/// lets the round go on with the unfolded history. The event's `trigger` is `summary_timeout`
/// when the summary call timed out (error detail `cause_code` = `llm.timeout`), else
/// `summary_failed`.
pub(crate) fn compaction_failed(run: &Run, idx: u32, e: &Error) -> Result<()> {
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
    let tokens = estimate_tokens(&run.history);
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
