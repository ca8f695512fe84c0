//! Throughput of one-round, no-tool sends on SQLite (run in release:
//! `cargo test --release -p power-loop-agent --test throughput -- --ignored --nocapture`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;
use std::time::Instant;

use power_loop_agent::{AgentLoopConfig, NewSessionOptions, StatefulAgentLoop};
use power_loop_llm::ScriptedLlm;
use support::*;

async fn measure(sessions: usize, per_session: usize, concurrent: bool, lease: bool) -> f64 {
    let (store, _d) = sqlite_store().await;
    let llm = ScriptedLlm::new().record_requests(false).text_pieces(1);
    let lp = StatefulAgentLoop::builder(Arc::new(llm))
        .store(store)
        .config(AgentLoopConfig::default().with_session_lease(lease))
        .build()
        .unwrap();
    let mut sids = Vec::new();
    for _ in 0..sessions {
        sids.push(lp.new_session(NewSessionOptions::default()).await.unwrap());
    }
    let t0 = Instant::now();
    if concurrent {
        let mut tasks = Vec::new();
        for sid in sids {
            let lp = lp.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..per_session {
                    lp.send(&sid, format!("message {i}")).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    } else {
        for sid in &sids {
            for i in 0..per_session {
                lp.send(sid, format!("message {i}")).await.unwrap();
            }
        }
    }
    let n = (sessions * per_session) as f64;
    n / t0.elapsed().as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; run in release"]
async fn one_round_sends_per_second_on_sqlite() {
    let seq = measure(50, 40, false, true).await;
    let seq_nolease = measure(50, 40, false, false).await;
    let conc = measure(16, 250, true, true).await;
    println!("sequential sends/s (with lease): {seq:.0}");
    println!("sequential sends/s (no lease):   {seq_nolease:.0}");
    println!("16 concurrent sessions sends/s:  {conc:.0}");
}
