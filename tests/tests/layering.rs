//! Mechanical check of the layering table in `design.md`: lower layers never resolve higher ones.
//!
//! For each crate this runs `cargo tree -e normal -p <crate> --all-features --prefix none` (normal
//! dependencies only, every optional dependency on) and asserts which power-loop crates and which
//! I/O drivers may appear. Dev-dependencies are not part of the layering (a backend's tests may
//! use the store's conformance suite, which is its own layer anyway).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

/// The workspace root manifest.
fn workspace_manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml")
}

/// The names of every crate in the normal dependency tree of `krate` (itself included).
fn resolved(krate: &str) -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let run = |offline: bool| {
        let mut cmd = Command::new(&cargo);
        cmd.args([
            "tree",
            "-e",
            "normal",
            "--all-features",
            "--prefix",
            "none",
            "-p",
            krate,
        ])
        .arg("--manifest-path")
        .arg(workspace_manifest());
        if offline {
            cmd.arg("--offline");
        }
        cmd.output().expect("cargo tree could not be started")
    };
    // Offline first (no registry access needed once the workspace has been built); fall back to
    // an online resolve when the local registry cache lacks an entry.
    let mut out = run(true);
    if !out.status.success() {
        out = run(false);
    }
    assert!(
        out.status.success(),
        "cargo tree -p {krate} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// The power-loop crates (other than `krate` itself) in the tree of `krate`.
fn power_loop_crates(krate: &str, deps: &BTreeSet<String>) -> BTreeSet<String> {
    deps.iter()
        .filter(|d| d.starts_with("power-loop") && d.as_str() != krate)
        .cloned()
        .collect()
}

/// Asserts that `krate` resolves only the power-loop crates in `allowed` and none of `forbidden`.
fn assert_layer(krate: &str, allowed: &[&str], forbidden: &[&str]) {
    let deps = resolved(krate);
    assert!(
        deps.contains(krate),
        "cargo tree did not list {krate} itself: {deps:?}"
    );
    let allowed: BTreeSet<String> = allowed.iter().map(|s| (*s).to_owned()).collect();
    let extra: Vec<String> = power_loop_crates(krate, &deps)
        .difference(&allowed)
        .cloned()
        .collect();
    assert!(
        extra.is_empty(),
        "{krate} resolves power-loop crates above its layer: {extra:?} (allowed: {allowed:?}); \
         see the layering table in design.md / docs/architecture.md"
    );
    let bad: Vec<&&str> = forbidden.iter().filter(|f| deps.contains(**f)).collect();
    assert!(bad.is_empty(), "{krate} resolves forbidden crates: {bad:?}");
}

/// I/O drivers and transports that the shared language must never pull in.
const DRIVERS: &[&str] = &[
    "reqwest",
    "rusqlite",
    "tokio-postgres",
    "deadpool-postgres",
    "mysql_async",
    "hyper",
];
/// The database drivers.
const DB_DRIVERS: &[&str] = &[
    "rusqlite",
    "libsqlite3-sys",
    "tokio-postgres",
    "deadpool-postgres",
    "mysql_async",
];

#[test]
fn contracts_resolves_no_other_power_loop_crate_and_no_io_driver() {
    assert_layer("power-loop-contracts", &[], DRIVERS);
}

#[test]
fn store_core_resolves_only_contracts_and_no_driver() {
    assert_layer(
        "power-loop-store",
        &["power-loop-contracts"],
        &[
            "power-loop-agent",
            "power-loop-llm",
            "power-loop-tools",
            "reqwest",
            "tokio-postgres",
            "mysql_async",
            "rusqlite",
        ],
    );
}

#[test]
fn store_backends_resolve_nothing_above_the_store() {
    let allowed = ["power-loop-contracts", "power-loop-store"];
    assert_layer(
        "power-loop-store-sqlite",
        &allowed,
        &["reqwest", "tokio-postgres", "mysql_async"],
    );
    assert_layer(
        "power-loop-store-postgres",
        &allowed,
        &["reqwest", "rusqlite", "mysql_async"],
    );
    assert_layer(
        "power-loop-store-mysql",
        &allowed,
        &["reqwest", "rusqlite", "tokio-postgres"],
    );
}

#[test]
fn llm_resolves_no_store_crate() {
    assert_layer("power-loop-llm", &["power-loop-contracts"], DB_DRIVERS);
}

#[test]
fn sinks_resolve_no_store_agent_or_tools_crate() {
    assert_layer("power-loop-sinks", &["power-loop-contracts"], DB_DRIVERS);
}

#[test]
fn tools_resolve_at_most_the_store_core() {
    assert_layer(
        "power-loop-tools",
        &["power-loop-contracts", "power-loop-store"],
        DB_DRIVERS,
    );
}

#[test]
fn agent_resolves_no_store_backend_and_nothing_above_it() {
    assert_layer(
        "power-loop-agent",
        &[
            "power-loop-contracts",
            "power-loop-store",
            "power-loop-llm",
            "power-loop-tools",
        ],
        DB_DRIVERS,
    );
}

#[test]
fn workflow_resolves_no_store_backend_and_nothing_above_it() {
    assert_layer(
        "power-loop-workflow",
        &[
            "power-loop-contracts",
            "power-loop-store",
            "power-loop-llm",
            "power-loop-tools",
            "power-loop-agent",
        ],
        DB_DRIVERS,
    );
}
