//! "A tool with side effects never runs before its pending record is committed" (issue 8).
//! The `observe` tools, when called, open an INDEPENDENT store handle on the same SQLite file /
//! server tables (their own connection, not the loop's) and read the session: they record
//! whether the pending record naming their own call id, the assistant message requesting it and
//! the user message of the send are already committed and visible from outside, and that their
//! own result is not stored yet. The test asserts every observation, for: one call; three
//! concurrent calls in one round; two sequential (not concurrency-safe) calls in one round;
//! a send with two tool rounds; a later send on the warm session; and calls run by `resume`
//! after a run that stopped with `pending_tools`. SQLite always; PostgreSQL with
//! `POWER_LOOP_TEST_PG_DSN`; MySQL/MariaDB with `POWER_LOOP_TEST_MYSQL_DSN` (failing instead of
//! skipping when `POWER_LOOP_REQUIRE_SERVERS=1`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/durability.rs"]
mod durability;

use std::sync::{Arc, Mutex};

use durability::{Target, call_ids, well_formed};
use power_loop_agent::{NewSessionOptions, RunStatus, StatefulAgentLoop};
use power_loop_contracts::{ToolDefinition, ToolOutput};
use power_loop_llm::{ScriptedLlm, Step};
use power_loop_tools::{ToolRegistry, tool_fn};
use serde_json::json;

/// What one tool call saw from outside the loop, at the moment it ran.
#[derive(Debug, Clone)]
struct Seen {
    call_id: String,
    tag: String,
    /// The pending record lists this call id as unresolved.
    pending_has_call: bool,
    /// The pending record's unresolved ids.
    pending_ids: Vec<String>,
    /// Seq of the last assistant row whose tool calls include this id.
    assistant_seq: Option<i64>,
    /// Seq of the last user row before that assistant row, and its text.
    user_before: Option<(i64, String)>,
    /// Tool rows already answering this call id.
    own_results: usize,
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// `observe` (concurrency-safe) and `observe_seq` (not), both reading the session through a new
/// store handle on `target`.
fn observing_registry(target: &Target, log: &Log) -> ToolRegistry {
    let mut r = ToolRegistry::new();
    for (name, concurrent) in [("observe", true), ("observe_seq", false)] {
        let (target, log) = (target.clone(), Arc::clone(log));
        let tool = tool_fn(
            ToolDefinition::new(
                name,
                "Reads the session from outside the loop",
                json!({"type": "object", "properties": {"tag": {"type": "string"}}, "required": ["tag"]}),
            ),
            move |ctx, args| {
                let (target, log) = (target.clone(), Arc::clone(&log));
                async move {
                    let outside = target.open().await;
                    let sid = ctx.session_id.clone();
                    let id = ctx.tool_call_id.clone();
                    let pending = outside.get_pending(&sid).await.unwrap();
                    let rows = outside.load_all_messages(&sid).await.unwrap();
                    outside.close().await.unwrap();
                    let pending_ids = pending.map(|p| p.tool_call_ids).unwrap_or_default();
                    let assistant = rows
                        .iter()
                        .rposition(|r| r.role == "assistant" && call_ids(r).contains(&id));
                    let user_before = assistant.and_then(|a| {
                        rows[..a].iter().rev().find(|r| r.role == "user").map(|u| {
                            (u.seq, u.content.clone().unwrap_or_default())
                        })
                    });
                    log.lock().unwrap().push(Seen {
                        call_id: id.clone(),
                        tag: args["tag"].as_str().unwrap_or_default().to_owned(),
                        pending_has_call: pending_ids.contains(&id),
                        pending_ids,
                        assistant_seq: assistant.map(|a| rows[a].seq),
                        user_before,
                        own_results: rows
                            .iter()
                            .filter(|r| r.role == "tool" && r.tool_call_id.as_deref() == Some(&id))
                            .count(),
                    });
                    Ok(ToolOutput::ok(format!("observed {id}")))
                }
            },
        )
        .concurrent(concurrent);
        r.register(tool).unwrap();
    }
    r
}

/// Takes the observations logged since the last call and checks each one: the call's pending
/// record, its assistant message and the send's user message `user_text` were visible from an
/// independent handle before the tool body ran, and its result was not.
fn check_observations(log: &Log, user_text: &str, want_tags: &[&str]) -> Vec<Seen> {
    let seen: Vec<Seen> = std::mem::take(&mut *log.lock().unwrap());
    let mut tags: Vec<&str> = seen.iter().map(|s| s.tag.as_str()).collect();
    tags.sort_unstable();
    let mut want = want_tags.to_vec();
    want.sort_unstable();
    assert_eq!(tags, want, "every scripted call ran exactly once: {seen:?}");
    for s in &seen {
        assert!(
            s.pending_has_call,
            "call {} ({}) ran before its pending record was visible outside the loop: {s:?}",
            s.call_id, s.tag
        );
        assert!(
            s.assistant_seq.is_some(),
            "call {} ({}) ran before the assistant message requesting it was committed: {s:?}",
            s.call_id,
            s.tag
        );
        assert_eq!(
            s.user_before.as_ref().map(|u| u.1.as_str()),
            Some(user_text),
            "call {} ({}) ran before the send's user message was committed: {s:?}",
            s.call_id,
            s.tag
        );
        assert_eq!(
            s.own_results, 0,
            "the result was stored before the tool ran: {s:?}"
        );
    }
    seen
}

async fn scenario(target: Target) {
    let log: Log = Arc::default();
    let store = target.open().await;
    let llm = ScriptedLlm::new();
    let lp = StatefulAgentLoop::builder(Arc::new(llm.clone()))
        .store(store.clone())
        .tools(observing_registry(&target, &log))
        .build()
        .unwrap();
    let sid = lp.new_session(NewSessionOptions::default()).await.unwrap();

    // One call, on a cold session (the very first send: the user message is committed with it).
    llm.push(Step::tool_call("observe", json!({"tag": "single"})));
    llm.push(Step::text("done single"));
    let r = lp.send(&sid, "one call").await.unwrap();
    assert_eq!(r.final_text, "done single");
    check_observations(&log, "one call", &["single"]);

    // Three concurrent calls in one round: each sees the whole round pending.
    llm.push(Step::tool_calls([
        ("observe", json!({"tag": "p0"})),
        ("observe", json!({"tag": "p1"})),
        ("observe", json!({"tag": "p2"})),
    ]));
    llm.push(Step::text("done parallel"));
    let r = lp.send(&sid, "three parallel calls").await.unwrap();
    assert_eq!(r.final_text, "done parallel");
    let seen = check_observations(&log, "three parallel calls", &["p0", "p1", "p2"]);
    let round: Vec<String> = {
        let mut ids: Vec<String> = seen.iter().map(|s| s.call_id.clone()).collect();
        ids.sort();
        ids
    };
    for s in &seen {
        let mut ids = s.pending_ids.clone();
        ids.sort();
        assert_eq!(
            ids, round,
            "a concurrent call saw a partial pending record: {s:?}"
        );
        assert_eq!(s.assistant_seq, seen[0].assistant_seq);
    }

    // Two sequential calls: the second still finds itself pending (the first result resolved
    // only its own id).
    llm.push(Step::tool_calls([
        ("observe_seq", json!({"tag": "s0"})),
        ("observe_seq", json!({"tag": "s1"})),
    ]));
    llm.push(Step::text("done sequential"));
    let r = lp.send(&sid, "two sequential calls").await.unwrap();
    assert_eq!(r.final_text, "done sequential");
    check_observations(&log, "two sequential calls", &["s0", "s1"]);

    // Two tool rounds in one send: the second round's record is committed before it runs.
    llm.push(Step::tool_call("observe", json!({"tag": "round0"})));
    llm.push(Step::tool_calls([
        ("observe", json!({"tag": "round1a"})),
        ("observe", json!({"tag": "round1b"})),
    ]));
    llm.push(Step::text("done rounds"));
    let r = lp.send(&sid, "two tool rounds").await.unwrap();
    assert_eq!(r.final_text, "done rounds");
    let seen = check_observations(&log, "two tool rounds", &["round0", "round1a", "round1b"]);
    let seq_of = |tag: &str| seen.iter().find(|s| s.tag == tag).unwrap().assistant_seq;
    assert!(seq_of("round1a") > seq_of("round0"), "{seen:?}");

    // Calls left by a run without a registry (`pending_tools`) and run by `resume`.
    let bare = StatefulAgentLoop::builder(Arc::new(llm.clone()))
        .store(store.clone())
        .build()
        .unwrap();
    llm.push(Step::tool_calls([
        ("observe", json!({"tag": "resumed0"})),
        ("observe", json!({"tag": "resumed1"})),
    ]));
    let r = bare.send(&sid, "calls for later").await.unwrap();
    assert_eq!(r.status, RunStatus::PendingTools, "{r:?}");
    assert!(
        log.lock().unwrap().is_empty(),
        "no tool may run without a registry"
    );
    llm.push(Step::text("done resumed"));
    let r = lp.resume(&sid, None).await.unwrap();
    assert_eq!(r.final_text, "done resumed");
    check_observations(&log, "calls for later", &["resumed0", "resumed1"]);

    // The transcript is well formed and nothing is pending.
    let outside = target.open().await;
    let rows = outside.load_all_messages(&sid).await.unwrap();
    let pending = outside.get_pending(&sid).await.unwrap();
    assert!(pending.is_none(), "{pending:?}");
    let groups = well_formed(&rows, None);
    assert_eq!(groups.len(), 5);
    assert!(groups.iter().all(|g| g.final_answer().is_some()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_run_after_their_pending_record_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    scenario(Target::sqlite(&dir)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_run_after_their_pending_record_on_postgres() {
    let Some(target) = Target::server("POWER_LOOP_TEST_PG_DSN", "dtool") else {
        return;
    };
    scenario(target).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tools_run_after_their_pending_record_on_mysql() {
    let Some(target) = Target::server("POWER_LOOP_TEST_MYSQL_DSN", "dtool") else {
        return;
    };
    scenario(target).await;
}
