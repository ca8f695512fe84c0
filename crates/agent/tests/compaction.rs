//! Compaction through the real pipeline and SQLite: exact event/hook order, persisted journal,
//! usage of the summary call, soft failures, and a long session that stays under its window
//! while `recall_compacted` returns the folded originals.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use power_loop_agent::budget::estimate_tokens;
use power_loop_agent::{
    AgentHooks, AgentLoopConfig, DefaultCompactor, NewSessionOptions, RunStatus, StatefulAgentLoop,
    recall_compacted_tool,
};
use power_loop_contracts::hook::CompactBeforeDirective;
use power_loop_contracts::{
    AgentEvent, ErrorCode, EventPayload, LlmRequest, Role, StatusChanged, ToolDefinition,
    ToolOutput,
};
use power_loop_llm::{ScriptedLlm, Step};
use power_loop_store::{MessageState, SessionStore};
use power_loop_tools::{ToolRegistry, tool_fn};
use serde_json::json;
use support::*;

const SLICE: &str = "--- transcript slice ---";

fn is_summary(r: &LlmRequest) -> bool {
    r.messages.len() == 1 && r.messages[0].text().contains(SLICE)
}

type Log = Arc<Mutex<Vec<String>>>;

/// Records events (one line each, auto_compact with its phase) and the compaction hooks into one
/// ordered log.
fn trace(lp_hooks: &AgentHooks, bus: &power_loop_agent::AgentEventBus) -> Log {
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let l = Arc::clone(&log);
    bus.subscribe(power_loop_agent::EventFilter::All, move |e: &AgentEvent| {
        let s = match &e.payload {
            EventPayload::StreamDelta(_) => return Ok(()),
            EventPayload::StatusChanged(StatusChanged::AutoCompact(a)) => format!(
                "auto_compact({},{},{})",
                a.phase,
                a.round_index,
                e.round_index.unwrap_or(99)
            ),
            EventPayload::StatusChanged(_) => "status_changed".into(),
            other => other.event_type().as_str().to_owned(),
        };
        l.lock().unwrap().push(s);
        Ok(())
    });
    let l = Arc::clone(&log);
    lp_hooks.on_compact_before(0, move |c| {
        l.lock()
            .unwrap()
            .push(format!("hook:compact.before({})", c.round_index));
        Ok(())
    });
    let l = Arc::clone(&log);
    lp_hooks.on_compact_after(0, move |c| {
        l.lock().unwrap().push(format!(
            "hook:compact.after({}->{})",
            c.messages_before_count, c.messages_after_count
        ));
        Ok(())
    });
    log
}

async fn build(
    llm: ScriptedLlm,
    compactor: DefaultCompactor,
    store: SessionStore,
) -> StatefulAgentLoop {
    let cfg = AgentLoopConfig::default().with_compactor(Some(Arc::new(compactor)));
    let mut reg = registry();
    reg.register(recall_compacted_tool()).unwrap();
    StatefulAgentLoop::builder(Arc::new(llm))
        .store(store)
        .config(cfg)
        .tools(reg)
        .build()
        .unwrap()
}

fn summarizer(reply: &'static str) -> ScriptedLlm {
    ScriptedLlm::from_fn(move |r| {
        if is_summary(r) {
            Step::text(reply).with_tokens(100, 20)
        } else {
            Step::text("ok").with_tokens(10, 5)
        }
    })
}

fn small() -> DefaultCompactor {
    DefaultCompactor::new()
        .with_absolute_threshold(Some(1))
        .with_keep_last_n(1)
}

#[tokio::test]
async fn fold_event_order_journal_and_usage() {
    let (store, _d) = sqlite_store().await;
    let lp = build(
        summarizer("<summary> first exchange summarized </summary>"),
        small(),
        store.clone(),
    )
    .await;
    let sid = lp.new_session(NewSessionOptions::default()).await.unwrap();
    let log = trace(lp.hooks(), lp.event_bus());
    let r1 = lp.send(&sid, "first").await.unwrap();
    assert_eq!(r1.usage.calls, 1, "nothing to fold on the first send");
    log.lock().unwrap().clear();

    let r = lp.send(&sid, "second").await.unwrap();
    assert_eq!(r.status, RunStatus::Completed);
    // the summary call's usage is counted into the run
    assert_eq!(r.usage.calls, 2);
    assert_eq!(r.usage.prompt_tokens, 110);
    assert_eq!(r.usage.completion_tokens, 25);
    let got = log.lock().unwrap().clone();
    let pos = |s: &str| {
        got.iter()
            .position(|x| x == s)
            .unwrap_or_else(|| panic!("{s} missing in {got:?}"))
    };
    let b = pos("hook:compact.before(0)");
    let ev = pos("auto_compact(started,0,0)");
    let a = pos("hook:compact.after(3->2)");
    let rs = pos("round_started");
    assert!(b < ev && ev < a && a < rs, "{got:?}");
    // `started`, then `completed` once the fold is recorded (before `compact.after`).
    assert_eq!(
        got.iter().filter(|x| x.starts_with("auto_compact")).count(),
        2
    );
    let done = got
        .iter()
        .position(|x| x.starts_with("auto_compact(completed"))
        .unwrap_or_else(|| panic!("no completed phase in {got:?}"));
    assert!(ev < done && done < a, "{got:?}");

    // journal: U1, A1 folded; note seq 4 (after U2 = 3)
    let rows = store.load_all_messages(&sid).await.unwrap();
    let folded: Vec<i64> = rows
        .iter()
        .filter(|r| r.state == MessageState::CompactedOut)
        .map(|r| r.seq)
        .collect();
    assert_eq!(folded, vec![1, 2]);
    let note = rows.iter().find(|r| r.seq == 4).unwrap();
    assert_eq!(note.name.as_deref(), Some("compact_note"));
    assert_eq!(note.content.as_deref(), Some("first exchange summarized"));
    for k in [
        "compacted_at_round",
        "from_seq",
        "to_seq",
        "ord",
        "original_tokens",
        "summary_tokens",
    ] {
        assert!(note.meta.contains_key(k), "meta {k}");
    }
    let cs = store.list_compactions(&sid).await.unwrap();
    assert_eq!(cs.len(), 1);
    assert_eq!((cs[0].compact_seq, cs[0].from_seq, cs[0].to_seq), (1, 1, 2));

    // a fresh loop rebuilds the same window: note first
    let cold = build(summarizer("x"), DefaultCompactor::new(), store.clone()).await;
    let w = cold.get_messages(&sid, false).await.unwrap();
    assert_eq!(w[0].name.as_deref(), Some("compact_note"));
    assert_eq!(
        w.iter().map(|m| m.text()).collect::<Vec<_>>(),
        vec!["first exchange summarized", "second", "ok"]
    );
}

#[tokio::test]
async fn failed_or_empty_summary_emits_failed_and_run_goes_on() {
    for llm in [
        ScriptedLlm::from_fn(|r| {
            if is_summary(r) {
                Step::error(ErrorCode::LlmProvider)
            } else {
                Step::text("ok")
            }
        }),
        summarizer("<summary>  </summary>"),
    ] {
        let (store, _d) = sqlite_store().await;
        let lp = build(llm, small(), store.clone()).await;
        let sid = lp.new_session(NewSessionOptions::default()).await.unwrap();
        lp.send(&sid, "first").await.unwrap();
        let log = trace(lp.hooks(), lp.event_bus());
        let r = lp.send(&sid, "second").await.unwrap();
        assert_eq!(r.status, RunStatus::Completed);
        assert_eq!(r.final_text, "ok");
        let got = log.lock().unwrap().clone();
        let i = got
            .iter()
            .position(|x| x == "auto_compact(failed,0,0)")
            .unwrap();
        let rs = got.iter().position(|x| x == "round_started").unwrap();
        assert!(i < rs);
        assert!(!got.iter().any(|x| x.starts_with("hook:compact.after")));
        assert!(store.list_compactions(&sid).await.unwrap().is_empty());
    }
}

#[tokio::test]
async fn below_threshold_and_skip_hook_make_no_summary_call() {
    let calls = Arc::new(AtomicU64::new(0));
    let c = Arc::clone(&calls);
    let llm = ScriptedLlm::from_fn(move |r| {
        if is_summary(r) {
            c.fetch_add(1, Ordering::SeqCst);
            Step::text("<summary>s</summary>")
        } else {
            Step::text("ok")
        }
    });
    let (store, _d) = sqlite_store().await;
    let lp = build(
        llm,
        DefaultCompactor::new()
            .with_keep_last_n(1)
            .with_context_window_tokens(100_000),
        store,
    )
    .await;
    let sid = lp.new_session(NewSessionOptions::default()).await.unwrap();
    let log = trace(lp.hooks(), lp.event_bus());
    for i in 0..3 {
        lp.send(&sid, format!("m{i}")).await.unwrap();
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    let got = log.lock().unwrap().clone();
    assert_eq!(
        got.iter()
            .filter(|x| x.starts_with("hook:compact.before"))
            .count(),
        3
    );
    assert!(!got.iter().any(|x| x.starts_with("auto_compact")));

    // above threshold but compact.before says SKIP → no call either
    let (store, _d2) = sqlite_store().await;
    let c2 = Arc::clone(&calls);
    let lp = build(
        ScriptedLlm::from_fn(move |r| {
            if is_summary(r) {
                c2.fetch_add(1, Ordering::SeqCst);
            }
            Step::text("ok")
        }),
        small(),
        store,
    )
    .await;
    lp.hooks().on_compact_before(0, |c| {
        c.directive = CompactBeforeDirective::Skip;
        Ok(())
    });
    let sid = lp.new_session(NewSessionOptions::default()).await.unwrap();
    for i in 0..3 {
        lp.send(&sid, format!("m{i}")).await.unwrap();
    }
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

fn probe_registry() -> ToolRegistry {
    let mut r = ToolRegistry::new();
    r.register(tool_fn(
        ToolDefinition::new(
            "probe",
            "Returns a fact",
            json!({"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}),
        ),
        |_ctx, args| async move {
            let n = args["n"].as_u64().unwrap_or(0);
            Ok(ToolOutput::ok(format!(
                "FACT-{n}: the probe measured value {} at step {n}. {}",
                n * 7,
                "filler ".repeat(30)
            )))
        },
    ))
    .unwrap();
    r.register(recall_compacted_tool()).unwrap();
    r
}

/// 50 sends × 10 rounds (9 probe calls + a final answer) = 500 rounds with a 3000-token window:
/// every main request stays under the window, and the model recalls a folded fact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_session_stays_under_window_and_recalls_originals() {
    const WINDOW: u64 = 3000;
    let max_prompt = Arc::new(AtomicU64::new(0));
    let recalled = Arc::new(Mutex::new(String::new()));
    let counter = Arc::new(AtomicU64::new(0));
    let summaries = Arc::new(AtomicU64::new(0));
    let (mp, rc, ctr, sm) = (
        Arc::clone(&max_prompt),
        Arc::clone(&recalled),
        Arc::clone(&counter),
        Arc::clone(&summaries),
    );
    let llm = ScriptedLlm::from_fn(move |r| {
        if is_summary(r) {
            let k = sm.fetch_add(1, Ordering::SeqCst);
            return Step::text(format!(
                "<summary>Summary #{k}: probes ran and returned facts.</summary>"
            ));
        }
        mp.fetch_max(estimate_tokens(&r.messages), Ordering::SeqCst);
        let last_user = r
            .messages
            .iter()
            .rposition(|m| m.role == Role::User)
            .unwrap_or(0);
        let user = r.messages[last_user].text();
        let since: Vec<_> = r.messages[last_user..]
            .iter()
            .filter(|m| m.role == Role::Tool)
            .collect();
        if user == "recall" {
            if let Some(t) = since.last() {
                *rc.lock().unwrap() = t.text();
                return Step::text("recalled");
            }
            return Step::tool_call("recall_compacted", json!({"query": "fact-7:"}));
        }
        if since.len() < 9 {
            let n = ctr.fetch_add(1, Ordering::SeqCst);
            Step::tool_call("probe", json!({"n": n}))
        } else {
            Step::text("batch done")
        }
    });
    let (store, _d) = sqlite_store().await;
    let compactor = DefaultCompactor::new()
        .with_context_window_tokens(WINDOW)
        .with_keep_last_n(2)
        .with_summary_max_tokens(200);
    let cfg = AgentLoopConfig::default()
        .with_compactor(Some(Arc::new(compactor)))
        .with_max_tokens(Some(500));
    let lp = StatefulAgentLoop::builder(Arc::new(llm))
        .store(store.clone())
        .config(cfg)
        .tools(probe_registry())
        .build()
        .unwrap();
    let sid = lp.new_session(NewSessionOptions::default()).await.unwrap();
    let started = std::time::Instant::now();
    let mut rounds = 0;
    for i in 0..50 {
        let r = lp.send(&sid, format!("batch {i}")).await.unwrap();
        assert_eq!(r.status, RunStatus::Completed, "send {i}");
        rounds += r.rounds;
    }
    let elapsed = started.elapsed();
    assert_eq!(rounds, 500);
    let max = max_prompt.load(Ordering::SeqCst);
    let folds = store.list_compactions(&sid).await.unwrap().len();
    println!(
        "500 rounds in {elapsed:?}: max main-request estimate {max} tokens (window {WINDOW}), {folds} folds, {} summary calls",
        summaries.load(Ordering::SeqCst)
    );
    assert!(max < WINDOW, "max prompt estimate {max} ≥ window {WINDOW}");
    assert!(folds > 10);
    assert_eq!(folds as u64, summaries.load(Ordering::SeqCst));
    // one active note
    let active = lp.get_messages(&sid, false).await.unwrap();
    assert_eq!(
        active
            .iter()
            .filter(|m| m.name.as_deref() == Some("compact_note"))
            .count(),
        1
    );

    let r = lp.send(&sid, "recall").await.unwrap();
    assert_eq!(r.final_text, "recalled");
    let out = recalled.lock().unwrap().clone();
    assert!(
        out.starts_with("1 of 1 compacted message(s):\n\n[seq "),
        "{out}"
    );
    assert!(out.contains(" \u{b7} tool \u{b7} round "), "{out}");
    assert!(
        out.contains("FACT-7: the probe measured value 49 at step 7."),
        "{out}"
    );
}
