//! The workloads, one module each (`--workload <name>`).

use crate::args::Args;

mod store;

/// One runnable workload: returns its JSON report line.
pub(crate) struct Workload {
    /// The `--workload` value.
    pub(crate) name: &'static str,
    /// Runs the workload.
    pub(crate) run: fn(&Args) -> Result<serde_json::Value, String>,
}

/// Every workload (the bench issue adds W1..W6 here).
pub(crate) const WORKLOADS: &[Workload] = &[Workload {
    name: "store",
    run: store::run,
}];

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
