//! FIFOs, sockets, devices and hard links in the workspace; writes through symlinks that stay
//! inside; path tricks that must keep being refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Fixture, denied, failed, ok};
use power_loop_contracts::ErrorCode;
use power_loop_tools::ToolOutcome;
use rustix::fs::{CWD, FileType, Mode, mknodat};
use serde_json::json;

fn mkfifo(p: &Path) {
    mknodat(CWD, p, FileType::Fifo, Mode::from_raw_mode(0o644), 0).unwrap();
}

/// Runs one tool call on its own thread and runtime, giving up after `limit` (a call that
/// blocks its async worker cannot be timed out from the same runtime).
fn call_with_deadline(
    f: &Fixture,
    tool: &str,
    args: serde_json::Value,
    limit: Duration,
) -> Option<ToolOutcome> {
    let (tx, rx) = std::sync::mpsc::channel();
    let (reg_env, tool) = (f.env.clone(), tool.to_owned());
    let ctx = f.ctx();
    let reg = power_loop_tools::default_registry(&reg_env, &Default::default()).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let o = rt.block_on(reg.invoke_args(ctx, &tool, args));
        let _ = tx.send(o);
    });
    rx.recv_timeout(limit).ok()
}

/// Unblocks a reader or writer stuck opening the FIFO (only matters for the old behaviour).
fn release_fifo(p: &Path) {
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::OpenOptions::new()
        .write(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(p);
    let _ = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(p);
}

#[test]
fn fifo_is_refused_promptly_by_every_file_tool() {
    common::check_resolver();
    let f = Fixture::new();
    let fifo = f.ws().join("p.fifo");
    mkfifo(&fifo);
    for (tool, args) in [
        ("read_file", json!({"path": "p.fifo"})),
        ("read_file", json!({"path": "p.fifo", "limit": 5})),
        ("write_file", json!({"path": "p.fifo", "content": "x"})),
        (
            "edit_file",
            json!({"path": "p.fifo", "old_text": "a", "new_text": "b"}),
        ),
        (
            "apply_patch",
            json!({"path": "p.fifo", "patch": "@@ -1 +1 @@\n-a\n+b\n"}),
        ),
    ] {
        let o = call_with_deadline(&f, tool, args, Duration::from_secs(10));
        let Some(o) = o else {
            release_fifo(&fifo);
            panic!("{tool} on a FIFO hung for 10 s");
        };
        assert!(!o.output.ok, "{tool}: {}", o.output.content);
        assert!(denied(&o, tool).contains("FIFO"), "{}", o.output.content);
    }
    // grep walks past it without hanging.
    let o = call_with_deadline(&f, "grep", json!({"pattern": "x"}), Duration::from_secs(10));
    release_fifo(&fifo);
    assert!(o.is_some(), "grep hung on a FIFO");
}

#[tokio::test]
async fn socket_and_device_are_refused() {
    common::check_resolver();
    let f = Fixture::new();
    let _listener = std::os::unix::net::UnixListener::bind(f.ws().join("s.sock")).unwrap();
    let o = f.call("read_file", json!({"path": "s.sock"})).await;
    assert!(denied(&o, "").contains("socket"), "{}", o.output.content);
    assert_eq!(o.output.data.get("reason"), Some(&json!("fs.not_regular")));
    let o = f
        .call("write_file", json!({"path": "s.sock", "content": "x"}))
        .await;
    denied(&o, "");

    // A character device (1:3, like /dev/null) needs CAP_MKNOD; CI runs as root.
    let dev = f.ws().join("null.dev");
    let made = mknodat(
        CWD,
        &dev,
        FileType::CharacterDevice,
        Mode::from_raw_mode(0o666),
        rustix::fs::makedev(1, 3),
    );
    if made.is_ok() {
        let o = f.call("read_file", json!({"path": "null.dev"})).await;
        assert!(!o.output.ok, "{}", o.output.content);
        let o = f
            .call("write_file", json!({"path": "null.dev", "content": "x"}))
            .await;
        assert!(denied(&o, "").contains("device"), "{}", o.output.content);
        // Still a device: nothing replaced it.
        let st = rustix::fs::lstat(&dev).unwrap();
        assert_eq!(
            FileType::from_raw_mode(st.st_mode),
            FileType::CharacterDevice
        );
    }
}

#[tokio::test]
async fn hard_linked_files_are_not_written() {
    common::check_resolver();
    let f = Fixture::new();
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("h"), "host").unwrap();
    // Same file system (both under the temp dir), so the link can be made.
    std::fs::hard_link(host.path().join("h"), f.ws().join("h.txt")).unwrap();
    f.write("a.txt", b"shared");
    std::fs::hard_link(f.ws().join("a.txt"), f.ws().join("b.txt")).unwrap();
    for p in ["h.txt", "a.txt"] {
        ok(&f.call("read_file", json!({"path": p})).await);
        let o = f
            .call("write_file", json!({"path": p, "content": "changed"}))
            .await;
        assert!(denied(&o, p).contains("hard link"), "{}", o.output.content);
        let o = f
            .call(
                "edit_file",
                json!({"path": p, "old_text": "h", "new_text": "X"}),
            )
            .await;
        denied(&o, p);
    }
    assert_eq!(std::fs::read(host.path().join("h")).unwrap(), b"host");
    assert_eq!(f.read("b.txt"), b"shared");
}

#[tokio::test]
async fn writes_through_inside_symlinks_still_work_and_keep_the_link() {
    common::check_resolver();
    let f = Fixture::new();
    f.write("real.txt", b"one\n");
    std::os::unix::fs::symlink("real.txt", f.ws().join("rel_link")).unwrap();
    std::os::unix::fs::symlink(f.ws().join("real.txt"), f.ws().join("abs_link")).unwrap();
    ok(&f.call("read_file", json!({"path": "rel_link"})).await);
    ok(&f
        .call(
            "write_file",
            json!({"path": "rel_link", "content": "two\n"}),
        )
        .await);
    assert_eq!(f.read("real.txt"), b"two\n");
    ok(&f.call("read_file", json!({"path": "abs_link"})).await);
    ok(&f
        .call(
            "edit_file",
            json!({"path": "abs_link", "old_text": "two", "new_text": "three"}),
        )
        .await);
    assert_eq!(f.read("real.txt"), b"three\n");
    for l in ["rel_link", "abs_link"] {
        assert!(
            std::fs::symlink_metadata(f.ws().join(l))
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }
    // The atomic write keeps the permission bits.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        f.ws().join("real.txt"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    ok(&f.call("read_file", json!({"path": "real.txt"})).await);
    ok(&f
        .call(
            "write_file",
            json!({"path": "real.txt", "content": "four\n"}),
        )
        .await);
    let mode = std::fs::metadata(f.ws().join("real.txt"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o640);
    // No temporary file is left behind.
    let names: Vec<String> = std::fs::read_dir(f.ws())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
}

#[tokio::test]
async fn path_tricks_stay_refused_and_errors_hide_host_paths() {
    common::check_resolver();
    let f = Fixture::new();
    let ws = f.ws().display().to_string();
    f.write("in.txt", b"in");
    let via_proc = format!("/proc/self/root{ws}/../x");
    let long = "a/".repeat(3000) + "x";
    let too_long_name = "n".repeat(300);
    for p in [
        "../x",
        "/etc/passwd",
        "/proc/self/root/etc/passwd",
        via_proc.as_str(),
        "in.txt\u{0}../../etc/passwd",
        "@workspace/../x",
        long.as_str(),
        too_long_name.as_str(),
    ] {
        for tool in ["read_file", "write_file"] {
            let o = f.call(tool, json!({"path": p, "content": "x"})).await;
            let msg = failed(&o);
            // The argument itself may be echoed; nothing else may name the workspace.
            let rest = msg.replace(p, "");
            assert!(
                !rest.contains(&ws),
                "{tool} {p:?} leaked the workspace path: {msg}"
            );
        }
    }
    assert_eq!(
        f.call("read_file", json!({"path": "in.txt\u{0}x"}))
            .await
            .error_code,
        Some(ErrorCode::ToolInvalidArgs)
    );
    // Nothing was written outside.
    assert!(!Path::new(&format!("{ws}/../x")).exists());
}

#[test]
fn special_files_and_path_tricks_hold_through_the_fallback_walker() {
    common::rerun_through_walker(&[
        "fifo_is_refused_promptly_by_every_file_tool",
        "socket_and_device_are_refused",
        "hard_linked_files_are_not_written",
        "writes_through_inside_symlinks_still_work_and_keep_the_link",
        "path_tricks_stay_refused_and_errors_hide_host_paths",
    ]);
}
