//! `BubblewrapShell`: commands run under `bwrap` with the workspace as the only writable path,
//! no capabilities, a minimal `/etc` and no network. Fails closed.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use power_loop_contracts::{BoxFuture, Error, ErrorCode, Result};

use super::etc::{GeneratedEtc, SANDBOX_UID, etc_args};
use super::{LaunchSpec, ShellBackend};

/// A [`ShellBackend`] that runs the shell inside a bubblewrap sandbox:
/// new pid/net/ipc/uts/cgroup namespaces (`--unshare-all`), a user namespace where the kernel
/// allows one (the shell runs as uid/gid 1000 inside, with nested user namespaces disabled),
/// every capability dropped (`--cap-drop ALL`, also when the host runs as root), no network,
/// `--new-session`, `--die-with-parent`, read-only system directories, a minimal generated
/// `/etc` (no `shadow`, `gshadow`, `sudoers` or private keys), private `/tmp`, `/proc`, `/dev`,
/// and the workspace bind-mounted read-write at its own path (the only writable host path).
///
/// It fails closed: the first use probes `bwrap` and checks that the probe's effective
/// capability set is empty; if `bwrap` is missing, the kernel refuses the namespaces or
/// capabilities survive, every call returns `sandbox.unavailable` carrying the exact reason,
/// and nothing runs unsandboxed. See `docs/sandboxing.md` for what it does and does not isolate.
pub struct BubblewrapShell {
    bwrap: PathBuf,
    ro_paths: Vec<PathBuf>,
    extra_rw: Vec<PathBuf>,
    share_network: bool,
    probe: tokio::sync::OnceCell<std::result::Result<Isolation, String>>,
    etc: OnceLock<std::result::Result<GeneratedEtc, String>>,
}

/// How the sandbox takes privileges away (picked by the probe).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Isolation {
    /// A new user namespace, uid/gid [`SANDBOX_UID`] inside, nested user namespaces disabled,
    /// all capabilities dropped.
    UserNamespace,
    /// No user namespace could be made (only possible when `bwrap` runs as root): all
    /// capabilities and the bounding set dropped, uid 0 without privileges.
    CapDropOnly,
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

/// Host directories mounted read-only (`/etc` is handled separately: see [`etc_args`]).
const SYSTEM_DIRS: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/opt",
];

/// The probe prints the effective capability set of the sandboxed shell (bash builtins only).
const PROBE_SCRIPT: &str =
    "while read -r k v; do [ \"$k\" = CapEff: ] && echo \"$v\"; done < /proc/self/status; true";

impl BubblewrapShell {
    /// A sandbox using `bwrap` from `PATH`, no network.
    pub fn new() -> Self {
        BubblewrapShell {
            bwrap: PathBuf::from("bwrap"),
            ro_paths: SYSTEM_DIRS.iter().map(PathBuf::from).collect(),
            extra_rw: Vec::new(),
            share_network: false,
            probe: tokio::sync::OnceCell::new(),
            etc: OnceLock::new(),
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

    fn generated_etc(&self) -> Result<&GeneratedEtc> {
        let r = self.etc.get_or_init(|| {
            GeneratedEtc::create().map_err(|e| {
                format!("cannot write the sandbox's generated /etc files in the temp dir: {e}")
            })
        });
        r.as_ref()
            .map_err(|m| Error::new(ErrorCode::SandboxUnavailable, m.clone()))
    }

    fn args(&self, workspace: &Path, iso: Isolation) -> Result<Vec<String>> {
        let etc = self.generated_etc()?;
        let mut a: Vec<String> = vec![
            self.bwrap.to_string_lossy().into_owned(),
            "--die-with-parent".into(),
            "--unshare-all".into(),
            "--new-session".into(),
            "--cap-drop".into(),
            "ALL".into(),
        ];
        if iso == Isolation::UserNamespace {
            let id = SANDBOX_UID.to_string();
            a.extend([
                "--unshare-user".into(),
                "--disable-userns".into(),
                "--uid".into(),
                id.clone(),
                "--gid".into(),
                id,
            ]);
        }
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
        a.extend(etc_args(etc));
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
        Ok(a)
    }

    /// Picks the strongest isolation this host allows: a user namespace first, then (as root
    /// without user namespaces) dropped capabilities only.
    async fn probe_all(&self, workspace: &Path) -> std::result::Result<Isolation, String> {
        let first = match self.run_probe(workspace, Isolation::UserNamespace).await {
            Ok(()) => return Ok(Isolation::UserNamespace),
            Err(e) => e,
        };
        match self.run_probe(workspace, Isolation::CapDropOnly).await {
            Ok(()) => Ok(Isolation::CapDropOnly),
            Err(second) if second == first => Err(first),
            Err(second) => Err(format!(
                "with a user namespace: {first}; without one: {second}"
            )),
        }
    }

    async fn run_probe(&self, workspace: &Path, iso: Isolation) -> std::result::Result<(), String> {
        let mut argv = self
            .args(workspace, iso)
            .map_err(|e| e.message().to_owned())?;
        argv.extend(["-c".to_owned(), PROBE_SCRIPT.to_owned()]);
        let mut cmd = tokio::process::Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
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
        if !out.status.success() {
            return Err(format!(
                "bwrap probe failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let caps = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        match u64::from_str_radix(&caps, 16) {
            Ok(0) => Ok(()),
            Ok(_) => Err(format!(
                "bwrap probe failed: the sandboxed shell kept capabilities (CapEff {caps})"
            )),
            Err(_) => Err(format!(
                "bwrap probe failed: cannot read the sandboxed shell's capabilities (got {caps:?})"
            )),
        }
    }
}

impl BubblewrapShell {
    /// The probed isolation; before a probe, the user-namespace form (fails loudly if the
    /// kernel refuses it, never weaker).
    fn isolation(&self) -> Isolation {
        match self.probe.get() {
            Some(Ok(iso)) => *iso,
            _ => Isolation::UserNamespace,
        }
    }
}

impl ShellBackend for BubblewrapShell {
    fn name(&self) -> &str {
        "bubblewrap"
    }

    fn launch(&self, workspace: &Path) -> Result<LaunchSpec> {
        Ok(LaunchSpec {
            argv: self.args(workspace, self.isolation())?,
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
            let verdict = self.probe.get_or_init(|| self.probe_all(workspace)).await;
            match verdict {
                Ok(_) => Ok(()),
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
