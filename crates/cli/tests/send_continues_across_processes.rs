#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `power-loop send` run twice from two processes continues one conversation, and the second
//! request that reaches the provider carries the whole history.

mod support;

use std::process::Command;

use support::{Fake, Reply, pairs, provider_env, run, show};

/// `send` in `dir` against the fake server.
fn cli(dir: &std::path::Path, fake: &Fake, args: &[&str]) -> std::process::Output {
    let env = provider_env(fake);
    run(dir, &pairs(&env), args)
}

#[test]
fn second_process_continues_the_first_conversation() {
    // Answers `answer 1`, `answer 2`, … (usage: 100 tokens a call).
    let fake = Fake::start(|n| Reply::Text(vec![format!("answer {}", n + 1)]));
    let dir = tempfile::tempdir().unwrap();
    let first = cli(
        dir.path(),
        &fake,
        &["send", "--new-session", "s1", "--json", "first question"],
    );
    assert!(first.status.success(), "{}", show(&first));
    let v: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(v["session_id"], "s1");
    assert_eq!(v["final_text"], "answer 1");
    assert_eq!(v["usage"]["total_tokens"], 100);
    assert!(!String::from_utf8_lossy(&first.stderr).contains("OFFLINE"));

    let second = cli(
        dir.path(),
        &fake,
        &["send", "--session", "s1", "second question"],
    );
    assert!(second.status.success(), "{}", show(&second));
    let out = String::from_utf8_lossy(&second.stdout);
    assert_eq!(out, "answer 2\n");
    // Status goes to stderr, never into the answer.
    assert!(String::from_utf8_lossy(&second.stderr).contains("session: s1"));

    let bodies: Vec<serde_json::Value> = fake.requests().into_iter().map(|s| s.body).collect();
    assert_eq!(bodies.len(), 2);
    let msgs: Vec<(String, String)> = bodies[1]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] != "system")
        .map(|m| {
            (
                m["role"].as_str().unwrap().to_owned(),
                m["content"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        msgs,
        vec![
            ("user".to_owned(), "first question".to_owned()),
            ("assistant".to_owned(), "answer 1".to_owned()),
            ("user".to_owned(), "second question".to_owned()),
        ]
    );
    assert_eq!(bodies[1]["model"], "gpt-test");
    assert_eq!(bodies[1]["stream"], true);
}

#[test]
fn offline_mode_says_so_and_keeps_history() {
    let dir = tempfile::tempdir().unwrap();
    let send = |flag: &str, text: &str| run(dir.path(), &[], &["send", flag, "s", text]);
    let a = send("--new-session", "one");
    assert!(a.status.success());
    assert!(String::from_utf8_lossy(&a.stderr).contains("OFFLINE"));
    let b = send("--session", "two");
    let out = String::from_utf8_lossy(&b.stdout);
    assert!(out.contains("3 message(s), 2 from you"), "{out}");
    assert!(dir.path().join("power-loop.db").exists());
}

#[test]
fn bad_dsn_is_a_clear_error_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_power-loop"))
        .current_dir(dir.path())
        .env_clear()
        .args(["--dsn", "sqlit://typo.db", "send", "hi"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("store.dsn_invalid"));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}
