//! Housekeeping of leaf directories: remove one run's directory, or every run
//! directory untouched for a while.

use std::path::Path;
use std::time::{Duration, SystemTime};

use super::executor::safe;

/// Removes `runs_dir/<run_id>` and everything in it (errors ignored: it may already be gone).
pub fn cleanup_run(runs_dir: &Path, run_id: &str) {
    let _ = std::fs::remove_dir_all(runs_dir.join(safe(run_id)));
}

/// Removes every run directory under `runs_dir` whose newest file (the directory itself when
/// empty) is older than `older_than`; returns the removed directory names. Files vanishing
/// meanwhile are tolerated.
pub fn reap_runs(runs_dir: &Path, older_than: Duration) -> Vec<String> {
    let Some(cutoff) = SystemTime::now().checked_sub(older_than) else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(runs_dir) else {
        return Vec::new();
    };
    let mut removed = Vec::new();
    for e in entries.flatten() {
        let p = e.path();
        if !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        if newest(&p).is_some_and(|t| t < cutoff) && std::fs::remove_dir_all(&p).is_ok() {
            removed.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    removed.sort();
    removed
}

/// The newest modification time under `dir` (the directory's own when empty).
fn newest(dir: &Path) -> Option<SystemTime> {
    let mut best = std::fs::metadata(dir).and_then(|m| m.modified()).ok();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                todo.push(e.path());
            }
            if let Ok(t) = m.modified() {
                best = Some(best.map_or(t, |b| b.max(t)));
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleanup_and_reap() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("r1/leaf")).unwrap();
        std::fs::write(d.path().join("r1/leaf/x"), "x").unwrap();
        std::fs::create_dir_all(d.path().join("r_2")).unwrap();
        assert!(reap_runs(d.path(), Duration::from_secs(3600)).is_empty());
        assert_eq!(
            reap_runs(d.path(), Duration::ZERO),
            vec!["r1".to_owned(), "r_2".to_owned()]
        );
        std::fs::create_dir_all(d.path().join("r_3")).unwrap();
        cleanup_run(d.path(), "r/3");
        assert!(!d.path().join("r_3").exists());
    }
}
