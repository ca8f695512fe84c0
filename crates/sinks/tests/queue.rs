#![allow(clippy::unwrap_used, clippy::expect_used)]
//! A slow or failing sink behind `QueuedSink` never blocks or fails the publisher; drops are
//! counted and reported as `sink_dropped`.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};

use power_loop_contracts::event::*;
use power_loop_contracts::{AgentEvent, Error, EventPayload, EventSink, Result};
use power_loop_sinks::{MetricsBackend, QueueOptions, QueuedSink};

fn ev(i: u32) -> AgentEvent {
    AgentEvent::new(EventPayload::RoundStarted(RoundStartedPayload {
        round_index: i,
    }))
}

/// Blocks in `handle` until the test releases it; reports when it is blocked.
struct Gate {
    entered: Mutex<Sender<u32>>,
    release: Mutex<Receiver<()>>,
    seen: Mutex<Vec<u32>>,
}

impl EventSink for Gate {
    fn handle(&self, e: &AgentEvent) -> Result<()> {
        let EventPayload::RoundStarted(p) = &e.payload else {
            return Ok(());
        };
        self.seen.lock().unwrap().push(p.round_index);
        self.entered.lock().unwrap().send(p.round_index).unwrap();
        self.release.lock().unwrap().recv().ok();
        Ok(())
    }
}

#[derive(Default)]
struct Counter(Mutex<Vec<String>>);

impl MetricsBackend for Counter {
    fn incr(&self, name: &str, value: u64, labels: &[(&str, &str)]) -> Result<()> {
        self.0
            .lock()
            .unwrap()
            .push(format!("{name} {value} {labels:?}"));
        Ok(())
    }
    fn observe(&self, _: &str, _: f64, _: &[(&str, &str)]) -> Result<()> {
        Ok(())
    }
    fn gauge(&self, _: &str, _: f64, _: &[(&str, &str)]) -> Result<()> {
        Ok(())
    }
}

#[test]
fn a_blocked_sink_does_not_block_the_publisher_and_drops_are_counted() {
    let (entered_tx, entered) = channel();
    let (release, release_rx) = channel();
    let gate = Arc::new(Gate {
        entered: Mutex::new(entered_tx),
        release: Mutex::new(release_rx),
        seen: Mutex::new(Vec::new()),
    });
    let metrics = Arc::new(Counter::default());
    let q = QueuedSink::new(
        gate.clone(),
        QueueOptions::default()
            .name("jsonl")
            .capacity(3)
            .metrics(metrics.clone()),
    )
    .unwrap();
    q.handle(&ev(0)).unwrap();
    assert_eq!(entered.recv().unwrap(), 0, "the worker holds event 0");
    // The sink is stuck: these return at once; 3 fit in the queue, 6 are dropped.
    for i in 1..10 {
        q.handle(&ev(i)).unwrap();
    }
    assert_eq!(q.dropped(), 6);
    let m = metrics.0.lock().unwrap().clone();
    assert_eq!(m.len(), 6);
    assert_eq!(m[0], r#"power_loop_sink_dropped 1 [("sink", "jsonl")]"#);
    for _ in 0..4 {
        release.send(()).unwrap();
    }
    q.flush().unwrap();
    assert_eq!(*gate.seen.lock().unwrap(), vec![0, 1, 2, 3]);
    assert_eq!(q.handled(), 4);
}

struct Faulty(AtomicU32);

impl EventSink for Faulty {
    fn handle(&self, _: &AgentEvent) -> Result<()> {
        match self.0.fetch_add(1, Ordering::SeqCst) + 1 {
            1 => Err(Error::internal("disk full")),
            2 => panic!("sink bug"),
            _ => Ok(()),
        }
    }
}

#[test]
fn a_failing_or_panicking_sink_never_fails_the_publisher() {
    let inner = Arc::new(Faulty(AtomicU32::new(0)));
    let q = QueuedSink::new(inner.clone(), QueueOptions::default()).unwrap();
    for i in 0..4 {
        q.handle(&ev(i)).unwrap();
    }
    q.flush().unwrap();
    assert_eq!(q.failed(), 2);
    assert_eq!(q.handled(), 4);
    assert_eq!(
        inner.0.load(Ordering::SeqCst),
        4,
        "the worker survived the panic"
    );
    drop(q);
}
