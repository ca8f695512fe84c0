//! The `api-check` and `api-bless` commands and their command-line options.

use std::path::{Path, PathBuf};

use crate::diff::{self, ApiDiff, KeyFn};
use crate::rustdoc::{self, RustdocTarget};
use crate::{XtaskError, error_code_lines};

/// The workspace root `Cargo.toml` (xtask lives one folder below it).
const WORKSPACE_MANIFEST: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml");
/// The workspace's `api/` folder.
const WORKSPACE_API_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../api");

/// Which command to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Task {
    /// Compare the current API with the baseline; fail on removals or changes.
    ApiCheck,
    /// Rewrite the baseline from the current API.
    ApiBless,
}

/// Options shared by both commands; the defaults check the façade of this workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `Cargo.toml` of the workspace (default: this workspace).
    pub manifest_path: PathBuf,
    /// Package whose public API is guarded (default `power-loop`).
    pub package: String,
    /// Folder with the baseline files (default `api/`).
    pub api_dir: PathBuf,
    /// Whether `error-codes.txt` (from `power_loop_contracts::ErrorCode::ALL`) is guarded too.
    pub error_codes: bool,
}

impl Default for Options {
    fn default() -> Self {
        // `xtask/../x` reads badly in messages: resolve it when the path exists.
        let resolve = |p: &str| std::fs::canonicalize(p).unwrap_or_else(|_| PathBuf::from(p));
        Self {
            manifest_path: resolve(WORKSPACE_MANIFEST),
            package: "power-loop".to_owned(),
            api_dir: resolve(WORKSPACE_API_DIR),
            error_codes: true,
        }
    }
}

/// The usage text printed for `--help` and on bad arguments.
pub const USAGE: &str = "\
usage: cargo xtask <api-check|api-bless> [options]

  api-check   compare the public API of the façade (and the error codes) with api/;
              exit 1 when a baseline item was removed or changed, 0 when items were only added
  api-bless   rewrite api/ from the current public API (a deliberate, reviewed change)

options:
  --manifest-path PATH   Cargo.toml of the workspace (default: this workspace)
  --package NAME         package to guard (default: power-loop)
  --api-dir DIR          folder of the baseline files (default: <workspace>/api)
  --no-error-codes       do not guard api/error-codes.txt
";

/// Parses `args` (without the program name) into a task and its options.
pub fn parse_args<I: IntoIterator<Item = String>>(args: I) -> Result<(Task, Options), XtaskError> {
    let mut args = args.into_iter();
    let task = match args.next().as_deref() {
        Some("api-check") => Task::ApiCheck,
        Some("api-bless") => Task::ApiBless,
        Some(other) => return Err(XtaskError::new(format!("unknown task `{other}`\n{USAGE}"))),
        None => return Err(XtaskError::new(format!("no task given\n{USAGE}"))),
    };
    let mut opts = Options::default();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .ok_or_else(|| XtaskError::new(format!("{name} needs a value\n{USAGE}")))
        };
        match arg.as_str() {
            "--manifest-path" => opts.manifest_path = PathBuf::from(value("--manifest-path")?),
            "--package" | "-p" => opts.package = value("--package")?,
            "--api-dir" => opts.api_dir = PathBuf::from(value("--api-dir")?),
            "--no-error-codes" => opts.error_codes = false,
            other => {
                return Err(XtaskError::new(format!(
                    "unknown option `{other}`\n{USAGE}"
                )));
            }
        }
    }
    Ok((task, opts))
}

fn api_file(opts: &Options) -> PathBuf {
    opts.api_dir.join(format!("{}.txt", opts.package))
}

fn codes_file(opts: &Options) -> PathBuf {
    opts.api_dir.join("error-codes.txt")
}

fn rustdoc_target(opts: &Options) -> RustdocTarget {
    RustdocTarget {
        manifest_path: opts.manifest_path.clone(),
        package: opts.package.clone(),
        all_features: true,
    }
}

fn read_baseline(path: &Path) -> Result<Vec<String>, XtaskError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        XtaskError::new(format!(
            "could not read the baseline {}: {e}; create it with `cargo xtask api-bless`",
            path.display()
        ))
    })?;
    Ok(diff::parse_lines(&text))
}

fn write_baseline(path: &Path, lines: &[String]) -> Result<(), XtaskError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| XtaskError::new(format!("could not create {}: {e}", dir.display())))?;
    }
    std::fs::write(path, diff::format_lines(lines))
        .map_err(|e| XtaskError::new(format!("could not write {}: {e}", path.display())))
}

fn report(what: &str, path: &Path, current: usize, d: &ApiDiff) {
    println!(
        "api-check: {what} vs {}: {current} entries; {} removed, {} changed, {} added",
        path.display(),
        d.removed.len(),
        d.changed.len(),
        d.added.len()
    );
    print!("{}", d.render());
}

fn compare(what: &str, path: &Path, current: &[String], key: KeyFn) -> Result<bool, XtaskError> {
    let baseline = read_baseline(path)?;
    let d = diff::diff_lines(&baseline, current, key);
    report(what, path, current.len(), &d);
    Ok(!d.is_breaking())
}

/// Runs `api-check`: `Ok(true)` when nothing in the baseline was removed or changed.
pub fn api_check(opts: &Options) -> Result<bool, XtaskError> {
    let current = rustdoc::current_api(&rustdoc_target(opts))?;
    let what = format!("{} public API", opts.package);
    let mut ok = compare(&what, &api_file(opts), &current, diff::api_item_key)?;
    if opts.error_codes {
        ok &= compare(
            "error codes",
            &codes_file(opts),
            &error_code_lines(),
            diff::error_code_key,
        )?;
    }
    if ok {
        println!(
            "api-check: passed (additions, if any, are not breaking; bless them to freeze them)"
        );
    } else {
        println!(
            "api-check: FAILED: a baseline item was removed or changed. Restore it, or, if the \
             break is deliberate (major release), run `cargo xtask api-bless` and commit api/ \
             with a changelog entry."
        );
    }
    Ok(ok)
}

/// Runs `api-bless`: rewrites the baseline files from the current API.
pub fn api_bless(opts: &Options) -> Result<(), XtaskError> {
    let current = rustdoc::current_api(&rustdoc_target(opts))?;
    let path = api_file(opts);
    write_baseline(&path, &current)?;
    println!(
        "api-bless: wrote {} ({} items)",
        path.display(),
        current.len()
    );
    if opts.error_codes {
        let codes = error_code_lines();
        let path = codes_file(opts);
        write_baseline(&path, &codes)?;
        println!(
            "api-bless: wrote {} ({} codes)",
            path.display(),
            codes.len()
        );
    }
    Ok(())
}

/// Runs the command line `args` (without the program name) and returns the process exit code:
/// 0 passed, 1 breaking difference, 2 usage or tool error.
pub fn run<I: IntoIterator<Item = String>>(args: I) -> i32 {
    let args: Vec<String> = args.into_iter().collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{USAGE}");
        return 0;
    }
    let result = parse_args(args).and_then(|(task, opts)| match task {
        Task::ApiCheck => api_check(&opts),
        Task::ApiBless => api_bless(&opts).map(|()| true),
    });
    match result {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(e) => {
            eprintln!("xtask: error: {e}");
            2
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn defaults_guard_the_facade() {
        let (task, opts) = parse_args(args(&["api-check"])).unwrap();
        assert_eq!(task, Task::ApiCheck);
        assert_eq!(opts.package, "power-loop");
        assert!(opts.error_codes);
        assert!(opts.api_dir.ends_with("api"));
    }

    #[test]
    fn options_are_parsed() {
        let (task, opts) = parse_args(args(&[
            "api-bless",
            "--manifest-path",
            "/x/Cargo.toml",
            "--package",
            "fixture",
            "--api-dir",
            "/y",
            "--no-error-codes",
        ]))
        .unwrap();
        assert_eq!(task, Task::ApiBless);
        assert_eq!(opts.manifest_path, PathBuf::from("/x/Cargo.toml"));
        assert_eq!(opts.package, "fixture");
        assert_eq!(opts.api_dir, PathBuf::from("/y"));
        assert!(!opts.error_codes);
    }

    #[test]
    fn bad_arguments_are_errors() {
        assert!(parse_args(args(&[])).is_err());
        assert!(parse_args(args(&["frobnicate"])).is_err());
        assert!(parse_args(args(&["api-check", "--package"])).is_err());
        assert!(parse_args(args(&["api-check", "--bogus"])).is_err());
    }
}
