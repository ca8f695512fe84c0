#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `power-loop workflow validate FILE [--json]`: exit codes and the exact output lines.

use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_power-loop"))
        .args(args)
        .env_remove("POWER_LOOP_DSN")
        .output()
        .unwrap()
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

const VALID: &str = r#"{"name": "pipe", "root": {"type": "sequence", "steps": [
  {"type": "agent", "id": "a", "spec": {"name": "a", "system_prompt": "p"}},
  {"type": "agent", "id": "b", "spec": {"name": "b", "system_prompt": "p"}, "inputs_from": ["a"]}]}}"#;

const INVALID: &str = r#"{"name": "", "root": {"type": "branch", "on": "x", "cases": ["a"]}}"#;

#[test]
fn valid_spec_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(&dir, "ok.json", VALID);
    let out = run(&["workflow", "validate", &f]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "valid: pipe (3 nodes)\n"
    );
    let out = run(&["workflow", "validate", &f, "--json"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "{\"valid\":true,\"problems\":[]}\n"
    );
}

#[test]
fn invalid_spec_exits_one_with_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(&dir, "bad.json", INVALID);
    let out = run(&["workflow", "validate", &f, "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 1);
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"valid": false, "problems": [
            {"path": "", "message": "'name' must be a non-empty string"},
            {"path": "root", "message": "'on' references unknown node 'x' (known: [])"},
            {"path": "root", "message": "branch requires a non-empty 'cases' object"}
        ]})
    );
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["valid", "problems"]);
    let out = run(&["workflow", "validate", &f]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "invalid WorkflowSpec — 3 problem(s):\n  - 'name' must be a non-empty string\n  - root: 'on' references unknown node 'x' (known: [])\n  - root: branch requires a non-empty 'cases' object\n"
    );
}

#[test]
fn text_that_is_not_json_is_one_problem_with_the_empty_path() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(&dir, "junk.json", "name: pipe\n");
    let out = run(&["workflow", "validate", &f, "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["valid"], false);
    let problems = v["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0]["path"], "");
    assert!(
        problems[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("JSON parse error: ")
    );
}

#[test]
fn missing_file_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("nope.json");
    let out = run(&["workflow", "validate", f.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("power-loop: "), "{stderr}");
    assert!(stderr.contains("cannot read"), "{stderr}");
    assert!(stderr.contains("nope.json"), "{stderr}");
}
