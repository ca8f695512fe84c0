//! Leaves through the subprocess executor (`power-loop worker`): results and sessions reach
//! the parent, 50 leaves at concurrency 8, and every way a worker can go wrong (SIGKILL,
//! garbage, silence, a timeout, a missing binary) becomes a failed leaf with its reason —
//! never a hung run — and `resume_run` re-runs only the failed leaf.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "leaf_support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use power_loop::{
    LeafStatus, ScriptedStep, SubprocessExecutor, WorkflowRunOptions, WorkflowRunStatus,
};
use serde_json::json;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leaves_run_in_workers_and_their_sessions_join_the_parent_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(dir.path()).await;
    let llm = model(|req| ScriptedStep::text(format!("done: {}", req.last_user_text())));
    let lp = parent_loop(&llm, &store);
    let ex = Arc::new(executor(dir.path()).build());
    let spec = spec(
        json!({"name": "two", "root": {"type": "sequence", "steps": [
        leaf("a", "first", "alpha"), leaf("b", "second", "beta {{input}}")]}, "input": "x"}),
    );
    let out = run_with(&lp, WorkflowRunOptions::new().with_executor(ex), &spec).await;
    let r = &out.result;
    assert_completed(r);
    let a = r.results.get("a").unwrap();
    let b = r.results.get("b").unwrap();
    assert_eq!(a.text, "done: alpha");
    assert_eq!(b.text, "done: beta x");
    assert_eq!(a.usage.total_tokens, 15);
    // the leaf sessions are in the parent's store, as linked children of the driver session
    for leaf in [a, b] {
        let sid = leaf.session_id.as_deref().unwrap();
        let row = store.get_session(sid).await.unwrap().unwrap();
        let driver = row.parent_session_id.clone().unwrap();
        let d = store.get_session(&driver).await.unwrap().unwrap();
        assert_eq!(row.spawn_depth, d.spawn_depth + 1);
        let msgs = lp.get_messages(sid, false).await.unwrap();
        assert!(msgs.iter().any(|m| m.text() == leaf.text), "{msgs:?}");
    }
    // leaf directories are cleaned up by default
    let runs = dir.path().join("runs");
    let left: Vec<_> = walk_files(&runs);
    assert!(left.is_empty(), "{left:?}");
}

fn walk_files(p: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(p) else {
        return out;
    };
    for e in rd.flatten() {
        if e.file_type().unwrap().is_dir() {
            out.extend(walk_files(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_leaves_at_concurrency_eight_complete_with_their_sessions_in_the_parent() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(dir.path()).await;
    let llm = model(|req| ScriptedStep::text(format!("did {}", req.last_user_text())));
    let lp = parent_loop(&llm, &store);
    let ex = Arc::new(executor(dir.path()).build());
    let spec = spec(
        json!({"name": "fifty", "root": {"type": "foreach", "id": "fan",
        "items": (0..50).collect::<Vec<_>>(), "as": "i", "parallel": true, "max_concurrency": 8,
        "body": leaf("w", "work", "item {{i}}")}}),
    );
    let t = Instant::now();
    let out = run_with(&lp, WorkflowRunOptions::new().with_executor(ex), &spec).await;
    let took = t.elapsed();
    let r = &out.result;
    assert_completed(r);
    let fan = r.results.get("fan").unwrap();
    let items = fan.payload.as_ref().unwrap()["items"].as_array().unwrap();
    assert_eq!(items.len(), 50);
    for (i, it) in items.iter().enumerate() {
        assert_eq!(it.as_str().unwrap(), format!("did item {i}"));
    }
    assert_eq!(out.executed_leaves, 50);
    // every leaf's session is in the parent's store under the driver session
    let run_id = out.run_id.clone().unwrap();
    let steps = store.list_workflow_steps(&run_id).await.unwrap();
    let leaf_steps: Vec<_> = steps.iter().filter(|s| s.step_key != "fan").collect();
    assert_eq!(leaf_steps.len(), 50);
    let mut drivers = std::collections::BTreeSet::new();
    for s in leaf_steps {
        let sid = s.session_id.as_deref().unwrap();
        let row = store.get_session(sid).await.unwrap().unwrap();
        drivers.insert(row.parent_session_id.clone().unwrap());
        let msgs = lp.get_messages(sid, false).await.unwrap();
        assert_eq!(msgs.len(), 2, "{sid}");
    }
    assert_eq!(drivers.len(), 1);
    let children = store
        .list_children(drivers.iter().next().unwrap())
        .await
        .unwrap();
    assert_eq!(children.len(), 50);
    eprintln!(
        "50 leaves through the subprocess executor at concurrency 8: {:.2}s ({:.1} leaves/s)",
        took.as_secs_f64(),
        50.0 / took.as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkilled_worker_fails_its_leaf_and_resume_reruns_only_that_leaf() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(dir.path()).await;
    let pids: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let kill_b = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let calls: Arc<Mutex<Vec<String>>> = Arc::default();
    let llm = {
        let (pids, kill_b, calls) = (pids.clone(), kill_b.clone(), calls.clone());
        model(move |req| {
            let input = req.last_user_text();
            calls.lock().unwrap().push(input.clone());
            if input == "beta" && kill_b.swap(false, std::sync::atomic::Ordering::SeqCst) {
                // the worker of leaf b dies mid-leaf: SIGKILL while its model call is open
                let pid = pids.lock().unwrap()["b"];
                std::process::Command::new("kill")
                    .args(["-9", &pid.to_string()])
                    .status()
                    .unwrap();
                return ScriptedStep::text("never delivered").with_delay(Duration::from_secs(2));
            }
            ScriptedStep::text(format!("ok {input}"))
        })
    };
    let lp = parent_loop(&llm, &store);
    let ex = {
        let pids = pids.clone();
        Arc::new(
            executor(dir.path())
                .on_spawn(move |key, pid| {
                    pids.lock().unwrap().insert(key.to_owned(), pid);
                })
                .build(),
        )
    };
    let spec = spec(
        json!({"name": "kill", "root": {"type": "parallel", "on_error": "continue",
        "branches": [leaf("a", "p", "alpha"), leaf("b", "p", "beta"), leaf("c", "p", "gamma")]}}),
    );
    let opts = WorkflowRunOptions::new().with_executor(ex.clone());
    let out = run_with(&lp, opts.clone(), &spec).await;
    let b = out.result.results.get("b").unwrap();
    assert_eq!(b.status, LeafStatus::Failed);
    let reason = b.error.as_deref().unwrap();
    assert!(
        reason.contains("killed by signal 9 (SIGKILL)") && reason.contains("without a result"),
        "{reason}"
    );
    assert_eq!(out.result.results.get("a").unwrap().text, "ok alpha");
    assert_eq!(out.result.results.get("c").unwrap().text, "ok gamma");
    calls.lock().unwrap().clear();
    let run_id = out.run_id.clone().unwrap();
    let again = power_loop::resume_run(&lp, &run_id, opts).await.unwrap();
    assert_completed(&again.result);
    assert_eq!(again.executed_leaves, 1);
    assert_eq!(*calls.lock().unwrap(), vec!["beta".to_owned()]);
    assert_eq!(again.result.results.get("b").unwrap().text, "ok beta");
}

/// Writes an executable shell script standing in for a broken worker.
fn fake_worker(dir: &std::path::Path, name: &str, body: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

async fn one_leaf_with(ex: SubprocessExecutor) -> (power_loop::AgentResult, Duration) {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(dir.path()).await;
    let llm = model(|_| ScriptedStep::text("fine"));
    let lp = parent_loop(&llm, &store);
    let spec = spec(json!({"name": "one", "root": leaf("x", "p", "go")}));
    let t = Instant::now();
    let out = run_without_journal(lp, ex, &spec).await;
    (out.result.results.get("x").unwrap().clone(), t.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_silence_timeouts_and_bad_binaries_are_failed_leaves_not_hung_runs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cases: Vec<(&str, SubprocessExecutor, &str)> = vec![
        (
            "garbage",
            SubprocessExecutor::builder(fake_worker(
                d,
                "garbage.sh",
                "echo 'hello there'; sleep 60",
            ))
            .runs_dir(d.join("runs"))
            .build(),
            "worker protocol violation: not a frame",
        ),
        (
            "partial",
            SubprocessExecutor::builder(fake_worker(
                d,
                "partial.sh",
                "printf '{\"v\":1,\"t\":\"hel'; exit 0",
            ))
            .runs_dir(d.join("runs"))
            .build(),
            "ended inside a frame",
        ),
        (
            "silent",
            SubprocessExecutor::builder(fake_worker(
                d,
                "silent.sh",
                "echo '{\"v\":1,\"t\":\"hello\",\"pid\":1}'; exec sleep 60",
            ))
            .runs_dir(d.join("runs"))
            .heartbeat_timeout(Duration::from_millis(800))
            .build(),
            "no heartbeat from the worker for 0.8s",
        ),
        (
            "slow",
            SubprocessExecutor::builder(fake_worker(
                d,
                "slow.sh",
                "while true; do echo '{\"v\":1,\"t\":\"heartbeat\"}'; sleep 0.1; done",
            ))
            .runs_dir(d.join("runs"))
            .timeout(Duration::from_millis(900))
            .build(),
            "worker timeout after 0.9s",
        ),
        (
            "exit3",
            SubprocessExecutor::builder(fake_worker(d, "exit3.sh", "echo oops >&2; exit 3"))
                .runs_dir(d.join("runs"))
                .build(),
            "exited with code 3 without a result",
        ),
        (
            "flood",
            SubprocessExecutor::builder(fake_worker(
                d,
                "flood.sh",
                "while true; do echo '{\"v\":1,\"t\":\"heartbeat\"}'; done",
            ))
            .runs_dir(d.join("runs"))
            .max_output_bytes(100_000)
            .build(),
            "output limit exceeded",
        ),
        (
            "version",
            SubprocessExecutor::builder(fake_worker(
                d,
                "v2.sh",
                "echo '{\"v\":2,\"t\":\"hello\",\"pid\":1}'; sleep 60",
            ))
            .runs_dir(d.join("runs"))
            .build(),
            "protocol version 2",
        ),
        (
            "missing",
            SubprocessExecutor::builder(d.join("no-such-worker"))
                .runs_dir(d.join("runs"))
                .build(),
            "worker launch failed (plain): cannot start",
        ),
    ];
    for (name, ex, want) in cases {
        let (r, took) = one_leaf_with(ex).await;
        assert_eq!(r.status, LeafStatus::Failed, "{name}: {r:?}");
        let e = r.error.as_deref().unwrap_or_default();
        assert!(e.contains(want), "{name}: {e}");
        assert!(took < Duration::from_secs(10), "{name} took {took:?}");
        if name == "exit3" {
            assert!(
                r.text.contains("oops"),
                "{name}: stderr tail missing: {}",
                r.text
            );
        }
    }
    // the sleeping fake workers were killed with their process group
    let out = std::process::Command::new("pgrep")
        .args(["-f", &d.to_string_lossy()])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).trim().is_empty(),
        "workers left behind: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_the_run_cancels_the_leaf_in_its_worker() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(dir.path()).await;
    let cancel = power_loop::CancellationToken::new();
    let llm = {
        let cancel = cancel.clone();
        model(move |_| {
            // the run is cancelled while this leaf's model call is open
            cancel.cancel();
            ScriptedStep::text("late").with_delay(Duration::from_millis(300))
        })
    };
    let lp = parent_loop(&llm, &store);
    let ex = Arc::new(executor(dir.path()).build());
    let spec = spec(json!({"name": "c", "root": leaf("x", "p", "go")}));
    let t = Instant::now();
    let opts = WorkflowRunOptions::new()
        .with_executor(ex)
        .with_cancel(cancel);
    let out = run_with(&lp, opts, &spec).await;
    assert_eq!(out.result.status, WorkflowRunStatus::Cancelled);
    let x = out.result.results.get("x").unwrap();
    assert_eq!(x.status, LeafStatus::Cancelled, "{x:?}");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_limit_binds_the_leaf_and_its_tools() {
    if !std::path::Path::new("/usr/bin/python3").exists() {
        eprintln!("skipped: /usr/bin/python3 is missing (the memory hog)");
        return;
    }
    let hog = "/usr/bin/python3 -c \"b = bytearray(1500000000); print('HOG-OK', len(b))\"";
    let mut texts = Vec::new();
    for limit in [None, Some(1u64 << 30)] {
        let dir = tempfile::tempdir().unwrap();
        let store = sqlite(dir.path()).await;
        let llm = model(move |req| match last_tool(req) {
            None => ScriptedStep::tool_call("bash", json!({"command": hog, "timeout": 60})),
            Some(out) => ScriptedStep::text(format!("TOOL SAID: {out}")),
        });
        let lp = parent_loop(&llm, &store);
        let mut b = executor(dir.path()).tool_preset("core").unwrap();
        if let Some(l) = limit {
            b = b.memory_limit(l);
        }
        let spec = spec(json!({"name": "m", "root": tool_leaf("m", "p", "go", &["bash"])}));
        let out = run_without_journal(lp, b.build(), &spec).await;
        texts.push(out.result.results.get("m").unwrap().text.clone());
    }
    assert!(texts[0].contains("HOG-OK 1500000000"), "{}", texts[0]);
    assert!(
        !texts[1].contains("HOG-OK") && texts[1].contains("MemoryError"),
        "{}",
        texts[1]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsandboxed_workers_can_write_straight_into_the_parents_postgres_store() {
    let dsn = match std::env::var("POWER_LOOP_TEST_PG_DSN") {
        Ok(d) if !d.is_empty() => d,
        _ => {
            assert!(
                std::env::var("POWER_LOOP_REQUIRE_SERVERS").as_deref() != Ok("1"),
                "POWER_LOOP_TEST_PG_DSN is not set but POWER_LOOP_REQUIRE_SERVERS=1"
            );
            eprintln!("skipped: POWER_LOOP_TEST_PG_DSN is not set");
            return;
        }
    };
    let prefix = format!("plleaf{:08x}_", rand_suffix());
    let store = power_loop::open_store(
        &dsn,
        power_loop::StoreOptions::default().with_table_prefix(prefix.clone()),
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let llm = model(|req| ScriptedStep::text(format!("pg {}", req.last_user_text())));
    let lp = parent_loop(&llm, &store);
    let ex = executor(dir.path())
        .store_mode(power_loop::LeafStoreMode::ParentDsn {
            dsn: dsn.clone(),
            table_prefix: prefix,
        })
        .build();
    let spec = spec(
        json!({"name": "pg", "root": {"type": "parallel", "branches": [
        leaf("a", "p", "one"), leaf("b", "p", "two")]}}),
    );
    let out = run_with(
        &lp,
        WorkflowRunOptions::new().with_executor(Arc::new(ex)),
        &spec,
    )
    .await;
    assert_completed(&out.result);
    for (id, text) in [("a", "pg one"), ("b", "pg two")] {
        let r = out.result.results.get(id).unwrap();
        assert_eq!(r.text, text);
        let row = store
            .get_session(r.session_id.as_deref().unwrap())
            .await
            .unwrap()
            .unwrap();
        let driver = store
            .get_session(row.parent_session_id.as_deref().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.spawn_depth, driver.spawn_depth + 1, "{row:?}");
        assert_eq!(driver.metadata["kind"], "wf_driver", "{driver:?}");
    }
    store.close().await.unwrap();
}

fn rand_suffix() -> u32 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    t.subsec_nanos() ^ std::process::id()
}
