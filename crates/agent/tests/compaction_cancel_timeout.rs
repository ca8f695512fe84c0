//! The compaction summary call honours the send's cancellation token and the compactor's
//! `summary_timeout`: a cancel while summarising ends the send as cancelled (like a cancel
//! during the model call) and a hung summary model fails the compaction softly (the round goes
//! on unfolded); either way the store records no compaction, and the session stays usable.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use power_loop_agent::{
    AgentLoopConfig, DefaultCompactor, NewSessionOptions, RunStatus, SendOptions, StatefulAgentLoop,
};
use power_loop_contracts::{
    BoxFuture, CancellationToken, EventPayload, LlmRequest, LlmService, LlmStream, Result,
    StatusChanged,
};
use power_loop_llm::{ScriptedLlm, Step};
use power_loop_store::{MessageState, SessionStore};
use support::*;
use tokio::sync::Notify;

/// Generous bound so a regression fails instead of hanging the suite; not a timing assertion.
const BOUND: Duration = Duration::from_secs(30);

const ANSWER: u8 = 0;
/// Waits 10 minutes before answering, through the request's cancellation token.
const SLOW: u8 = 1;
/// Never answers and ignores the cancellation token.
const HUNG: u8 = 2;

/// The summary model: answers, is slow (honouring the token) or hangs (ignoring it); signals
/// `seen` whenever a summary call reaches it in a non-answering mode.
struct Summarizer {
    mode: AtomicU8,
    seen: Notify,
    answer: ScriptedLlm,
    slow: ScriptedLlm,
}

impl Summarizer {
    fn new(mode: u8) -> Arc<Self> {
        Arc::new(Summarizer {
            mode: AtomicU8::new(mode),
            seen: Notify::new(),
            answer: ScriptedLlm::from_fn(|_| Step::text("<summary>earlier turns</summary>")),
            slow: ScriptedLlm::from_fn(|_| {
                Step::text("<summary>too late</summary>").with_delay(Duration::from_secs(600))
            }),
        })
    }
}

impl LlmService for Summarizer {
    fn stream(&self, request: LlmRequest) -> BoxFuture<'_, Result<LlmStream>> {
        match self.mode.load(Ordering::SeqCst) {
            ANSWER => self.answer.stream(request),
            SLOW => {
                self.seen.notify_one();
                self.slow.stream(request)
            }
            _ => {
                self.seen.notify_one();
                Box::pin(std::future::pending())
            }
        }
    }
    fn model_name(&self) -> String {
        "summarizer".into()
    }
}

async fn build(
    main: Arc<ScriptedLlm>,
    summary: Arc<Summarizer>,
    timeout: Option<Duration>,
    store: SessionStore,
) -> StatefulAgentLoop {
    let compactor = DefaultCompactor::new()
        .with_absolute_threshold(Some(1))
        .with_keep_last_n(1)
        .with_summary_llm(summary)
        .with_summary_timeout(timeout);
    let cfg = AgentLoopConfig::default().with_compactor(Some(Arc::new(compactor)));
    StatefulAgentLoop::builder(main)
        .store(store)
        .config(cfg)
        .build()
        .unwrap()
}

/// Every stored message as (seq, role, content, state).
async fn rows(store: &SessionStore, sid: &str) -> Vec<(i64, String, String, MessageState)> {
    store
        .load_all_messages(sid)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.seq, r.role, r.content.unwrap_or_default(), r.state))
        .collect()
}

/// The `auto_compact` events as (phase, trigger).
fn auto_compacts(
    log: &Arc<std::sync::Mutex<Vec<power_loop_contracts::AgentEvent>>>,
) -> Vec<(String, String)> {
    log.lock()
        .unwrap()
        .iter()
        .filter_map(|e| match &e.payload {
            EventPayload::StatusChanged(StatusChanged::AutoCompact(a)) => {
                Some((a.phase.clone(), a.trigger.clone()))
            }
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn cancel_during_the_summary_call_ends_the_send_cancelled_and_records_nothing() {
    // SLOW: the summary service stops through `request.cancel`; HUNG: it ignores the token and
    // the compactor itself must stop waiting. No summary timeout: only the cancel can end it.
    for mode in [SLOW, HUNG] {
        let (store, _d) = sqlite_store().await;
        let main = Arc::new(ScriptedLlm::from_fn(|_| Step::text("ok")));
        let summary = Summarizer::new(mode);
        let lp = build(Arc::clone(&main), Arc::clone(&summary), None, store.clone()).await;
        let sid = lp.new_session(NewSessionOptions::default()).await.unwrap();
        lp.send(&sid, "first").await.unwrap();
        let before = rows(&store, &sid).await;
        assert_eq!(before.len(), 2);
        let main_calls = main.call_count();

        let log = record(lp.event_bus());
        let token = CancellationToken::new();
        let t = token.clone();
        let s = Arc::clone(&summary);
        tokio::spawn(async move {
            s.seen.notified().await;
            t.cancel();
        });
        let r = tokio::time::timeout(
            BOUND,
            lp.send_with(&sid, "second", SendOptions::new().with_cancel(token)),
        )
        .await
        .expect("the send returned after the cancel")
        .unwrap();
        assert_eq!(r.status, RunStatus::Cancelled, "mode {mode}: {r:?}");
        assert_eq!(r.final_text, "[cancelled by user]");
        assert_eq!(r.rounds, 0);
        assert_eq!(
            main.call_count(),
            main_calls,
            "no main model call after the cancel"
        );

        // Same ending as a cancel during the model call; the summary attempt is closed as
        // failed; no compaction event at all.
        let got = names(&log);
        assert_eq!(
            got,
            vec![
                "session_started",
                "llm_call_started",
                "llm_call_completed(false)",
                "loop_cancelled",
                "session_ended(cancelled)"
            ],
            "mode {mode}"
        );
        assert!(auto_compacts(&log).is_empty());

        // The store: only the kept input was added; nothing folded, no compaction recorded.
        let mut want = before.clone();
        want.push((3, "user".into(), "second".into(), MessageState::Active));
        // The unanswered turn is closed by the cancellation marker.
        want.push((
            4,
            "assistant".into(),
            "[cancelled by user]".into(),
            MessageState::Active,
        ));
        assert_eq!(rows(&store, &sid).await, want, "mode {mode}");
        assert!(store.list_compactions(&sid).await.unwrap().is_empty());
        let state = store.get_state(&sid).await.unwrap().unwrap();
        assert_eq!(state.last_compact_seq, 0);
        assert!(state.pending.is_none());

        // The session stays usable: the next send compacts and completes.
        summary.mode.store(ANSWER, Ordering::SeqCst);
        let r = tokio::time::timeout(BOUND, lp.send(&sid, "third"))
            .await
            .expect("the next send returned")
            .unwrap();
        assert_eq!(r.status, RunStatus::Completed, "mode {mode}: {r:?}");
        assert_eq!(r.final_text, "ok");
        let cs = store.list_compactions(&sid).await.unwrap();
        assert_eq!(cs.len(), 1, "mode {mode}");
        // Rows 1-4 (the cancelled turn and its marker included) fold; "third" is kept.
        assert_eq!((cs[0].from_seq, cs[0].to_seq), (1, 4));
    }
}

#[tokio::test]
async fn hung_summary_model_times_out_and_the_send_goes_on_unfolded() {
    let (store, _d) = sqlite_store().await;
    let main = Arc::new(ScriptedLlm::from_fn(|_| Step::text("ok")));
    let summary = Summarizer::new(HUNG);
    let lp = build(
        Arc::clone(&main),
        Arc::clone(&summary),
        Some(Duration::from_millis(200)),
        store.clone(),
    )
    .await;
    let sid = lp.new_session(NewSessionOptions::default()).await.unwrap();
    lp.send(&sid, "first").await.unwrap();
    let before = rows(&store, &sid).await;

    let log = record(lp.event_bus());
    let r = tokio::time::timeout(BOUND, lp.send(&sid, "second"))
        .await
        .expect("the send returned after the summary timeout")
        .unwrap();
    // Spec: a failed summary is a soft failure — the round goes on with the unfolded history.
    assert_eq!(r.status, RunStatus::Completed, "{r:?}");
    assert_eq!(r.final_text, "ok");
    assert_eq!(
        auto_compacts(&log),
        vec![("failed".to_owned(), "summary_timeout".to_owned())]
    );
    let got = names(&log);
    let failed = got
        .iter()
        .position(|x| x == "status_changed(auto_compact)")
        .unwrap();
    let started = got.iter().position(|x| x == "round_started").unwrap();
    assert!(failed < started, "{got:?}");

    // Nothing folded or recorded: the send's own rows were appended, all active.
    let after = rows(&store, &sid).await;
    assert_eq!(after[..before.len()], before[..]);
    assert_eq!(
        after[before.len()..]
            .iter()
            .map(|(_, role, content, state)| (role.as_str(), content.as_str(), *state))
            .collect::<Vec<_>>(),
        vec![
            ("user", "second", MessageState::Active),
            ("assistant", "ok", MessageState::Active)
        ]
    );
    assert!(store.list_compactions(&sid).await.unwrap().is_empty());
    assert_eq!(
        store
            .get_state(&sid)
            .await
            .unwrap()
            .unwrap()
            .last_compact_seq,
        0
    );
}
