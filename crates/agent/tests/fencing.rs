//! Fencing through the agent loop, on all three backends: a worker loses its session lease
//! while its model call is in flight (PostgreSQL: its lease connection is terminated with
//! `pg_terminate_backend`; MySQL/MariaDB: `KILL`ed; SQLite: its lock file is removed, so the next
//! opener locks a new file — the SQLite loss mode), a second worker takes the session over and
//! writes, and then the first tries to commit its turn: it gets `session.lease_lost` and the store
//! holds only the second worker's turn. On SQLite the second worker is a separate OS process (this
//! test binary re-executed on an ignored test). The same for timer claims: a runner whose claim
//! was taken over cannot deliver or complete, and the firing is delivered exactly once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use power_loop_agent::{
    NewSessionOptions, StatefulAgentLoop, TimerDue, TimerRunner, TimerRunnerOptions,
};
use power_loop_contracts::{BoxFuture, ErrorCode, LlmRequest, LlmService, LlmStream, Result};
use power_loop_llm::ScriptedLlm;
use power_loop_store::conformance::support::open_test_store;
use power_loop_store::db::{TxMode, Value};
use power_loop_store::{SessionStore, now_ms, run_tx, timer_status};
use support::*;
use tokio::sync::Notify;

/// A model that answers like `inner`, but only once the test opens its gate; `arrived` tells the
/// test that a call is waiting.
#[derive(Clone)]
struct GatedLlm {
    inner: ScriptedLlm,
    arrived: Arc<AtomicBool>,
    gate: Arc<Notify>,
}

impl GatedLlm {
    fn new(answer: &str) -> Self {
        GatedLlm {
            inner: ScriptedLlm::new().then_text(answer),
            arrived: Arc::new(AtomicBool::new(false)),
            gate: Arc::new(Notify::new()),
        }
    }

    async fn wait_arrived(&self) {
        for _ in 0..3_000 {
            if self.arrived.load(Ordering::Acquire) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the gated model was never called");
    }

    fn open(&self) {
        self.gate.notify_one();
    }
}

impl LlmService for GatedLlm {
    fn stream(&self, request: LlmRequest) -> BoxFuture<'_, Result<LlmStream>> {
        Box::pin(async move {
            let wait = self.gate.notified();
            self.arrived.store(true, Ordering::Release);
            wait.await;
            self.inner.stream(request).await
        })
    }

    fn capabilities(&self) -> power_loop_contracts::ProviderCapabilities {
        self.inner.capabilities()
    }

    fn model_name(&self) -> String {
        self.inner.model_name()
    }
}

fn texts(lp_msgs: &[power_loop_contracts::Message]) -> Vec<String> {
    lp_msgs.iter().map(|m| m.text().to_owned()).collect()
}

/// Opens the store at `dsn` (any backend) with `prefix`.
async fn open_at(dsn: &str, prefix: &str) -> SessionStore {
    let backends = [
        power_loop_store_sqlite::BACKEND,
        power_loop_store_postgres::BACKEND,
        power_loop_store_mysql::BACKEND,
    ];
    open_test_store(dsn, Some(prefix), &backends).await
}

/// A loop over `store` answering with `llm`.
fn loop_on(llm: impl LlmService + 'static, store: &SessionStore) -> StatefulAgentLoop {
    StatefulAgentLoop::builder(Arc::new(llm))
        .store(store.clone())
        .build()
        .unwrap()
}

/// Which backend a scenario runs on.
#[derive(Clone, Copy)]
enum On {
    /// A SQLite file of this name in a fresh temp dir, tables prefixed `pl_`.
    Sqlite(&'static str),
    /// The PostgreSQL test server, with a fresh table prefix from this tag.
    Postgres(&'static str),
    /// The MySQL/MariaDB test server, with a fresh table prefix from this tag.
    MySql(&'static str),
}

/// The start of a take-over scenario: where the store lives (DSN, table prefix, the temp dir of
/// a SQLite file), worker A (its own store handle, and a loop whose model waits for the test's
/// gate) and a second, independent handle on the same store.
struct Takeover {
    dsn: String,
    prefix: String,
    _dir: Option<tempfile::TempDir>,
    a_store: SessionStore,
    other: SessionStore,
    llm: GatedLlm,
    lp_a: StatefulAgentLoop,
}

impl Takeover {
    /// Opens both handles on `on`; `None` (skip) when its server's DSN is unset.
    async fn start(on: On) -> Option<Takeover> {
        let server = |dsn: Option<String>, tag| Some((dsn?, unique_prefix(tag), None));
        let (dsn, prefix, dir) = match on {
            On::Sqlite(file) => {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join(file).to_str().unwrap().to_owned();
                (path, "pl_".to_owned(), Some(dir))
            }
            On::Postgres(tag) => server(power_loop_store::conformance::support::pg_dsn(), tag)?,
            On::MySql(tag) => server(power_loop_store::conformance::support::mysql_dsn(), tag)?,
        };
        let a_store = open_at(&dsn, &prefix).await;
        let other = open_at(&dsn, &prefix).await;
        let llm = GatedLlm::new("A answer");
        let lp_a = loop_on(llm.clone(), &a_store);
        Some(Takeover {
            dsn,
            prefix,
            _dir: dir,
            a_store,
            other,
            llm,
            lp_a,
        })
    }
}

/// How the first worker loses its lease, per backend.
#[derive(Clone, Copy)]
enum Loss {
    /// `pg_terminate_backend` of the connection holding the advisory lock.
    PgTerminate,
    /// `KILL` of the connection holding the `GET_LOCK`.
    MySqlKill,
    /// The lock file is removed (the next opener creates and locks a new one).
    RemoveLockFile,
}

/// The PostgreSQL advisory key of a lease name (the backend's stable FNV-1a key).
fn pg_advisory_key(name: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in ["power-loop/", "lease", "/", name] {
        for b in part.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    i64::from_be_bytes(h.to_be_bytes())
}

/// Takes the lease of `sid` away from whoever holds it, from outside (a third connection, or
/// the file system).
async fn lose_lease(admin: &SessionStore, sid: &str, loss: Loss, sqlite_path: Option<&str>) {
    let name = power_loop_store::session_lease_name(admin.table_prefix(), sid);
    let db = Arc::clone(admin.database());
    match loss {
        Loss::PgTerminate => {
            let key = pg_advisory_key(&name) as u64;
            let (hi, lo) = ((key >> 32) as i64, (key & 0xffff_ffff) as i64);
            let rows = run_tx(&*db, TxMode::Write, move |tx| {
                tx.fetch_all(
                    "SELECT pg_terminate_backend(pid) AS killed FROM pg_locks \
                     WHERE locktype = 'advisory' AND granted AND objsubid = 1 \
                     AND classid::bigint = ? AND objid::bigint = ?",
                    &[Value::Int(hi), Value::Int(lo)],
                )
            })
            .await
            .unwrap();
            assert_eq!(rows.len(), 1, "exactly one connection holds the lease lock");
        }
        Loss::MySqlKill => {
            let n = name.clone();
            let row = run_tx(&*db, TxMode::Read, move |tx| {
                tx.fetch_optional(
                    "SELECT IS_USED_LOCK(CASE WHEN CHAR_LENGTH(CONCAT('pl:', DATABASE(), ':', ?)) <= 64 \
                     THEN CONCAT('pl:', DATABASE(), ':', ?) \
                     ELSE SHA2(CONCAT('pl:', DATABASE(), ':', ?), 256) END) AS holder",
                    &[Value::from(n.as_str()), Value::from(n.as_str()), Value::from(n.as_str())],
                )
            })
            .await
            .unwrap()
            .unwrap();
            let holder = row.i64("holder").expect("the lease lock is held");
            run_tx(&*db, TxMode::Write, move |tx| {
                tx.execute(&format!("KILL {holder}"), &[]).map(|_| ())
            })
            .await
            .unwrap();
        }
        Loss::RemoveLockFile => {
            let dir = format!("{}-leases", sqlite_path.unwrap());
            let stem = format!("{name}-");
            let mut removed = 0;
            for entry in std::fs::read_dir(&dir).unwrap() {
                let entry = entry.unwrap();
                if entry.file_name().to_string_lossy().starts_with(&stem) {
                    std::fs::remove_file(entry.path()).unwrap();
                    removed += 1;
                }
            }
            assert_eq!(removed, 1, "one lock file for the session");
        }
    }
}

/// The second worker on its own store handle: takes the session over (waiting for the lease)
/// and sends.
async fn b_sends(dsn: &str, prefix: &str, sid: &str) {
    let store = open_at(dsn, prefix).await;
    let lp = StatefulAgentLoop::builder(Arc::new(ScriptedLlm::new().then_text("B answer")))
        .store(store.clone())
        .lease_wait(Duration::from_secs(20))
        .build()
        .unwrap();
    lp.send(sid, "from B").await.unwrap();
    store.close().await.unwrap();
}

/// Runs only inside the child process: the second worker, taking the session over and sending.
#[tokio::test]
#[ignore = "child process of the fencing tests"]
async fn child_second_worker_sends() {
    let Ok(dsn) = std::env::var("PL_FENCE_DSN") else {
        return;
    };
    let sid = std::env::var("PL_FENCE_SID").unwrap();
    let prefix = std::env::var("PL_FENCE_PREFIX").unwrap_or_else(|_| "pl_".into());
    b_sends(&dsn, &prefix, &sid).await;
    println!("SECOND_WORKER_SENT");
}

/// The second worker: a child process, or a loop on a second store handle in this process.
async fn second_worker_sends(dsn: &str, prefix: &str, sid: &str, as_process: bool) {
    if as_process {
        let out = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "child_second_worker_sends",
                "--ignored",
                "--nocapture",
            ])
            .env("PL_FENCE_DSN", dsn)
            .env("PL_FENCE_SID", sid)
            .env("PL_FENCE_PREFIX", prefix)
            .stderr(Stdio::inherit())
            .output()
            .unwrap();
        assert!(out.status.success(), "the second worker process failed");
        assert!(String::from_utf8_lossy(&out.stdout).contains("SECOND_WORKER_SENT"));
    } else {
        b_sends(dsn, prefix, sid).await;
    }
}

async fn lease_loss_scenario(on: On, loss: Loss, second_as_process: bool) {
    let Some(t) = Takeover::start(on).await else {
        return;
    };
    let (dsn, prefix) = (t.dsn.as_str(), t.prefix.as_str());
    let (a_store, admin, llm, lp_a) = (&t.a_store, &t.other, &t.llm, &t.lp_a);
    let sid = lp_a
        .new_session(NewSessionOptions::default())
        .await
        .unwrap();
    let (lp, s) = (lp_a.clone(), sid.clone());
    let first = tokio::spawn(async move { lp.send(&s, "from A").await });
    llm.wait_arrived().await;

    let sqlite_path = matches!(loss, Loss::RemoveLockFile).then_some(dsn);
    lose_lease(admin, &sid, loss, sqlite_path).await;
    second_worker_sends(dsn, prefix, &sid, second_as_process).await;

    llm.open();
    let e = first.await.unwrap().unwrap_err();
    assert_eq!(e.code(), ErrorCode::SessionLeaseLost, "{e}");
    assert_eq!(
        e.detail("session_id").and_then(|v| v.as_str()),
        Some(sid.as_str())
    );
    let held = e.detail("held_token").and_then(|v| v.as_i64()).unwrap();
    let current = e.detail("current_token").and_then(|v| v.as_i64()).unwrap();
    assert!(current > held, "{e}");

    let msgs = admin.load_all_messages(&sid).await.unwrap();
    let got: Vec<(String, String)> = msgs
        .iter()
        .map(|r| (r.role.clone(), r.content.clone().unwrap_or_default()))
        .collect();
    assert_eq!(
        got,
        [
            ("user".to_owned(), "from B".to_owned()),
            ("assistant".to_owned(), "B answer".to_owned()),
        ],
        "only the second worker's turn"
    );
    let window = lp_a.get_messages(&sid, false).await.unwrap();
    assert_eq!(texts(&window), ["from B", "B answer"]);
    // The first worker's loop recovers: its next send takes a fresh lease and token.
    llm.open();
    lp_a.send(&sid, "A again").await.unwrap();
    assert_eq!(admin.load_all_messages(&sid).await.unwrap().len(), 4);
    a_store.close().await.unwrap();
    admin.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_lost_lease_cannot_commit_second_process_wins() {
    lease_loss_scenario(On::Sqlite("fence.db"), Loss::RemoveLockFile, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_terminated_lease_connection_cannot_commit() {
    lease_loss_scenario(On::Postgres("fence"), Loss::PgTerminate, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_terminated_lease_second_process_wins() {
    lease_loss_scenario(On::Postgres("fencp"), Loss::PgTerminate, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_killed_lease_connection_cannot_commit() {
    lease_loss_scenario(On::MySql("fence"), Loss::MySqlKill, false).await;
}

/// Runner A claims a timer and delivers through a model call that waits; meanwhile its claim
/// goes stale and runner B claims the firing again. A's answer cannot commit and A completes
/// nothing; B sees the delivered message and only completes: exactly one delivery.
async fn timer_claim_scenario(on: On) {
    let Some(t) = Takeover::start(on).await else {
        return;
    };
    let (a_store, b_store, llm, lp_a) = (&t.a_store, &t.other, &t.llm, &t.lp_a);
    let lp_b = loop_on(ScriptedLlm::new().then_text("B answer"), b_store);
    let sid = lp_a
        .new_session(NewSessionOptions::default())
        .await
        .unwrap();
    let timer = lp_a
        .schedule_timer(&sid, TimerDue::InSeconds(0), "water the plants", None)
        .await
        .unwrap();
    let opts = TimerRunnerOptions::default().with_lease(Duration::from_secs(60));
    let runner_a = TimerRunner::new(lp_a.clone(), opts.clone());
    let runner_b = TimerRunner::new(lp_b.clone(), opts);
    let now = now_ms() + 1_000;
    let first = {
        let r = Arc::clone(&runner_a);
        tokio::spawn(async move { r.run_once(now).await })
    };
    llm.wait_arrived().await;
    // A is delivering; B polls after A's claim went stale (far past the lease).
    let b_reports = runner_b.run_once(now + 3_600_000).await.unwrap();
    assert_eq!(b_reports.len(), 1, "{b_reports:?}");
    assert!(b_reports[0].deduplicated, "{b_reports:?}");
    llm.open();
    let a_reports = first.await.unwrap().unwrap();
    assert_eq!(a_reports.len(), 1);
    let err = a_reports[0].error.clone().unwrap_or_default();
    assert!(err.contains("timer.claim_lost"), "{a_reports:?}");

    let row = b_store
        .get_timer(&sid, timer.timer_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.status, timer_status::FIRED);
    assert_eq!(row.fire_count, 1, "completed exactly once");
    let msgs = b_store.load_all_messages(&sid).await.unwrap();
    let users: Vec<_> = msgs.iter().filter(|m| m.role == "user").collect();
    assert_eq!(users.len(), 1, "delivered exactly once: {msgs:?}");
    assert!(
        users[0]
            .content
            .as_deref()
            .unwrap_or_default()
            .contains("water the plants")
    );
    assert!(
        !msgs
            .iter()
            .any(|m| m.content.as_deref() == Some("A answer")),
        "the stale runner's answer is not visible"
    );
    a_store.close().await.unwrap();
    b_store.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_stale_timer_runner_cannot_deliver() {
    timer_claim_scenario(On::Sqlite("timers.db")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stale_timer_runner_cannot_deliver() {
    timer_claim_scenario(On::Postgres("fentm")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mysql_stale_timer_runner_cannot_deliver() {
    timer_claim_scenario(On::MySql("fentm")).await;
}
