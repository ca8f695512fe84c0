//! Workflow runs are observable: a leaf without its own `max_tokens` inherits the loop's; runs
//! and leaves get `tracing` spans (run → step → leaf, closed on every exit path, no prompt or
//! input content) and the `workflow_*` events the metrics sinks count.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use power_loop_agent::{AgentEventBus, AgentLoopConfig, EventFilter, StatefulAgentLoop};
use power_loop_contracts::{AgentEvent, ErrorCode, EventPayload};
use power_loop_llm::Step;
use power_loop_workflow::{RunStatus, WorkflowEngine};
use serde_json::json;
use support::*;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;

#[tokio::test]
async fn a_leaf_without_max_tokens_inherits_the_loops_and_its_own_wins() {
    let (store, _d) = sqlite_store().await;
    let llm = model(|_, user| Step::text(format!("ok:{user}"))).record_requests(true);
    let lp = StatefulAgentLoop::builder(Arc::new(llm.clone()))
        .store(store.clone())
        .config(AgentLoopConfig::default().with_max_tokens(Some(321)))
        .build()
        .unwrap();
    let s = spec(
        json!({"name": "caps", "input": "x", "root": {"type": "sequence", "steps": [
            leaf("inherits", "p", "first"),
            {"type": "agent", "id": "own", "spec": {"name": "own", "system_prompt": "p", "max_tokens": 77},
             "input": "second"}
        ]}}),
    );
    let r = run_default(lp, &s).await;
    assert_eq!(r.status, RunStatus::Completed, "{:?}", r.errors);
    let caps: BTreeMap<String, Option<u32>> = llm
        .requests()
        .iter()
        .map(|q| (last_user(q), q.max_tokens))
        .collect();
    assert_eq!(caps["first"], Some(321), "{caps:?}");
    assert_eq!(caps["second"], Some(77), "{caps:?}");
}

#[derive(Debug, Clone, Default)]
struct SpanRec {
    name: String,
    parent: Option<usize>,
    fields: BTreeMap<String, String>,
    closed: bool,
}

/// Records every span: its name, parent, fields (at creation and recorded later), closing.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<SpanRec>>>);

struct Index(usize);

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S> Layer<S> for Capture
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut rec = SpanRec {
            name: attrs.metadata().name().to_owned(),
            ..Default::default()
        };
        attrs.record(&mut Fields(&mut rec.fields));
        let span = ctx.span(id).expect("the new span");
        rec.parent = span
            .parent()
            .and_then(|p| p.extensions().get::<Index>().map(|i| i.0));
        let mut all = self.0.lock().unwrap();
        all.push(rec);
        span.extensions_mut().insert(Index(all.len() - 1));
    }
    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(i) = ctx
            .span(id)
            .and_then(|s| s.extensions().get::<Index>().map(|i| i.0))
        {
            values.record(&mut Fields(&mut self.0.lock().unwrap()[i].fields));
        }
    }
    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if let Some(i) = ctx
            .span(&id)
            .and_then(|s| s.extensions().get::<Index>().map(|i| i.0))
        {
            self.0.lock().unwrap()[i].closed = true;
        }
    }
}

fn workflow_events(bus: &AgentEventBus) -> Arc<Mutex<Vec<AgentEvent>>> {
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = Arc::clone(&log);
    bus.subscribe(EventFilter::All, move |e| {
        if e.event_type().as_str().starts_with("workflow_") {
            l.lock().unwrap().push(e.clone());
        }
        Ok(())
    });
    log
}

#[tokio::test]
async fn runs_steps_and_leaves_get_closed_spans_and_workflow_events() {
    let capture = Capture::default();
    let _guard = tracing_subscriber::registry()
        .with(capture.clone())
        .set_default();
    let (store, _d) = sqlite_store().await;
    // Leaf `b` fails (a permanent model error); the others answer.
    let calls = Arc::new(AtomicU64::new(0));
    let c2 = Arc::clone(&calls);
    let llm = model(move |_, user| {
        c2.fetch_add(1, Ordering::SeqCst);
        if user.contains("boom") {
            Step::error(ErrorCode::LlmBadRequest)
        } else {
            Step::text("fine")
        }
    });
    let lp = agent_loop(&llm, &store);
    let events = workflow_events(lp.event_bus());
    let s = spec(
        json!({"name": "obs", "input": "TOP-SECRET-INPUT", "root": {"type": "sequence", "steps": [
            leaf("a", "PROMPT-A", "{{input}}"),
            {"type": "parallel", "id": "fan", "branches": [
                leaf("b", "PROMPT-B", "boom"),
                leaf("c", "PROMPT-C", "fine please")
            ]}
        ]}}),
    );
    let out = WorkflowEngine::builder(lp).build().run(&s).await.unwrap();
    assert_eq!(out.result.status, RunStatus::Failed);

    let spans = capture.0.lock().unwrap().clone();
    let find = |name: &str, key: &str| {
        spans
            .iter()
            .position(|s| {
                s.name == name
                    && s.fields
                        .get("power_loop.workflow.step_key")
                        .map(String::as_str)
                        == Some(key)
            })
            .unwrap_or_else(|| panic!("no {name} {key} in {spans:#?}"))
    };
    let run = spans
        .iter()
        .position(|s| s.name == "power_loop.workflow.run")
        .unwrap();
    assert_eq!(spans[run].parent, None);
    assert_eq!(spans[run].fields["power_loop.workflow.name"], "obs");
    assert_eq!(spans[run].fields["power_loop.workflow.status"], "failed");
    let seq = find("power_loop.workflow.step", "");
    assert_eq!(
        spans[seq].fields["power_loop.workflow.node_type"],
        "sequence"
    );
    assert_eq!(spans[seq].parent, Some(run));
    let fan = find("power_loop.workflow.step", "fan");
    assert_eq!(spans[fan].parent, Some(seq));
    let a = find("power_loop.workflow.leaf", "a");
    assert_eq!(spans[a].parent, Some(seq));
    assert_eq!(spans[a].fields["gen_ai.agent.name"], "a");
    assert_eq!(spans[a].fields["power_loop.workflow.status"], "completed");
    let b = find("power_loop.workflow.leaf", "b");
    assert_eq!(spans[b].parent, Some(fan));
    assert_eq!(spans[b].fields["power_loop.workflow.status"], "failed");
    let c = find("power_loop.workflow.leaf", "c");
    assert_eq!(spans[c].parent, Some(fan));
    // Every workflow span closed; no prompt or input content in any of them.
    for s in spans
        .iter()
        .filter(|s| s.name.starts_with("power_loop.workflow"))
    {
        assert!(s.closed, "{s:?} left open");
        let text = format!("{:?}", s.fields);
        assert!(
            !text.contains("TOP-SECRET") && !text.contains("PROMPT-"),
            "{text}"
        );
    }

    // The events the metrics sinks count.
    let ev = events.lock().unwrap().clone();
    let kinds: Vec<&str> = ev.iter().map(|e| e.event_type().as_str()).collect();
    assert_eq!(kinds.first(), Some(&"workflow_run_started"));
    assert_eq!(kinds.last(), Some(&"workflow_run_completed"));
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == "workflow_leaf_completed")
            .count(),
        3
    );
    let EventPayload::WorkflowRunCompleted(done) = &ev.last().unwrap().payload else {
        panic!("not a run completion")
    };
    assert_eq!((done.status.as_str(), done.leaves), ("failed", 3));
    assert_eq!(done.run_id, out.run_id.clone().unwrap());
    let failed_leaf = ev.iter().find_map(|e| match &e.payload {
        EventPayload::WorkflowLeafCompleted(l) if l.step_key == "b" => Some(l.clone()),
        _ => None,
    });
    assert_eq!(failed_leaf.unwrap().status, "failed");
}

#[tokio::test]
async fn a_dropped_run_closes_its_spans() {
    let capture = Capture::default();
    let _guard = tracing_subscriber::registry()
        .with(capture.clone())
        .set_default();
    let (store, _d) = sqlite_store().await;
    let llm = model(|_, _| slow_text("late", 60_000));
    let lp = agent_loop(&llm, &store);
    let s = spec(json!({"name": "slow", "input": "x", "root": leaf("only", "p", "go")}));
    let engine = WorkflowEngine::builder(lp).build();
    // The caller gives up on the run (its future is dropped mid-leaf).
    let r = tokio::time::timeout(std::time::Duration::from_millis(300), engine.run(&s)).await;
    assert!(
        r.is_err(),
        "the run should still be waiting on the slow leaf"
    );
    let spans = capture.0.lock().unwrap().clone();
    let wf: Vec<&SpanRec> = spans
        .iter()
        .filter(|s| s.name.starts_with("power_loop.workflow"))
        .collect();
    assert_eq!(wf.len(), 2, "{wf:#?}");
    assert!(wf.iter().all(|s| s.closed), "{wf:#?}");
}
