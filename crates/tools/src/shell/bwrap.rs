//! `BubblewrapShell`: commands run under `bwrap` with the workspace as the only writable path
//! and no network. Fails closed.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use power_loop_contracts::{BoxFuture, Error, ErrorCode, Result};

use super::{LaunchSpec, ShellBackend};

/// A [`ShellBackend`] that runs the shell inside a bubblewrap sandbox:
/// new user/pid/net/ipc/uts/cgroup namespaces (`--unshare-all`), no network, `--new-session`,
/// `--die-with-parent`, read-only system directories, private `/tmp`, `/proc`, `/dev`, and
/// the workspace bind-mounted read-write at its own path (the only writable host path).
///
/// It fails closed: the first use probes `bwrap` with a trivial command; if `bwrap` is missing
/// or the kernel refuses the namespaces, every call returns `sandbox.unavailable` carrying the
/// exact stderr, and nothing runs unsandboxed.
pub struct BubblewrapShell {
    bwrap: PathBuf,
    ro_paths: Vec<PathBuf>,
    extra_rw: Vec<PathBuf>,
    share_network: bool,
    probe: tokio::sync::OnceCell<std::result::Result<(), String>>,
}

impl std::fmt::Debug for BubblewrapShell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BubblewrapShell")
            .field("bwrap", &self.bwrap)
            .field("share_network", &self.share_network)
            .finish()
    }
}

impl Default for BubblewrapShell {
    fn default() -> Self {
        Self::new()
    }
}

const SYSTEM_DIRS: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt",
];

impl BubblewrapShell {
    /// A sandbox using `bwrap` from `PATH`, no network.
    pub fn new() -> Self {
        BubblewrapShell {
            bwrap: PathBuf::from("bwrap"),
            ro_paths: SYSTEM_DIRS.iter().map(PathBuf::from).collect(),
            extra_rw: Vec::new(),
            share_network: false,
            probe: tokio::sync::OnceCell::new(),
        }
    }

    /// Uses a specific `bwrap` binary.
    pub fn with_bwrap_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.bwrap = path.into();
        self
    }

    /// Adds a host path mounted read-only (when it exists).
    pub fn with_read_only(mut self, path: impl Into<PathBuf>) -> Self {
        self.ro_paths.push(path.into());
        self
    }

    /// Adds another writable host path (use sparingly).
    pub fn with_writable(mut self, path: impl Into<PathBuf>) -> Self {
        self.extra_rw.push(path.into());
        self
    }

    /// Keeps the host network (default: no network).
    pub fn with_network(mut self, share: bool) -> Self {
        self.share_network = share;
        self
    }

    fn args(&self, workspace: &Path) -> Vec<String> {
        let mut a: Vec<String> = vec![
            self.bwrap.to_string_lossy().into_owned(),
            "--die-with-parent".into(),
            "--unshare-all".into(),
            "--new-session".into(),
        ];
        if self.share_network {
            a.push("--share-net".into());
        }
        for p in &self.ro_paths {
            let s = p.to_string_lossy().into_owned();
            match std::fs::symlink_metadata(p) {
                Ok(m) if m.file_type().is_symlink() => {
                    if let Ok(target) = std::fs::read_link(p) {
                        a.extend(["--symlink".into(), target.to_string_lossy().into_owned(), s]);
                    }
                }
                Ok(_) => a.extend(["--ro-bind".into(), s.clone(), s]),
                Err(_) => {}
            }
        }
        a.extend([
            "--proc".into(),
            "/proc".into(),
            "--dev".into(),
            "/dev".into(),
            "--tmpfs".into(),
            "/tmp".into(),
        ]);
        let ws = workspace.to_string_lossy().into_owned();
        for p in &self.extra_rw {
            let s = p.to_string_lossy().into_owned();
            a.extend(["--bind".into(), s.clone(), s]);
        }
        a.extend([
            "--bind".into(),
            ws.clone(),
            ws.clone(),
            "--chdir".into(),
            ws.clone(),
            "--setenv".into(),
            "HOME".into(),
            ws,
            "--".into(),
            "/bin/bash".into(),
            "--norc".into(),
            "--noprofile".into(),
        ]);
        a
    }

    async fn run_probe(&self, workspace: &Path) -> std::result::Result<(), String> {
        let mut argv = self.args(workspace);
        argv.extend(["-c".to_owned(), "true".to_owned()]);
        let mut cmd = tokio::process::Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let out = match tokio::time::timeout(Duration::from_secs(20), cmd.output()).await {
            Err(_) => return Err("the bwrap probe did not finish within 20 s".to_owned()),
            Ok(Err(e)) => {
                return Err(format!(
                    "cannot run {}: {e} (install the `bubblewrap` package)",
                    self.bwrap.display()
                ));
            }
            Ok(Ok(o)) => o,
        };
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "bwrap probe failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }
}

impl ShellBackend for BubblewrapShell {
    fn name(&self) -> &str {
        "bubblewrap"
    }

    fn launch(&self, workspace: &Path) -> Result<LaunchSpec> {
        Ok(LaunchSpec {
            argv: self.args(workspace),
            cwd: Some(workspace.to_path_buf()),
            clear_env: true,
            env: vec![
                (
                    "PATH".into(),
                    "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin".into(),
                ),
                ("TERM".into(), "dumb".into()),
                ("NO_COLOR".into(), "1".into()),
                ("LANG".into(), "C.UTF-8".into()),
            ],
        })
    }

    fn ensure_available<'a>(&'a self, workspace: &'a Path) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let verdict = self.probe.get_or_init(|| self.run_probe(workspace)).await;
            match verdict {
                Ok(()) => Ok(()),
                Err(stderr) => Err(Error::new(
                    ErrorCode::SandboxUnavailable,
                    format!(
                        "the bubblewrap sandbox is unavailable, so the command was NOT run: {stderr}"
                    ),
                )
                .with_detail("stderr", stderr.clone())),
            }
        })
    }
}
