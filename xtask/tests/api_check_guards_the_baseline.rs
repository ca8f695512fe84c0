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

/// A two-crate workspace: `fac` (the façade) only re-exports items defined in `dep`, as the
/// power-loop façade does.
struct Facade {
    dir: tempfile::TempDir,
}

const DEP_V1: &str = r#"//! Defines the items.

/// A re-exported struct.
pub struct Settings {
    /// A field whose type one test changes.
    pub depth: u32,
}

impl Settings {
    /// A method one test removes.
    pub fn deeper(&self) -> u32 {
        self.depth + 1
    }
}

/// Not re-exported: changing it never breaks the façade.
pub fn internal_helper(x: u8) -> u8 {
    x
}
"#;

impl Facade {
    fn blessed() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(
            root.join("Cargo.toml"),
            "[workspace]\nmembers = [\"dep\", \"fac\"]\nresolver = \"3\"\n",
        )
        .unwrap();
        for krate in ["dep", "fac"] {
            std::fs::create_dir_all(root.join(krate).join("src")).unwrap();
        }
        std::fs::write(
            root.join("dep/Cargo.toml"),
            "[package]\nname = \"dep\"\nversion = \"0.1.0\"\nedition = \"2024\"\npublish = false\n",
        )
        .unwrap();
        std::fs::write(
            root.join("fac/Cargo.toml"),
            "[package]\nname = \"fac\"\nversion = \"0.1.0\"\nedition = \"2024\"\npublish = false\n\n[dependencies]\ndep = { path = \"../dep\" }\n",
        )
        .unwrap();
        std::fs::write(
            root.join("fac/src/lib.rs"),
            "//! The façade.\n\npub use dep::Settings;\n",
        )
        .unwrap();
        let f = Self { dir };
        f.write_dep(DEP_V1);
        let out = f.xtask("api-bless");
        assert!(out.status.success(), "api-bless failed:\n{}", text(&out));
        f
    }

    fn write_dep(&self, source: &str) {
        std::fs::write(self.dir.path().join("dep/src/lib.rs"), source).unwrap();
    }

    fn xtask(&self, task: &str) -> Output {
        Command::new(env!("CARGO_BIN_EXE_xtask"))
            .arg(task)
            .arg("--manifest-path")
            .arg(self.dir.path().join("Cargo.toml"))
            .args(["--package", "fac", "--no-error-codes", "--api-dir"])
            .arg(self.dir.path().join("api"))
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("CARGO_BUILD_TARGET_DIR")
            .output()
            .unwrap()
    }
}

#[test]
fn reexported_items_are_guarded_with_their_signatures() {
    let f = Facade::blessed();
    let baseline = std::fs::read_to_string(f.dir.path().join("api/fac.txt")).unwrap();
    for expected in [
        "pub use fac::Settings",
        "pub dep::Settings::depth: u32",
        "pub fn dep::Settings::deeper(&self) -> u32",
    ] {
        assert!(
            baseline.contains(expected),
            "missing `{expected}` in:\n{baseline}"
        );
    }
    assert!(
        !baseline.contains("internal_helper"),
        "a non-re-exported item leaked in:\n{baseline}"
    );

    // Changing an item that is not re-exported does not matter.
    f.write_dep(&DEP_V1.replace(
        "pub fn internal_helper(x: u8) -> u8",
        "pub fn internal_helper(x: u16) -> u16",
    ));
    let out = f.xtask("api-check");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));

    // Changing a field type of a re-exported struct in its defining crate breaks the façade.
    f.write_dep(
        &DEP_V1
            .replace("pub depth: u32", "pub depth: u64")
            .replace("self.depth + 1", "1"),
    );
    let out = f.xtask("api-check");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("changed: pub dep::Settings::depth: u32"),
        "{}",
        text(&out)
    );

    // Removing a method of a re-exported struct breaks the façade.
    f.write_dep(&DEP_V1.replace("    /// A method one test removes.\n    pub fn deeper(&self) -> u32 {\n        self.depth + 1\n    }\n", ""));
    let out = f.xtask("api-check");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("removed: pub fn dep::Settings::deeper(&self) -> u32"),
        "{}",
        text(&out)
    );
}
