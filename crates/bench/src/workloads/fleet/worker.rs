//! The hidden `W7-worker` workload: one worker process of W7 or the fight. It opens the store,
//! prints `ready`, then runs every `job` line from stdin as one send (at most `--in-flight` at
//! once) and answers `ack` or `fail` (protocol: see the parent's `pool` module). A
//! `session.lease_held` (another process holds the session) is retried after a short pause and
//! counted; every other error fails the job. When stdin closes it drains its sends, closes the
//! loop and prints `stats <lease_held retries>`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use power_loop::{ErrorCode, RunStatus, StatefulAgentLoop, StoreOptions};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{Semaphore, mpsc};

use super::config::worker_loop;
use crate::args::Args;

/// `--workload W7-worker --dsn D --table-prefix P [--in-flight N] [--latency-ms N]
/// [--lease-wait-ms N] [--pool N]`.
pub(crate) fn run_worker(args: &Args) -> Result<serde_json::Value, String> {
    let dsn = args.get("dsn").ok_or("W7-worker needs --dsn")?.to_owned();
    let prefix = args
        .get("table-prefix")
        .ok_or("W7-worker needs --table-prefix")?
        .to_owned();
    let in_flight = args.usize_or("in-flight", 8)?.max(1);
    let latency =
        Duration::from_millis(u64::try_from(args.usize_or("latency-ms", 20)?).unwrap_or(0));
    let lease_wait = match args.get("lease-wait-ms") {
        None => None,
        Some(v) => {
            Some(Duration::from_millis(v.parse().map_err(|_| {
                format!("--lease-wait-ms must be a number, got `{v}`")
            })?))
        }
    };
    let mut options = StoreOptions::new().with_table_prefix(prefix);
    if let Some(v) = args.get("pool") {
        let n: usize = v
            .parse()
            .map_err(|_| format!("--pool must be a positive integer, got `{v}`"))?;
        let mut connect = power_loop::ConnectOptions::default();
        connect.pool_max_size = n.max(1);
        options = options.with_connect(connect);
    }
    let lp = worker_loop(&dsn, options, latency, lease_wait)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let out = rt.block_on(serve(lp, in_flight));
    rt.shutdown_timeout(Duration::from_secs(5));
    out.map(|()| serde_json::Value::Null)
}

async fn serve(lp: StatefulAgentLoop, in_flight: usize) -> Result<(), String> {
    lp.store()
        .await
        .map_err(|e| format!("W7-worker: opening the store: {e}"))?;
    let (tx, mut rx) = mpsc::unbounded_channel::<String>();
    let writer = tokio::spawn(async move {
        let mut out = tokio::io::stdout();
        while let Some(line) = rx.recv().await {
            let mut buf = line;
            // Batch whatever else is ready into one write.
            while let Ok(more) = rx.try_recv() {
                buf.push_str(&more);
            }
            if out.write_all(buf.as_bytes()).await.is_err() || out.flush().await.is_err() {
                return;
            }
        }
    });
    let _ = tx.send("ready\n".to_owned());
    let slots = Arc::new(Semaphore::new(in_flight));
    let retries = Arc::new(AtomicU64::new(0));
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let mut result = Ok(());
    loop {
        let line = match lines.next_line().await {
            Ok(Some(l)) => l,
            Ok(None) => break,
            Err(e) => {
                result = Err(format!("W7-worker: reading stdin: {e}"));
                break;
            }
        };
        let mut parts = line.splitn(4, '\t');
        let (Some("job"), Some(id), Some(sid), Some(text)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            result = Err(format!("W7-worker: unexpected line `{line}`"));
            break;
        };
        let permit = Arc::clone(&slots)
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        let (lp, tx, retries) = (lp.clone(), tx.clone(), Arc::clone(&retries));
        let (id, sid, text) = (id.to_owned(), sid.to_owned(), text.to_owned());
        tokio::spawn(async move {
            let line = match send(&lp, &sid, &text, &retries).await {
                Ok(()) => format!("ack\t{id}\n"),
                Err((code, msg)) => {
                    format!("fail\t{id}\t{code}\t{}\n", msg.replace(['\t', '\n'], " "))
                }
            };
            let _ = tx.send(line);
            drop(permit);
        });
    }
    // Drain: every slot back means every send answered.
    let all = u32::try_from(in_flight).unwrap_or(u32::MAX);
    let _drained = slots.acquire_many(all).await.map_err(|e| e.to_string())?;
    let closed = lp.close(Duration::from_secs(60)).await;
    let _ = tx.send(format!("stats\t{}\n", retries.load(Ordering::Relaxed)));
    drop(tx);
    let _ = writer.await;
    match closed {
        Ok(true) => result,
        Ok(false) => Err("W7-worker: in-flight runs did not drain within 60 s".into()),
        Err(e) => Err(format!("W7-worker: closing the loop: {e}")),
    }
}

/// One send, retried while another process holds the session's lease.
async fn send(
    lp: &StatefulAgentLoop,
    sid: &str,
    text: &str,
    retries: &AtomicU64,
) -> Result<(), (String, String)> {
    let mut pause = Duration::from_millis(1);
    loop {
        match lp.send(sid, text).await {
            Ok(r) if r.status == RunStatus::Completed => return Ok(()),
            Ok(r) => return Err(("status".into(), format!("the send ended {:?}", r.status))),
            Err(e) if e.code() == ErrorCode::SessionLeaseHeld => {
                retries.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(20));
            }
            Err(e) => return Err((e.code().to_string(), e.message().to_owned())),
        }
    }
}
