use super::*;
use power_loop_contracts::EventPayload;
use power_loop_contracts::event::{SessionStartedPayload, SystemLogPayload};
use std::sync::atomic::AtomicUsize;

fn ev(msg: &str) -> AgentEvent {
    AgentEvent::new(EventPayload::SystemLog(SystemLogPayload {
        message: msg.to_owned(),
        level: "info".to_owned(),
    }))
}

fn msg_of(e: &AgentEvent) -> String {
    match &e.payload {
        EventPayload::SystemLog(p) => p.message.clone(),
        other => format!("{:?}", other.event_type()),
    }
}

#[test]
fn globals_run_before_typed_and_priority_orders_within_group() {
    let bus = AgentEventBus::new();
    let log = Arc::new(Mutex::new(Vec::<String>::new()));
    let l = log.clone();
    bus.subscribe_with_priority(EventType::SystemLog, -10, move |_| {
        l.lock().unwrap().push("typed-10".into());
        Ok(())
    });
    let l = log.clone();
    bus.subscribe_with_priority(EventFilter::All, 5, move |_| {
        l.lock().unwrap().push("global5".into());
        Ok(())
    });
    let l = log.clone();
    bus.subscribe_with_priority(EventFilter::All, 0, move |_| {
        l.lock().unwrap().push("global0a".into());
        Ok(())
    });
    let l = log.clone();
    bus.subscribe_with_priority(EventFilter::All, 0, move |_| {
        l.lock().unwrap().push("global0b".into());
        Ok(())
    });
    let l = log.clone();
    bus.subscribe(EventType::SessionStarted, move |_| {
        l.lock().unwrap().push("other".into());
        Ok(())
    });
    bus.publish(ev("x")).unwrap();
    assert_eq!(
        *log.lock().unwrap(),
        vec!["global0a", "global0b", "global5", "typed-10"]
    );
}

#[test]
fn unsubscribe_removes_only_that_subscription() {
    let bus = AgentEventBus::new();
    let n = Arc::new(AtomicUsize::new(0));
    let n1 = n.clone();
    let a = bus.subscribe(EventFilter::All, move |_| {
        n1.fetch_add(1, Ordering::SeqCst);
        Ok(())
    });
    let n2 = n.clone();
    bus.subscribe(EventFilter::All, move |_| {
        n2.fetch_add(10, Ordering::SeqCst);
        Ok(())
    });
    assert!(bus.unsubscribe(a));
    assert!(!bus.unsubscribe(a));
    bus.publish(ev("x")).unwrap();
    assert_eq!(n.load(Ordering::SeqCst), 10);
}

#[test]
fn failing_subscriber_is_counted_not_raised_by_default() {
    let bus = AgentEventBus::new();
    let after = Arc::new(AtomicUsize::new(0));
    bus.subscribe(EventFilter::All, |_| Err(Error::internal("boom")));
    bus.subscribe(EventFilter::All, |_| panic!("subscriber panic"));
    let a = after.clone();
    bus.subscribe(EventFilter::All, move |_| {
        a.fetch_add(1, Ordering::SeqCst);
        Ok(())
    });
    assert!(bus.publish(ev("x")).is_ok());
    assert_eq!(bus.subscriber_errors(), 2);
    assert_eq!(after.load(Ordering::SeqCst), 1);

    bus.propagate_subscriber_errors(true);
    let e = bus.publish(ev("y")).unwrap_err();
    assert_eq!(e.code(), ErrorCode::SubscriberFailed);
    assert_eq!(
        after.load(Ordering::SeqCst),
        1,
        "later subscribers are not called"
    );
}

fn overflow_run(policy: OverflowPolicy) -> (Vec<String>, u64) {
    let bus = AgentEventBus::with_options(BusOptions::background(3, policy));
    let gate = Arc::new((Mutex::new(false), Condvar::new()));
    let entered = Arc::new(AtomicBool::new(false));
    let got = Arc::new(Mutex::new(Vec::new()));
    let (g, en, gt) = (gate.clone(), entered.clone(), got.clone());
    bus.subscribe(EventFilter::All, move |e| {
        en.store(true, Ordering::SeqCst);
        let (m, c) = &*g;
        let mut open = m.lock().unwrap();
        while !*open {
            open = c.wait(open).unwrap();
        }
        gt.lock().unwrap().push(msg_of(e));
        Ok(())
    });
    bus.publish(ev("0")).unwrap();
    while !entered.load(Ordering::SeqCst) {
        std::thread::yield_now();
    }
    let opener = {
        let g = gate.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            let (m, c) = &*g;
            *m.lock().unwrap() = true;
            c.notify_all();
        })
    };
    for i in 1..=9 {
        bus.publish(ev(&i.to_string())).unwrap();
    }
    opener.join().unwrap();
    assert!(bus.shutdown(Duration::from_secs(5)));
    let v = got.lock().unwrap().clone();
    (v, bus.dropped())
}

#[test]
fn background_overflow_policies() {
    let (v, d) = overflow_run(OverflowPolicy::DropNewest);
    assert_eq!(v, vec!["0", "1", "2", "3"]);
    assert_eq!(d, 6);
    let (v, d) = overflow_run(OverflowPolicy::DropOldest);
    assert_eq!(v, vec!["0", "7", "8", "9"]);
    assert_eq!(d, 6);
    let (v, d) = overflow_run(OverflowPolicy::Block);
    assert_eq!(v.len(), 10);
    assert_eq!(d, 0);
}

#[test]
fn background_worker_survives_a_failing_subscriber_and_shutdown_flushes() {
    let bus = AgentEventBus::with_options(BusOptions::background(100, OverflowPolicy::Block));
    let n = Arc::new(AtomicUsize::new(0));
    bus.subscribe(EventFilter::All, |_| panic!("bad"));
    let n1 = n.clone();
    bus.subscribe(EventFilter::All, move |_| {
        n1.fetch_add(1, Ordering::SeqCst);
        Ok(())
    });
    for i in 0..20 {
        bus.publish(ev(&i.to_string())).unwrap();
    }
    assert!(bus.shutdown(Duration::from_secs(5)));
    assert!(bus.shutdown(Duration::from_secs(5)), "idempotent");
    assert_eq!(n.load(Ordering::SeqCst), 20);
    assert_eq!(bus.subscriber_errors(), 20);
}

#[tokio::test]
async fn async_subscribers_are_tracked_by_drain() {
    let bus = AgentEventBus::new();
    let n = Arc::new(AtomicUsize::new(0));
    let n1 = n.clone();
    bus.subscribe_async(EventType::SessionStarted, 0, move |_e| {
        let n1 = n1.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(20)).await;
            n1.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    });
    for _ in 0..3 {
        bus.publish(AgentEvent::new(EventPayload::SessionStarted(
            SessionStartedPayload {
                scope: "main".into(),
            },
        )))
        .unwrap();
    }
    assert!(bus.drain(Some(Duration::from_secs(5))).await);
    assert_eq!(n.load(Ordering::SeqCst), 3);
}

#[test]
fn seq_is_strictly_increasing_across_threads() {
    let handles: Vec<_> = (0..4)
        .map(|_| std::thread::spawn(|| (0..200).map(|_| ev("x").seq).collect::<Vec<_>>()))
        .collect();
    let mut all: Vec<u64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    let n = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), n);
}
