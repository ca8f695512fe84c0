//! W1 (turns) and W6 (events): one session, N sequential sends, a 20-word scripted answer, no
//! tools. W6 adds an event-bus subscriber counting every event.
//!
//! Options: `--sends N` (default 1000).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use power_loop::{EventFilter, NewSessionOptions};
use power_loop::{ScriptedLlm, ScriptedStep};
use serde_json::json;

use super::common::{
    ANSWER, Target, close, err, expect_completed, peak_rss_mb, round1, round2, runtime,
};
use crate::args::Args;

/// `--workload W1`.
pub(crate) fn run_w1(args: &Args) -> Result<serde_json::Value, String> {
    run(args, "W1", false)
}

/// `--workload W6`.
pub(crate) fn run_w6(args: &Args) -> Result<serde_json::Value, String> {
    run(args, "W6", true)
}

fn run(args: &Args, name: &str, count_events: bool) -> Result<serde_json::Value, String> {
    let sends = args.usize_or("sends", 1000)?.max(1);
    let target = Target::from_args(args, name)?;
    let rt = runtime()?;
    let llm = ScriptedLlm::from_fn(|_req| ScriptedStep::text(ANSWER)).record_requests(false);
    let lp = target.agent_loop(Arc::new(llm), None)?;
    let events = Arc::new(AtomicU64::new(0));
    if count_events {
        let ev = Arc::clone(&events);
        lp.event_bus().subscribe(EventFilter::All, move |_e| {
            ev.fetch_add(1, Ordering::Relaxed);
            Ok(())
        });
    }
    let (sid, elapsed, each) = rt.block_on(async {
        let sid = lp
            .new_session(NewSessionOptions::default())
            .await
            .map_err(err)?;
        let mut each = Vec::with_capacity(sends);
        let t = Instant::now();
        for i in 0..sends {
            let one = Instant::now();
            let r = lp
                .send(&sid, format!("message {i}: what changed this quarter?"))
                .await;
            expect_completed(name, r)?;
            each.push(one.elapsed().as_secs_f64() * 1e6);
        }
        let elapsed = t.elapsed();
        close(&lp).await?;
        Ok::<_, String>((sid, elapsed, each))
    })?;
    // The per-send cost as the history grows: first and last tenth of the sends.
    let tenth = (sends / 10).max(1);
    let mean = |v: &[f64]| round1(v.iter().sum::<f64>() / v.len().max(1) as f64);
    let rss = peak_rss_mb();
    let checked = rt.block_on(target.check_messages(name, &[(sid, sends * 2)]))?;
    let mut out = json!({
        "workload": name,
        "sends_per_s": (sends as f64 / elapsed.as_secs_f64()).round(),
        "peak_rss_mb": rss,
        "messages_checked": checked,
        "sends": sends,
        "mean_send_us": round1(elapsed.as_secs_f64() * 1e6 / sends as f64),
        "first_tenth_mean_send_us": mean(&each[..tenth]),
        "last_tenth_mean_send_us": mean(&each[sends - tenth..]),
        "backend": target.backend,
        "lease": target.lease,
    });
    if count_events {
        let n = events.load(Ordering::Relaxed);
        out["events"] = json!(n);
        out["events_per_send"] = json!(round2(n as f64 / sends as f64));
    }
    Ok(out)
}
