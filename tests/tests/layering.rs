//! Mechanical check of the layering table in `design.md` (copied below as [`TABLE`], without
//! exceptions): a crate resolves only the power-loop crates its row allows, and their rows.
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

/// The names of every crate in the normal dependency tree of `krate` (itself included), every
/// optional dependency on.
fn resolved(krate: &str) -> BTreeSet<String> {
    resolved_with(krate, "--all-features")
}

/// Like [`resolved`] with a feature flag of `cargo tree` (`--all-features` or
/// `--no-default-features`).
fn resolved_with(krate: &str, features: &str) -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let run = |offline: bool| {
        let mut cmd = Command::new(&cargo);
        cmd.args([
            "tree", "-e", "normal", features, "--prefix", "none", "-p", krate,
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

/// The layering table of `design.md`: each crate and the power-loop crates it may depend on
/// directly. What a crate may resolve is the closure of its row (its allowed crates, theirs, …).
const TABLE: &[(&str, &[&str])] = &[
    ("power-loop-contracts", &[]),
    ("power-loop-store", &["power-loop-contracts"]),
    ("power-loop-store-sqlite", &["power-loop-store"]),
    ("power-loop-store-postgres", &["power-loop-store"]),
    ("power-loop-store-mysql", &["power-loop-store"]),
    ("power-loop-llm", &["power-loop-contracts"]),
    (
        "power-loop-tools",
        &["power-loop-contracts", "power-loop-store"],
    ),
    ("power-loop-sinks", &["power-loop-contracts"]),
    // The backends only behind the agent's `sqlite` / `postgres` / `mysql` features: the
    // descriptors `AgentLoopBuilder::dsn` opens a DSN on (checked below: without them the agent
    // resolves no backend and no driver).
    (
        "power-loop-mcp",
        &["power-loop-contracts", "power-loop-tools"],
    ),
    (
        "power-loop-agent",
        &[
            "power-loop-contracts",
            "power-loop-store",
            "power-loop-tools",
            "power-loop-store-sqlite",
            "power-loop-store-postgres",
            "power-loop-store-mysql",
        ],
    ),
    (
        "power-loop-workflow",
        &["power-loop-agent", "power-loop-store"],
    ),
    (
        "power-loop",
        &[
            "power-loop-contracts",
            "power-loop-store",
            "power-loop-store-sqlite",
            "power-loop-store-postgres",
            "power-loop-store-mysql",
            "power-loop-llm",
            "power-loop-tools",
            "power-loop-sinks",
            "power-loop-mcp",
            "power-loop-agent",
            "power-loop-workflow",
        ],
    ),
    ("power-loop-cli", &["power-loop"]),
    ("power-loop-bench", &["power-loop"]),
];

/// The closure of `krate`'s row in [`TABLE`] (the power-loop crates it may resolve).
fn allowed(krate: &str) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    let mut todo: Vec<&str> = vec![krate];
    while let Some(k) = todo.pop() {
        let (_, row) = TABLE
            .iter()
            .find(|(name, _)| *name == k)
            .unwrap_or_else(|| panic!("{k} has no row in the layering table"));
        for dep in *row {
            if !out.contains(dep) {
                out.push(dep);
                todo.push(dep);
            }
        }
    }
    out
}

/// Asserts `krate` resolves exactly within its row's closure and none of `forbidden`.
fn assert_row(krate: &str, forbidden: &[&str]) {
    assert_layer(krate, &allowed(krate), forbidden);
}

#[test]
fn contracts_resolves_no_other_power_loop_crate_and_no_io_driver() {
    assert_row("power-loop-contracts", DRIVERS);
}

#[test]
fn store_core_resolves_only_contracts_and_no_driver() {
    assert_row(
        "power-loop-store",
        &["reqwest", "tokio-postgres", "mysql_async", "rusqlite"],
    );
}

#[test]
fn store_backends_resolve_nothing_above_the_store() {
    assert_row(
        "power-loop-store-sqlite",
        &["reqwest", "tokio-postgres", "mysql_async"],
    );
    assert_row(
        "power-loop-store-postgres",
        &["reqwest", "rusqlite", "mysql_async"],
    );
    assert_row(
        "power-loop-store-mysql",
        &["reqwest", "rusqlite", "tokio-postgres"],
    );
}

#[test]
fn llm_resolves_only_contracts() {
    assert_row("power-loop-llm", DB_DRIVERS);
}

#[test]
fn sinks_resolve_only_contracts() {
    assert_row("power-loop-sinks", DB_DRIVERS);
}

#[test]
fn tools_resolve_at_most_the_store_core() {
    assert_row("power-loop-tools", DB_DRIVERS);
}

#[test]
fn mcp_resolves_only_the_tools_floor() {
    // contracts + tools (and the store core through tools); no database driver, no agent.
    assert_row("power-loop-mcp", DB_DRIVERS);
}

#[test]
fn agent_resolves_contracts_store_and_tools_only() {
    // Not the llm crate: the loop takes any `Arc<dyn LlmService>`, wrapped by the caller.
    assert_row("power-loop-agent", &["reqwest", "tower"]);
    // Without its backend features the agent resolves no backend and no database driver.
    let deps = resolved_with("power-loop-agent", "--no-default-features");
    let backends: Vec<&String> = deps
        .iter()
        .filter(|d| d.starts_with("power-loop-store-"))
        .collect();
    assert!(
        backends.is_empty(),
        "agent without features resolves {backends:?}"
    );
    let drivers: Vec<&&str> = DB_DRIVERS.iter().filter(|d| deps.contains(**d)).collect();
    assert!(
        drivers.is_empty(),
        "agent without features resolves {drivers:?}"
    );
}

#[test]
fn workflow_resolves_the_agent_and_below_only() {
    assert_row("power-loop-workflow", DB_DRIVERS);
}

#[test]
fn the_facade_cli_and_bench_stay_within_the_table() {
    assert_row("power-loop", &[]);
    assert_row("power-loop-cli", &[]);
    assert_row("power-loop-bench", &[]);
}

#[test]
fn every_workspace_crate_has_a_row() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../crates");
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(&root).unwrap() {
        let manifest = entry.unwrap().path().join("Cargo.toml");
        let Ok(text) = std::fs::read_to_string(&manifest) else {
            continue;
        };
        let name = text
            .lines()
            .find_map(|l| l.strip_prefix("name = "))
            .map(|n| n.trim_matches('"').to_owned())
            .unwrap();
        if !TABLE.iter().any(|(k, _)| *k == name) {
            missing.push(name);
        }
    }
    assert!(
        missing.is_empty(),
        "crates without a layering row: {missing:?}"
    );
}
