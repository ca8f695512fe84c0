//! The check-then-use race: a thread flips a file and a directory of the workspace between a
//! real entry and a symlink to a host path while 10,000 read_file/write_file calls run (no call
//! may read host content or create/change a host file), and flips directories under `glob` and
//! `grep` walks (no host file name or content may show). Both run again with the fallback
//! walker forced.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use common::Fixture;
use rustix::fs::{CWD, RenameFlags, renameat_with};
use serde_json::json;

const SECRET: &str = "HOST-SECRET-7f3a";
const CALLS: usize = 10_000;

/// A snapshot of the host directory: (name, content) pairs, sorted.
fn host_state(host: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(host)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap_or_default(),
            )
        })
        .collect();
    v.sort();
    v
}

/// A thread that flips workspace entries until stopped: each round calls `step(workspace,
/// round, exchange)`, where `exchange(a, b)` swaps two workspace entries atomically.
struct Flipper {
    stop: Arc<AtomicBool>,
    flips: Arc<AtomicU64>,
    thread: std::thread::JoinHandle<()>,
}

impl Flipper {
    fn start(
        ws: PathBuf,
        step: impl Fn(&Path, u64, &dyn Fn(&str, &str)) + Send + 'static,
    ) -> Flipper {
        let stop = Arc::new(AtomicBool::new(false));
        let flips = Arc::new(AtomicU64::new(0));
        let thread = {
            let (stop, flips) = (stop.clone(), flips.clone());
            std::thread::spawn(move || {
                let exchange = |a: &str, b: &str| {
                    let _ = renameat_with(CWD, ws.join(a), CWD, ws.join(b), RenameFlags::EXCHANGE);
                };
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    step(&ws, n, &exchange);
                    n += 1;
                    flips.fetch_add(1, Ordering::Relaxed);
                }
            })
        };
        Flipper {
            stop,
            flips,
            thread,
        }
    }

    /// Stops the thread; how many rounds it ran.
    fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap();
        self.flips.load(Ordering::Relaxed)
    }
}

/// A workspace fixture (after checking the path resolver) and a host directory outside it: the
/// directory's guard and its canonical path.
fn workspace_and_host() -> (Fixture, tempfile::TempDir, std::path::PathBuf) {
    common::check_resolver();
    let f = Fixture::new();
    let host_dir = tempfile::tempdir().unwrap();
    let host = std::fs::canonicalize(host_dir.path()).unwrap();
    (f, host_dir, host)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipping_symlinks_never_lead_outside_the_workspace() {
    let (f, _host_dir, host) = workspace_and_host();
    let ws = f.ws();
    std::fs::write(host.join("hostfile"), SECRET).unwrap();
    std::fs::write(host.join("hostsecret"), SECRET).unwrap();
    let before = host_state(&host);

    // t.txt <-> t_alt: a real file and a symlink to a host file, swapped atomically.
    std::fs::write(ws.join("t.txt"), "inside t").unwrap();
    std::os::unix::fs::symlink(host.join("hostfile"), ws.join("t_alt")).unwrap();
    // d <-> d_alt: a real directory and a symlink to the host directory.
    std::fs::create_dir(ws.join("d")).unwrap();
    std::fs::write(ws.join("d/hostsecret"), "inside d").unwrap();
    std::os::unix::fs::symlink(&host, ws.join("d_alt")).unwrap();
    // u.txt: absent, or a dangling symlink to a host file that does not exist.
    std::os::unix::fs::symlink(host.join("created_u"), ws.join("u_alt")).unwrap();

    let flipper = Flipper::start(ws.clone(), |ws, n, exchange| {
        exchange("t.txt", "t_alt");
        exchange("d", "d_alt");
        if n.is_multiple_of(2) {
            let _ = std::fs::rename(ws.join("u_alt"), ws.join("u.txt"));
        } else {
            let _ = std::fs::rename(ws.join("u.txt"), ws.join("u_alt"));
        }
    });

    let (mut ok_reads, mut ok_writes, mut leaks) = (0usize, 0usize, Vec::new());
    for i in 0..CALLS {
        let (tool, args) = match i % 5 {
            0 => ("read_file", json!({"path": "t.txt"})),
            1 => ("read_file", json!({"path": "d/hostsecret"})),
            2 => (
                "write_file",
                json!({"path": format!("d/w{i}.txt"), "content": "agent"}),
            ),
            3 => ("write_file", json!({"path": "u.txt", "content": "agent"})),
            _ => ("write_file", json!({"path": "t.txt", "content": "agent"})),
        };
        let o = f.call(tool, args).await;
        if o.output.content.contains(SECRET) {
            leaks.push(format!("call {i} ({tool}): {}", o.output.content));
        }
        if o.output.ok {
            if tool == "read_file" {
                ok_reads += 1;
            } else {
                ok_writes += 1;
            }
        }
    }
    let flips = flipper.stop();

    let after = host_state(&host);
    assert!(
        leaks.is_empty(),
        "{} reads returned host content: {:?}",
        leaks.len(),
        &leaks[..leaks.len().min(3)]
    );
    assert_eq!(after, before, "a host file was created or changed");
    // The race was real: the flipper ran throughout and many calls still succeeded.
    assert!(flips > 1_000, "flipper too slow: {flips:?}");
    assert!(
        ok_reads > 100 && ok_writes > 100,
        "reads {ok_reads}, writes {ok_writes}"
    );
    eprintln!(
        "{CALLS} calls, {} flips: {ok_reads} reads and {ok_writes} writes succeeded, 0 escapes",
        flips
    );
}

/// A host file name no workspace entry shares: seeing it in any output is an escape.
const HOST_NAME: &str = "hostonly-5b1d7e.txt";
const GLOB_GREP_CALLS: usize = 2_400;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flipping_directories_never_show_host_names_to_glob_or_grep() {
    let (f, _host_dir, host) = workspace_and_host();
    let ws = f.ws();
    std::fs::write(host.join(HOST_NAME), SECRET).unwrap();
    std::fs::create_dir(host.join("nested")).unwrap();
    std::fs::write(host.join("nested").join(HOST_NAME), SECRET).unwrap();

    // sub <-> sub_alt and a/b <-> a/b_alt: real directories and symlinks to the host directory.
    for d in ["sub", "a/b"] {
        std::fs::create_dir_all(ws.join(d)).unwrap();
        std::fs::write(ws.join(d).join("inside.txt"), "needle inside").unwrap();
        std::fs::create_dir(ws.join(d).join("nested")).unwrap();
        std::fs::write(ws.join(d).join("nested/inner.txt"), "needle inner").unwrap();
        std::os::unix::fs::symlink(&host, ws.join(format!("{d}_alt"))).unwrap();
    }

    let flipper = Flipper::start(ws.clone(), |_, _, exchange| {
        exchange("sub", "sub_alt");
        exchange("a/b", "a/b_alt");
    });

    let (mut saw_inside, mut leaks) = (0usize, Vec::new());
    for i in 0..GLOB_GREP_CALLS {
        let (tool, args) = match i % 6 {
            0 => ("glob", json!({"pattern": "*", "include_hidden": true})),
            1 => ("glob", json!({"pattern": "**/*.txt", "path": "sub"})),
            2 => ("glob", json!({"pattern": "*.txt", "path": "a"})),
            3 => (
                "grep",
                json!({"pattern": "needle|HOST", "include_hidden": true}),
            ),
            4 => ("grep", json!({"pattern": ".", "path": "sub"})),
            _ => (
                "grep",
                json!({"pattern": ".", "path": "a", "include": "*.txt"}),
            ),
        };
        let o = f.call(tool, args).await;
        let text = &o.output.content;
        if text.contains(HOST_NAME) || text.contains(SECRET) {
            leaks.push(format!("call {i} ({tool}): {text}"));
        }
        if o.output.ok && (text.contains("inside") || text.contains("inner")) {
            saw_inside += 1;
        }
    }
    let flips = flipper.stop();

    assert!(
        leaks.is_empty(),
        "{} of {GLOB_GREP_CALLS} calls showed host names or content: {:?}",
        leaks.len(),
        &leaks[..leaks.len().min(3)]
    );
    assert!(flips > 1_000, "flipper too slow: {flips}");
    assert!(
        saw_inside > 100,
        "only {saw_inside} calls saw workspace files"
    );
    eprintln!(
        "{GLOB_GREP_CALLS} glob/grep calls, {flips} flips: {saw_inside} saw workspace files, 0 escapes"
    );
}

#[test]
fn the_races_hold_through_the_fallback_walker() {
    common::rerun_through_walker(&[
        "flipping_symlinks_never_lead_outside_the_workspace",
        "flipping_directories_never_show_host_names_to_glob_or_grep",
    ]);
}
