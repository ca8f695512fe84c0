//! [`QueuedSink`]: runs any sink on its own worker thread behind a bounded queue, so a slow or
//! failing sink never blocks or aborts the agent loop.
//!
//! The bus (`power_loop_agent::AgentEventBus`) delivers inline by default, or through one shared
//! background queue for all subscribers; this adapter gives each sink its own queue and its own
//! drop count, with no change to the bus.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use power_loop_contracts::{AgentEvent, Error, ErrorCode, EventSink, Result};

use crate::MetricsBackend;

enum Msg {
    Event(Box<AgentEvent>),
    Flush(SyncSender<()>),
}

#[derive(Default)]
struct Counters {
    dropped: AtomicU64,
    failed: AtomicU64,
    handled: AtomicU64,
}

/// Options of a [`QueuedSink`].
#[derive(Clone)]
#[non_exhaustive]
pub struct QueueOptions {
    /// Name of the wrapped sink (the `sink` label of `sink_dropped`; default `sink`).
    pub name: String,
    /// Events held while the sink is busy (default 10 000, at least 1).
    pub capacity: usize,
    /// Where `<prefix>_sink_dropped{sink}` is counted (none by default).
    pub metrics: Option<Arc<dyn MetricsBackend>>,
    /// Metric-name prefix (default `power_loop`).
    pub prefix: String,
    /// Longest wait of [`flush`](EventSink::flush) and drop for the worker (default 5 s).
    pub flush_timeout: Duration,
}

impl std::fmt::Debug for QueueOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueOptions")
            .field("name", &self.name)
            .field("capacity", &self.capacity)
            .field("prefix", &self.prefix)
            .field("flush_timeout", &self.flush_timeout)
            .finish_non_exhaustive()
    }
}

impl Default for QueueOptions {
    fn default() -> Self {
        QueueOptions {
            name: "sink".to_owned(),
            capacity: 10_000,
            metrics: None,
            prefix: "power_loop".to_owned(),
            flush_timeout: Duration::from_secs(5),
        }
    }
}

impl QueueOptions {
    /// Sets the sink's name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
    /// Sets the queue capacity (at least 1).
    pub fn capacity(mut self, n: usize) -> Self {
        self.capacity = n.max(1);
        self
    }
    /// Counts drops as `<prefix>_sink_dropped{sink=<name>}` on this backend.
    pub fn metrics(mut self, backend: Arc<dyn MetricsBackend>) -> Self {
        self.metrics = Some(backend);
        self
    }
    /// Sets the metric-name prefix.
    pub fn prefix(mut self, p: impl Into<String>) -> Self {
        self.prefix = p.into();
        self
    }
    /// Sets how long flush and drop wait for the worker.
    pub fn flush_timeout(mut self, t: Duration) -> Self {
        self.flush_timeout = t;
        self
    }
}

/// Wraps a sink: [`handle`](EventSink::handle) only enqueues (never blocks, never fails); a
/// worker thread feeds the inner sink. A full queue drops the event and counts it
/// ([`dropped`](Self::dropped), and `<prefix>_sink_dropped{sink}` when a metrics backend is set);
/// an error or panic of the inner sink is counted ([`failed`](Self::failed)) and logged, and the
/// worker goes on. Drop drains what is queued (bounded by the flush timeout), then flushes the
/// inner sink.
pub struct QueuedSink {
    tx: Mutex<Option<SyncSender<Msg>>>,
    counters: Arc<Counters>,
    worker: Mutex<Option<JoinHandle<()>>>,
    opts: QueueOptions,
}

impl std::fmt::Debug for QueuedSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueuedSink")
            .field("name", &self.opts.name)
            .field("dropped", &self.dropped())
            .field("failed", &self.failed())
            .finish_non_exhaustive()
    }
}

fn worker_loop(inner: &Arc<dyn EventSink>, rx: &Receiver<Msg>, c: &Counters, name: &str) {
    let run = |what: &str, f: &dyn Fn() -> Result<()>| match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            c.failed.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(target: "power_loop::events", sink = name, error = %e, "event sink failed to {what}; the run goes on");
            false
        }
        Err(_) => {
            c.failed.fetch_add(1, Ordering::Relaxed);
            tracing::error!(target: "power_loop::events", sink = name, "event sink panicked on {what}; the run goes on");
            false
        }
    };
    while let Ok(msg) = rx.recv() {
        match msg {
            Msg::Event(ev) => {
                run("handle an event", &|| inner.handle(&ev));
                c.handled.fetch_add(1, Ordering::Relaxed);
            }
            Msg::Flush(done) => {
                run("flush", &|| inner.flush());
                let _ = done.try_send(());
            }
        }
    }
    run("flush", &|| inner.flush());
}

impl QueuedSink {
    /// Starts the worker thread for `inner`.
    pub fn new(inner: Arc<dyn EventSink>, opts: QueueOptions) -> Result<Self> {
        let (tx, rx) = sync_channel::<Msg>(opts.capacity.max(1));
        let counters = Arc::new(Counters::default());
        let c = Arc::clone(&counters);
        let name = opts.name.clone();
        let worker = std::thread::Builder::new()
            .name(format!("power-loop-sink-{}", opts.name))
            .spawn(move || worker_loop(&inner, &rx, &c, &name))
            .map_err(|e| {
                Error::new(
                    ErrorCode::Io,
                    format!("cannot start the event-sink worker thread: {e}"),
                )
                .with_source(e)
            })?;
        Ok(QueuedSink {
            tx: Mutex::new(Some(tx)),
            counters,
            worker: Mutex::new(Some(worker)),
            opts,
        })
    }

    /// Events discarded because the queue was full (or the worker gone).
    pub fn dropped(&self) -> u64 {
        self.counters.dropped.load(Ordering::Relaxed)
    }

    /// Events or flushes the inner sink failed on (errors and panics).
    pub fn failed(&self) -> u64 {
        self.counters.failed.load(Ordering::Relaxed)
    }

    /// Events the inner sink has processed (successfully or not).
    pub fn handled(&self) -> u64 {
        self.counters.handled.load(Ordering::Relaxed)
    }

    fn count_drop(&self) {
        self.counters.dropped.fetch_add(1, Ordering::Relaxed);
        if let Some(m) = &self.opts.metrics {
            let name = format!("{}_sink_dropped", self.opts.prefix);
            if let Err(e) = m.incr(&name, 1, &[("sink", self.opts.name.as_str())]) {
                tracing::debug!(target: "power_loop::events", error = %e, "cannot count a dropped event");
            }
        }
    }

    fn sender(&self) -> Option<SyncSender<Msg>> {
        self.tx.lock().ok().and_then(|g| g.clone())
    }
}

impl EventSink for QueuedSink {
    fn handle(&self, event: &AgentEvent) -> Result<()> {
        let Some(tx) = self.sender() else {
            self.count_drop();
            return Ok(());
        };
        match tx.try_send(Msg::Event(Box::new(event.clone()))) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => self.count_drop(),
        }
        Ok(())
    }

    /// Waits (up to the flush timeout) until everything queued before the call was handled and
    /// the inner sink flushed. Times out with `ErrorCode::SubscriberFailed`; never blocks forever.
    fn flush(&self) -> Result<()> {
        let Some(tx) = self.sender() else {
            return Ok(());
        };
        let deadline = Instant::now() + self.opts.flush_timeout;
        let (done_tx, done_rx) = sync_channel::<()>(1);
        let mut msg = Msg::Flush(done_tx);
        loop {
            match tx.try_send(msg) {
                Ok(()) => break,
                Err(TrySendError::Disconnected(_)) => return Ok(()),
                Err(TrySendError::Full(m)) => {
                    if Instant::now() >= deadline {
                        return Err(flush_timeout(&self.opts.name));
                    }
                    msg = m;
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
        loop {
            match done_rx.try_recv() {
                Ok(()) => return Ok(()),
                Err(TryRecvError::Disconnected) => return Ok(()),
                Err(TryRecvError::Empty) if Instant::now() >= deadline => {
                    return Err(flush_timeout(&self.opts.name));
                }
                Err(TryRecvError::Empty) => std::thread::sleep(Duration::from_millis(1)),
            }
        }
    }
}

fn flush_timeout(name: &str) -> Error {
    Error::new(
        ErrorCode::SubscriberFailed,
        format!("event sink `{name}` did not drain its queue in time"),
    )
}

impl Drop for QueuedSink {
    fn drop(&mut self) {
        if let Ok(mut g) = self.tx.lock() {
            g.take();
        }
        let handle = self.worker.lock().ok().and_then(|mut g| g.take());
        if let Some(h) = handle {
            let deadline = Instant::now() + self.opts.flush_timeout;
            while !h.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            if h.is_finished() {
                let _ = h.join();
            }
        }
    }
}
