#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The CLI's `send` and `chat` end to end against the real server, on both wire formats,
//! configured as a user would: `POWER_LOOP_PROVIDER`, `POWER_LOOP_BASE_URL`, `POWER_LOOP_MODEL`,
//! `POWER_LOOP_MAX_TOKENS`. The settings must reach the wire (issue 20 found the loop's default
//! `max_tokens: 8000` on the wire although `POWER_LOOP_MAX_TOKENS=64` was set).

use power_loop_real_tests::cli::{command, ok_stdout, run_with_stdin};
use power_loop_real_tests::{Proxy, RealServer, Wire, real_test};
use serde_json::{Value, json};

/// `send --json TEXT` (with `extra` arguments before the text); returns the printed object.
fn send_json(
    wire: Wire,
    base: &str,
    dsn: &str,
    max_tokens: u32,
    extra: &[&str],
    text: &str,
) -> Value {
    let mut cmd = command(wire, base, dsn, max_tokens);
    cmd.arg("send").args(extra).args(["--json", text]);
    let out = cmd.output().unwrap();
    let stdout = ok_stdout(&out);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .unwrap_or_else(|| panic!("a JSON object on stdout: {stdout}"));
    serde_json::from_str(line).unwrap()
}

async fn send_twice(wire: Wire, server: RealServer) {
    let dir = tempfile::tempdir().unwrap();
    let dsn = dir.path().join("cli.db").display().to_string();
    let proxy = Proxy::start(&server.base_url);

    let first = send_json(
        wire,
        &proxy.base_url,
        &dsn,
        16,
        &[],
        "My favourite colour is teal.",
    );
    assert_eq!(first["status"], "completed", "{first}");
    let sid = first["session_id"].as_str().unwrap().to_owned();
    assert!(!first["final_text"].as_str().unwrap().is_empty());
    let c1 = first["usage"]["completion_tokens"].as_u64().unwrap();
    assert!(
        (1..=16).contains(&c1),
        "POWER_LOOP_MAX_TOKENS bounds the answer: {first}"
    );

    // A second process continues the session.
    let second = send_json(
        wire,
        &proxy.base_url,
        &dsn,
        16,
        &["--session", &sid],
        "What is my favourite colour?",
    );
    assert_eq!(second["status"], "completed", "{second}");
    assert_eq!(second["session_id"], json!(sid));

    let calls = proxy.model_calls();
    assert_eq!(calls.len(), 2);
    for c in &calls {
        assert_eq!(c.path, wire.path());
        assert_eq!(c.body["model"], "smollm2");
        assert_eq!(
            c.body["max_tokens"],
            json!(16),
            "POWER_LOOP_MAX_TOKENS on the wire"
        );
    }
    let texts = wire.request_texts(&calls[1].body);
    let n = texts.len();
    assert_eq!(texts[n - 3], "My favourite colour is teal.");
    assert_eq!(texts[n - 2], first["final_text"].as_str().unwrap());
    assert_eq!(texts[n - 1], "What is my favourite colour?");
    assert!(
        second["usage"]["prompt_tokens"].as_u64().unwrap()
            > first["usage"]["prompt_tokens"].as_u64().unwrap() + c1,
        "the second prompt holds the first turn: {first} / {second}"
    );

    // The command-line flag wins over the environment.
    let third = send_json(
        wire,
        &proxy.base_url,
        &dsn,
        16,
        &["--session", &sid, "--max-tokens", "5"],
        "Write a long poem about the sea.",
    );
    assert_eq!(third["status"], "completed", "{third}");
    assert_eq!(proxy.model_calls()[2].body["max_tokens"], json!(5));
    assert!(third["usage"]["completion_tokens"].as_u64().unwrap() <= 5);
}
real_test!(send_twice_across_processes, super::send_twice);

async fn chat_session(wire: Wire, server: RealServer) {
    let dir = tempfile::tempdir().unwrap();
    let dsn = dir.path().join("chat.db").display().to_string();
    let proxy = Proxy::start(&server.base_url);
    let cmd = command(wire, &proxy.base_url, &dsn, 20);
    let mut cmd = cmd;
    cmd.arg("chat");
    let out = run_with_stdin(
        cmd,
        "Hello, I am Grace.\nWhat is my name?\n/session\n/exit\n",
    );
    let stdout = ok_stdout(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);

    let calls = proxy.model_calls();
    assert_eq!(
        calls.len(),
        2,
        "one model call per line: {stdout}\n{stderr}"
    );
    for c in &calls {
        assert_eq!(c.body["stream"], json!(true));
        assert_eq!(
            c.body["max_tokens"],
            json!(20),
            "POWER_LOOP_MAX_TOKENS on the wire"
        );
    }
    // The streamed answers are what the terminal shows.
    let answers: Vec<String> = calls
        .iter()
        .map(|c| {
            c.sse_data()
                .iter()
                .filter_map(|d| match wire {
                    Wire::OpenAi => d["choices"][0]["delta"]["content"]
                        .as_str()
                        .map(str::to_owned),
                    Wire::Anthropic => d["delta"]["text"].as_str().map(str::to_owned),
                })
                .collect::<String>()
        })
        .collect();
    for a in &answers {
        assert!(!a.trim().is_empty());
        assert!(stdout.contains(a.trim()), "{a:?} shown in {stdout:?}");
    }
    // The second line's request carries the first exchange.
    let texts = wire.request_texts(&calls[1].body);
    let n = texts.len();
    assert_eq!(texts[n - 3], "Hello, I am Grace.");
    assert_eq!(texts[n - 2].trim(), answers[0].trim());
    assert_eq!(texts[n - 1], "What is my name?");
    // `/session` prints the id of the session the chat used, which is in the store.
    let sid = stdout
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.contains(' ') && !answers.iter().any(|a| a.contains(*l)))
        .unwrap_or_else(|| panic!("a session id line in {stdout:?}"))
        .to_owned();
    let mut show = command(wire, &proxy.base_url, &dsn, 20);
    show.args(["sessions", "show", &sid]);
    let shown = ok_stdout(&show.output().unwrap());
    assert!(
        shown.contains("Hello, I am Grace.") && shown.contains("What is my name?"),
        "{shown}"
    );
}
real_test!(chat_two_lines_streamed, super::chat_session);
