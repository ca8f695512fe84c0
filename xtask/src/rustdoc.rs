//! Building rustdoc JSON on stable Rust and listing a crate's public items with `public-api`.
//!
//! rustdoc's JSON output is a nightly (`-Z unstable-options`) feature. The pinned stable toolchain
//! (1.95, rustdoc JSON format 57) still emits it when `RUSTC_BOOTSTRAP=1` is set for that one
//! `cargo rustdoc` call, so no nightly toolchain is needed. Only the documented crate is
//! documented; its dependencies are compiled in check mode and shared with `cargo check`/`clippy`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::XtaskError;

/// What to document: a package of a Cargo workspace (or of a standalone manifest).
#[derive(Debug, Clone)]
pub struct RustdocTarget {
    /// `Cargo.toml` of the workspace or package.
    pub manifest_path: PathBuf,
    /// Package name (`power-loop`).
    pub package: String,
    /// Whether to pass `--all-features` (the façade is checked with every feature on).
    pub all_features: bool,
}

/// The cargo binary to call: `$CARGO` when run by cargo, else `cargo` from `PATH`.
pub fn cargo_bin() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

/// Asks `cargo metadata` for the target directory that `manifest_path` builds into (respects
/// `CARGO_TARGET_DIR` and `.cargo/config.toml`).
pub fn target_directory(manifest_path: &Path) -> Result<PathBuf, XtaskError> {
    let out = Command::new(cargo_bin())
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--manifest-path",
        ])
        .arg(manifest_path)
        .output()
        .map_err(|e| XtaskError::new(format!("could not run `cargo metadata`: {e}")))?;
    if !out.status.success() {
        return Err(XtaskError::new(format!(
            "`cargo metadata --manifest-path {}` failed:\n{}",
            manifest_path.display(),
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| XtaskError::new(format!("`cargo metadata` printed invalid JSON: {e}")))?;
    meta.get("target_directory")
        .and_then(serde_json::Value::as_str)
        .map(PathBuf::from)
        .ok_or_else(|| XtaskError::new("`cargo metadata` output has no `target_directory`"))
}

/// Runs `RUSTC_BOOTSTRAP=1 cargo rustdoc -p <package> --lib -- -Z unstable-options
/// --output-format json` and returns the path of the JSON file it wrote.
pub fn build_rustdoc_json(target: &RustdocTarget) -> Result<PathBuf, XtaskError> {
    let target_dir = target_directory(&target.manifest_path)?;
    let json = target_dir
        .join("doc")
        .join(format!("{}.json", target.package.replace('-', "_")));
    // A stale file from an earlier run must never be read as the current API.
    if json.exists() {
        std::fs::remove_file(&json).map_err(|e| {
            XtaskError::new(format!("could not remove stale {}: {e}", json.display()))
        })?;
    }
    let mut cmd = Command::new(cargo_bin());
    cmd.env("RUSTC_BOOTSTRAP", "1")
        .args(["rustdoc", "--lib", "--manifest-path"])
        .arg(&target.manifest_path)
        .args(["--package", &target.package]);
    if target.all_features {
        cmd.arg("--all-features");
    }
    cmd.args(["--", "-Z", "unstable-options", "--output-format", "json"]);
    let status = cmd
        .status()
        .map_err(|e| XtaskError::new(format!("could not run `cargo rustdoc`: {e}")))?;
    if !status.success() {
        return Err(XtaskError::new(format!(
            "`cargo rustdoc -p {}` failed ({status}); fix the build errors above, then rerun",
            target.package
        )));
    }
    if !json.is_file() {
        return Err(XtaskError::new(format!(
            "`cargo rustdoc` succeeded but wrote no {}",
            json.display()
        )));
    }
    Ok(json)
}

/// Reads a rustdoc JSON file and renders every public item as one line (blanket impls, auto-trait
/// impls and auto-derived impls omitted; parameter names omitted), sorted and deduplicated (an
/// item reachable by two paths, e.g. a module and a root re-export, renders its impls twice).
pub fn public_api_lines(json: &Path) -> Result<Vec<String>, XtaskError> {
    let api = public_api::Builder::from_rustdoc_json(json)
        .omit_blanket_impls(true)
        .omit_auto_trait_impls(true)
        .omit_auto_derived_impls(true)
        .build()
        .map_err(|e| {
            XtaskError::new(format!(
                "could not read rustdoc JSON {} with public-api: {e} (is the toolchain still the \
                 pinned 1.95, rustdoc JSON format 57?)",
                json.display()
            ))
        })?;
    let mut lines: Vec<String> = api.items().map(ToString::to_string).collect();
    lines.sort();
    lines.dedup();
    Ok(lines)
}

/// Builds the rustdoc JSON of `target` and lists its public items.
pub fn current_api(target: &RustdocTarget) -> Result<Vec<String>, XtaskError> {
    let json = build_rustdoc_json(target)?;
    public_api_lines(&json)
}
