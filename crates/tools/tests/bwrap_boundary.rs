#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The bubblewrap boundary, checked from inside the sandbox: no capabilities, no remount,
//! a minimal `/etc`, and the PID / environment / `/tmp` isolation.
//!
//! Each check runs as the current user (root in CI) and, when that is root, once more as uid
//! 65534: the test binary is copied to a directory that user can read and re-run under
//! `setpriv` with `POWER_LOOP_BWRAP_CHILD=1`, which selects the child entry point below.
//! Without `bwrap` the tests skip with the reason, unless `POWER_LOOP_REQUIRE_PEERS=1`.

use std::path::Path;
use std::time::Duration;

use power_loop_contracts::CancellationToken;
use power_loop_tools::{BubblewrapShell, ShellBackend, run_one_shot};

const CHILD_ENV: &str = "POWER_LOOP_BWRAP_CHILD";

fn require_peers() -> bool {
    std::env::var("POWER_LOOP_REQUIRE_PEERS").is_ok_and(|v| v == "1")
}

/// Whether the sandbox can run here; a skip prints its reason (a failure when peers are required).
async fn available(shell: &BubblewrapShell, ws: &Path) -> bool {
    match shell.ensure_available(ws).await {
        Ok(()) => true,
        Err(e) if require_peers() => panic!("bubblewrap is required but unavailable: {e}"),
        Err(e) => {
            eprintln!("SKIP: bubblewrap unavailable on this machine: {e}");
            false
        }
    }
}

async fn sh(shell: &BubblewrapShell, ws: &Path, script: &str) -> String {
    let out = run_one_shot(
        shell,
        ws,
        script,
        Duration::from_secs(30),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert!(!out.timed_out, "sandboxed command timed out: {script}");
    out.output
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
}

/// Every boundary check, run as whoever this process is.
async fn assert_confined() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path();
    let shell = BubblewrapShell::new();
    if !available(&shell, ws).await {
        return;
    }

    // No capabilities, whoever runs the host.
    let caps = sh(&shell, ws, "grep CapEff /proc/self/status").await;
    assert_eq!(caps.trim(), "CapEff:\t0000000000000000", "{caps}");

    // A read-only bind cannot be remounted read-write, and host system dirs stay unwritable.
    let tag = format!("pl-escape-{}", std::process::id());
    let out = sh(
        &shell,
        ws,
        &format!(
            "for d in /usr /etc /; do mount -o remount,bind,rw $d 2>/dev/null && echo REMOUNTED $d; done; \
             touch /usr/{tag} /usr/bin/{tag} /etc/{tag} 2>/dev/null; echo done"
        ),
    )
    .await;
    assert!(!out.contains("REMOUNTED"), "{out}");
    assert!(out.trim_end().ends_with("done"), "{out}");
    for host in ["/usr", "/usr/bin", "/etc"] {
        assert!(
            !Path::new(host).join(&tag).exists(),
            "the sandbox wrote into host {host}"
        );
    }

    // A minimal /etc: what a shell and TLS need, never the secrets.
    let out = sh(
        &shell,
        ws,
        "for f in shadow gshadow sudoers ssl/private passwd group hosts; do \
           if [ -e /etc/$f ]; then echo \"$f present\"; else echo \"$f absent\"; fi; done; \
           ls /etc | wc -l",
    )
    .await;
    for secret in ["shadow", "gshadow", "sudoers", "ssl/private"] {
        assert!(out.contains(&format!("{secret} absent")), "{out}");
    }
    for needed in ["passwd", "group", "hosts"] {
        assert!(out.contains(&format!("{needed} present")), "{out}");
    }
    let entries: usize = out.lines().last().unwrap().trim().parse().unwrap();
    let host_entries = std::fs::read_dir("/etc").unwrap().count();
    assert!(
        entries < host_entries && entries <= 25,
        "/etc shows {entries} entries (host has {host_entries})"
    );
    let passwd = sh(&shell, ws, "cat /etc/passwd; echo; id -un").await;
    assert!(passwd.contains("sandbox:x:"), "{passwd}");
    if Path::new("/etc/ssl/certs").is_dir() {
        let certs = sh(&shell, ws, "ls /etc/ssl/certs | head -n 3 | wc -l").await;
        assert_ne!(certs.trim(), "0", "TLS certificates are missing");
    }

    // The workspace stays writable.
    let out = sh(&shell, ws, "echo hi > inside.txt && cat inside.txt").await;
    assert_eq!(out.trim(), "hi");
    assert_eq!(
        std::fs::read_to_string(ws.join("inside.txt")).unwrap(),
        "hi\n"
    );

    // PID isolation: the host's processes are not visible.
    let me = std::process::id();
    let out = sh(
        &shell,
        ws,
        &format!("test -e /proc/{me} && echo SEES_HOST || echo HIDDEN; echo $$"),
    )
    .await;
    assert!(out.contains("HIDDEN"), "{out}");
    let inner_pid: u32 = out.lines().last().unwrap().trim().parse().unwrap();
    assert!(inner_pid < 100, "the shell's pid inside is {inner_pid}");

    // Environment: nothing of the host's leaks in.
    let out = sh(&shell, ws, "env").await;
    for (k, v) in std::env::vars() {
        // Set by the sandbox itself or by bash, whatever the host has.
        if matches!(
            k.as_str(),
            "PATH" | "HOME" | "TERM" | "LANG" | "NO_COLOR" | "PWD" | "OLDPWD" | "SHLVL" | "_"
        ) {
            continue;
        }
        assert!(
            !out.lines().any(|l| l == format!("{k}={v}")),
            "host variable {k} leaked into the sandbox"
        );
    }

    // /tmp is private in both directions.
    let host_tmp = tempfile::NamedTempFile::new_in("/tmp").unwrap();
    let out = sh(
        &shell,
        ws,
        &format!(
            "test -e {} && echo SEES_HOST_TMP; echo x > /tmp/{tag}-inner; echo ok",
            host_tmp.path().display()
        ),
    )
    .await;
    assert!(!out.contains("SEES_HOST_TMP"), "{out}");
    assert!(!Path::new(&format!("/tmp/{tag}-inner")).exists());
    println!("BOUNDARY CHECKED (root: {})", is_root());
}

#[tokio::test]
async fn sandbox_boundary_holds_for_the_current_user() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    assert_confined().await;
}

/// Child entry point: does the checks only when re-executed by the test below.
#[tokio::test]
async fn bwrap_child_mode() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    assert_confined().await;
}

#[test]
fn sandbox_boundary_holds_for_an_unprivileged_user() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    if !is_root() {
        eprintln!("not root: the current-user test already runs unprivileged");
        return;
    }
    let Ok(setpriv) = which("setpriv") else {
        assert!(
            !require_peers(),
            "setpriv (util-linux) is required for the unprivileged run"
        );
        eprintln!("SKIP: setpriv not found");
        return;
    };
    // A copy of this test binary that uid 65534 can read and run.
    let dir = tempfile::tempdir().unwrap();
    set_mode(dir.path(), 0o755);
    let exe = dir.path().join("bwrap-boundary-test");
    std::fs::copy(std::env::current_exe().unwrap(), &exe).unwrap();
    set_mode(&exe, 0o755);
    let out = std::process::Command::new(setpriv)
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(&exe)
        .args([
            "--exact",
            "bwrap_child_mode",
            "--nocapture",
            "--test-threads=1",
        ])
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
        .env("TMPDIR", "/tmp")
        .env(CHILD_ENV, "1")
        .envs(std::env::var("POWER_LOOP_REQUIRE_PEERS").map(|v| ("POWER_LOOP_REQUIRE_PEERS", v)))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{text}");
    assert!(out.status.success(), "unprivileged run failed:\n{text}");
    assert!(
        text.contains("1 passed"),
        "the child test did not run:\n{text}"
    );
    if !text.contains("BOUNDARY CHECKED") {
        // The child skipped (its reason is printed above); with peers required it fails instead.
        assert!(
            text.contains("SKIP:"),
            "the child neither checked nor skipped:\n{text}"
        );
    }
}

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn which(name: &str) -> Result<std::path::PathBuf, ()> {
    for dir in ["/usr/bin", "/bin", "/usr/sbin", "/sbin", "/usr/local/bin"] {
        let p = Path::new(dir).join(name);
        if p.exists() {
            return Ok(p);
        }
    }
    Err(())
}
