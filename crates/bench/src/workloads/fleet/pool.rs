//! The parent side of W7 and the fight: worker processes (this binary re-executed as the hidden
//! `W7-worker` workload) fed send jobs over their stdin, acknowledging over their stdout.
//!
//! Protocol, one tab-separated line each:
//! - parent → worker: `job <id> <session id> <user text>`; closing stdin means "no more jobs".
//! - worker → parent: `ready` (store open), `ack <id>` (the send completed and was committed),
//!   `fail <id> <error code> <message>`, and after stdin closed and its sends drained,
//!   `stats <lease_held retries>`.
//!
//! The parent keeps at most `in_flight` jobs outstanding per worker and hands a session's send
//! `k + 1` out only after send `k` was acknowledged, so one driver's sends to a session stay in
//! order. With a shared queue (W7) any worker may get any session's next send; with one queue
//! per worker (the fight) every worker sends to every session.

use std::collections::{HashMap, VecDeque};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

use super::check::Acked;
use super::config::{FleetConfig, turn_text};

/// A line from worker `.0`.
type Event = (usize, Line);

/// One parsed worker line.
enum Line {
    Ready,
    Ack(u64),
    Fail(u64, String),
    Stats(u64),
    /// The worker's stdout closed (it exited).
    Closed,
    Other(String),
}

fn parse_line(l: &str) -> Line {
    let mut parts = l.splitn(3, '\t');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("ready"), None, None) => Line::Ready,
        (Some("ack"), Some(id), None) => {
            id.parse().map_or_else(|_| Line::Other(l.into()), Line::Ack)
        }
        (Some("fail"), Some(id), rest) => id.parse().map_or_else(
            |_| Line::Other(l.into()),
            |id| Line::Fail(id, rest.unwrap_or_default().replace('\t', ": ")),
        ),
        (Some("stats"), Some(n), None) => n
            .parse()
            .map_or_else(|_| Line::Other(l.into()), Line::Stats),
        _ => Line::Other(l.into()),
    }
}

/// Running worker processes.
pub(crate) struct Workers {
    children: Vec<Child>,
    stdins: Vec<Option<ChildStdin>>,
    events: mpsc::UnboundedReceiver<Event>,
}

/// How a run hands out jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Queueing {
    /// One queue of `(session, send)` jobs every worker pulls from (W7): chain 0 only.
    Shared,
    /// Worker `w` drives chain `w` of every session (the fight).
    PerWorker,
}

impl Queueing {
    /// The tag in the turn texts of a run handing out jobs this way (`w7`, `fight`).
    pub(crate) fn tag(self) -> &'static str {
        match self {
            Queueing::Shared => "w7",
            Queueing::PerWorker => "fight",
        }
    }
}

/// What the workers did.
pub(crate) struct Outcome {
    /// Per session, the acknowledged user texts of each chain.
    pub(crate) acked: Vec<Acked>,
    /// From the first job handed out to the last answer.
    pub(crate) elapsed: Duration,
    /// Sends acknowledged.
    pub(crate) sends: usize,
    /// Failed sends (`session: code: message`); a failed send ends its chain.
    pub(crate) failures: Vec<String>,
    /// `session.lease_held` errors the workers saw and retried.
    pub(crate) lease_held_retries: u64,
}

impl Workers {
    /// Starts `n` workers on `dsn` / `prefix` and waits until each has its store open.
    pub(crate) async fn start(
        n: usize,
        dsn: &str,
        prefix: &str,
        cfg: &FleetConfig,
    ) -> Result<Self, String> {
        let exe = std::env::current_exe().map_err(|e| format!("locating this binary: {e}"))?;
        let (tx, events) = mpsc::unbounded_channel();
        let mut children = Vec::with_capacity(n);
        let mut stdins = Vec::with_capacity(n);
        for w in 0..n {
            let mut cmd = Command::new(&exe);
            cmd.args([
                "--workload",
                "W7-worker",
                "--dsn",
                dsn,
                "--table-prefix",
                prefix,
            ])
            .arg(format!("--in-flight={}", cfg.in_flight))
            .arg(format!("--latency-ms={}", cfg.latency_ms));
            if let Some(ms) = cfg.lease_wait_ms {
                cmd.arg(format!("--lease-wait-ms={ms}"));
            }
            if let Some(p) = &cfg.pool {
                cmd.arg(format!("--pool={p}"));
            }
            let mut child = cmd
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| format!("starting worker {w}: {e}"))?;
            let stdout = child
                .stdout
                .take()
                .ok_or_else(|| format!("worker {w} has no stdout"))?;
            stdins.push(child.stdin.take());
            children.push(child);
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stdout).lines();
                while let Ok(Some(l)) = lines.next_line().await {
                    if tx.send((w, parse_line(&l))).is_err() {
                        return;
                    }
                }
                let _ = tx.send((w, Line::Closed));
            });
        }
        let mut workers = Workers {
            children,
            stdins,
            events,
        };
        let mut ready = 0;
        while ready < n {
            match tokio::time::timeout(Duration::from_secs(60), workers.events.recv()).await {
                Ok(Some((_, Line::Ready))) => ready += 1,
                Ok(Some((w, Line::Closed))) => {
                    return Err(format!("worker {w} exited before it was ready"));
                }
                Ok(Some((w, other))) => return Err(unexpected(w, &other)),
                Ok(None) => return Err("every worker went away".into()),
                Err(_) => return Err(format!("only {ready} of {n} workers were ready after 60 s")),
            }
        }
        Ok(workers)
    }

    async fn send_job(&mut self, w: usize, id: u64, sid: &str, text: &str) -> Result<(), String> {
        let stdin = self.stdins[w]
            .as_mut()
            .ok_or_else(|| format!("worker {w}'s stdin is closed"))?;
        stdin
            .write_all(format!("job\t{id}\t{sid}\t{text}\n").as_bytes())
            .await
            .map_err(|e| format!("writing to worker {w}: {e}"))
    }

    /// Drives `sends` sends per session (and chain) through the workers: see the module docs.
    pub(crate) async fn drive(
        &mut self,
        sids: &[String],
        cfg: &FleetConfig,
        queueing: Queueing,
    ) -> Result<Outcome, String> {
        let n = self.stdins.len();
        let chains = if queueing == Queueing::Shared { 1 } else { n };
        let queue_of = |w: usize| if queueing == Queueing::Shared { 0 } else { w };
        // (session, chain, send)
        let mut queues: Vec<VecDeque<(usize, usize, usize)>> = (0..chains)
            .map(|c| (0..sids.len()).map(|s| (s, c, 0)).collect())
            .collect();
        let mut acked: Vec<Acked> = sids
            .iter()
            .map(|s| Acked {
                session_id: s.clone(),
                chains: vec![Vec::new(); chains],
            })
            .collect();
        let mut free = vec![cfg.in_flight; n];
        let mut outstanding: HashMap<u64, (usize, usize, usize, usize, String)> = HashMap::new();
        let (mut next_id, mut sends, mut remaining) =
            (0u64, 0usize, sids.len() * chains * cfg.sends);
        let mut failures = Vec::new();
        let start = Instant::now();
        let mut elapsed = Duration::ZERO;
        while remaining > 0 {
            // Hand out jobs round-robin, one per worker with a free slot per pass.
            loop {
                let mut progressed = false;
                for w in 0..n {
                    if free[w] == 0 {
                        continue;
                    }
                    let Some((s, c, k)) = queues[queue_of(w)].pop_front() else {
                        continue;
                    };
                    let text = turn_text(queueing.tag(), s, c, k);
                    self.send_job(w, next_id, &sids[s], &text).await?;
                    outstanding.insert(next_id, (w, s, c, k, text));
                    next_id += 1;
                    free[w] -= 1;
                    progressed = true;
                }
                if !progressed {
                    break;
                }
            }
            let (w, line) = self
                .events
                .recv()
                .await
                .ok_or("every worker went away mid-run")?;
            let (id, failure) = match line {
                Line::Ack(id) => (id, None),
                Line::Fail(id, why) => (id, Some(why)),
                Line::Closed => return Err(format!("worker {w} exited mid-run")),
                other => return Err(unexpected(w, &other)),
            };
            let (owner, s, c, k, text) = outstanding
                .remove(&id)
                .ok_or_else(|| format!("worker {w} answered job {id}, which it was never given"))?;
            if owner != w {
                return Err(format!("worker {w} answered job {id} of worker {owner}"));
            }
            free[w] += 1;
            remaining -= 1;
            elapsed = start.elapsed();
            match failure {
                None => {
                    sends += 1;
                    acked[s].chains[c].push(text);
                    if k + 1 < cfg.sends {
                        let q = if queueing == Queueing::Shared { 0 } else { c };
                        queues[q].push_back((s, c, k + 1));
                    }
                }
                Some(why) => {
                    failures.push(format!("{}: {why}", sids[s]));
                    // The chain ends here: its later sends are never made.
                    remaining -= cfg.sends - k - 1;
                }
            }
        }
        let lease_held_retries = self.finish().await?;
        Ok(Outcome {
            acked,
            elapsed,
            sends,
            failures,
            lease_held_retries,
        })
    }

    /// Closes every worker's stdin, collects their `stats` lines and waits for them to exit.
    async fn finish(&mut self) -> Result<u64, String> {
        for s in &mut self.stdins {
            drop(s.take());
        }
        let (mut retries, mut open) = (0, self.children.len());
        while open > 0 {
            match tokio::time::timeout(Duration::from_secs(120), self.events.recv()).await {
                Ok(Some((_, Line::Stats(n)))) => retries += n,
                Ok(Some((_, Line::Closed))) => open -= 1,
                Ok(Some((w, other))) => return Err(unexpected(w, &other)),
                Ok(None) => break,
                Err(_) => return Err("the workers did not exit within 120 s".into()),
            }
        }
        for (w, c) in self.children.iter_mut().enumerate() {
            let status = c
                .wait()
                .await
                .map_err(|e| format!("waiting for worker {w}: {e}"))?;
            if !status.success() {
                return Err(format!("worker {w} exited with {status}"));
            }
        }
        Ok(retries)
    }
}

fn unexpected(w: usize, line: &Line) -> String {
    match line {
        Line::Other(l) => format!("worker {w} printed `{l}`"),
        _ => format!("worker {w} sent a line out of turn"),
    }
}
