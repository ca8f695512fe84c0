//! [`FirejailLauncher`]: the worker runs under `firejail` (Debian `firejail`).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use power_loop_contracts::{Error, ErrorCode, Result};

use super::{ETC_ENTRIES, LaunchPlan, SYSTEM_DIRS, WorkerLauncher, probe};

/// Runs each worker inside a firejail sandbox: no network (`--net=none`, a new network
/// namespace with only loopback), every capability dropped, `no_new_privs`, the default
/// seccomp filter, a private `/dev` and a minimal private `/etc`, the whole file system
/// read-only except the leaf's directory and workspace, and every host path outside the
/// system directories, the worker binary, the leaf's directory and workspace blacklisted
/// (unreadable). Runs without a profile (`--noprofile`), so the host's firejail profiles do not
/// change what it does.
///
/// Fails closed: the first `wrap` probes `firejail`; if it is missing or cannot build a
/// sandbox, every `wrap` fails with `sandbox.unavailable` and the reason.
#[derive(Debug)]
pub struct FirejailLauncher {
    firejail: PathBuf,
    probe: OnceLock<std::result::Result<(), String>>,
}

impl Default for FirejailLauncher {
    fn default() -> Self {
        Self::new()
    }
}

impl FirejailLauncher {
    /// A launcher using `firejail` from `PATH`.
    pub fn new() -> Self {
        Self::with_firejail_path("firejail")
    }

    /// A launcher using a specific `firejail` binary.
    pub fn with_firejail_path(path: impl Into<PathBuf>) -> Self {
        FirejailLauncher {
            firejail: path.into(),
            probe: OnceLock::new(),
        }
    }

    /// Whether `firejail` works here (runs the probe once).
    pub fn available(&self) -> std::result::Result<(), String> {
        self.probe
            .get_or_init(|| {
                let dir = tempfile_dir().map_err(|e| format!("firejail probe: {e}"))?;
                let r = options(&dir, &[], &dir, None)
                    .map_err(|e| format!("cannot write the firejail profile: {e}"))
                    .and_then(|mut a| {
                        a.push("/bin/true".into());
                        probe(&self.firejail, &a)
                            .map_err(|e| format!("firejail cannot sandbox here: {e}"))
                    });
                let _ = std::fs::remove_dir_all(&dir);
                r
            })
            .clone()
    }
}

/// A fresh private directory for the probe.
fn tempfile_dir() -> std::io::Result<PathBuf> {
    let d = std::env::temp_dir().join(format!(
        "power-loop-firejail-probe-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

fn canonical(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Every host path to blacklist so that only `keep` (and their ancestors as directories), the
/// system directories and `/proc`, `/dev`, `/sys`, `/etc` (replaced) stay visible.
fn hidden(keep: &[PathBuf]) -> Vec<PathBuf> {
    let root_ok: Vec<&str> = SYSTEM_DIRS
        .iter()
        .map(|d| d.trim_start_matches('/'))
        .chain(["proc", "dev", "sys", "etc"])
        .collect();
    let mut out = Vec::new();
    let mut todo = vec![PathBuf::from("/")];
    while let Some(dir) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if keep.iter().any(|k| k == &p) {
                continue;
            }
            if keep.iter().any(|k| k.starts_with(&p)) || p == Path::new("/run") {
                // `/run` itself cannot be blacklisted (firejail works in /run/firejail): its
                // entries are, sockets of local servers included
                todo.push(p);
                continue;
            }
            if p == Path::new("/run/firejail") {
                continue;
            }
            if dir == Path::new("/")
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| root_ok.contains(&n))
            {
                continue;
            }
            if e.file_type().is_ok_and(|t| t.is_symlink()) {
                // firejail resolves a blacklisted symlink: a dangling one reveals nothing
                // and would make firejail refuse to start
                let Ok(t) = std::fs::canonicalize(&p) else {
                    continue;
                };
                let system = SYSTEM_DIRS.iter().any(|d| t.starts_with(d));
                if system || keep.iter().any(|k| t.starts_with(k)) {
                    continue;
                }
            }
            out.push(p);
        }
    }
    out
}

/// The firejail profile (firejail caps its command line at 128 arguments, so the blacklist
/// goes in a profile file).
fn profile(read_only: &[PathBuf], leaf: &Path, ws: Option<&Path>) -> String {
    let mut a: Vec<String> = [
        "net none",
        "caps.drop all",
        "nonewprivs",
        "seccomp",
        "nogroups",
        "private-dev",
        "deterministic-shutdown",
        "read-only /",
    ]
    .iter()
    .map(|x| (*x).to_owned())
    .collect();
    let etc: Vec<&str> = ETC_ENTRIES
        .iter()
        .copied()
        .filter(|e| !e.contains('/') && Path::new("/etc").join(e).exists())
        .collect();
    a.push(format!("private-etc {}", etc.join(",")));
    let mut keep: Vec<PathBuf> = read_only.iter().map(|p| canonical(p)).collect();
    let leaf = canonical(leaf);
    keep.push(leaf.clone());
    a.push(format!("read-write {}", s(&leaf)));
    if let Some(w) = ws {
        let w = canonical(w);
        keep.push(w.clone());
        a.push(format!("read-write {}", s(&w)));
    }
    for p in hidden(&keep) {
        a.push(format!("blacklist {}", s(&p)));
    }
    let mut text = a.join("\n");
    text.push('\n');
    text
}

/// Writes the profile into `dir` and returns the firejail options (up to and including `--`).
fn options(
    dir: &Path,
    read_only: &[PathBuf],
    leaf: &Path,
    ws: Option<&Path>,
) -> std::io::Result<Vec<String>> {
    let file = dir.join(".power-loop-firejail.profile");
    std::fs::write(&file, profile(read_only, leaf, ws))?;
    Ok(vec![
        "--quiet".into(),
        format!("--profile={}", s(&file)),
        "--deterministic-exit-code".into(),
        "--".into(),
    ])
}

impl WorkerLauncher for FirejailLauncher {
    fn name(&self) -> &str {
        "firejail"
    }
    fn is_sandbox(&self) -> bool {
        true
    }
    fn wrap(&self, plan: LaunchPlan) -> Result<LaunchPlan> {
        self.available()
            .map_err(|m| Error::new(ErrorCode::SandboxUnavailable, m))?;
        let mut a = options(
            &plan.leaf_dir,
            &plan.read_only,
            &plan.leaf_dir,
            plan.workspace_dir.as_deref(),
        )
        .map_err(|e| {
            Error::new(
                ErrorCode::SandboxUnavailable,
                format!("cannot write the firejail profile: {e}"),
            )
        })?;
        a.push(s(&plan.program));
        a.extend(plan.args.iter().cloned());
        Ok(LaunchPlan {
            program: self.firejail.clone(),
            args: a,
            ..plan
        })
    }
}
