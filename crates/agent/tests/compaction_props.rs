//! Property test of compaction over random histories with (parallel) tool-call pairs:
//! - no main request ever holds a tool message without its assistant call, or an assistant call
//!   without all of its results (a fold never separates a pair);
//! - no stored message is dropped: seqs stay gap-free and every folded row is journaled;
//! - the prompt a warm loop (one instance, window cache) sends equals the one a cold loop (a fresh
//!   instance per send, rebuilt from the store) sends, after any sequence of folds.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use power_loop_agent::{AgentLoopConfig, DefaultCompactor, NewSessionOptions, StatefulAgentLoop};
use power_loop_contracts::{LlmRequest, Message, Role, ToolDefinition, ToolOutput};
use power_loop_llm::{ScriptedLlm, Step};
use power_loop_store::{MessageState, SessionStore};
use power_loop_tools::{ToolRegistry, tool_fn};
use proptest::prelude::*;
use serde_json::{Value, json};
use support::*;

const SLICE: &str = "--- transcript slice ---";

/// The model: a user message `run a b c` asks for tool rounds with output sizes a, b, c; each
/// tool result carries the sizes still to request (`rest=b,c|…`). An even size starts a round of
/// two parallel calls. Summary requests get a deterministic summary.
fn model(requests: Arc<Mutex<Vec<Vec<Message>>>>) -> ScriptedLlm {
    ScriptedLlm::from_fn(move |r: &LlmRequest| {
        if r.messages.len() == 1 && r.messages[0].text().contains(SLICE) {
            let t = r.messages[0].text();
            return Step::text(format!("<summary>folded {} chars</summary>", t.len()));
        }
        requests.lock().unwrap().push(r.messages.to_vec());
        let last = r
            .messages
            .last()
            .map(|m| (m.role, m.text()))
            .unwrap_or((Role::User, String::new()));
        let rest: Vec<u64> = match last {
            (Role::User, t) => t
                .strip_prefix("run")
                .map(|s| {
                    s.split_whitespace()
                        .filter_map(|x| x.parse().ok())
                        .collect()
                })
                .unwrap_or_default(),
            (Role::Tool, t) => t
                .strip_prefix("rest=")
                .and_then(|s| s.split('|').next())
                .map(|s| s.split(',').filter_map(|x| x.parse().ok()).collect())
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        let Some((&first, tail)) = rest.split_first() else {
            return Step::text("done");
        };
        let rest_s = tail
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let call = |len: u64| ("blob", json!({"len": len, "rest": rest_s}));
        if first % 2 == 0 {
            Step::tool_calls([call(first), call(first / 2 + 1)])
        } else {
            Step::tool_call("blob", call(first).1)
        }
    })
}

fn tools() -> ToolRegistry {
    let mut r = ToolRegistry::new();
    r.register(tool_fn(
        ToolDefinition::new(
            "blob",
            "Returns len chars",
            json!({"type": "object", "properties": {"len": {"type": "integer"}, "rest": {"type": "string"}}}),
        ),
        |_ctx, args: Value| async move {
            let len = args["len"].as_u64().unwrap_or(1) as usize;
            let rest = args["rest"].as_str().unwrap_or("");
            Ok(ToolOutput::ok(format!("rest={rest}|{}", "y".repeat(len))))
        },
    ))
    .unwrap();
    r
}

fn build(llm: ScriptedLlm, store: SessionStore, threshold: u64, keep: usize) -> StatefulAgentLoop {
    let c = DefaultCompactor::new()
        .with_absolute_threshold(Some(threshold))
        .with_keep_last_n(keep);
    StatefulAgentLoop::builder(Arc::new(llm))
        .store(store)
        .config(AgentLoopConfig::default().with_compactor(Some(Arc::new(c))))
        .tools(tools())
        .build()
        .unwrap()
}

/// Every tool message follows (within its tool block) the assistant call it answers, and every
/// assistant call is fully answered by the tool block right after it.
fn pairs_intact(msgs: &[Message]) -> Result<(), String> {
    let mut i = 0;
    while i < msgs.len() {
        let m = &msgs[i];
        if m.role == Role::Tool {
            return Err(format!("orphan tool message at {i}"));
        }
        i += 1;
        if m.role == Role::Assistant && !m.tool_calls.is_empty() {
            let want: HashSet<&str> = m.tool_calls.iter().map(|c| c.id.as_str()).collect();
            let mut got = HashSet::new();
            while i < msgs.len() && msgs[i].role == Role::Tool {
                let id = msgs[i].tool_call_id.as_deref().unwrap_or("");
                if !want.contains(id) {
                    return Err(format!(
                        "tool result {id} at {i} does not answer the call before it"
                    ));
                }
                got.insert(id);
                i += 1;
            }
            if got != want {
                return Err(format!("assistant calls {want:?} answered only by {got:?}"));
            }
        }
    }
    Ok(())
}

async fn scenario(sends: Vec<Vec<u64>>, threshold: u64, keep: usize) -> Result<usize, String> {
    let dir = tempfile::tempdir().unwrap();
    let pa = dir.path().join("warm.db");
    let pb = dir.path().join("cold.db");
    let warm_reqs = Arc::new(Mutex::new(Vec::new()));
    let cold_reqs = Arc::new(Mutex::new(Vec::new()));

    let warm_store = sqlite_at(pa.to_str().unwrap()).await;
    let warm = build(
        model(Arc::clone(&warm_reqs)),
        warm_store.clone(),
        threshold,
        keep,
    );
    let sid = warm
        .new_session(NewSessionOptions::default())
        .await
        .unwrap();
    let cold_sid = {
        let s = sqlite_at(pb.to_str().unwrap()).await;
        let lp = build(ScriptedLlm::new(), s, threshold, keep);
        lp.new_session(NewSessionOptions::default()).await.unwrap()
    };
    // The cold side shares one scripted model (its call counter names tool-call ids) across the
    // fresh loop instances.
    let cold_service: Arc<dyn power_loop_contracts::LlmService> =
        Arc::new(model(Arc::clone(&cold_reqs)));
    for (n, sizes) in sends.iter().enumerate() {
        let text = format!(
            "run {}",
            sizes
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(" ")
        );
        warm.send(&sid, text.clone())
            .await
            .map_err(|e| format!("warm send {n}: {e}"))?;
        let s = sqlite_at(pb.to_str().unwrap()).await;
        let c = DefaultCompactor::new()
            .with_absolute_threshold(Some(threshold))
            .with_keep_last_n(keep);
        let cold = StatefulAgentLoop::builder(Arc::clone(&cold_service))
            .store(s)
            .config(AgentLoopConfig::default().with_compactor(Some(Arc::new(c))))
            .tools(tools())
            .build()
            .unwrap();
        cold.send(&cold_sid, text)
            .await
            .map_err(|e| format!("cold send {n}: {e}"))?;
    }
    let w = warm_reqs.lock().unwrap().clone();
    let c = cold_reqs.lock().unwrap().clone();
    for (i, req) in w.iter().enumerate() {
        pairs_intact(req).map_err(|e| format!("request {i}: {e}"))?;
    }
    if w != c {
        let at = w.iter().zip(&c).position(|(a, b)| a != b);
        return Err(format!(
            "warm and cold prompts differ (first at request {at:?}; {} vs {} requests)",
            w.len(),
            c.len()
        ));
    }
    // Nothing dropped: gap-free seqs; every folded row lies in a journaled span; ≤ 1 active note.
    let rows = warm_store.load_all_messages(&sid).await.unwrap();
    let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
    let mut sorted = seqs.clone();
    sorted.sort_unstable();
    if sorted != (1..=rows.len() as i64).collect::<Vec<_>>() {
        return Err(format!("seqs not gap-free: {sorted:?}"));
    }
    let spans = warm_store.list_compactions(&sid).await.unwrap();
    for r in rows
        .iter()
        .filter(|r| r.state == MessageState::CompactedOut)
    {
        if !spans
            .iter()
            .any(|c| c.from_seq <= r.seq && r.seq <= c.to_seq)
        {
            return Err(format!("row {} folded without a journal entry", r.seq));
        }
    }
    let notes = rows
        .iter()
        .filter(|r| r.state == MessageState::Active && r.name.as_deref() == Some("compact_note"))
        .count();
    if notes > 1 {
        return Err(format!("{notes} active notes"));
    }
    // the active window a fresh loop reads is exactly what the next prompt would start from
    let active = warm.get_messages(&sid, false).await.unwrap();
    pairs_intact(&active).map_err(|e| format!("active window: {e}"))?;
    Ok(spans.len())
}

/// A fixed case that must fold several times, including inside one long exchange.
#[test]
fn fixed_scenario_folds_inside_a_long_exchange() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let sends = vec![vec![
        301, 40, 7, 122, 90, 33, 501, 64, 11, 77, 9, 18, 250, 3,
    ]];
    let folds = rt.block_on(scenario(sends, 200, 2)).unwrap();
    assert!(folds >= 3, "only {folds} folds");
    let sends = vec![
        vec![5, 6],
        vec![1300, 2],
        vec![],
        vec![44, 45, 46],
        vec![7; 6],
    ];
    let folds = rt.block_on(scenario(sends, 120, 0)).unwrap();
    assert!(folds >= 3, "only {folds} folds");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]
    #[test]
    fn folds_keep_pairs_journal_everything_and_cold_equals_warm(
        sends in prop::collection::vec(prop::collection::vec(1u64..1500, 0..5), 1..7),
        threshold in 30u64..600,
        keep in 0usize..3,
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let out = rt.block_on(scenario(sends, threshold, keep));
        prop_assert!(out.is_ok(), "{}", out.unwrap_err());
    }
}
