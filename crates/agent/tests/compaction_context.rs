//! Compaction as a model call like any other: the summary goes through the loop's retry layer and
//! emits `llm_call_*` (and `llm_retry_attempted`) events, `auto_compact` reports `completed`, and
//! a custom compactor gets a `CompactionContext` (memory, the stored messages it folds).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use power_loop_agent::{
    AgentLoopConfig, CompactRequest, CompactionPlan, Compactor, DefaultCompactor, MemoryProvider,
    MemorySnapshot, NewSessionOptions, RunStatus, StatefulAgentLoop,
};
use power_loop_contracts::{
    AgentEvent, BoxFuture, EventPayload, LlmRequest, Message, Result, StatusChanged,
};
use power_loop_llm::{LlmStack, RetryPolicy, ScriptedLlm, Step};
use support::*;

type Log = Arc<Mutex<Vec<AgentEvent>>>;

/// `(call_id, attempt, success)` of every `llm_call_completed`.
fn calls(log: &Log) -> Vec<(String, u32, bool)> {
    log.lock()
        .unwrap()
        .iter()
        .filter_map(|e| match &e.payload {
            EventPayload::LlmCallCompleted(p) => Some((p.call_id.clone(), p.attempt, p.success)),
            _ => None,
        })
        .collect()
}

fn auto_compact_phases(log: &Log) -> Vec<String> {
    log.lock()
        .unwrap()
        .iter()
        .filter_map(|e| match &e.payload {
            EventPayload::StatusChanged(StatusChanged::AutoCompact(a)) => Some(a.phase.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn the_summary_call_is_retried_and_evented_and_completed_is_reported() {
    // Calls in order: send 1 answer; send 2: summary (rate limited), summary, answer.
    let raw = ScriptedLlm::new()
        .text("first answer")
        .step(Step::rate_limited(Duration::from_millis(1)))
        .then_text("<summary>the user said hello</summary>")
        .then_text("second answer");
    let llm = LlmStack::new()
        .retry(
            RetryPolicy::new()
                .with_max_attempts(3)
                .with_base_delay(Duration::from_millis(1)),
        )
        .wrap(Arc::new(raw.clone()));
    let compactor = DefaultCompactor::new()
        .with_absolute_threshold(Some(1))
        .with_keep_last_n(1);
    let (store, _d) = sqlite_store().await;
    let lp = StatefulAgentLoop::builder(llm)
        .store(store.clone())
        .config(AgentLoopConfig::default().with_compactor(Some(Arc::new(compactor))))
        .build()
        .unwrap();
    let sid = lp.new_session(NewSessionOptions::default()).await.unwrap();
    lp.send(&sid, "hello").await.unwrap();
    let log = record(lp.event_bus());
    let r = lp.send(&sid, "and now?").await.unwrap();
    assert_eq!(r.status, RunStatus::Completed);
    assert_eq!(r.final_text, "second answer");
    assert_eq!(raw.call_count(), 4);
    assert_eq!(
        calls(&log),
        vec![
            ("r0.compact.a1".to_owned(), 1, false),
            ("r0.compact.a2".to_owned(), 2, true),
            ("r0.a1".to_owned(), 1, true),
        ]
    );
    let n = names(&log);
    let retry = n.iter().position(|x| x == "llm_retry_attempted").unwrap();
    let started = n
        .iter()
        .position(|x| x == "status_changed(auto_compact)")
        .unwrap();
    assert!(retry < started, "{n:?}");
    // The summary call has no stream events of its own: one stream, the answer's.
    assert_eq!(n.iter().filter(|x| *x == "stream_started").count(), 1);
    assert_eq!(auto_compact_phases(&log), vec!["started", "completed"]);
    assert_eq!(store.list_compactions(&sid).await.unwrap().len(), 1);
}

/// Folds every persisted message but the last, after stashing the originals (fetched from the
/// store by seq) into the context's memory; summarizes with the request's model.
struct StashingCompactor;

impl Compactor for StashingCompactor {
    fn maybe_compact<'a>(
        &'a self,
        req: CompactRequest<'a>,
    ) -> BoxFuture<'a, Result<Option<CompactionPlan>>> {
        Box::pin(async move {
            let persisted: Vec<(usize, i64)> = req
                .seqs
                .iter()
                .enumerate()
                .filter_map(|(i, s)| s.map(|s| (i, s)))
                .collect();
            if persisted.len() < 3 {
                return Ok(None);
            }
            let fold = &persisted[..persisted.len() - 1];
            let (from, to) = (fold[0].1, fold[fold.len() - 1].1);
            let ctx = &req.context;
            assert!(ctx.can_fetch());
            assert_eq!(ctx.round_index, req.round_index);
            let rows = ctx
                .fetch_messages(from, to)
                .await?
                .expect("a store is attached");
            let memory = ctx.memory.clone().expect("the loop's memory");
            let mut snap = MemorySnapshot::default();
            snap.session_id = ctx.session_id.clone().unwrap_or_default();
            snap.messages = rows
                .iter()
                .map(|r| Message::user(r.content.clone().unwrap_or_default()))
                .collect();
            memory.remember(snap).await?;
            let resp = req
                .llm
                .complete(LlmRequest::new(vec![Message::user("summarize")]))
                .await?;
            Ok(Some(CompactionPlan::new(
                fold.iter().map(|(i, _)| *i).collect(),
                resp.raw_text,
            )))
        })
    }
}

#[tokio::test]
async fn a_custom_compactor_reads_the_folded_rows_and_stashes_them_in_memory() {
    let llm = ScriptedLlm::new()
        .text("answer one")
        .then_text("folded summary")
        .then_text("answer two");
    let stash = Arc::new(TestMemory::default());
    let cfg = AgentLoopConfig::default()
        .with_memory(Some(stash.clone() as Arc<dyn MemoryProvider>))
        .with_compactor(Some(Arc::new(StashingCompactor)));
    let (store, _d) = sqlite_store().await;
    let lp = StatefulAgentLoop::builder(Arc::new(llm))
        .store(store.clone())
        .config(cfg)
        .build()
        .unwrap();
    let sid = lp.new_session(NewSessionOptions::default()).await.unwrap();
    lp.send(&sid, "question one").await.unwrap();
    let log = record(lp.event_bus());
    let r = lp.send(&sid, "question two").await.unwrap();
    assert_eq!(r.final_text, "answer two");
    // The stash: first the compactor's (rows 1-2, fetched by seq), then the runs' own remember.
    let snaps = stash.remembered.lock().unwrap().clone();
    let texts: Vec<String> = snaps[1].messages.iter().map(Message::text).collect();
    assert_eq!(texts, vec!["question one", "answer one"]);
    assert_eq!(snaps[1].session_id, sid);
    // The compactor's own call was evented like the loop's.
    assert_eq!(calls(&log)[0], ("r0.compact.a1".to_owned(), 1, true));
    let active = lp.get_messages(&sid, false).await.unwrap();
    assert_eq!(active[0].text(), "folded summary");
    assert_eq!(active[0].name.as_deref(), Some("compact_note"));
}

#[tokio::test]
async fn an_empty_context_cannot_fetch() {
    let ctx = power_loop_agent::CompactionContext::new();
    assert!(!ctx.can_fetch());
    assert!(ctx.fetch_messages(1, 10).await.unwrap().is_none());
}
