//! [`AgentEventBus`]: typed event fan-out with inline subscribers and an opt-in bounded
//! background dispatcher.
//!
//! * Subscribe to every event ([`EventFilter::All`]) or to one [`EventType`], with a priority.
//!   On publish, **all global subscribers run first**, then the type-specific ones; within each
//!   group by `(priority ascending, subscription order)`.
//! * Inline subscribers run on the publishing task, synchronously, in that order.
//! * With [`BusOptions::background`], subscribers run on one worker thread fed by a bounded FIFO;
//!   when it is full the [`OverflowPolicy`] decides (`DropNewest`, `DropOldest`, `Block`) and
//!   [`AgentEventBus::dropped`] counts discarded events.
//! * Async subscribers ([`AgentEventBus::subscribe_async`]) are spawned as tracked tokio tasks;
//!   [`AgentEventBus::drain`] waits for them (and for the background queue).
//! * A failing (or panicking) subscriber does **not** abort the run: the error is counted
//!   ([`AgentEventBus::subscriber_errors`]) and logged through `tracing`. Opt in to propagation with
//!   [`AgentEventBus::propagate_subscriber_errors`]; then an inline failure is returned by
//!   [`AgentEventBus::publish`] (code `event.subscriber_failed`) and the pipeline aborts the run.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::{Duration, Instant};

use power_loop_contracts::event::EventType;
use power_loop_contracts::{AgentEvent, BoxFuture, Error, ErrorCode, Result};

/// Which events a subscription receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventFilter {
    /// Every event (a "global" subscriber; runs before typed ones).
    All,
    /// Only events of this type.
    Only(EventType),
}

impl From<EventType> for EventFilter {
    fn from(t: EventType) -> Self {
        EventFilter::Only(t)
    }
}

/// What the background dispatcher does when its queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OverflowPolicy {
    /// Discard the new event (counted in `dropped`).
    #[default]
    DropNewest,
    /// Discard the oldest queued event and enqueue the new one (counted in `dropped`).
    DropOldest,
    /// Make the publisher wait for space.
    Block,
}

/// How the bus dispatches synchronous subscribers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct BusOptions {
    /// `true`: subscribers run on one background worker thread; `false` (default): inline.
    pub background: bool,
    /// Capacity of the background queue (clamped to ≥ 1; default 1000).
    pub queue_capacity: usize,
    /// Policy when the background queue is full.
    pub overflow: OverflowPolicy,
    /// Return subscriber failures from `publish` (aborting the run) instead of logging them.
    pub propagate_errors: bool,
}

impl Default for BusOptions {
    fn default() -> Self {
        BusOptions {
            background: false,
            queue_capacity: 1000,
            overflow: OverflowPolicy::DropNewest,
            propagate_errors: false,
        }
    }
}

impl BusOptions {
    /// Inline dispatch (the default).
    pub fn inline() -> Self {
        Self::default()
    }
    /// A bounded background dispatcher with this capacity and overflow policy.
    pub fn background(queue_capacity: usize, overflow: OverflowPolicy) -> Self {
        BusOptions {
            background: true,
            queue_capacity: queue_capacity.max(1),
            overflow,
            propagate_errors: false,
        }
    }
}

/// Handle returned by `subscribe*`; pass it to [`AgentEventBus::unsubscribe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SubscriptionId(u64);

type SyncHandler = Arc<dyn Fn(&AgentEvent) -> Result<()> + Send + Sync>;
type AsyncHandler = Arc<dyn Fn(AgentEvent) -> BoxFuture<'static, Result<()>> + Send + Sync>;

#[derive(Clone)]
enum Handler {
    Sync(SyncHandler),
    Async(AsyncHandler),
}

#[derive(Clone)]
struct Sub {
    id: u64,
    priority: i32,
    handler: Handler,
}

#[derive(Default)]
struct Subs {
    global: Vec<Sub>,
    typed: Vec<(EventType, Vec<Sub>)>,
}

struct Queue {
    items: VecDeque<(Arc<AgentEvent>, Vec<SyncHandler>)>,
    busy: bool,
    stop: bool,
}

struct Worker {
    queue: Mutex<Queue>,
    not_empty: Condvar,
    not_full: Condvar,
    idle: Condvar,
    capacity: usize,
    overflow: OverflowPolicy,
}

struct Inner {
    subs: RwLock<Subs>,
    next_id: AtomicU64,
    propagate: AtomicBool,
    errors: AtomicU64,
    dropped: AtomicU64,
    in_flight: AtomicU64,
    in_flight_done: tokio::sync::Notify,
    worker: Option<Arc<Worker>>,
    worker_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// The event bus. Cheap to clone (clones share subscribers and counters).
#[derive(Clone)]
pub struct AgentEventBus {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AgentEventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentEventBus")
            .field("background", &self.inner.worker.is_some())
            .field("dropped", &self.dropped())
            .field("subscriber_errors", &self.subscriber_errors())
            .finish()
    }
}

impl Default for AgentEventBus {
    fn default() -> Self {
        Self::new()
    }
}

fn log_failure(event: &AgentEvent, err: &Error) {
    tracing::error!(
        target: "power_loop::events",
        event_type = event.event_type().as_str(),
        seq = event.seq,
        error = %err,
        "event subscriber failed"
    );
}

fn call_sync(h: &SyncHandler, event: &AgentEvent) -> Result<()> {
    match catch_unwind(AssertUnwindSafe(|| h(event))) {
        Ok(r) => r,
        Err(_) => Err(Error::new(
            ErrorCode::SubscriberFailed,
            "an event subscriber panicked; fix the subscriber",
        )),
    }
}

impl AgentEventBus {
    /// An inline bus (subscribers run on the publishing task; failures are logged, not raised).
    pub fn new() -> Self {
        Self::with_options(BusOptions::default())
    }

    /// A bus with explicit options (starts the worker thread when `background` is set).
    pub fn with_options(options: BusOptions) -> Self {
        let worker = options.background.then(|| {
            Arc::new(Worker {
                queue: Mutex::new(Queue {
                    items: VecDeque::new(),
                    busy: false,
                    stop: false,
                }),
                not_empty: Condvar::new(),
                not_full: Condvar::new(),
                idle: Condvar::new(),
                capacity: options.queue_capacity.max(1),
                overflow: options.overflow,
            })
        });
        let inner = Arc::new(Inner {
            subs: RwLock::new(Subs::default()),
            next_id: AtomicU64::new(1),
            propagate: AtomicBool::new(options.propagate_errors),
            errors: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            in_flight_done: tokio::sync::Notify::new(),
            worker: worker.clone(),
            worker_thread: Mutex::new(None),
        });
        if let Some(w) = worker {
            let errors_inner = Arc::downgrade(&inner);
            let spawned = std::thread::Builder::new()
                .name("power-loop-eventbus".to_owned())
                .spawn(move || worker_loop(&w, &errors_inner));
            match spawned {
                Ok(handle) => {
                    if let Ok(mut slot) = inner.worker_thread.lock() {
                        *slot = Some(handle);
                    }
                }
                Err(e) => tracing::error!(
                    target: "power_loop::events",
                    error = %e,
                    "could not start the event-bus worker thread; background events will queue up"
                ),
            }
        }
        AgentEventBus { inner }
    }

    /// Sets whether subscriber failures abort the run (default `false`: counted and logged).
    pub fn propagate_subscriber_errors(&self, yes: bool) -> &Self {
        self.inner.propagate.store(yes, Ordering::Relaxed);
        self
    }

    /// Subscribes a synchronous handler with priority 0.
    pub fn subscribe<F>(&self, filter: impl Into<EventFilter>, handler: F) -> SubscriptionId
    where
        F: Fn(&AgentEvent) -> Result<()> + Send + Sync + 'static,
    {
        self.subscribe_with_priority(filter, 0, handler)
    }

    /// Subscribes a synchronous handler; lower `priority` runs first within its group.
    pub fn subscribe_with_priority<F>(
        &self,
        filter: impl Into<EventFilter>,
        priority: i32,
        handler: F,
    ) -> SubscriptionId
    where
        F: Fn(&AgentEvent) -> Result<()> + Send + Sync + 'static,
    {
        self.add(filter.into(), priority, Handler::Sync(Arc::new(handler)))
    }

    /// Subscribes an async handler: each event spawns a tracked tokio task (see [`drain`](Self::drain)).
    pub fn subscribe_async<F, Fut>(
        &self,
        filter: impl Into<EventFilter>,
        priority: i32,
        handler: F,
    ) -> SubscriptionId
    where
        F: Fn(AgentEvent) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<()>> + Send + 'static,
    {
        let h: AsyncHandler = Arc::new(move |e| Box::pin(handler(e)));
        self.add(filter.into(), priority, Handler::Async(h))
    }

    fn add(&self, filter: EventFilter, priority: i32, handler: Handler) -> SubscriptionId {
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let sub = Sub {
            id,
            priority,
            handler,
        };
        let mut subs = match self.inner.subs.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let group = match filter {
            EventFilter::All => &mut subs.global,
            EventFilter::Only(t) => {
                let pos = match subs.typed.iter().position(|(k, _)| *k == t) {
                    Some(p) => p,
                    None => {
                        subs.typed.push((t, Vec::new()));
                        subs.typed.len() - 1
                    }
                };
                &mut subs.typed[pos].1
            }
        };
        // Stable: insert after every entry with priority <= ours (ids grow with registration).
        let at = group.partition_point(|s| s.priority <= priority);
        group.insert(at, sub);
        SubscriptionId(id)
    }

    /// Removes a subscription; returns whether it existed.
    pub fn unsubscribe(&self, id: SubscriptionId) -> bool {
        let mut subs = match self.inner.subs.write() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let before = subs.global.len() + subs.typed.iter().map(|t| t.1.len()).sum::<usize>();
        subs.global.retain(|s| s.id != id.0);
        for (_, g) in subs.typed.iter_mut() {
            g.retain(|s| s.id != id.0);
        }
        let after = subs.global.len() + subs.typed.iter().map(|t| t.1.len()).sum::<usize>();
        before != after
    }

    /// Whether any subscriber would receive an event of type `t`.
    pub fn has_subscribers(&self, t: EventType) -> bool {
        let subs = match self.inner.subs.read() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        !subs.global.is_empty() || subs.typed.iter().any(|(k, g)| *k == t && !g.is_empty())
    }

    /// Events discarded by the overflow policy so far.
    pub fn dropped(&self) -> u64 {
        self.inner.dropped.load(Ordering::Relaxed)
    }

    /// Subscriber failures (errors or panics) seen so far.
    pub fn subscriber_errors(&self) -> u64 {
        self.inner.errors.load(Ordering::Relaxed)
    }

    fn snapshot(&self, t: EventType) -> Vec<Handler> {
        let subs = match self.inner.subs.read() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let typed = subs.typed.iter().find(|(k, _)| *k == t).map(|(_, g)| g);
        let n = subs.global.len() + typed.map_or(0, Vec::len);
        let mut out = Vec::with_capacity(n);
        out.extend(subs.global.iter().map(|s| s.handler.clone()));
        if let Some(g) = typed {
            out.extend(g.iter().map(|s| s.handler.clone()));
        }
        out
    }

    /// Publishes an event. Returns an error only when propagation is on and an inline
    /// subscriber failed (later subscribers are then not called).
    pub fn publish(&self, event: AgentEvent) -> Result<()> {
        let handlers = self.snapshot(event.event_type());
        if handlers.is_empty() {
            return Ok(());
        }
        let propagate = self.inner.propagate.load(Ordering::Relaxed);
        let mut offload: Vec<SyncHandler> = Vec::new();
        let shared = Arc::new(event);
        for h in handlers {
            match h {
                Handler::Sync(f) if self.inner.worker.is_some() => offload.push(f),
                Handler::Sync(f) => {
                    if let Err(e) = call_sync(&f, &shared) {
                        self.inner.errors.fetch_add(1, Ordering::Relaxed);
                        log_failure(&shared, &e);
                        if propagate {
                            return Err(Error::new(
                                ErrorCode::SubscriberFailed,
                                format!(
                                    "an event subscriber failed on `{}`: {}",
                                    shared.event_type(),
                                    e.message()
                                ),
                            )
                            .with_source(e));
                        }
                    }
                }
                Handler::Async(f) => self.spawn_async(&f, &shared),
            }
        }
        if !offload.is_empty()
            && let Some(w) = &self.inner.worker
        {
            self.enqueue(w, shared, offload);
        }
        Ok(())
    }

    fn spawn_async(&self, f: &AsyncHandler, event: &Arc<AgentEvent>) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            self.inner.errors.fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                target: "power_loop::events",
                "async event subscriber skipped: no tokio runtime on the publishing thread"
            );
            return;
        };
        let fut = f((**event).clone());
        let inner = Arc::clone(&self.inner);
        let ev_type = event.event_type();
        inner.in_flight.fetch_add(1, Ordering::AcqRel);
        rt.spawn(async move {
            if let Err(e) = fut.await {
                inner.errors.fetch_add(1, Ordering::Relaxed);
                tracing::error!(target: "power_loop::events", event_type = ev_type.as_str(), error = %e, "async event subscriber failed");
            }
            if inner.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
                inner.in_flight_done.notify_waiters();
            }
        });
    }

    fn enqueue(&self, w: &Worker, event: Arc<AgentEvent>, handlers: Vec<SyncHandler>) {
        let mut q = match w.queue.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if q.stop {
            self.inner.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        while q.items.len() >= w.capacity {
            match w.overflow {
                OverflowPolicy::DropNewest => {
                    self.inner.dropped.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                OverflowPolicy::DropOldest => {
                    q.items.pop_front();
                    self.inner.dropped.fetch_add(1, Ordering::Relaxed);
                }
                OverflowPolicy::Block => {
                    q = match w.not_full.wait(q) {
                        Ok(g) => g,
                        Err(p) => p.into_inner(),
                    };
                    if q.stop {
                        self.inner.dropped.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                }
            }
        }
        q.items.push_back((event, handlers));
        w.not_empty.notify_one();
    }

    /// Waits (up to `timeout`, `None` = unbounded) until async subscriber tasks finished and the
    /// background queue is empty and idle. Returns whether everything drained in time.
    pub async fn drain(&self, timeout: Option<Duration>) -> bool {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let tasks_done = self.inner.in_flight.load(Ordering::Acquire) == 0;
            let queue_done = match &self.inner.worker {
                None => true,
                Some(w) => match w.queue.lock() {
                    Ok(q) => q.items.is_empty() && !q.busy,
                    Err(_) => true,
                },
            };
            if tasks_done && queue_done {
                return true;
            }
            if let Some(d) = deadline
                && Instant::now() >= d
            {
                return false;
            }
            let notified = self.inner.in_flight_done.notified();
            let _ = tokio::time::timeout(Duration::from_millis(2), notified).await;
        }
    }

    /// Stops the background worker after it processed what is already queued (bounded by
    /// `timeout`). Later background events are dropped. Idempotent; no-op for inline buses.
    pub fn shutdown(&self, timeout: Duration) -> bool {
        let Some(w) = &self.inner.worker else {
            return true;
        };
        {
            let mut q = match w.queue.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            q.stop = true;
            w.not_empty.notify_all();
            w.not_full.notify_all();
        }
        let handle = match self.inner.worker_thread.lock() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        };
        let Some(handle) = handle else {
            return true;
        };
        let deadline = Instant::now() + timeout;
        while !handle.is_finished() {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let _ = handle.join();
        true
    }
}

fn worker_loop(w: &Worker, inner: &std::sync::Weak<Inner>) {
    loop {
        let (event, handlers) = {
            let mut q = match w.queue.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            q.busy = false;
            w.idle.notify_all();
            loop {
                if let Some(item) = q.items.pop_front() {
                    q.busy = true;
                    w.not_full.notify_one();
                    break item;
                }
                if q.stop {
                    return;
                }
                q = match w.not_empty.wait(q) {
                    Ok(g) => g,
                    Err(p) => p.into_inner(),
                };
            }
        };
        for h in &handlers {
            if let Err(e) = call_sync(h, &event) {
                if let Some(i) = inner.upgrade() {
                    i.errors.fetch_add(1, Ordering::Relaxed);
                }
                log_failure(&event, &e);
            }
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(w) = &self.worker {
            if let Ok(mut q) = w.queue.lock() {
                q.stop = true;
            }
            w.not_empty.notify_all();
            w.not_full.notify_all();
        }
    }
}

#[cfg(test)]
mod tests;
