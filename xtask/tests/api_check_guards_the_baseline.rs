//! Proves on a tiny fixture crate (generated into a temp dir, so it is no workspace member) that
//! `xtask api-check` fails when a stable item is removed or a signature changes, and passes when an
//! item is only added. The real binary runs the real pipeline: `cargo rustdoc` with
//! `RUSTC_BOOTSTRAP=1`, the `public-api` crate, the baseline diff.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const MANIFEST: &str = r#"[package]
name = "api-fixture"
version = "0.1.0"
edition = "2024"
publish = false

[lib]
path = "src/lib.rs"

[workspace]
"#;

const V1: &str = r#"//! Fixture crate for the api-check test.

/// Adds two numbers.
pub fn add(a: u32, b: u32) -> u32 {
    a + b
}

/// A stable function that one test removes.
pub fn legacy() {}

/// A stable struct whose field type one test changes.
pub struct Config {
    /// How often to retry.
    pub retries: u32,
}
"#;

struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    /// Writes the fixture crate at version `V1` and blesses its baseline.
    fn blessed(with_error_codes: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("src")).unwrap();
        std::fs::write(dir.path().join("Cargo.toml"), MANIFEST).unwrap();
        let fixture = Self { dir };
        fixture.write_lib(V1);
        let out = fixture.xtask("api-bless", with_error_codes);
        assert!(out.status.success(), "api-bless failed:\n{}", text(&out));
        fixture
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn api_dir(&self) -> PathBuf {
        self.path().join("api")
    }

    fn write_lib(&self, source: &str) {
        std::fs::write(self.path().join("src/lib.rs"), source).unwrap();
    }

    fn xtask(&self, task: &str, with_error_codes: bool) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_xtask"));
        cmd.arg(task)
            .arg("--manifest-path")
            .arg(self.path().join("Cargo.toml"))
            .args(["--package", "api-fixture", "--api-dir"])
            .arg(self.api_dir())
            // The fixture builds into its own temp target dir, never the workspace's (whose lock
            // the running test harness may hold).
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("CARGO_BUILD_TARGET_DIR");
        if !with_error_codes {
            cmd.arg("--no-error-codes");
        }
        cmd.output().unwrap()
    }

    fn check(&self) -> Output {
        self.xtask("api-check", false)
    }
}

fn text(out: &Output) -> String {
    format!(
        "status: {}\n--- stdout\n{}--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn bless_writes_sorted_items_and_an_unchanged_api_passes() {
    let f = Fixture::blessed(false);
    let baseline = std::fs::read_to_string(f.api_dir().join("api-fixture.txt")).unwrap();
    let lines: Vec<&str> = baseline.lines().collect();
    let mut sorted = lines.clone();
    sorted.sort_unstable();
    assert_eq!(lines, sorted, "baseline is not sorted:\n{baseline}");
    for expected in [
        "pub fn api_fixture::add(u32, u32) -> u32",
        "pub fn api_fixture::legacy()",
        "pub struct api_fixture::Config",
        "pub api_fixture::Config::retries: u32",
    ] {
        assert!(
            lines.contains(&expected),
            "missing `{expected}` in baseline:\n{baseline}"
        );
    }
    let out = f.check();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn check_fails_when_a_stable_item_is_removed() {
    let f = Fixture::blessed(false);
    f.write_lib(&V1.replace(
        "/// A stable function that one test removes.\npub fn legacy() {}\n",
        "",
    ));
    let out = f.check();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("removed: pub fn api_fixture::legacy()"),
        "{}",
        text(&out)
    );
}

#[test]
fn check_fails_when_a_signature_changes() {
    let f = Fixture::blessed(false);
    f.write_lib(&V1.replace(
        "pub fn add(a: u32, b: u32) -> u32 {\n    a + b",
        "pub fn add(a: u64, b: u32) -> u64 {\n    a + u64::from(b)",
    ));
    let out = f.check();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("changed: pub fn api_fixture::add(u32, u32) -> u32"),
        "{}",
        text(&out)
    );
    assert!(
        stdout.contains("to: pub fn api_fixture::add(u64, u32) -> u64"),
        "{}",
        text(&out)
    );
}

#[test]
fn check_fails_when_a_field_type_changes() {
    let f = Fixture::blessed(false);
    f.write_lib(&V1.replace("pub retries: u32", "pub retries: u8"));
    let out = f.check();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("changed: pub api_fixture::Config::retries: u32")
    );
}

#[test]
fn check_passes_when_an_item_is_added() {
    let f = Fixture::blessed(false);
    f.write_lib(&format!(
        "{V1}\n/// New in a minor release.\npub fn added_later() -> bool {{\n    true\n}}\n"
    ));
    let out = f.check();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("added:   pub fn api_fixture::added_later() -> bool"),
        "{}",
        text(&out)
    );
}

#[test]
fn check_fails_when_an_error_code_changes_or_disappears() {
    let f = Fixture::blessed(true);
    let codes_path = f.api_dir().join("error-codes.txt");
    let blessed = std::fs::read_to_string(&codes_path).unwrap();
    assert!(
        blessed.contains("SessionNotFound = \"session.not_found\""),
        "{blessed}"
    );
    let out = f.xtask("api-check", true);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // The baseline froze a code string the current build no longer has: a changed code.
    std::fs::write(
        &codes_path,
        blessed.replace("\"session.not_found\"", "\"session.missing\""),
    )
    .unwrap();
    let out = f.xtask("api-check", true);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("changed: SessionNotFound = \"session.missing\"")
    );

    // The baseline froze a code the current build no longer has at all: a removed code.
    std::fs::write(
        &codes_path,
        format!("{blessed}Vanished = \"vanished.code\"\n"),
    )
    .unwrap();
    let out = f.xtask("api-check", true);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("removed: Vanished = \"vanished.code\""));
}

#[test]
fn missing_baseline_is_a_tool_error_with_advice() {
    let f = Fixture::blessed(false);
    std::fs::remove_file(f.api_dir().join("api-fixture.txt")).unwrap();
    let out = f.check();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cargo xtask api-bless"));
}
