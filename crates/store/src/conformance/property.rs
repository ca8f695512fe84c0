//! Property test: export → import reproduces a random session exactly (proptest generates the
//! sessions: unicode text, tool calls, folds, notes, timers, runtime state, and contents larger
//! than 64 KiB).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::json;

use super::Ctx;
use crate::{CompactionRequest, NewMessage, NewSession, SessionStore};

#[derive(Debug, Clone)]
struct Msg {
    role: &'static str,
    content: Option<String>,
    big: bool,
    tool_call: bool,
    name: Option<String>,
}

#[derive(Debug, Clone)]
struct Case {
    prompt: Option<String>,
    messages: Vec<Msg>,
    fold: Vec<usize>,
    notes: Vec<(String, bool)>,
    state: Vec<(String, String)>,
    timers: Vec<(i64, Option<i64>)>,
}

fn text() -> impl Strategy<Value = String> {
    // Printable unicode (no NUL: PostgreSQL TEXT rejects it).
    proptest::string::string_regex("[a-zA-Z0-9 äöüß€☃😀日本語'\"?%\\\\\n]{0,40}").unwrap()
}

fn msg() -> impl Strategy<Value = Msg> {
    (
        prop::sample::select(vec!["user", "assistant", "tool", "system"]),
        prop::option::of(text()),
        prop::bool::weighted(0.08),
        prop::bool::weighted(0.2),
        prop::option::of(text()),
    )
        .prop_map(|(role, content, big, tool_call, name)| Msg {
            role,
            content,
            big,
            tool_call,
            name,
        })
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::option::of(text()),
        prop::collection::vec(msg(), 1..12),
        prop::collection::vec(0usize..12, 0..5),
        prop::collection::vec((text(), any::<bool>()), 0..3),
        prop::collection::vec((text(), text()), 0..3),
        prop::collection::vec((0i64..1_000_000, prop::option::of(1i64..100)), 0..3),
    )
        .prop_map(|(prompt, messages, fold, notes, state, timers)| Case {
            prompt,
            messages,
            fold,
            notes,
            state,
            timers,
        })
}

async fn build(s: &SessionStore, c: &Case) -> String {
    let mut new = NewSession::new();
    if let Some(p) = &c.prompt {
        new = new.with_system_prompt(p.clone());
    }
    let sid = s.create_session(new).await.unwrap();
    let mut batch = Vec::new();
    for m in &c.messages {
        let mut nm = NewMessage::new(m.role);
        nm.content = m.content.as_ref().map(|t| {
            if m.big {
                t.repeat(66_000 / t.len().max(1) + 1) + "😀"
            } else {
                t.clone()
            }
        });
        if m.big && nm.content.is_none() {
            nm.content = Some("ü".repeat(40_000));
        }
        if m.tool_call {
            nm.tool_calls = Some(vec![
                json!({"id": "c", "function": {"name": "f", "arguments": m.content.clone().unwrap_or_default()}}),
            ]);
        }
        nm.name = m.name.clone();
        batch.push(nm);
    }
    s.append_messages(&sid, batch).await.unwrap();
    let n = c.messages.len();
    let fold: Vec<i64> = c
        .fold
        .iter()
        .filter(|i| **i < n)
        .map(|i| *i as i64 + 1)
        .collect();
    if !fold.is_empty() {
        s.record_compaction(&sid, CompactionRequest::fold(fold, "summary ☃"))
            .await
            .unwrap();
    }
    for (t, p) in &c.notes {
        s.add_note(&sid, t, *p).await.unwrap();
    }
    for (k, v) in &c.state {
        s.set_runtime_state(&sid, &format!("k{k}"), json!({"v": v}))
            .await
            .unwrap();
    }
    for (due, every) in &c.timers {
        s.create_timer(&sid, *due, "t", *every).await.unwrap();
    }
    sid
}

async fn check(s: &SessionStore, c: &Case, n: usize) -> Result<(), TestCaseError> {
    let sid = build(s, c).await;
    let a = s
        .export_session(&sid)
        .await
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let text = serde_json::to_string(&a).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let back: crate::SessionArchive =
        serde_json::from_str(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let target = format!("restored_{n}");
    s.import_session(&back, Some(&target))
        .await
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let b = s
        .export_session(&target)
        .await
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let mut expected = a.tables.clone();
    for rows in expected.values_mut() {
        for r in rows.iter_mut() {
            r.insert("session_id".into(), json!(target));
        }
    }
    prop_assert_eq!(&b.tables, &expected);
    let src = s
        .load_active_messages(&sid, None)
        .await
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let dst = s
        .load_active_messages(&target, None)
        .await
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let key = |m: &crate::MessageRow| {
        (
            m.role.clone(),
            m.name.clone(),
            m.content.clone(),
            m.tool_calls.clone(),
        )
    };
    prop_assert_eq!(
        src.iter().map(key).collect::<Vec<_>>(),
        dst.iter().map(key).collect::<Vec<_>>()
    );
    Ok(())
}

pub async fn export_import_round_trip_property(ctx: Ctx) {
    let s = ctx.store().await;
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let mut runner = TestRunner::new(Config {
            cases: 12,
            max_shrink_iters: 32,
            failure_persistence: None,
            ..Config::default()
        });
        let counter = std::sync::atomic::AtomicUsize::new(0);
        let result = runner.run(&case(), |c| {
            let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            handle.block_on(check(&s, &c, n))
        });
        if let Err(e) = result {
            panic!("export → import round trip failed: {e}");
        }
    })
    .await
    .unwrap();
}
