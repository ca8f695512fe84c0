//! `power-loop send` against a local OpenAI-compatible server: one test per exit code, the JSON
//! object on every exit, provider settings on the wire, stdin prompts, streaming, Ctrl-C.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::{Fake, Reply, code, json, pairs, provider_env, run, show};

#[test]
fn exit_0_completed_and_provider_settings_reach_the_wire() {
    let fake = Fake::text("hello there");
    let dir = tempfile::tempdir().unwrap();
    let mut env = provider_env(&fake);
    env.push(("POWER_LOOP_MAX_TOKENS", "64".into()));
    env.push(("POWER_LOOP_TEMPERATURE", "0.5".into()));
    let o = run(dir.path(), &pairs(&env), &["send", "hi"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "hello there\n");
    let o = run(
        dir.path(),
        &pairs(&env),
        &["send", "--max-tokens", "32", "--temperature", "0.1", "hi"],
    );
    assert_eq!(code(&o), 0, "{}", show(&o));
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2);
    // The provider's settings win over any loop default; explicit flags win over both.
    assert_eq!(reqs[0].body["max_tokens"], 64, "{}", reqs[0].body);
    assert_eq!(reqs[0].body["temperature"], 0.5);
    assert_eq!(reqs[1].body["max_tokens"], 32);
    assert_eq!(reqs[1].body["temperature"], 0.1);
    // A local server needs no key: no Authorization header is sent.
    assert!(
        !reqs[0]
            .headers
            .iter()
            .any(|h| h.starts_with("authorization:"))
    );
}

#[test]
fn vendor_key_and_model_flag_reach_the_wire() {
    let fake = Fake::text("ok");
    let dir = tempfile::tempdir().unwrap();
    let mut env = provider_env(&fake);
    env.push(("OPENAI_API_KEY", "sk-from-openai-var".into()));
    let o = run(
        dir.path(),
        &pairs(&env),
        &["send", "-m", "other-model", "hi"],
    );
    assert_eq!(code(&o), 0, "{}", show(&o));
    let r = &fake.requests()[0];
    assert_eq!(r.body["model"], "other-model");
    assert!(
        r.headers
            .iter()
            .any(|h| h == "authorization: bearer sk-from-openai-var"),
        "{:?}",
        r.headers
    );
}

#[test]
fn provider_is_selected_by_provider_or_base_url_and_unknown_ones_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(
        dir.path(),
        &[
            ("POWER_LOOP_PROVIDER", "opnai"),
            ("POWER_LOOP_BASE_URL", "http://127.0.0.1:9/v1"),
            ("POWER_LOOP_MODEL", "m"),
        ],
        &["send", "hi"],
    );
    assert_eq!(code(&o), 1, "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("`opnai`") && err.contains("config.invalid"),
        "{err}"
    );
    // Only a model or key set: no provider selected, the offline model answers and says so.
    let o = run(dir.path(), &[("POWER_LOOP_MODEL", "m")], &["send", "hi"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("OFFLINE"));
}

#[test]
fn exit_3_degraded_on_an_always_429_provider_prints_no_answer() {
    let fake = Fake::start(|_| Reply::TooMany);
    let dir = tempfile::tempdir().unwrap();
    let env = provider_env(&fake);
    let o = run(dir.path(), &pairs(&env), &["send", "hi"]);
    assert_eq!(code(&o), 3, "{}", show(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "",
        "the marker is not an answer"
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("degraded") && err.contains("429"), "{err}");
    assert_eq!(
        fake.requests().len(),
        2,
        "POWER_LOOP_MAX_RETRIES=1: two attempts, no double retry layer"
    );
    let o = run(dir.path(), &pairs(&env), &["send", "--json", "hi"]);
    assert_eq!(code(&o), 3, "{}", show(&o));
    let v = json(&o);
    assert_eq!(v["status"], "degraded");
    assert_eq!(v["exit_code"], 3);
    assert!(v["session_id"].as_str().unwrap().starts_with("sess_"));
    assert!(v["usage"].is_object() && v["final_text"].is_string());
    assert!(
        v["error"]["message"].as_str().unwrap().contains("429"),
        "{v}"
    );
}

#[test]
fn exit_3_degraded_on_an_unreachable_provider() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("POWER_LOOP_BASE_URL", "http://127.0.0.1:9/v1"),
        ("POWER_LOOP_MODEL", "m"),
        ("POWER_LOOP_MAX_RETRIES", "0"),
    ];
    let o = run(dir.path(), &env, &["send", "--json", "hi"]);
    assert_eq!(code(&o), 3, "{}", show(&o));
    assert_eq!(json(&o)["status"], "degraded");
}

#[test]
fn exit_6_pending_tool_call_without_tools() {
    let fake = Fake::start(|_| Reply::ToolCall("lookup".into()));
    let dir = tempfile::tempdir().unwrap();
    let o = run(
        dir.path(),
        &pairs(&provider_env(&fake)),
        &["send", "--json", "hi"],
    );
    assert_eq!(code(&o), 6, "{}", show(&o));
    let v = json(&o);
    assert_eq!(v["status"], "pending_tools");
    assert_eq!(
        v["pending_tool_calls"][0]["function"]["name"], "lookup",
        "{v}"
    );
}

#[test]
fn exit_5_round_limit_and_token_budget() {
    let fake = Fake::start(|_| Reply::ToolCall("current_time".into()));
    let dir = tempfile::tempdir().unwrap();
    let env = provider_env(&fake);
    let o = run(
        dir.path(),
        &pairs(&env),
        &["send", "--timer-tools", "--max-rounds", "1", "--json", "hi"],
    );
    assert_eq!(code(&o), 5, "{}", show(&o));
    assert_eq!(json(&o)["status"], "hit_round_limit");
    let o = run(
        dir.path(),
        &pairs(&env),
        &[
            "send",
            "--timer-tools",
            "--token-budget",
            "50",
            "--json",
            "hi",
        ],
    );
    assert_eq!(code(&o), 5, "{}", show(&o));
    assert_eq!(json(&o)["status"], "budget_exceeded");
    let o = run(
        dir.path(),
        &pairs(&env),
        &["send", "--timer-tools", "--max-rounds", "1", "hi"],
    );
    assert_eq!(code(&o), 5, "{}", show(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("round limit"));
}

/// A model that stalls on the first request (30 s) and answers `text` to the next ones.
fn stall_then(text: &'static str) -> Fake {
    Fake::start(move |n| {
        if n == 0 {
            Reply::Stall(Duration::from_secs(30))
        } else {
            Reply::Text(vec![text.into()])
        }
    })
}

/// Waits until `fake` has a request (at most 30 s), then gives the call 300 ms to be under way
/// and sends `child` SIGINT (Ctrl-C); returns when the wait began.
fn interrupt_once_called(fake: &Fake, child: &std::process::Child) -> Instant {
    let start = Instant::now();
    while fake.requests().is_empty() && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    let pid = rustix::process::Pid::from_raw(i32::try_from(child.id()).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::INT).unwrap();
    start
}

#[test]
fn exit_4_ctrl_c_cancels_the_send_and_the_session_stays_usable() {
    let fake = stall_then("after cancel");
    let dir = tempfile::tempdir().unwrap();
    let env = provider_env(&fake);
    let child = support::cmd(
        dir.path(),
        &pairs(&env),
        &["send", "--new-session", "c1", "--json", "long task"],
    )
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let start = interrupt_once_called(&fake, &child);
    let o = child.wait_with_output().unwrap();
    assert_eq!(code(&o), 4, "{}", show(&o));
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "cancel did not stop the stalled call"
    );
    let v = json(&o);
    assert_eq!(v["status"], "cancelled");
    assert_eq!(v["session_id"], "c1");
    let o = run(
        dir.path(),
        &pairs(&env),
        &["send", "--session", "c1", "again"],
    );
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "after cancel\n");
}

#[test]
fn exit_2_usage_errors_print_json_with_json() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["send", "--session", "", "hi"][..],
        &["send", "--new-session", "a/b", "hi"],
        &["send", "--temperature", "9", "hi"],
        &["send", "--bogus-flag", "hi"],
        &["send", "--session", "a", "--new-session", "b", "hi"],
        &["send", "   "],
        &["sessions", "prune", "--older-than", "3y"],
    ] {
        let o = run(dir.path(), &[], args);
        assert_eq!(code(&o), 2, "{args:?}: {}", show(&o));
    }
    let o = run(dir.path(), &[], &["send", "--json", "--bogus-flag", "hi"]);
    assert_eq!(code(&o), 2, "{}", show(&o));
    assert_eq!(json(&o)["status"], "usage_error");
    let o = run(dir.path(), &[], &["send", "--json", "--session", "", "hi"]);
    assert_eq!(code(&o), 2, "{}", show(&o));
    let v = json(&o);
    assert_eq!(v["status"], "usage_error");
    assert_eq!(v["exit_code"], 2);
    assert!(v["usage"].is_object());
    // Nothing was created by refused commands.
    assert!(!dir.path().join("power-loop.db").exists());
}

#[test]
fn exit_1_unknown_session_and_new_session_rules() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(dir.path(), &[], &["send", "--new-session", "mine", "hi"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let o = run(dir.path(), &[], &["send", "--session", "typo123", "hi"]);
    assert_eq!(code(&o), 1, "{}", show(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("session.not_found"));
    let o = run(
        dir.path(),
        &[],
        &["send", "--json", "--session", "typo123", "hi"],
    );
    assert_eq!(code(&o), 1, "{}", show(&o));
    let v = json(&o);
    assert_eq!(v["status"], "error");
    assert_eq!(v["error"]["code"], "session.not_found");
    let o = run(dir.path(), &[], &["send", "--new-session", "mine", "hi"]);
    assert_eq!(code(&o), 1, "{}", show(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("session.exists"));
    let o = run(
        dir.path(),
        &[],
        &["--offline", "send", "--session", "mine", "hi again"],
    );
    assert_eq!(code(&o), 0, "{}", show(&o));
    // `--session` on a store that does not exist creates nothing.
    let o = run(
        dir.path(),
        &[],
        &["--dsn", "nowhere/x.db", "send", "--session", "mine", "hi"],
    );
    assert_eq!(code(&o), 1, "{}", show(&o));
    assert!(!dir.path().join("nowhere").exists());
}

#[test]
fn prompt_from_stdin_and_streaming() {
    let fake = Fake::start(|_| Reply::Text(vec!["Hel".into(), "lo ".into(), "world".into()]));
    let dir = tempfile::tempdir().unwrap();
    let env = provider_env(&fake);
    for args in [&["send", "-"][..], &["send"], &["send", "--stream", "-"]] {
        let o = assert_cmd::Command::from_std(support::cmd(dir.path(), &pairs(&env), args))
            .write_stdin("from a pipe\n")
            .output()
            .unwrap();
        assert_eq!(code(&o), 0, "{args:?}: {}", show(&o));
        assert_eq!(
            String::from_utf8_lossy(&o.stdout),
            "Hello world\n",
            "{args:?}"
        );
    }
    for r in fake.requests() {
        let last = r.body["messages"]
            .as_array()
            .unwrap()
            .last()
            .unwrap()
            .clone();
        assert_eq!(last["content"], "from a pipe\n");
    }
}

#[test]
fn verbose_installs_a_log_subscriber() {
    let fake = Fake::text("ok");
    let dir = tempfile::tempdir().unwrap();
    let env = provider_env(&fake);
    let o = run(dir.path(), &pairs(&env), &["-v", "send", "hi"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("provider configured"),
        "{}",
        show(&o)
    );
    let mut env2 = pairs(&env);
    env2.push(("RUST_LOG", "debug"));
    let o = run(dir.path(), &env2, &["send", "hi"]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("DEBUG"),
        "{}",
        show(&o)
    );
    let o = run(dir.path(), &pairs(&env), &["send", "hi"]);
    assert!(
        !String::from_utf8_lossy(&o.stderr).contains("INFO"),
        "{}",
        show(&o)
    );
}

#[test]
fn help_documents_exit_codes_and_examples() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(dir.path(), &[], &["--help"]);
    assert_eq!(code(&o), 0);
    let h = String::from_utf8_lossy(&o.stdout);
    for s in ["Exit codes", "3  degraded", "6  waiting", "Examples:"] {
        assert!(h.contains(s), "{s} missing in --help:\n{h}");
    }
    let o = run(dir.path(), &[], &["send", "--help"]);
    let h = String::from_utf8_lossy(&o.stdout);
    assert!(
        h.contains("--new-session") && h.contains("Examples:") && h.contains("--max-tokens"),
        "{h}"
    );
}

#[test]
fn chat_ctrl_c_cancels_the_answer_in_flight_and_goes_on() {
    let fake = stall_then("second answer");
    let dir = tempfile::tempdir().unwrap();
    let env = provider_env(&fake);
    let mut child = support::cmd(dir.path(), &pairs(&env), &["chat", "--new-session", "ch"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"a long question\n").unwrap();
    let start = interrupt_once_called(&fake, &child);
    std::thread::sleep(Duration::from_millis(300));
    stdin.write_all(b"and now?\n/exit\n").unwrap();
    drop(stdin);
    let o = child.wait_with_output().unwrap();
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert!(start.elapsed() < Duration::from_secs(20));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("second answer"), "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("cancel"),
        "{}",
        show(&o)
    );
    assert_eq!(fake.requests().len(), 2);
}
