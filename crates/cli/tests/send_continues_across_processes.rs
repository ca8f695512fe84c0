#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `power-loop send` run twice from two processes continues one conversation, and the second
//! request that reaches the provider carries the whole history.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::{Arc, Mutex};

/// A minimal OpenAI-compatible server: records each request body, answers with an SSE stream.
fn start_server() -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let seen = bodies.clone();
    std::thread::spawn(move || {
        for (n, stream) in listener.incoming().enumerate() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let l = line.trim_end().to_ascii_lowercase();
                if l.is_empty() {
                    break;
                }
                if let Some(v) = l.strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0u8; len];
            reader.read_exact(&mut body).unwrap();
            seen.lock()
                .unwrap()
                .push(serde_json::from_slice(&body).unwrap());
            let chunk = |delta: &str, finish: &str| {
                format!(
                    "data: {{\"id\":\"c{n}\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-test\",\"choices\":[{{\"index\":0,\"delta\":{delta},\"finish_reason\":{finish}}}]}}\n\n"
                )
            };
            let body = format!(
                "{}{}{}data: [DONE]\n\n",
                chunk(
                    &format!(
                        "{{\"role\":\"assistant\",\"content\":\"answer {}\"}}",
                        n + 1
                    ),
                    "null"
                ),
                chunk("{}", "\"stop\""),
                "data: {\"id\":\"u\",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":2,\"total_tokens\":9}}\n\n"
            );
            let head =
                "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n";
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(body.as_bytes());
            let _ = stream.flush();
        }
    });
    (format!("http://{addr}/v1"), bodies)
}

fn cli(dir: &std::path::Path, base_url: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_power-loop"))
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("POWER_LOOP_BASE_URL", base_url)
        .env("POWER_LOOP_API_KEY", "sk-test")
        .env("POWER_LOOP_MODEL", "gpt-test")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn second_process_continues_the_first_conversation() {
    let (url, bodies) = start_server();
    let dir = tempfile::tempdir().unwrap();
    let first = cli(
        dir.path(),
        &url,
        &["send", "--new-session", "s1", "--json", "first question"],
    );
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(v["session_id"], "s1");
    assert_eq!(v["final_text"], "answer 1");
    assert_eq!(v["usage"]["total_tokens"], 9);
    assert!(!String::from_utf8_lossy(&first.stderr).contains("OFFLINE"));

    let second = cli(
        dir.path(),
        &url,
        &["send", "--session", "s1", "second question"],
    );
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    let out = String::from_utf8_lossy(&second.stdout);
    assert_eq!(out, "answer 2\n");
    // Status goes to stderr, never into the answer.
    assert!(String::from_utf8_lossy(&second.stderr).contains("session: s1"));

    let bodies = bodies.lock().unwrap();
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
    let run = |flag: &str, text: &str| {
        Command::new(env!("CARGO_BIN_EXE_power-loop"))
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .args(["send", flag, "s", text])
            .output()
            .unwrap()
    };
    let a = run("--new-session", "one");
    assert!(a.status.success());
    assert!(String::from_utf8_lossy(&a.stderr).contains("OFFLINE"));
    let b = run("--session", "two");
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
