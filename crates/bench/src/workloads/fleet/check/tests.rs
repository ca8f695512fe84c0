//! The checker must catch every kind of violation, on a real store: duplicated, missing,
//! unacknowledged and reordered turns, a seq gap and broken user/answer pairs; and must pass
//! correct sessions, interleaved chains included.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed setup step should panic

use power_loop::{NewMessage, NewSession, StoreOptions, open_store};

use super::*;

fn texts(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

/// Appends `(user, answer)` pairs as given.
async fn put(store: &SessionStore, sid: &str, pairs: &[(&str, String)]) {
    store
        .create_session(NewSession::new().with_id(sid))
        .await
        .unwrap();
    let mut batch = Vec::new();
    for (user, answer) in pairs {
        batch.push(NewMessage::user(*user));
        batch.push(NewMessage::assistant(answer.clone()));
    }
    if !batch.is_empty() {
        store.append_messages(sid, batch).await.unwrap();
    }
}

fn ok(t: &str) -> (&str, String) {
    (t, answer_for(t))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checker_flags_every_kind_of_violation_and_passes_correct_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("check.db");
    let dsn = format!("sqlite://{}", path.display());
    let options = StoreOptions::new().with_table_prefix("t_");
    let store = open_store(&dsn, options.clone()).await.unwrap();

    let mut acked = Vec::new();
    let mut expect = |sid: &str, chains: Vec<Vec<String>>| {
        acked.push(Acked {
            session_id: sid.to_owned(),
            chains,
        });
    };
    // Correct: one chain in order; two interleaved chains; an untouched session.
    put(&store, "good", &[ok("a0"), ok("a1"), ok("a2")]).await;
    expect("good", vec![texts(&["a0", "a1", "a2"])]);
    put(&store, "fight", &[ok("a0"), ok("b0"), ok("b1"), ok("a1")]).await;
    expect("fight", vec![texts(&["a0", "a1"]), texts(&["b0", "b1"])]);
    put(&store, "empty", &[]).await;
    expect("empty", vec![Vec::new()]);
    // A turn written twice (same count as the three acknowledged turns).
    put(&store, "dup", &[ok("a0"), ok("a1"), ok("a1")]).await;
    expect("dup", vec![texts(&["a0", "a1", "a2"])]);
    // An acknowledged turn lost.
    put(&store, "missing", &[ok("a0")]).await;
    expect("missing", vec![texts(&["a0", "a1"])]);
    // A turn nobody acknowledged.
    put(&store, "extra", &[ok("a0"), ok("zz")]).await;
    expect("extra", vec![texts(&["a0"])]);
    // Send 1 stored before send 0.
    put(&store, "order", &[ok("a1"), ok("a0")]).await;
    expect("order", vec![texts(&["a0", "a1"])]);
    // Two users, then two answers: the pairs are torn apart.
    store
        .create_session(NewSession::new().with_id("torn"))
        .await
        .unwrap();
    store
        .append_messages(
            "torn",
            vec![
                NewMessage::user("a0"),
                NewMessage::user("a1"),
                NewMessage::assistant(answer_for("a0")),
                NewMessage::assistant(answer_for("a1")),
            ],
        )
        .await
        .unwrap();
    expect("torn", vec![texts(&["a0", "a1"])]);
    // Each answer after the wrong question.
    put(
        &store,
        "swapped",
        &[("a0", answer_for("a1")), ("a1", answer_for("a0"))],
    )
    .await;
    expect("swapped", vec![texts(&["a0", "a1"])]);
    // Three turns stored, the middle one deleted behind the store's back: seq 1, 2, 5, 6.
    put(&store, "gap", &[ok("a0"), ok("a1"), ok("a2")]).await;
    expect("gap", vec![texts(&["a0", "a2"])]);
    store.close().await.unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    let deleted = raw
        .execute(
            "DELETE FROM t_messages WHERE session_id = 'gap' AND seq IN (3, 4)",
            [],
        )
        .unwrap();
    assert_eq!(deleted, 2);
    drop(raw);

    let store = open_store(&dsn, options).await.unwrap();
    let verdict = count_violations(&store, acked, 4).await.unwrap();
    store.close().await.unwrap();

    assert_eq!(verdict.sessions_checked, 10);
    assert_eq!(verdict.messages_checked, 6 + 8 + 6 + 2 + 4 + 4 + 4 + 4 + 4);
    let mut violated = verdict.violated.clone();
    violated.sort();
    assert_eq!(
        violated,
        ["dup", "extra", "gap", "missing", "order", "swapped", "torn"],
        "{:#?}",
        verdict.examples
    );
    assert_eq!(verdict.violations, 7);
    // Only the first few reasons are kept (each kind is checked by name in the next test).
    assert_eq!(verdict.examples.len(), EXAMPLES);
}

fn row(seq: i64, role: &str, content: &str) -> MessageRow {
    // MessageRow is non-exhaustive: build it through its serde form.
    serde_json::from_value(serde_json::json!({
        "session_id": "s", "seq": seq, "role": role, "name": null, "content": content,
        "tool_calls": null, "tool_call_id": null, "round_index": null, "state": "active",
        "meta": {}, "created_at": 0
    }))
    .unwrap()
}

fn turn_rows(texts: &[&str]) -> Vec<MessageRow> {
    let mut out = Vec::new();
    for t in texts {
        let seq = i64::try_from(out.len()).unwrap() + 1;
        out.push(row(seq, "user", t));
        out.push(row(seq + 1, "assistant", &answer_for(t)));
    }
    out
}

#[test]
fn each_violation_is_named() {
    let chain = vec![texts(&["a0", "a1", "a2"])];
    assert_eq!(
        check_session(&turn_rows(&["a0", "a1", "a2"]), &chain),
        Ok(())
    );
    let reason = |rows: Vec<MessageRow>, chains: &[Vec<String>]| {
        check_session(&rows, chains).expect_err("a violation must be reported")
    };
    assert!(reason(turn_rows(&["a0", "a1", "a1"]), &chain).contains("repeats"));
    assert!(reason(turn_rows(&["a0", "a2", "a1"]), &chain).contains("out of send order"));
    assert!(reason(turn_rows(&["a0", "a1"]), &chain).contains("expected 6"));
    assert!(reason(turn_rows(&["a0", "a1", "zz"]), &chain).contains("never acknowledged"));
    let mut gap = turn_rows(&["a0", "a1", "a2"]);
    gap.drain(2..4);
    assert!(reason(gap, &[texts(&["a0", "a2"])]).contains("gap"));
    let mut repeated_seq = turn_rows(&["a0", "a1"]);
    repeated_seq[2].seq = 2;
    assert!(reason(repeated_seq, &[texts(&["a0", "a1"])]).contains("repeated seq"));
    let torn = vec![
        row(1, "user", "a0"),
        row(2, "user", "a1"),
        row(3, "assistant", &answer_for("a0")),
        row(4, "assistant", &answer_for("a1")),
    ];
    assert!(reason(torn, &[texts(&["a0", "a1"])]).contains("not a user message"));
    let swapped = vec![
        row(1, "user", "a0"),
        row(2, "assistant", &answer_for("a1")),
        row(3, "user", "a1"),
        row(4, "assistant", &answer_for("a0")),
    ];
    assert!(reason(swapped, &[texts(&["a0", "a1"])]).contains("broken pair"));
}
