//! Building rustdoc JSON on stable Rust and listing a crate's public items with `public-api`.
//!
//! The documented crate and every workspace crate it reaches through path dependencies are
//! documented in one `cargo doc` call, so re-exported items can be followed into the crate that
//! defines them ([`crate::reexport`]).
//!
//! rustdoc's JSON output is a nightly (`-Z unstable-options`) feature. The pinned stable toolchain
//! (1.95, rustdoc JSON format 57) still emits it when `RUSTC_BOOTSTRAP=1` is set for that one
//! `cargo rustdoc` call, so no nightly toolchain is needed. Only the documented crate is
//! documented; its dependencies are compiled in check mode and shared with `cargo check`/`clippy`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{XtaskError, reexport};

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

/// Runs `cargo metadata --no-deps` for `manifest_path` and returns its JSON.
fn metadata(manifest_path: &Path) -> Result<serde_json::Value, XtaskError> {
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
    serde_json::from_slice(&out.stdout)
        .map_err(|e| XtaskError::new(format!("`cargo metadata` printed invalid JSON: {e}")))
}

/// A workspace package to document: its package name and the name of its library target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocPackage {
    /// Package name (`power-loop-contracts`).
    pub package: String,
    /// Library crate name (`power_loop_contracts`); the JSON file is `doc/<lib>.json`.
    pub lib: String,
}

/// What to document for `target`: the package itself first, then every workspace package it
/// reaches through normal path dependencies (transitively), and the target directory.
pub fn plan(target: &RustdocTarget) -> Result<(Vec<DocPackage>, PathBuf), XtaskError> {
    let meta = metadata(&target.manifest_path)?;
    let target_dir = meta
        .get("target_directory")
        .and_then(serde_json::Value::as_str)
        .map(PathBuf::from)
        .ok_or_else(|| XtaskError::new("`cargo metadata` output has no `target_directory`"))?;
    let empty = Vec::new();
    let packages = meta
        .get("packages")
        .and_then(serde_json::Value::as_array)
        .unwrap_or(&empty);
    let find = |name: &str| {
        packages
            .iter()
            .find(|p| p.get("name").and_then(serde_json::Value::as_str) == Some(name))
    };
    let mut out: Vec<DocPackage> = Vec::new();
    let mut queue = vec![target.package.clone()];
    while let Some(name) = queue.pop() {
        if out.iter().any(|d| d.package == name) {
            continue;
        }
        let Some(pkg) = find(&name) else {
            if name == target.package {
                return Err(XtaskError::new(format!(
                    "package `{name}` is not in the workspace of {}",
                    target.manifest_path.display()
                )));
            }
            continue;
        };
        let lib = pkg
            .get("targets")
            .and_then(serde_json::Value::as_array)
            .and_then(|ts| {
                ts.iter().find(|t| {
                    t.get("kind")
                        .and_then(serde_json::Value::as_array)
                        .is_some_and(|k| {
                            k.iter()
                                .any(|k| k == "lib" || k == "rlib" || k == "proc-macro")
                        })
                })
            })
            .and_then(|t| t.get("name").and_then(serde_json::Value::as_str))
            .map(|n| n.replace('-', "_"));
        let Some(lib) = lib else {
            if name == target.package {
                return Err(XtaskError::new(format!(
                    "package `{name}` has no library target"
                )));
            }
            continue;
        };
        out.push(DocPackage { package: name, lib });
        for dep in pkg
            .get("dependencies")
            .and_then(serde_json::Value::as_array)
            .unwrap_or(&empty)
        {
            let normal = dep.get("kind").is_none_or(serde_json::Value::is_null);
            let local = dep.get("path").is_some_and(|p| !p.is_null());
            if let (true, true, Some(dep_name)) = (
                normal,
                local,
                dep.get("name").and_then(serde_json::Value::as_str),
            ) {
                queue.push(dep_name.to_owned());
            }
        }
    }
    Ok((out, target_dir))
}

/// Runs `RUSTC_BOOTSTRAP=1 RUSTDOCFLAGS="-Z unstable-options --output-format json" cargo doc
/// --no-deps --lib -p <each package>` and returns the JSON file of each library crate.
pub fn build_docs_json(
    target: &RustdocTarget,
    packages: &[DocPackage],
    target_dir: &Path,
) -> Result<BTreeMap<String, PathBuf>, XtaskError> {
    let mut files = BTreeMap::new();
    for p in packages {
        let json = target_dir.join("doc").join(format!("{}.json", p.lib));
        // A stale file from an earlier run must never be read as the current API.
        if json.exists() {
            std::fs::remove_file(&json).map_err(|e| {
                XtaskError::new(format!("could not remove stale {}: {e}", json.display()))
            })?;
        }
        files.insert(p.lib.clone(), json);
    }
    let mut cmd = Command::new(cargo_bin());
    cmd.env("RUSTC_BOOTSTRAP", "1")
        .env("RUSTDOCFLAGS", "-Z unstable-options --output-format json")
        .args(["doc", "--no-deps", "--lib", "--manifest-path"])
        .arg(&target.manifest_path);
    for p in packages {
        cmd.args(["--package", &p.package]);
    }
    if target.all_features {
        cmd.arg("--all-features");
    }
    let status = cmd
        .status()
        .map_err(|e| XtaskError::new(format!("could not run `cargo doc`: {e}")))?;
    if !status.success() {
        return Err(XtaskError::new(format!(
            "`cargo doc` (rustdoc JSON) of {} failed ({status}); fix the build errors above, then rerun",
            target.package
        )));
    }
    for json in files.values() {
        if !json.is_file() {
            return Err(XtaskError::new(format!(
                "`cargo doc` succeeded but wrote no {}",
                json.display()
            )));
        }
    }
    Ok(files)
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

/// Builds the rustdoc JSON of `target` and of the workspace crates it depends on, and lists the
/// public items of `target`, including the definitions of the items it re-exports from those
/// crates (see [`crate::reexport`]). Re-exports of third-party items stay a `pub use` line.
pub fn current_api(target: &RustdocTarget) -> Result<Vec<String>, XtaskError> {
    let (packages, target_dir) = plan(target)?;
    let files = build_docs_json(target, &packages, &target_dir)?;
    let main_lib = &packages[0].lib;
    let main_json = files
        .get(main_lib)
        .ok_or_else(|| XtaskError::new(format!("no rustdoc JSON for {main_lib}")))?;
    let mut lines = public_api_lines(main_json)?;
    let reexports = reexport::foreign_reexports(main_json)?;
    let mut crate_lines = BTreeMap::new();
    for krate in reexports
        .iter()
        .map(|r| r.krate.as_str())
        .collect::<BTreeSet<_>>()
    {
        if let Some(json) = files.get(krate) {
            crate_lines.insert(krate.to_owned(), public_api_lines(json)?);
        }
    }
    let _third_party = reexport::expand(&mut lines, &reexports, &crate_lines);
    Ok(lines)
}
