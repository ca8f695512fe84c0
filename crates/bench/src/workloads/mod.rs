//! The workloads, one module each (`--workload <name>`).

use crate::args::Args;

mod cold;
mod common;
mod fleet;
mod many;
mod store;
mod tool_turns;
mod turns;
mod workflow;

/// One runnable workload: returns its JSON report line.
pub(crate) struct Workload {
    /// The `--workload` value.
    pub(crate) name: &'static str,
    /// Runs the workload (`Null`: it printed its own lines).
    pub(crate) run: fn(&Args) -> Result<serde_json::Value, String>,
    /// Internal sub-mode (not listed in the usage).
    pub(crate) hidden: bool,
}

const fn w(name: &'static str, run: fn(&Args) -> Result<serde_json::Value, String>) -> Workload {
    Workload {
        name,
        run,
        hidden: false,
    }
}

/// Every workload. `all` runs [`ALL`] in sequence, each in its own process.
pub(crate) const WORKLOADS: &[Workload] = &[
    w("store", store::run),
    w("W1", turns::run_w1),
    w("W2", tool_turns::run),
    w("W3", cold::run),
    w("W4", many::run),
    w("W5", workflow::run),
    w("W6", turns::run_w6),
    w("W7", fleet::run),
    w("W7-fight", fleet::run_fight),
    w("all", run_all),
    Workload {
        name: "W3-cold",
        run: cold::run_child,
        hidden: true,
    },
    Workload {
        name: "W5-worker",
        run: workflow::run_worker,
        hidden: true,
    },
    Workload {
        name: "W7-worker",
        run: fleet::run_worker,
        hidden: true,
    },
];

/// The workloads `--workload all` runs.
const ALL: &[&str] = &["W1", "W2", "W3", "W4", "W5", "W6"];

/// `--workload all`: re-executes this binary once per workload (so each starts with a fresh
/// process: its own peak RSS and a fresh store), prints each report line as it arrives, and with
/// `--pg` adds W4 and W5 on PostgreSQL and `--mysql` W4 and W5 on MySQL / MariaDB. Fails if any workload failed (after running the others).
fn run_all(args: &Args) -> Result<serde_json::Value, String> {
    let exe = std::env::current_exe().map_err(|e| format!("locating this binary: {e}"))?;
    let mut runs: Vec<(&str, Option<&str>)> = ALL.iter().map(|w| (*w, None)).collect();
    for server in ["pg", "mysql"] {
        if args.flag(server) {
            runs.push(("W4", Some(server)));
            runs.push(("W5", Some(server)));
        }
    }
    let mut failed = Vec::new();
    for (name, server) in runs {
        let mut cmd = std::process::Command::new(&exe);
        cmd.args(["--workload", name]);
        for key in ["dsn", "dir", "lease", "pool", "synchronous", "group-commit"] {
            if let Some(v) = args.get(key) {
                cmd.arg(format!("--{key}={v}"));
            }
        }
        if let Some(flag) = server {
            cmd.arg(format!("--{flag}"));
        }
        let out = cmd
            .stderr(std::process::Stdio::inherit())
            .output()
            .map_err(|e| format!("starting workload {name}: {e}"))?;
        let line = String::from_utf8_lossy(&out.stdout);
        if !line.trim().is_empty() {
            println!("{}", line.trim());
        }
        if !out.status.success() {
            failed.push(format!("{name} ({})", out.status));
        }
    }
    if failed.is_empty() {
        Ok(serde_json::Value::Null)
    } else {
        Err(format!("failed workloads: {}", failed.join(", ")))
    }
}

/// A fresh scratch directory for a workload (removed by [`ScratchDir`]'s drop).
pub(crate) struct ScratchDir(pub(crate) std::path::PathBuf);

impl ScratchDir {
    /// Creates `<base or tmp>/power-loop-bench-<workload>-<pid>-<nanos>`.
    pub(crate) fn new(args: &Args, workload: &str) -> Result<Self, String> {
        let base = args
            .get("dir")
            .map_or_else(std::env::temp_dir, std::path::PathBuf::from);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir = base.join(format!(
            "power-loop-bench-{workload}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        Ok(ScratchDir(dir))
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
