//! The minimal `/etc` shown inside the bubblewrap sandbox.
//!
//! Only what a shell, name resolution, the dynamic loader and TLS need is bound from the host
//! (read-only); `passwd` and `group` are generated for the sandbox user. Never `shadow`,
//! `gshadow`, `sudoers`, SSH host keys or `/etc/ssl/private`.

use std::path::{Path, PathBuf};

/// Host `/etc` entries bound read-only into the sandbox when they exist (files or directories;
/// a symlink is bound as what it points to).
pub(crate) const ETC_ALLOWLIST: &[&str] = &[
    "hosts",
    "host.conf",
    "resolv.conf",
    "nsswitch.conf",
    "gai.conf",
    "protocols",
    "services",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "timezone",
    "os-release",
    "debian_version",
    "mime.types",
    "alternatives",
    "ssl/certs",
    "ssl/openssl.cnf",
    "ca-certificates",
    "pki/tls/certs",
    "pki/ca-trust",
    "crypto-policies",
];

/// Host `/etc` entries that must never appear in the sandbox, even through the allowlist.
pub(crate) const ETC_DENYLIST: &[&str] =
    &["shadow", "gshadow", "sudoers", "sudoers.d", "ssl/private"];

/// The uid and gid of the sandbox user inside a user namespace.
pub(crate) const SANDBOX_UID: u32 = 1000;

/// Generated `passwd` and `group` files in a private host directory, removed on drop.
#[derive(Debug)]
pub(crate) struct GeneratedEtc {
    dir: PathBuf,
}

impl GeneratedEtc {
    /// Writes the files into a fresh directory under the system temp dir.
    pub(crate) fn create() -> std::io::Result<Self> {
        let base = std::env::temp_dir();
        let mut last_err = None;
        for _ in 0..16 {
            let dir = base.join(format!("power-loop-bwrap-etc-{}", random_suffix()));
            match std::fs::create_dir(&dir) {
                Ok(()) => {
                    let me = GeneratedEtc { dir };
                    me.write_files()?;
                    return Ok(me);
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last_err = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last_err.unwrap_or_else(|| std::io::Error::other("no free temp directory name")))
    }

    fn write_files(&self) -> std::io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        let u = SANDBOX_UID;
        let passwd = format!(
            "root:x:0:0:root:/root:/usr/sbin/nologin\n\
             sandbox:x:{u}:{u}:power-loop sandbox:/tmp:/bin/bash\n\
             nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
        );
        let group = format!("root:x:0:\nsandbox:x:{u}:\nnogroup:x:65534:\n");
        for (name, text) in [("passwd", passwd), ("group", group)] {
            let p = self.dir.join(name);
            std::fs::write(&p, text)?;
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644))?;
        }
        std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o755))
    }

    /// Path of a generated file (`passwd` or `group`).
    pub(crate) fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for GeneratedEtc {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn random_suffix() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..16)
        .map(|_| char::from_digit(rng.random_range(0..16), 16).unwrap_or('0'))
        .collect()
}

/// bwrap arguments building the minimal `/etc`: a tmpfs, the allowlisted host entries bound
/// read-only, the generated `passwd`/`group`, then the tmpfs remounted read-only.
pub(crate) fn etc_args(generated: &GeneratedEtc) -> Vec<String> {
    let mut a: Vec<String> = vec!["--tmpfs".into(), "/etc".into()];
    let mut made_dirs: Vec<&str> = Vec::new();
    for entry in ETC_ALLOWLIST {
        if ETC_DENYLIST.contains(entry) {
            continue;
        }
        let host = Path::new("/etc").join(entry);
        // Bind only entries that resolve to something (a dangling symlink is skipped).
        if std::fs::metadata(&host).is_ok() {
            // Parent directories are created world-readable (bwrap's default is 0700).
            for (i, _) in entry.match_indices('/') {
                let parent = &entry[..i];
                if !made_dirs.contains(&parent) {
                    made_dirs.push(parent);
                    a.extend([
                        "--perms".into(),
                        "0755".into(),
                        "--dir".into(),
                        format!("/etc/{parent}"),
                    ]);
                }
            }
            let s = host.to_string_lossy().into_owned();
            a.extend(["--ro-bind".into(), s.clone(), s]);
        }
    }
    for name in ["passwd", "group"] {
        a.extend([
            "--ro-bind".into(),
            generated.file(name).to_string_lossy().into_owned(),
            format!("/etc/{name}"),
        ]);
    }
    a.extend(["--remount-ro".into(), "/etc".into()]);
    a
}
