//! Durability of acknowledged sends (issue 8): "whatever a send has acknowledged survives a
//! crash". A child process (this test binary re-executed on an ignored test) sends
//! `r{round} msg {n}` to one session, sequentially, and prints `ACK n` once each send returned
//! `Completed`; the sends mix plain answers, one tool call, two concurrent tool calls and two
//! sequential tool calls, with the input committed with the run's first durable write (default)
//! or first on its own (`SendOptions::persist_input_first`, every other block of four). The parent SIGKILLs it at a random moment after a random number of
//! acks (so the kill lands inside a send), several rounds on the same session, and checks from
//! its own store handle:
//! * every acknowledged send is stored exactly once, in order, complete (user message, tool
//!   rounds with every result, final answer), with nothing between or duplicated;
//! * at most the one in-flight send is stored without an ack, as a prefix of what it would have
//!   written; no assistant/tool row exists without the user message that started its send;
//! * the pending record is exactly the set of unanswered calls (nothing unanswered is left
//!   unrecorded);
//! * the session stays usable: a plain `send` is refused with `session.pending` (writing
//!   nothing) while calls are pending, and `resume` / `send` with `heal_pending` /
//!   `heal_pending()` + `send` (rotating by round) bring it back to a well-formed history that
//!   the next child's sends extend.
//!
//! SQLite always; PostgreSQL with `POWER_LOOP_TEST_PG_DSN`; MySQL/MariaDB with
//! `POWER_LOOP_TEST_MYSQL_DSN` (failing instead of skipping when `POWER_LOOP_REQUIRE_SERVERS=1`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/durability.rs"]
mod durability;
mod support;

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use durability::{Group, KillPoint, Target, child_command, run_and_kill, well_formed};
use power_loop_agent::{NewSessionOptions, RunStatus, SendOptions, StatefulAgentLoop};
use power_loop_contracts::ErrorCode;
use power_loop_llm::{ScriptedLlm, Step};
use power_loop_store::SessionStore;
use serde_json::json;
use support::registry;

const CHILD: &str = "child_sends_and_acks";
/// A child never sends more than this (it is killed long before).
const CHILD_MAX_SENDS: u64 = 2_000;

fn label(round: u32, n: u64) -> String {
    format!("r{round} msg {n}")
}

fn answer(label: &str) -> String {
    format!("answer to {label}")
}

/// What the scripted model does for send `n`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    /// A plain answer.
    Text,
    /// One `slow_echo` call (2 ms), then the answer.
    One,
    /// Two concurrent `echo` calls, then the answer.
    Parallel,
    /// `echo` + `write_note` (not concurrency-safe: sequential), then the answer.
    Sequential,
}

fn kind(n: u64) -> Kind {
    match n % 4 {
        0 => Kind::Text,
        1 => Kind::One,
        2 => Kind::Parallel,
        _ => Kind::Sequential,
    }
}

impl Kind {
    /// The scripted model steps of the send labelled `l`.
    fn steps(self, l: &str) -> Vec<Step> {
        let t0 = format!("{l} t0");
        let t1 = format!("{l} t1");
        let mut v = match self {
            Kind::Text => Vec::new(),
            Kind::One => vec![Step::tool_call("slow_echo", json!({"text": t0, "ms": 2}))],
            Kind::Parallel => vec![Step::tool_calls([
                ("echo", json!({"text": t0})),
                ("echo", json!({"text": t1})),
            ])],
            Kind::Sequential => vec![Step::tool_calls([
                ("echo", json!({"text": t0})),
                ("write_note", json!({"text": t1})),
            ])],
        };
        v.push(Step::text(answer(l)));
        v
    }

    /// The rows the completed send stores after its user message (`Group::shape`).
    fn shape(self, l: &str) -> Vec<String> {
        let t0 = format!("tool:{l} t0");
        let t1 = format!("tool:{l} t1");
        let mut v = match self {
            Kind::Text => Vec::new(),
            Kind::One => vec![r#"assistant+calls["slow_echo"]"#.to_owned(), t0],
            Kind::Parallel => vec![r#"assistant+calls["echo", "echo"]"#.to_owned(), t0, t1],
            Kind::Sequential => vec![
                r#"assistant+calls["echo", "write_note"]"#.to_owned(),
                t0,
                format!("tool:noted: {l} t1"),
            ],
        };
        v.push(format!("assistant:{}", answer(l)));
        v
    }
}

/// A loop on `store` with the test tools, answering with a scripted model the caller pushes the
/// steps of each send to (as a freshly started process would).
fn scripted_loop(store: SessionStore) -> (ScriptedLlm, StatefulAgentLoop) {
    let llm = ScriptedLlm::new();
    let lp = StatefulAgentLoop::builder(Arc::new(llm.clone()))
        .store(store)
        .tools(registry())
        .build()
        .unwrap();
    (llm, lp)
}

/// Runs only inside the child process: sends until killed, acking each completed send.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "child process of the acked-sends durability tests"]
async fn child_sends_and_acks() {
    let Some(target) = Target::from_env() else {
        return;
    };
    let sid = std::env::var("PL_DUR_SID").unwrap();
    let round: u32 = std::env::var("PL_DUR_ROUND").unwrap().parse().unwrap();
    let (llm, lp) = scripted_loop(target.open().await);
    let mut out = std::io::stdout();
    for n in 0..CHILD_MAX_SENDS {
        let l = label(round, n);
        for s in kind(n).steps(&l) {
            llm.push(s);
        }
        // Every other block of four sends commits its input first (the timer runner's mode)
        // instead of with the run's first durable write.
        let opts = SendOptions::new().with_persist_input_first((n / 4) % 2 == 1);
        let r = lp.send_with(&sid, l.as_str(), opts).await.unwrap();
        assert_eq!(r.status, RunStatus::Completed, "{r:?}");
        assert_eq!(r.final_text, answer(&l));
        writeln!(out, "ACK {n}").unwrap();
        out.flush().unwrap();
    }
}

/// Spawns the child for `round` and SIGKILLs it at `kill`. Returns the number of acks it
/// printed (all of them, read to EOF after the kill).
fn run_child_and_kill(target: &Target, sid: &str, round: u32, kill: KillPoint) -> u64 {
    let mut cmd = child_command(CHILD);
    cmd.env("PL_DUR_SID", sid)
        .env("PL_DUR_ROUND", round.to_string());
    target.to_env(&mut cmd);
    let wait = Duration::from_secs(60);
    let acks = run_and_kill(cmd, kill, wait, Vec::new(), |acks, line| {
        let Some((_, n)) = line.split_once("ACK ") else {
            return false;
        };
        acks.push(n.trim().parse::<u64>().unwrap());
        true
    });
    let want: Vec<u64> = (0..acks.len() as u64).collect();
    assert_eq!(acks, want, "acks out of order");
    acks.len() as u64
}

/// What the store must (or may) hold for one send, in order.
#[derive(Debug, Clone)]
enum Want {
    /// Acknowledged by the child: present, complete, exactly this shape.
    Acked(Kind),
    /// The send in flight at the kill: absent, or a prefix of its rows; once recovered, it may
    /// also carry `<aborted: …>` rows, or end with `resumed` when the parent resumed it.
    InFlight { kind: Kind, resumed: Option<String> },
    /// The parent's own recovery send: present with exactly this answer.
    Parent,
}

#[derive(Debug, Clone)]
struct Expect {
    label: String,
    want: Want,
}

/// Checks the stored session against the expectations; returns the in-flight send's group of
/// the current round, if stored.
async fn verify(store: &SessionStore, sid: &str, expected: &[Expect]) -> Option<Group> {
    let rows = store.load_all_messages(sid).await.unwrap();
    let pending = store.get_pending(sid).await.unwrap();
    let groups = well_formed(&rows, pending.as_ref());
    let labels = || {
        groups
            .iter()
            .map(|g| g.label().to_owned())
            .collect::<Vec<_>>()
    };
    let mut gi = 0;
    let mut last_in_flight = None;
    for e in expected {
        let g = groups.get(gi).filter(|g| g.label() == e.label);
        match (&e.want, g) {
            (Want::Acked(k), Some(g)) => {
                assert_eq!(
                    g.shape(),
                    k.shape(&e.label),
                    "acknowledged send {}",
                    e.label
                );
            }
            (Want::Acked(_), None) => panic!(
                "acknowledged send {:?} is not stored where expected (position {gi}); stored sends: {:?}",
                e.label,
                labels()
            ),
            (Want::InFlight { kind, resumed }, Some(g)) => {
                match resumed {
                    Some(text) => assert_eq!(g.final_answer(), Some(text.as_str()), "{g:?}"),
                    None => {
                        // Before recovery (or after an abort): a prefix of its own rows, then
                        // only aborted results.
                        let full = kind.shape(&e.label);
                        let shape = g.shape();
                        let own = shape
                            .iter()
                            .take_while(|s| !s.starts_with("tool:<aborted: "))
                            .count();
                        assert!(
                            own <= full.len() && shape[..own] == full[..own],
                            "in-flight send {} stored {shape:?}, not a prefix of {full:?}",
                            e.label
                        );
                        assert!(
                            shape[own..]
                                .iter()
                                .all(|s| s.starts_with("tool:<aborted: ")),
                            "{shape:?}"
                        );
                    }
                }
                last_in_flight = Some(g.clone());
            }
            (Want::InFlight { resumed, .. }, None) => {
                assert!(
                    resumed.is_none(),
                    "resumed send {} vanished: {:?}",
                    e.label,
                    labels()
                );
                last_in_flight = None;
            }
            (Want::Parent, Some(g)) => {
                assert_eq!(
                    g.shape(),
                    vec![format!("assistant:{}", answer(&e.label))],
                    "parent send {}",
                    e.label
                );
            }
            (Want::Parent, None) => panic!(
                "the parent's send {:?} is missing; stored sends: {:?}",
                e.label,
                labels()
            ),
        }
        if g.is_some() {
            gi += 1;
        }
    }
    assert_eq!(
        gi,
        groups.len(),
        "unexpected sends stored after position {gi} (duplicates or unacked extras): {:?}",
        labels()
    );
    last_in_flight
}

/// Where the kill landed, seen from the store.
fn outcome(g: Option<&Group>, pending: bool) -> &'static str {
    match g {
        None => "in-flight send absent",
        Some(_) if pending => "in-flight send pending (tool results missing)",
        Some(g) if g.final_answer().is_some() => "in-flight send complete but unacked",
        Some(g) if g.rows.is_empty() => "in-flight user message alone",
        Some(_) => "in-flight send without final answer",
    }
}

async fn scenario(target: Target, rounds: u32) {
    let store = target.open().await;
    let sid = StatefulAgentLoop::new(Arc::new(ScriptedLlm::new()), store.clone())
        .new_session(NewSessionOptions::default())
        .await
        .unwrap();
    let mut expected: Vec<Expect> = Vec::new();
    let mut seen = Vec::new();
    let mut late_commits = 0;
    for round in 0..rounds {
        let kill = KillPoint::random(30, 20, 4_000);
        let t = target.clone();
        let s = sid.clone();
        let acks = tokio::task::spawn_blocking(move || run_child_and_kill(&t, &s, round, kill))
            .await
            .unwrap();
        for n in 0..acks {
            expected.push(Expect {
                label: label(round, n),
                want: Want::Acked(kind(n)),
            });
        }
        let in_flight_kind = kind(acks);
        expected.push(Expect {
            label: label(round, acks),
            want: Want::InFlight {
                kind: in_flight_kind,
                resumed: None,
            },
        });
        // Straight after the crash, from an independent handle. On a server the killed
        // client's last COMMIT may still be completing; a no-op pending rewrite takes the
        // session row lock every turn commit takes first, so it waits for that transaction
        // and the reads after it see the final state. A state change across the barrier is
        // reported (it is legal: the send was not acknowledged).
        let probe = target.open().await;
        let before = probe.get_state(&sid).await.unwrap().unwrap();
        probe.update_pending(&sid, |p| p).await.unwrap();
        let after = probe.get_state(&sid).await.unwrap().unwrap();
        if (before.next_seq, &before.pending) != (after.next_seq, &after.pending) {
            eprintln!(
                "round {round}: the killed child's last commit landed after the kill (next_seq {} -> {})",
                before.next_seq, after.next_seq
            );
            late_commits += 1;
        }
        let g = verify(&probe, &sid, &expected).await;
        let pending = probe.get_pending(&sid).await.unwrap();
        let what = outcome(g.as_ref(), pending.is_some());
        eprintln!(
            "round {round}: {acks} acks, killed {:?} after ack >= {}: {what} ({in_flight_kind:?})",
            kill.delay, kill.after_acks
        );
        seen.push(what);
        recover(&store, &sid, round, pending.is_some(), &mut expected).await;
        verify(&probe, &sid, &expected).await;
    }
    // The session keeps working after the last crash.
    let (llm, lp) = scripted_loop(store.clone());
    llm.push(Step::text(answer("final")));
    let r = lp.send(&sid, "final").await.unwrap();
    assert_eq!(r.final_text, answer("final"));
    expected.push(Expect {
        label: "final".into(),
        want: Want::Parent,
    });
    verify(&target.open().await, &sid, &expected).await;
    eprintln!("kill outcomes: {seen:?}; commits landing after the kill: {late_commits}");
}

/// Brings the session back to a usable state with a fresh loop (as a restarted process would),
/// rotating the recovery API by round.
async fn recover(
    store: &SessionStore,
    sid: &str,
    round: u32,
    pending: bool,
    expected: &mut Vec<Expect>,
) {
    let (llm, lp) = scripted_loop(store.clone());
    let recover_label = format!("r{round} recover");
    let parent_send = |expected: &mut Vec<Expect>| {
        llm.push(Step::text(answer(&recover_label)));
        expected.push(Expect {
            label: recover_label.clone(),
            want: Want::Parent,
        });
    };
    if !pending {
        parent_send(expected);
        let r = lp.send(sid, recover_label.as_str()).await.unwrap();
        assert_eq!(r.final_text, answer(&recover_label));
        return;
    }
    let rows_before = store.load_all_messages(sid).await.unwrap().len();
    let e = lp.send(sid, "refused").await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::SessionPending, "{e}");
    assert_eq!(
        store.load_all_messages(sid).await.unwrap().len(),
        rows_before,
        "a send refused with session.pending wrote rows"
    );
    match round % 3 {
        0 => {
            let text = format!("resumed r{round}");
            llm.push(Step::text(text.clone()));
            let r = lp.resume(sid, None).await.unwrap();
            assert_eq!(r.status, RunStatus::Completed, "{r:?}");
            assert_eq!(r.final_text, text);
            if let Some(Expect {
                want: Want::InFlight { resumed, .. },
                ..
            }) = expected.last_mut()
            {
                *resumed = Some(text);
            }
        }
        1 => {
            parent_send(expected);
            let r = lp
                .send_with(
                    sid,
                    recover_label.as_str(),
                    SendOptions::new().with_heal_pending(true),
                )
                .await
                .unwrap();
            assert_eq!(r.final_text, answer(&recover_label));
        }
        _ => {
            let p = lp.get_pending(sid).await.unwrap().unwrap();
            assert_eq!(lp.heal_pending(sid).await.unwrap(), p.tool_call_ids.len());
            assert!(lp.get_pending(sid).await.unwrap().is_none());
            parent_send(expected);
            let r = lp.send(sid, recover_label.as_str()).await.unwrap();
            assert_eq!(r.final_text, answer(&recover_label));
        }
    }
    assert!(lp.get_pending(sid).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acked_sends_survive_sigkill_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    scenario(Target::sqlite(&dir), 20).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acked_sends_survive_sigkill_on_postgres() {
    let Some(target) = Target::server("POWER_LOOP_TEST_PG_DSN", "dack") else {
        return;
    };
    scenario(target, 10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acked_sends_survive_sigkill_on_mysql() {
    let Some(target) = Target::server("POWER_LOOP_TEST_MYSQL_DSN", "dack") else {
        return;
    };
    scenario(target, 10).await;
}
