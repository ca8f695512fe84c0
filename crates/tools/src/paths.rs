//! Workspace confinement of tool paths.

use std::path::{Component, Path, PathBuf};

use power_loop_contracts::{Error, ErrorCode, Result};

use crate::env::{RuntimeEnv, expand_tilde};

/// Canonicalizes `p`, also when it (or some of its parents) does not exist yet: the deepest
/// existing ancestor is resolved (symlinks followed) and the rest is appended lexically.
pub(crate) fn canonicalize_lenient(p: &Path) -> std::io::Result<PathBuf> {
    let mut existing = p.to_path_buf();
    let mut rest: Vec<std::ffi::OsString> = Vec::new();
    loop {
        match std::fs::canonicalize(&existing) {
            Ok(mut base) => {
                for part in rest.iter().rev() {
                    if part == ".." {
                        base.pop();
                    } else if part != "." {
                        base.push(part);
                    }
                }
                return Ok(base);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // A dangling symlink: resolve its target so it cannot point outside unseen.
                if let Ok(target) = std::fs::read_link(&existing) {
                    let parent = existing.parent().map(Path::to_path_buf).unwrap_or_default();
                    let joined = if target.is_absolute() {
                        target
                    } else {
                        parent.join(target)
                    };
                    if joined != existing {
                        let mut full = joined;
                        for part in rest.iter().rev() {
                            full.push(part);
                        }
                        return canonicalize_lenient(&full);
                    }
                }
                let Some(name) = existing.file_name().map(|n| n.to_os_string()) else {
                    // `..` or root at the end: normalise lexically.
                    match existing.components().next_back() {
                        Some(Component::ParentDir) => {
                            rest.push("..".into());
                            existing.pop();
                            continue;
                        }
                        _ => return Err(e),
                    }
                };
                rest.push(name);
                if !existing.pop() {
                    return Err(e);
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Where a tool path argument lands: the allowed root it belongs to and the path under it.
///
/// Computed by [`locate`] from a symlink-resolving check; the file operations then open
/// `rel` beneath a handle on `root` (see `crate::confined`), so whatever changes on disk after
/// the check cannot lead outside `root`.
#[derive(Debug, Clone)]
pub(crate) struct Located {
    /// The canonical allowed root: the workspace, an allowlisted home directory, or the skills
    /// directory.
    pub(crate) root: PathBuf,
    /// The path under `root` (no `..`, possibly empty for the root itself).
    pub(crate) rel: PathBuf,
    /// `root` joined with `rel`: the canonical path (read-stamp key).
    pub(crate) full: PathBuf,
    /// How the path is shown to the model (never an absolute host path for workspace files).
    pub(crate) display: String,
    /// The root is `home/.cache` or `home/logs`, which a write may create.
    pub(crate) creatable_root: bool,
}

/// Resolves a tool path argument against the environment and enforces confinement:
/// relative paths and `@workspace/…` are under the workspace; `@home/…` only inside the home
/// allowlist (`.cache`, `logs`, skills dir); anything else (including `..` tricks and symlinks
/// pointing out) is refused with `tool.denied`.
///
/// This is a check on the path as it is now; the built-in file tools additionally open the
/// result beneath a handle on the allowed root, which closes the race between the check and the
/// use. Error messages name the argument, never the absolute workspace or home path.
pub fn resolve_path(env: &RuntimeEnv, raw: &str) -> Result<PathBuf> {
    locate(env, raw).map(|l| l.full)
}

fn denied(reason: &str, message: String) -> Error {
    Error::new(ErrorCode::ToolDenied, message).with_detail("reason", reason.to_owned())
}

/// [`resolve_path`], also returning the allowed root the path belongs to.
pub(crate) fn locate(env: &RuntimeEnv, raw: &str) -> Result<Located> {
    let ws = env.require_workspace()?;
    let raw_trim = raw.trim();
    if raw_trim.is_empty() {
        return Err(Error::new(ErrorCode::ToolInvalidArgs, "path is required"));
    }
    if raw_trim.contains('\0') {
        return Err(Error::new(
            ErrorCode::ToolInvalidArgs,
            "path contains a NUL byte; send the path as plain text",
        )
        .with_detail("reason", "fs.invalid_path"));
    }
    let candidate = if let Some(rest) = raw_trim.strip_prefix("@workspace") {
        ws.join(rest.trim_start_matches('/'))
    } else if let Some(rest) = raw_trim.strip_prefix("@home") {
        let home = env.home_dir.as_deref().ok_or_else(|| {
            Error::new(
                ErrorCode::RuntimeEnvMissing,
                "no home directory is configured, so @home/ paths are unavailable",
            )
        })?;
        home.join(rest.trim_start_matches('/'))
    } else {
        let p = expand_tilde(Path::new(raw_trim));
        if p.is_absolute() { p } else { ws.join(p) }
    };
    let canon = canonicalize_lenient(&candidate).map_err(|e| {
        let reason = if e.raw_os_error() == Some(rustix::io::Errno::NAMETOOLONG.raw_os_error()) {
            "fs.invalid_path"
        } else {
            "fs.io"
        };
        Error::new(
            ErrorCode::ToolFailed,
            format!("cannot resolve path {raw_trim}: {}", io_why(&e)),
        )
        .with_detail("reason", reason)
    })?;
    let located = |root: &Path, creatable_root: bool| {
        let rel = canon
            .strip_prefix(root)
            .unwrap_or(Path::new(""))
            .to_path_buf();
        Located {
            root: root.to_path_buf(),
            rel,
            display: display_path(env, &canon),
            full: canon.clone(),
            creatable_root,
        }
    };
    if canon.starts_with(ws) {
        return Ok(located(ws, false));
    }
    if let Some(home) = &env.home_dir
        && canon.starts_with(home)
    {
        if let Some(skills) = env.skills_dir.as_deref().filter(|s| canon.starts_with(s)) {
            return Ok(located(skills, false));
        }
        for name in [".cache", "logs"] {
            let root = home.join(name);
            if canon.starts_with(&root) {
                return Ok(located(&root, true));
            }
        }
        return Err(denied(
            "fs.home_restricted",
            format!(
                "access to the agent home is restricted: {raw_trim}. Use relative paths, @workspace/<path>, or an allowlisted @home/.cache, @home/logs, or skills path."
            ),
        ));
    }
    if let Some(skills) = env.skills_dir.as_deref().filter(|s| canon.starts_with(s)) {
        return Ok(located(skills, false));
    }
    Err(denied(
        "fs.escape",
        format!(
            "path escapes the workspace: {raw_trim} (it resolves outside the workspace). Use relative paths or @workspace/<path>."
        ),
    ))
}

/// How a path is shown in tool outputs: relative to the workspace (`.` for the root), else
/// `@home/…`, else absolute.
pub fn display_path(env: &RuntimeEnv, p: &Path) -> String {
    if let Some(ws) = &env.workspace_dir
        && let Ok(rel) = p.strip_prefix(ws)
    {
        let s = rel.to_string_lossy().into_owned();
        return if s.is_empty() { ".".to_owned() } else { s };
    }
    if let Some(home) = &env.home_dir
        && let Ok(rel) = p.strip_prefix(home)
    {
        return format!("@home/{}", rel.to_string_lossy());
    }
    p.to_string_lossy().into_owned()
}

/// An I/O error's description without any path in it.
pub(crate) fn io_why(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => rustix::io::Errno::from_raw_os_error(n).to_string(),
        None => e.kind().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(dir: &Path) -> RuntimeEnv {
        RuntimeEnv::new().with_workspace(dir).unwrap()
    }

    #[test]
    fn relative_and_workspace_prefix() {
        let d = tempfile::tempdir().unwrap();
        let e = env(d.path());
        let ws = e.workspace_dir.clone().unwrap();
        assert_eq!(resolve_path(&e, "a/b.txt").unwrap(), ws.join("a/b.txt"));
        assert_eq!(resolve_path(&e, "@workspace/x").unwrap(), ws.join("x"));
        assert_eq!(resolve_path(&e, "a/../c").unwrap(), ws.join("c"));
        assert_eq!(display_path(&e, &ws), ".");
    }

    #[test]
    fn escapes_refused() {
        let d = tempfile::tempdir().unwrap();
        let e = env(d.path());
        for p in [
            "../x",
            "/etc/passwd",
            "a/../../x",
            "~/x",
            "nonexistent/../../../etc",
        ] {
            let err = resolve_path(&e, p).unwrap_err();
            assert_eq!(err.code(), ErrorCode::ToolDenied, "{p}: {err}");
        }
        assert_eq!(
            resolve_path(&e, "  ").unwrap_err().code(),
            ErrorCode::ToolInvalidArgs
        );
    }

    #[test]
    fn symlink_escape_refused() {
        let d = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let e = env(d.path());
        std::os::unix::fs::symlink(outside.path(), d.path().join("link")).unwrap();
        std::os::unix::fs::symlink("/nonexistent-target-xyz", d.path().join("dangling")).unwrap();
        assert_eq!(
            resolve_path(&e, "link/secret").unwrap_err().code(),
            ErrorCode::ToolDenied
        );
        assert_eq!(
            resolve_path(&e, "dangling").unwrap_err().code(),
            ErrorCode::ToolDenied
        );
        // A symlink inside pointing inside is fine.
        std::fs::create_dir(d.path().join("real")).unwrap();
        std::os::unix::fs::symlink(d.path().join("real"), d.path().join("inlink")).unwrap();
        assert!(resolve_path(&e, "inlink/f").is_ok());
    }
}
