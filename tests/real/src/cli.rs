//! The workspace's `power-loop` binary, driven as a user would (environment, arguments, stdin).
//!
//! The binary is the one in this test binary's target directory (`target/<profile>/power-loop`):
//! the README's test command (`cargo nextest run --workspace …`) builds it along with the tests.
//! When it is missing (a run of this package alone), it is built once with `cargo build -p
//! power-loop-cli`. A run of this package alone after changing the CLI should build it first.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;

use crate::Wire;

static BUILD: Mutex<()> = Mutex::new(());

/// The path of the `power-loop` binary, built when missing.
pub fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/<test> → target/<profile>/power-loop
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile> directory")
        .to_path_buf();
    let bin = profile_dir.join("power-loop");
    let _guard = BUILD.lock().unwrap_or_else(|e| e.into_inner());
    if !bin.exists() {
        eprintln!("building the CLI: cargo build -p power-loop-cli --bin power-loop");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let status = Command::new(cargo)
            .args(["build", "-p", "power-loop-cli", "--bin", "power-loop"])
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cargo build -p power-loop-cli failed");
    }
    assert!(bin.exists(), "no CLI binary at {}", bin.display());
    bin
}

/// A `power-loop` command with a clean environment configured for `wire` at `base` (a server
/// or a proxy, `http://host:port`), the store `dsn`, and `max_tokens` through
/// `POWER_LOOP_MAX_TOKENS`.
pub fn command(wire: Wire, base: &str, dsn: &str, max_tokens: u32) -> Command {
    let mut c = Command::new(binary());
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::var("HOME").unwrap_or_default())
        .env("POWER_LOOP_PROVIDER", wire.provider())
        .env("POWER_LOOP_BASE_URL", wire.base_url(base))
        .env("POWER_LOOP_API_KEY", "sk-local")
        .env("POWER_LOOP_MODEL", crate::MODEL)
        .env("POWER_LOOP_MAX_TOKENS", max_tokens.to_string())
        .env("POWER_LOOP_TEMPERATURE", "0")
        .env("POWER_LOOP_TIMEOUT_S", crate::TIMEOUT_S.to_string())
        .env("POWER_LOOP_DSN", dsn)
        .stdin(Stdio::null());
    c
}

/// Runs `cmd` with `stdin` as its standard input; returns its output.
pub fn run_with_stdin(mut cmd: Command, stdin: &str) -> Output {
    use std::io::Write;
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn the CLI");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin.as_bytes()).expect("write stdin");
    drop(input);
    child.wait_with_output().expect("CLI output")
}

/// Panics with the command's stderr unless it exited 0; returns its stdout.
pub fn ok_stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "CLI failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
