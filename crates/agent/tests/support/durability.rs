//! Helpers of the durability tests (`durability_acked_sends`, `group_commit_sigkill`,
//! `tool_runs_after_pending_commit`): where a store lives (SQLite file or a server DSN with a
//! table prefix, so a child process or an independent handle can open the very same store), the
//! child process that acks its sends until it is SIGKILLed, and the transcript well-formedness
//! check. Included with `#[path = "support/durability.rs"] mod durability;`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use power_loop_store::conformance::support::open_test_store;
use power_loop_store::{BackendDescriptor, MessageRow, MessageState, PendingState, SessionStore};

/// Where a store lives: a SQLite file path, or a server DSN plus a unique table prefix.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// SQLite path or server DSN.
    pub(crate) dsn: String,
    /// Table prefix (servers only).
    pub(crate) prefix: Option<String>,
}

impl Target {
    /// A SQLite file inside `dir`.
    pub(crate) fn sqlite(dir: &tempfile::TempDir) -> Target {
        Target {
            dsn: dir.path().join("durable.db").to_str().unwrap().to_owned(),
            prefix: None,
        }
    }

    /// The server named by the env var `var` with a fresh table prefix; `None` (skip, printed)
    /// when the variable is unset, a failure when `POWER_LOOP_REQUIRE_SERVERS=1`.
    pub(crate) fn server(var: &str, tag: &str) -> Option<Target> {
        let dsn = power_loop_store::conformance::support::server_dsn(var)?;
        Some(Target {
            dsn,
            prefix: Some(unique_prefix(tag)),
        })
    }

    /// Reads a target from the env vars written by [`Target::to_env`] (child processes).
    pub(crate) fn from_env() -> Option<Target> {
        let dsn = std::env::var("PL_DUR_DSN").ok()?;
        Some(Target {
            dsn,
            prefix: std::env::var("PL_DUR_PREFIX").ok(),
        })
    }

    /// Env vars for a child process (see [`Target::from_env`]).
    pub(crate) fn to_env(&self, cmd: &mut std::process::Command) {
        cmd.env("PL_DUR_DSN", &self.dsn);
        match &self.prefix {
            Some(p) => cmd.env("PL_DUR_PREFIX", p),
            None => cmd.env_remove("PL_DUR_PREFIX"),
        };
    }

    /// Opens a new, independent store handle (own connection / pool) on the target.
    pub(crate) async fn open(&self) -> SessionStore {
        let backends: &[BackendDescriptor] = match &self.prefix {
            None => &[power_loop_store_sqlite::BACKEND],
            Some(_) => &[
                power_loop_store_postgres::BACKEND,
                power_loop_store_mysql::BACKEND,
            ],
        };
        open_test_store(&self.dsn, self.prefix.as_deref(), backends).await
    }
}

/// A unique, valid table prefix (random, so concurrent test runs never share tables).
pub(crate) fn unique_prefix(tag: &str) -> String {
    power_loop_store::conformance::support::unique_prefix(tag)
}

/// This test binary. On Linux `/proc/self/exe`, which still names the running binary when a
/// concurrent `cargo build` replaced the file at `current_exe()` (seen on a shared checkout).
pub(crate) fn own_binary() -> PathBuf {
    let proc_exe = Path::new("/proc/self/exe");
    if proc_exe.exists() {
        proc_exe.to_path_buf()
    } else {
        std::env::current_exe().unwrap()
    }
}

/// This test binary re-executed on the ignored test `child` alone (the child process of a
/// SIGKILL test); the caller adds its env vars.
pub(crate) fn child_command(child: &str) -> Command {
    let mut cmd = Command::new(own_binary());
    cmd.args([
        "--exact",
        child,
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ]);
    cmd
}

/// When a child is SIGKILLed: once it has acked `after_acks` times, and `delay` later.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KillPoint {
    /// Acks to wait for.
    pub(crate) after_acks: u64,
    /// How long to wait after them.
    pub(crate) delay: Duration,
}

impl KillPoint {
    /// A random point: after `min_acks` plus up to `spread` - 1 acks; then, one time in four,
    /// right at the ack (the next send just started), else up to `max_delay_us` microseconds
    /// later (somewhere inside the following sends).
    pub(crate) fn random(min_acks: u64, spread: u64, max_delay_us: u64) -> KillPoint {
        let after_acks = min_acks + rand::random_range(0..spread);
        let delay = match rand::random_range(0..4u32) {
            0 => Duration::ZERO,
            _ => Duration::from_micros(rand::random_range(0..max_delay_us)),
        };
        KillPoint { after_acks, delay }
    }
}

/// Spawns `cmd` (see [`child_command`]), feeds each line it prints to `on_line` (with `state`,
/// on a reader thread; the first line also carries libtest's `test … ... ` prefix), waits at
/// most `wait` until `on_line` has returned `true` (an ack) `kill.after_acks` times, waits
/// `kill.delay` more and SIGKILLs the child. Fails when the child exits or closes stdout before
/// the kill, or ends other than by the kill. Returns the state once every line printed before
/// the kill was read.
pub(crate) fn run_and_kill<T: Send + 'static>(
    mut cmd: Command,
    kill: KillPoint,
    wait: Duration,
    mut state: T,
    on_line: fn(&mut T, &str) -> bool,
) -> T {
    let stderr_file = tempfile::NamedTempFile::new().unwrap();
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::from(stderr_file.reopen().unwrap()))
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = mpsc::channel::<()>();
    let reader = std::thread::spawn(move || {
        for line in stdout.lines() {
            let Ok(line) = line else { break };
            if on_line(&mut state, &line) {
                let _ = tx.send(());
            }
        }
        state
    });
    let child_stderr = || std::fs::read_to_string(stderr_file.path()).unwrap_or_default();
    let deadline = Instant::now() + wait;
    let mut seen = 0;
    let KillPoint {
        after_acks: kill_after,
        delay,
    } = kill;
    while seen < kill_after {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(()) => seen += 1,
            Err(RecvTimeoutError::Timeout) => {
                assert!(
                    Instant::now() < deadline,
                    "the child did not reach {kill_after} acks:\n{}",
                    child_stderr()
                );
                assert!(
                    child.try_wait().unwrap().is_none(),
                    "the child exited before the kill:\n{}",
                    child_stderr()
                );
            }
            Err(RecvTimeoutError::Disconnected) => {
                let status = child.wait().unwrap();
                panic!(
                    "the child closed stdout before the kill ({status}):\n{}",
                    child_stderr()
                );
            }
        }
    }
    if !delay.is_zero() {
        std::thread::sleep(delay);
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(9),
        "the child ended on its own ({status}) instead of being killed:\n{}",
        child_stderr()
    );
    reader.join().unwrap()
}

/// The ids of an assistant row's tool calls, in order.
pub(crate) fn call_ids(row: &MessageRow) -> Vec<String> {
    row.tool_calls
        .iter()
        .flatten()
        .filter_map(|c| c.get("id").and_then(|v| v.as_str()).map(str::to_owned))
        .collect()
}

/// The names of an assistant row's tool calls, in order.
pub(crate) fn call_names(row: &MessageRow) -> Vec<String> {
    row.tool_calls
        .iter()
        .flatten()
        .map(|c| {
            c.pointer("/function/name")
                .or_else(|| c.get("name"))
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

/// One send as stored: its user row and every row after it up to the next user row.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    /// The user row that started the send.
    pub(crate) user: MessageRow,
    /// The rows the send (and any later resume/abort) appended after it.
    pub(crate) rows: Vec<MessageRow>,
    /// Tool call ids of the group that have no tool row (only possible in the last group).
    pub(crate) unanswered: BTreeSet<String>,
}

impl Group {
    /// The user text (the send's label).
    pub(crate) fn label(&self) -> &str {
        self.user.content.as_deref().unwrap_or_default()
    }

    /// The text of the final assistant answer, when the group ends with one.
    pub(crate) fn final_answer(&self) -> Option<&str> {
        let last = self.rows.last()?;
        (last.role == "assistant" && call_ids(last).is_empty())
            .then(|| last.content.as_deref().unwrap_or_default())
    }

    /// `role[:content]` of every row, for messages and exact comparisons.
    pub(crate) fn shape(&self) -> Vec<String> {
        self.rows
            .iter()
            .map(|r| match r.role.as_str() {
                "assistant" if r.tool_calls.is_some() => {
                    format!("assistant+calls{:?}", call_names(r))
                }
                role => format!("{role}:{}", r.content.as_deref().unwrap_or_default()),
            })
            .collect()
    }
}

/// Splits a session's rows into sends and checks the transcript is well formed:
/// * seqs are 1..=N without gaps and every row is active (no compaction is configured);
/// * the first row is a user message: no assistant/tool row exists without the user message
///   that started its send;
/// * after a user row: zero or more tool rounds (assistant with calls, then exactly one tool
///   row per call id, no stray or duplicate tool rows), then at most one final assistant answer,
///   which is the group's last row;
/// * a round may miss tool rows only in the last group, and then exactly the missing ids are the
///   store's pending record; with no missing ids there is no pending record.
pub(crate) fn well_formed(rows: &[MessageRow], pending: Option<&PendingState>) -> Vec<Group> {
    let dump = || {
        rows.iter()
            .map(|r| {
                format!(
                    "{} {} {:?} calls={:?} id={:?}",
                    r.seq,
                    r.role,
                    r.content,
                    call_ids(r),
                    r.tool_call_id
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r.seq, i as i64 + 1, "seqs have a gap:\n{}", dump());
        assert_eq!(r.state, MessageState::Active, "row {} is not active", r.seq);
    }
    let mut groups: Vec<Group> = Vec::new();
    for r in rows {
        if r.role == "user" {
            groups.push(Group {
                user: r.clone(),
                rows: Vec::new(),
                unanswered: BTreeSet::new(),
            });
        } else {
            let Some(g) = groups.last_mut() else {
                panic!(
                    "row {} ({}) precedes every user message:\n{}",
                    r.seq,
                    r.role,
                    dump()
                );
            };
            g.rows.push(r.clone());
        }
    }
    let n = groups.len();
    for (gi, g) in groups.iter_mut().enumerate() {
        let mut open: BTreeSet<String> = BTreeSet::new();
        let mut answered: BTreeSet<String> = BTreeSet::new();
        let mut done = false;
        for r in &g.rows {
            assert!(
                !done,
                "row {} follows the final answer of send {:?}:\n{}",
                r.seq,
                g.user.content,
                dump()
            );
            match r.role.as_str() {
                "assistant" => {
                    assert!(
                        open.is_empty(),
                        "assistant row {} while calls {open:?} are unanswered:\n{}",
                        r.seq,
                        dump()
                    );
                    let ids = call_ids(r);
                    if ids.is_empty() {
                        done = true;
                    } else {
                        for id in ids {
                            assert!(
                                open.insert(id.clone()),
                                "duplicate call id {id} in row {}",
                                r.seq
                            );
                        }
                        answered.clear();
                    }
                }
                "tool" => {
                    let id = r.tool_call_id.clone().unwrap_or_default();
                    assert!(
                        open.remove(&id),
                        "tool row {} answers {id:?}, which is not an open call of its round (already answered: {}):\n{}",
                        r.seq,
                        answered.contains(&id),
                        dump()
                    );
                    answered.insert(id);
                }
                other => panic!("unexpected role {other} in row {}:\n{}", r.seq, dump()),
            }
        }
        if !open.is_empty() {
            assert_eq!(
                gi + 1,
                n,
                "send {:?} left calls {open:?} unanswered but is not the last send:\n{}",
                g.user.content,
                dump()
            );
        }
        g.unanswered = open;
    }
    let unanswered = groups
        .last()
        .map(|g| g.unanswered.clone())
        .unwrap_or_default();
    match pending {
        Some(p) => {
            let ids: BTreeSet<String> = p.tool_call_ids.iter().cloned().collect();
            assert!(
                p.pending_interactions.is_empty(),
                "unexpected interactions {p:?}"
            );
            assert_eq!(
                ids,
                unanswered,
                "the pending record does not match the unanswered calls:\n{}",
                dump()
            );
            assert!(!ids.is_empty(), "an empty pending record is stored: {p:?}");
        }
        None => assert!(
            unanswered.is_empty(),
            "calls {unanswered:?} are unanswered but nothing is pending (a crash here could never be healed):\n{}",
            dump()
        ),
    }
    groups
}
