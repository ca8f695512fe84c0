//! W4 (many sessions): `--sessions` sessions (default 1,000) × `--sends` sends (default 5), at
//! most `--in-flight` sessions (default 100) driven at once, one loop, one store. Each of the
//! in-flight workers takes the next session number, creates the session and sends to it
//! sequentially; the clock covers session creation and every send. `--pg` (or a
//! `--dsn postgres://…`) runs it on PostgreSQL, `--mysql` (or `--dsn mysql://…`) on MySQL /
//! MariaDB. `--synchronous FULL` runs it at SQLite `synchronous=FULL` (durable across power loss;
//! the default is NORMAL); the report names the level. `--group-commit off` (a diagnostic)
//! commits every SQLite write transaction on its own instead of in groups.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use power_loop::NewSessionOptions;
use power_loop::{ScriptedLlm, ScriptedStep};
use serde_json::json;

use super::common::{ANSWER, Target, close, err, expect_completed, peak_rss_mb, round1, runtime};
use crate::args::Args;

/// `--workload W4`.
pub(crate) fn run(args: &Args) -> Result<serde_json::Value, String> {
    let name = "W4";
    let sessions = args.usize_or("sessions", 1000)?.max(1);
    let sends = args.usize_or("sends", 5)?.max(1);
    let in_flight = args.usize_or("in-flight", 100)?.clamp(1, sessions);
    let target = Target::from_args(args, name)?;
    let rt = runtime()?;
    let llm = ScriptedLlm::from_fn(|_req| ScriptedStep::text(ANSWER)).record_requests(false);
    let lp = target.agent_loop(Arc::new(llm), None)?;
    let (sids, elapsed) = rt.block_on(async {
        // Open the store before the clock starts (a server pool connects here).
        lp.store().await.map_err(err)?;
        let next = Arc::new(AtomicUsize::new(0));
        let t = Instant::now();
        let mut workers = Vec::with_capacity(in_flight);
        for _ in 0..in_flight {
            let lp = lp.clone();
            let next = Arc::clone(&next);
            workers.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                while next.fetch_add(1, Ordering::Relaxed) < sessions {
                    let sid = lp
                        .new_session(NewSessionOptions::default())
                        .await
                        .map_err(|e| format!("{name}: creating a session: {e}"))?;
                    for i in 0..sends {
                        let r = lp
                            .send(&sid, format!("message {i}: what changed this quarter?"))
                            .await;
                        expect_completed(name, r)?;
                    }
                    mine.push(sid);
                }
                Ok::<_, String>(mine)
            }));
        }
        let mut sids = Vec::with_capacity(sessions);
        for w in workers {
            sids.extend(
                w.await
                    .map_err(|e| format!("{name}: a worker panicked: {e}"))??,
            );
        }
        let elapsed = t.elapsed();
        close(&lp).await?;
        Ok::<_, String>((sids, elapsed))
    })?;
    let rss = peak_rss_mb();
    if sids.len() != sessions {
        return Err(format!(
            "{name}: {} sessions were driven, expected {sessions}",
            sids.len()
        ));
    }
    let expected: Vec<(String, usize)> = sids.into_iter().map(|s| (s, sends * 2)).collect();
    let checked = rt.block_on(target.check_messages(name, &expected))?;
    let total = (sessions * sends) as f64;
    Ok(json!({
        "workload": name,
        "sends_per_s": (total / elapsed.as_secs_f64()).round(),
        "peak_rss_mb": rss,
        "messages_checked": checked,
        "sessions": sessions,
        "sends_per_session": sends,
        "in_flight": in_flight,
        "elapsed_ms": round1(elapsed.as_secs_f64() * 1e3),
        "backend": target.backend,
        "lease": target.lease,
        "synchronous": target.synchronous,
        "group_commit": target.group_commit,
    }))
}
