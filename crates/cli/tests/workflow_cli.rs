#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `power-loop workflow run / resume / status / list` from outside: exit codes, JSON keys, the
//! journal across processes, and `--detach` (run id at once, the run finishing in the
//! background). The model is a local fake OpenAI-compatible server (never the network) or the
//! offline scripted model.

mod support;

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use serde_json::Value;
use support::{SSE_HEAD, chunk, read_request};

/// A fake OpenAI-compatible server. The system prompt of each request decides: `fragile` fails
/// with HTTP 400 while `fail_flag` exists; `slow` waits 1.5 s; every answer is
/// `answer to: {system prompt}`. Returns the base URL and the system prompts seen.
fn start_server(fail_flag: PathBuf) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let (log, fail_flag) = (log.clone(), fail_flag.clone());
            std::thread::spawn(move || serve(stream, &log, &fail_flag));
        }
    });
    (format!("http://{addr}/v1"), seen)
}

fn serve(mut stream: std::net::TcpStream, log: &Mutex<Vec<String>>, fail_flag: &Path) {
    let Some((_, body)) = read_request(&stream) else {
        return;
    };
    let req: Value = serde_json::from_slice(&body).unwrap();
    let system = req["messages"]
        .as_array()
        .and_then(|m| m.iter().find(|m| m["role"] == "system"))
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_owned();
    log.lock().unwrap().push(system.clone());
    if system.contains("fragile") && fail_flag.exists() {
        let body = r#"{"error":{"message":"scripted failure","type":"invalid_request_error"}}"#;
        let _ = write!(
            stream,
            "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        return;
    }
    if system.contains("slow") {
        std::thread::sleep(Duration::from_millis(1500));
    }
    let text = format!("answer to: {system}");
    let body = format!(
        "{}{}data: {{\"id\":\"u\",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":{{\"prompt_tokens\":5,\"completion_tokens\":3,\"total_tokens\":8}}}}\n\ndata: [DONE]\n\n",
        chunk(
            0,
            &serde_json::json!({"role": "assistant", "content": text}).to_string(),
            "null"
        ),
        chunk(0, "{}", "\"stop\""),
    );
    let _ = stream.write_all(SSE_HEAD.as_bytes());
    let _ = stream.write_all(body.as_bytes());
    let _ = stream.flush();
}

/// The CLI in `dir`, with the fake server as provider when `url` is given (offline otherwise).
fn cli(dir: &Path, url: Option<&str>) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_power-loop"));
    c.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TMPDIR", dir);
    if let Some(u) = url {
        c.env("POWER_LOOP_BASE_URL", u)
            .env("POWER_LOOP_API_KEY", "sk-test")
            .env("POWER_LOOP_MODEL", "gpt-test");
    }
    c
}

fn write_spec(dir: &Path, name: &str, spec: &Value) -> String {
    let p = dir.join(name);
    std::fs::write(&p, spec.to_string()).unwrap();
    p.to_string_lossy().into_owned()
}

fn json_line(out: &std::process::Output) -> Value {
    let s = String::from_utf8_lossy(&out.stdout);
    assert_eq!(s.lines().count(), 1, "one JSON line expected: {s}");
    serde_json::from_str(&s).unwrap()
}

fn pair(first: &str, second: &str) -> Value {
    serde_json::json!({"name": "pair", "input": "tea", "root": {"type": "sequence", "steps": [
        {"type": "agent", "id": "a", "spec": {"name": "a", "system_prompt": first}, "input": "about {{input}}"},
        {"type": "foreach", "id": "f", "items": ["x", "y"], "as": "t", "parallel": true,
         "body": {"type": "agent", "id": "r", "spec": {"name": "r", "system_prompt": "item {{t}}"}}},
        {"type": "agent", "id": "b", "spec": {"name": "b", "system_prompt": second}, "inputs_from": ["a"]}
    ]}})
}

#[test]
fn run_prints_the_result_and_exits_by_ok() {
    let dir = tempfile::tempdir().unwrap();
    let f = write_spec(dir.path(), "s.json", &pair("steady", "steady too"));
    let out = cli(dir.path(), None)
        .args(["workflow", "run", &f, "--json", "--input", "matcha"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v = json_line(&out);
    for key in [
        "name", "status", "results", "final", "usage", "errors", "run_id",
    ] {
        assert!(v.get(key).is_some(), "missing {key}: {v}");
    }
    assert_eq!(v["status"], "completed");
    assert_eq!(v["results"].as_object().unwrap().len(), 5);
    assert!(
        v["results"]["a"]["text"]
            .as_str()
            .unwrap()
            .ends_with("about matcha")
    );
    let run_id = v["run_id"].as_str().unwrap();
    assert_eq!(run_id.len(), 16);

    let out = cli(dir.path(), None)
        .args(["workflow", "run", &f])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("workflow 'pair' -> completed\n"), "{text}");
    assert!(text.contains("\nrun: "), "{text}");
    // Progress never goes to stdout; with --progress it goes to stderr.
    assert!(!text.contains("steps finished"));
    let out = cli(dir.path(), None)
        .args(["workflow", "run", &f, "--progress", "--json"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("workflow: 5/5 steps finished"), "{err}");
    json_line(&out);

    // A leaf whose structured output cannot be parsed fails the run: exit 1.
    let bad = serde_json::json!({"name": "shape", "root": {"type": "agent", "id": "p",
        "spec": {"name": "p", "system_prompt": "plan"},
        "output_schema": {"name": "Plan", "schema": {"type": "object", "required": ["subtopics"]}}}});
    let g = write_spec(dir.path(), "bad.json", &bad);
    let out = cli(dir.path(), None)
        .args(["workflow", "run", &g, "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v = json_line(&out);
    assert_eq!(v["status"], "failed");
    assert!(!v["errors"].as_array().unwrap().is_empty());
}

#[test]
fn invalid_spec_prints_the_validate_output_and_exits_one() {
    let dir = tempfile::tempdir().unwrap();
    let f = write_spec(
        dir.path(),
        "bad.json",
        &serde_json::json!({"name": "", "root": {"type": "branch", "on": "x", "cases": ["a"]}}),
    );
    let out = cli(dir.path(), None)
        .args(["workflow", "run", &f, "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v = json_line(&out);
    assert_eq!(v["valid"], false);
    assert_eq!(v["problems"].as_array().unwrap().len(), 3);
    let out = cli(dir.path(), None)
        .args(["workflow", "run", &f])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("invalid WorkflowSpec — 3 problem(s):")
    );
    // Nothing ran, nothing was journaled.
    let out = cli(dir.path(), None)
        .args(["workflow", "list", "--json"])
        .output()
        .unwrap();
    assert_eq!(json_line(&out), serde_json::json!([]));
    // An unreadable file is an error too.
    cli(dir.path(), None)
        .args(["workflow", "run", "missing.json"])
        .assert()
        .code(1);
}

#[test]
fn resume_in_a_new_process_reruns_only_the_failed_leaf() {
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("fail-now");
    std::fs::write(&flag, "").unwrap();
    let (url, seen) = start_server(flag.clone());
    let f = write_spec(dir.path(), "s.json", &pair("steady", "fragile"));
    let out = cli(dir.path(), Some(&url))
        .args(["workflow", "run", &f, "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let v = json_line(&out);
    assert_eq!(v["status"], "failed");
    let run_id = v["run_id"].as_str().unwrap().to_owned();

    let out = cli(dir.path(), None)
        .args(["workflow", "status", &run_id, "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let st = json_line(&out);
    for key in [
        "run_id", "workflow", "status", "attempts", "progress", "steps", "errors",
    ] {
        assert!(st.get(key).is_some(), "missing {key}: {st}");
    }
    assert_eq!(st["status"], "failed");
    assert_eq!(st["attempts"], 1);
    assert_eq!(st["progress"]["finished_steps"], 5);
    assert_eq!(st["progress"]["completed_steps"], 4);

    std::fs::remove_file(&flag).unwrap();
    let before = seen.lock().unwrap().len();
    let out = cli(dir.path(), Some(&url))
        .args(["workflow", "resume", &run_id, "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v = json_line(&out);
    assert_eq!(v["status"], "completed");
    assert_eq!(v["run_id"], run_id.as_str());
    assert_eq!(v["results"]["b"]["text"], "answer to: fragile");
    // Only the failed leaf reached the model again.
    let again: Vec<String> = seen.lock().unwrap()[before..].to_vec();
    assert_eq!(again, vec!["fragile".to_owned()]);

    let out = cli(dir.path(), None)
        .args(["workflow", "status", &run_id])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("status:    completed (attempt 2)"), "{text}");
    assert!(text.contains("[completed] b"), "{text}");
    // Unknown run ids.
    cli(dir.path(), None)
        .args(["workflow", "status", "0000000000000000"])
        .assert()
        .code(1);
    cli(dir.path(), None)
        .args(["workflow", "resume", "0000000000000000"])
        .assert()
        .code(1);
}

#[test]
fn list_is_a_table_with_human_dates_and_filters_by_session() {
    let dir = tempfile::tempdir().unwrap();
    let f = write_spec(dir.path(), "s.json", &pair("one", "two"));
    cli(dir.path(), None)
        .args(["send", "--new-session", "boss", "hello"])
        .assert()
        .code(0);
    cli(dir.path(), None)
        .args(["workflow", "run", &f])
        .assert()
        .code(0);
    cli(dir.path(), None)
        .args(["workflow", "run", &f, "--session", "boss"])
        .assert()
        .code(0);
    let out = cli(dir.path(), None)
        .args(["workflow", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines[0].starts_with("RUN_ID "), "{text}");
    assert!(lines[0].contains("STATUS") && lines[0].contains("CREATED"));
    let date = regex_like_date(lines[1]);
    assert!(date, "no human date in: {}", lines[1]);
    assert!(lines[2].contains(" boss "), "{text}");
    let out = cli(dir.path(), None)
        .args(["workflow", "list", "--session", "boss", "--json"])
        .output()
        .unwrap();
    let v = json_line(&out);
    let runs = v.as_array().unwrap();
    assert_eq!(runs.len(), 1);
    for key in [
        "run_id",
        "workflow",
        "status",
        "attempts",
        "detached",
        "parent_session_id",
        "created_at_ms",
        "finished_at_ms",
    ] {
        assert!(runs[0].get(key).is_some(), "missing {key}");
    }
    assert_eq!(runs[0]["parent_session_id"], "boss");
    // An unknown parent session is an error, not a silent root run.
    cli(dir.path(), None)
        .args(["workflow", "run", &f, "--session", "nobody"])
        .assert()
        .code(1);
}

/// Whether the line holds `YYYY-MM-DD HH:MM:SS UTC`.
fn regex_like_date(line: &str) -> bool {
    line.split("  ").any(|cell| {
        let b = cell.trim().as_bytes();
        b.len() == 23
            && b[4] == b'-'
            && b[7] == b'-'
            && b[10] == b' '
            && b[13] == b':'
            && cell.trim().ends_with(" UTC")
    })
}

#[test]
fn detach_prints_the_run_id_at_once_and_the_run_finishes_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let (url, _seen) = start_server(dir.path().join("never"));
    let f = write_spec(dir.path(), "s.json", &pair("slow", "slow too"));
    cli(dir.path(), Some(&url))
        .args(["send", "--new-session", "boss", "hello"])
        .assert()
        .code(0);
    let t = Instant::now();
    let out = cli(dir.path(), Some(&url))
        .args(["workflow", "run", &f, "--session", "boss", "--detach"])
        .output()
        .unwrap();
    let took = t.elapsed();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let run_id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert_eq!(run_id.len(), 16, "{run_id}");
    assert!(run_id.chars().all(|c| c.is_ascii_hexdigit()));
    // Two slow leaves in sequence take ≥ 3 s; the command returned before the run ended.
    let status = |id: &str| {
        let out = cli(dir.path(), None)
            .args(["workflow", "status", id, "--json"])
            .output()
            .unwrap();
        json_line(&out)
    };
    let first = status(&run_id);
    assert_eq!(
        first["status"], "running",
        "returned after {took:?}: {first}"
    );
    assert_eq!(first["detached"], true);
    assert_eq!(first["parent_session_id"], "boss");
    let deadline = Instant::now() + Duration::from_secs(60);
    let done = loop {
        let v = status(&run_id);
        if v["status"] != "running" {
            break v;
        }
        assert!(Instant::now() < deadline, "the background run did not end");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["progress"]["finished_steps"], 5);
    // Its log is private and holds the summary.
    let logs: Vec<PathBuf> = std::fs::read_dir(dir.path().join("power-loop-workflows"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(logs.len(), 1);
    let log = std::fs::read_to_string(&logs[0]).unwrap();
    assert!(log.contains("workflow 'pair' -> completed"), "{log}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&logs[0]).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // --json form.
    let out = cli(dir.path(), Some(&url))
        .args([
            "workflow",
            "run",
            &f,
            "--session",
            "boss",
            "--detach",
            "--json",
        ])
        .output()
        .unwrap();
    let v = json_line(&out);
    assert_eq!(v["status"], "running");
    assert_eq!(v["detached"], true);
    assert_eq!(v["run_id"].as_str().unwrap().len(), 16);
}

#[test]
fn detach_needs_a_session() {
    let dir = tempfile::tempdir().unwrap();
    let f = write_spec(dir.path(), "s.json", &pair("one", "two"));
    let out = cli(dir.path(), None)
        .args(["workflow", "run", &f, "--detach"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--session"));
    assert!(out.stdout.is_empty());
    // A detached run for a session that does not exist fails before printing an id.
    let out = cli(dir.path(), None)
        .args(["workflow", "run", &f, "--detach", "--session", "ghost"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("ghost"));
}
