//! The operator commands: read-only commands create nothing (SQLite and the servers), pipes
//! closed early, tables and `--json`, sessions export/import/prune/delete, store
//! stats/vacuum/checkpoint, events replay, timers list/run (SIGTERM drains the runner).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use support::{code, json, run, show};

fn send(dir: &std::path::Path, dsn: &str, id: &str) {
    let o = run(
        dir,
        &[],
        &["--dsn", dsn, "send", "--new-session", id, "hello"],
    );
    assert_eq!(code(&o), 0, "{}", show(&o));
}

#[test]
fn read_only_commands_never_create_a_file_or_directory() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["sessions", "list"][..],
        &["sessions", "show", "x"],
        &["sessions", "export", "x"],
        &["store", "stats"],
        &["timers", "list"],
        &["schema", "verify"],
        &["sessions", "delete", "x"],
        &["sessions", "prune", "--older-than", "1d"],
        &["store", "vacuum"],
    ] {
        let mut full = vec!["--dsn", "typo/dir/pl.db"];
        full.extend_from_slice(args);
        let o = run(dir.path(), &[], &full);
        assert_eq!(code(&o), 1, "{args:?}: {}", show(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("store.database_missing"),
            "{}",
            show(&o)
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "{args:?} created something"
        );
    }
}

/// The DSN of a server suite, or `None` (skip with a printed reason; fail when
/// `POWER_LOOP_REQUIRE_SERVERS=1`).
fn server_dsn(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(v) if !v.trim().is_empty() => Some(v),
        _ => {
            assert!(
                std::env::var("POWER_LOOP_REQUIRE_SERVERS").as_deref() != Ok("1"),
                "{var} is unset and POWER_LOOP_REQUIRE_SERVERS=1"
            );
            eprintln!("skipping: {var} is unset");
            None
        }
    }
}

#[test]
fn read_only_commands_never_create_tables_on_the_servers() {
    let dir = tempfile::tempdir().unwrap();
    for var in ["POWER_LOOP_TEST_PG_DSN", "POWER_LOOP_TEST_MYSQL_DSN"] {
        let Some(dsn) = server_dsn(var) else { continue };
        let prefix = format!("clro{}_", std::process::id());
        for args in [
            &["sessions", "list"][..],
            &["store", "stats"],
            &["timers", "list"],
            &["sessions", "show", "x"],
        ] {
            let mut full = vec!["--dsn", dsn.as_str(), "--table-prefix", prefix.as_str()];
            full.extend_from_slice(args);
            let o = run(dir.path(), &[], &full);
            assert_eq!(code(&o), 1, "{var} {args:?}: {}", show(&o));
            assert!(
                String::from_utf8_lossy(&o.stderr).contains("store.schema_missing"),
                "{}",
                show(&o)
            );
        }
        // Still no schema: verify reports it missing (it would find tables a command created).
        let o = run(
            dir.path(),
            &[],
            &["--dsn", &dsn, "--table-prefix", &prefix, "schema", "verify"],
        );
        assert_eq!(code(&o), 1, "{}", show(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("store.schema_missing"),
            "{}",
            show(&o)
        );
    }
}

#[test]
fn a_closed_pipe_is_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    send(dir.path(), "pl.db", "p1");
    for args in [
        &["schema", "print-ddl"][..],
        &["--dsn", "pl.db", "sessions", "list"],
        &["--dsn", "pl.db", "sessions", "export", "p1"],
        &["--dsn", "pl.db", "workflow", "list"],
        &["--dsn", "pl.db", "store", "stats"],
    ] {
        let mut child = support::cmd(dir.path(), &[], args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take()); // the reader is gone before the first write (`| head -0`)
        let o = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(code(&o), 0, "{args:?}: {err}");
    }
    // And through a real shell pipe, as a user types it.
    let o = std::process::Command::new("bash")
        .current_dir(dir.path())
        .arg("-c")
        .arg(format!(
            "set -o pipefail; '{}' schema print-ddl | head -3",
            env!("CARGO_BIN_EXE_power-loop")
        ))
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&o.stderr).contains("panicked"),
        "{}",
        show(&o)
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 3);
}

#[test]
fn sessions_list_has_headers_readable_times_and_json() {
    let dir = tempfile::tempdir().unwrap();
    send(dir.path(), "pl.db", "alpha");
    send(dir.path(), "pl.db", "beta");
    let o = run(dir.path(), &[], &["--dsn", "pl.db", "sessions", "list"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    let first = out.lines().next().unwrap();
    assert!(
        first.contains("SESSION") && first.contains("UPDATED"),
        "{out}"
    );
    assert!(out.contains("alpha") && out.contains("UTC"), "{out}");
    let v = json(&run(
        dir.path(),
        &[],
        &["--dsn", "pl.db", "sessions", "list", "--json"],
    ));
    let ids: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["session_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["beta", "alpha"]);
    let v = json(&run(
        dir.path(),
        &[],
        &["--dsn", "pl.db", "sessions", "show", "alpha", "--json"],
    ));
    assert_eq!(v["messages"][0]["content"], "hello");
    let v = json(&run(
        dir.path(),
        &[],
        &["--dsn", "pl.db", "timers", "list", "--json"],
    ));
    assert!(v.as_array().unwrap().is_empty());
    let o = run(
        dir.path(),
        &[],
        &["--dsn", "pl.db", "store", "stats", "--json"],
    );
    let v = json(&o);
    assert_eq!(v["backend"], "sqlite");
    let sessions = v["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "pl_sessions")
        .unwrap()
        .clone();
    assert_eq!(sessions["rows"], 2);
}

#[test]
fn export_import_delete_prune_and_maintenance() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for id in ["s1", "s2", "s3"] {
        send(d, "a.db", id);
    }
    let o = run(
        d,
        &[],
        &[
            "--dsn", "a.db", "sessions", "export", "s1", "--out", "s1.json",
        ],
    );
    assert_eq!(code(&o), 0, "{}", show(&o));
    let o = run(
        d,
        &[],
        &[
            "--dsn", "a.db", "sessions", "export", "--all", "--out", "backup",
        ],
    );
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert_eq!(std::fs::read_dir(d.join("backup")).unwrap().count(), 3);
    let o = run(
        d,
        &[],
        &[
            "--dsn",
            "b.db",
            "sessions",
            "import",
            "backup/s1.json",
            "backup/s2.json",
            "backup/s3.json",
        ],
    );
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 3);
    let o = run(
        d,
        &[],
        &[
            "--dsn", "b.db", "sessions", "import", "s1.json", "--id", "copy",
        ],
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout), "copy\n", "{}", show(&o));

    // delete: a typo deletes nothing; then both go.
    let o = run(
        d,
        &[],
        &["--dsn", "b.db", "sessions", "delete", "s1", "typo"],
    );
    assert_eq!(code(&o), 1, "{}", show(&o));
    let o = run(
        d,
        &[],
        &["--dsn", "b.db", "sessions", "delete", "s1", "copy"],
    );
    assert_eq!(code(&o), 0, "{}", show(&o));
    let v = json(&run(
        d,
        &[],
        &["--dsn", "b.db", "sessions", "list", "--json"],
    ));
    assert_eq!(v.as_array().unwrap().len(), 2);

    // prune: nothing is a day old; everything is older than 0 s.
    let prune = |args: &[&str]| {
        let full = [&["--dsn", "b.db", "sessions", "prune", "--json"][..], args].concat();
        json(&run(d, &[], &full))
    };
    let v = prune(&["--older-than", "1d"]);
    assert!(v["deleted"].as_array().unwrap().is_empty(), "{v}");
    std::thread::sleep(Duration::from_millis(20));
    let v = prune(&["--older-than", "0s", "--dry-run"]);
    assert_eq!(v["deleted"].as_array().unwrap().len(), 2, "{v}");
    let v = prune(&["--older-than", "0s"]);
    assert_eq!(v["deleted"].as_array().unwrap().len(), 2, "{v}");
    let v = json(&run(
        d,
        &[],
        &["--dsn", "b.db", "sessions", "list", "--json"],
    ));
    assert!(v.as_array().unwrap().is_empty());

    for args in [
        &["store", "vacuum"][..],
        &["store", "vacuum", "--incremental"],
        &["store", "checkpoint", "--mode", "truncate"],
    ] {
        let mut full = vec!["--dsn", "a.db"];
        full.extend_from_slice(args);
        let o = run(d, &[], &full);
        assert_eq!(code(&o), 0, "{args:?}: {}", show(&o));
    }
    let o = run(
        d,
        &[],
        &["--dsn", "a.db", "store", "checkpoint", "--mode", "sideways"],
    );
    assert_eq!(code(&o), 2, "{}", show(&o));
}

#[test]
fn events_replay_filters_and_refuses_a_missing_log() {
    use power_loop::events::SystemLogPayload;
    use power_loop::{AgentEvent, EventPayload};
    let dir = tempfile::tempdir().unwrap();
    let o = run(dir.path(), &[], &["events", "replay", "missing.jsonl"]);
    assert_eq!(code(&o), 1, "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("missing.jsonl"),
        "{}",
        show(&o)
    );
    let mut log = String::new();
    for (i, sid) in ["a", "b", "a"].iter().enumerate() {
        let ev = AgentEvent::new(EventPayload::SystemLog(SystemLogPayload {
            message: format!("m{i}"),
            level: "info".into(),
        }))
        .with_session(*sid);
        log.push_str(&serde_json::to_string(&ev).unwrap());
        log.push('\n');
    }
    log.push_str("not json\n");
    std::fs::write(dir.path().join("ev.jsonl"), log).unwrap();
    let o = run(
        dir.path(),
        &[],
        &["events", "replay", "ev.jsonl", "--session", "a", "--json"],
    );
    assert_eq!(code(&o), 0, "{}", show(&o));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("skipped"),
        "{}",
        show(&o)
    );
    let o = run(
        dir.path(),
        &[],
        &["events", "replay", "ev.jsonl", "--type", "system_log"],
    );
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).lines().count(),
        4,
        "{}",
        show(&o)
    );
    let o = run(
        dir.path(),
        &[],
        &[
            "events",
            "replay",
            "ev.jsonl",
            "--type",
            "tool_call_completed",
            "--json",
        ],
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout), "");
    let o = run(
        dir.path(),
        &[],
        &["events", "replay", "ev.jsonl", "--type", "nope"],
    );
    assert_eq!(code(&o), 2, "{}", show(&o));
    let o = run(
        dir.path(),
        &[],
        &["events", "replay", "ev.jsonl", "--strict"],
    );
    assert_eq!(code(&o), 1, "{}", show(&o));
}

fn arm_timer(db: &std::path::Path, sid: &str, due_in_ms: i64) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store =
            power_loop::open_store(db.to_str().unwrap(), power_loop::StoreOptions::default())
                .await
                .unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        store
            .create_timer(sid, now + due_in_ms, "check the oven", None)
            .await
            .unwrap();
        store.close().await.unwrap();
    });
}

#[test]
fn timers_list_run_once_and_sigterm_drains_the_runner() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    send(d, "t.db", "oven");
    arm_timer(&d.join("t.db"), "oven", -10);
    let o = run(d, &[], &["--dsn", "t.db", "timers", "list"]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("check the oven"),
        "{}",
        show(&o)
    );
    let o = run(
        d,
        &[],
        &["--dsn", "t.db", "timers", "run", "--once", "--json"],
    );
    assert_eq!(code(&o), 0, "{}", show(&o));
    let v: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&o.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(v["outcome"], "delivered", "{v}");
    let v = json(&run(
        d,
        &[],
        &["--dsn", "t.db", "sessions", "show", "oven", "--json"],
    ));
    assert!(
        v["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["content"]
                .as_str()
                .unwrap_or("")
                .contains("check the oven")),
        "{v}"
    );

    // A runner process: fires a timer due in 300 ms, then SIGTERM drains it (exit 0).
    arm_timer(&d.join("t.db"), "oven", 300);
    let child = support::cmd(
        d,
        &[],
        &[
            "--dsn", "t.db", "timers", "run", "--poll", "100ms", "--json",
        ],
    )
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let pid = rustix::process::Pid::from_raw(i32::try_from(child.id()).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let start = Instant::now();
    let o = child.wait_with_output().unwrap();
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("draining"),
        "{}",
        show(&o)
    );
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("delivered"),
        "{}",
        show(&o)
    );
}

#[test]
fn timers_run_with_timer_tools_lets_the_woken_model_use_them() {
    use support::{Fake, Reply, pairs, provider_env};
    let fake = Fake::start(|n| {
        if n == 1 {
            Reply::ToolCall("current_time".into())
        } else {
            Reply::Text(vec!["noted".into()])
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let env = provider_env(&fake);
    let o = run(
        d,
        &pairs(&env),
        &["--dsn", "w.db", "send", "--new-session", "w", "hi"],
    );
    assert_eq!(code(&o), 0, "{}", show(&o));
    arm_timer(&d.join("w.db"), "w", -10);
    let o = run(
        d,
        &pairs(&env),
        &[
            "--dsn",
            "w.db",
            "timers",
            "run",
            "--once",
            "--timer-tools",
            "--json",
        ],
    );
    assert_eq!(code(&o), 0, "{}", show(&o));
    let v: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&o.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(v["outcome"], "delivered", "{v}");
    // The timer call asked for current_time, got its result, then answered.
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 3, "{reqs:?}");
    let tools: Vec<&str> = reqs[1].body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert!(tools.contains(&"schedule_wakeup"), "{tools:?}");
    let last = reqs[2].body["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["role"], "tool", "{last}");
}
