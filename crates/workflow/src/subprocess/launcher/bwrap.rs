//! [`BubblewrapLauncher`]: the worker runs under `bwrap` (Debian `bubblewrap`).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use power_loop_contracts::{Error, ErrorCode, Result};

use super::{ETC_ENTRIES, LaunchPlan, SYSTEM_DIRS, WorkerLauncher, probe};

/// Runs each worker inside a bubblewrap sandbox: new pid/net/ipc/uts/cgroup namespaces
/// (`--unshare-all`, so no network at all), a user namespace where the kernel allows one (the
/// worker runs as uid 1000 inside, nested user namespaces disabled), every capability dropped,
/// `--new-session`, `--die-with-parent`, the system directories and a minimal `/etc` read-only,
/// private `/tmp`, `/proc` and `/dev`, the worker binary read-only, and only the leaf's
/// directory and workspace writable. Nothing else of the host is visible.
///
/// Fails closed: the first `wrap` probes `bwrap` (with a user namespace, then as root without
/// one); if both fail, every `wrap` fails with `sandbox.unavailable` and the reason.
#[derive(Debug)]
pub struct BubblewrapLauncher {
    bwrap: PathBuf,
    probe: OnceLock<std::result::Result<bool, String>>,
}

impl Default for BubblewrapLauncher {
    fn default() -> Self {
        Self::new()
    }
}

impl BubblewrapLauncher {
    /// A launcher using `bwrap` from `PATH`.
    pub fn new() -> Self {
        Self::with_bwrap_path("bwrap")
    }

    /// A launcher using a specific `bwrap` binary.
    pub fn with_bwrap_path(path: impl Into<PathBuf>) -> Self {
        BubblewrapLauncher {
            bwrap: path.into(),
            probe: OnceLock::new(),
        }
    }

    /// Whether `bwrap` works here (runs the probe once).
    pub fn available(&self) -> std::result::Result<(), String> {
        self.isolation().map(|_| ())
    }

    /// `Ok(true)`: user namespace; `Ok(false)`: dropped capabilities only (root).
    fn isolation(&self) -> std::result::Result<bool, String> {
        self.probe
            .get_or_init(|| {
                let tmp = std::env::temp_dir();
                let run = |userns: bool| {
                    let mut a = args(&[], &tmp, None, userns);
                    a.push("/bin/true".into());
                    probe(&self.bwrap, &a)
                };
                match run(true) {
                    Ok(()) => Ok(true),
                    Err(first) => match run(false) {
                        Ok(()) => Ok(false),
                        Err(second) => Err(format!(
                            "bubblewrap cannot sandbox here: with a user namespace: {first}; without: {second}"
                        )),
                    },
                }
            })
            .clone()
    }
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// The bwrap options (up to and including `--`).
fn args(read_only: &[PathBuf], leaf: &Path, ws: Option<&Path>, userns: bool) -> Vec<String> {
    let mut a: Vec<String> = [
        "--die-with-parent",
        "--unshare-all",
        "--new-session",
        "--cap-drop",
        "ALL",
    ]
    .iter()
    .map(|x| (*x).to_owned())
    .collect();
    if userns {
        a.extend(
            [
                "--unshare-user",
                "--disable-userns",
                "--uid",
                "1000",
                "--gid",
                "1000",
            ]
            .iter()
            .map(|x| (*x).to_owned()),
        );
    }
    for d in SYSTEM_DIRS {
        let p = Path::new(d);
        match std::fs::symlink_metadata(p) {
            Ok(m) if m.file_type().is_symlink() => {
                if let Ok(t) = std::fs::read_link(p) {
                    a.extend(["--symlink".into(), s(&t), (*d).to_owned()]);
                }
            }
            Ok(_) => a.extend(["--ro-bind".into(), (*d).to_owned(), (*d).to_owned()]),
            Err(_) => {}
        }
    }
    for e in ETC_ENTRIES {
        let p = Path::new("/etc").join(e);
        if p.exists() {
            a.extend(["--ro-bind".into(), s(&p), s(&p)]);
        }
    }
    a.extend(
        ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]
            .iter()
            .map(|x| (*x).to_owned()),
    );
    for p in read_only {
        if p.exists() {
            a.extend(["--ro-bind".into(), s(p), s(p)]);
        }
    }
    a.extend(["--bind".into(), s(leaf), s(leaf)]);
    if let Some(w) = ws {
        a.extend(["--bind".into(), s(w), s(w)]);
    }
    a.push("--".into());
    a
}

impl WorkerLauncher for BubblewrapLauncher {
    fn name(&self) -> &str {
        "bubblewrap"
    }
    fn is_sandbox(&self) -> bool {
        true
    }
    fn wrap(&self, plan: LaunchPlan) -> Result<LaunchPlan> {
        let userns = self
            .isolation()
            .map_err(|m| Error::new(ErrorCode::SandboxUnavailable, m))?;
        let mut a = args(
            &plan.read_only,
            &plan.leaf_dir,
            plan.workspace_dir.as_deref(),
            userns,
        );
        // bwrap has no --chdir before `--`; it is an option
        let at = a.len() - 1;
        a.splice(at..at, ["--chdir".to_owned(), s(&plan.cwd)]);
        a.push(s(&plan.program));
        a.extend(plan.args.iter().cloned());
        Ok(LaunchPlan {
            program: self.bwrap.clone(),
            args: a,
            ..plan
        })
    }
}
