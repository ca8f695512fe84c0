//! Hand-rolled argument parsing: `--key value` pairs, value-less flags ([`FLAGS`]) and `--help`.

use std::collections::BTreeMap;

/// Options that take no value (`--pg`, `--mysql`, W7's `--fight` and `--smoke`); stored as
/// `"true"`.
const FLAGS: &[&str] = &["pg", "mysql", "fight", "smoke"];

/// Parsed command line.
#[derive(Debug, Default)]
pub(crate) struct Args {
    /// `--workload` value.
    pub(crate) workload: Option<String>,
    /// `--help` / `-h` given.
    pub(crate) help: bool,
    /// Every other `--key value` pair.
    options: BTreeMap<String, String>,
}

impl Args {
    /// Parses `--key value` / `--key=value` pairs.
    pub(crate) fn parse(mut it: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut args = Args::default();
        while let Some(a) = it.next() {
            if a == "--help" || a == "-h" {
                args.help = true;
                continue;
            }
            let Some(key) = a.strip_prefix("--") else {
                return Err(format!("unexpected argument `{a}`"));
            };
            let (key, value) = match key.split_once('=') {
                Some((k, v)) => (k.to_owned(), v.to_owned()),
                None if FLAGS.contains(&key) => (key.to_owned(), "true".to_owned()),
                None => {
                    let v = it.next().ok_or_else(|| format!("--{key} needs a value"))?;
                    (key.to_owned(), v)
                }
            };
            if key == "workload" {
                args.workload = Some(value);
            } else {
                args.options.insert(key, value);
            }
        }
        Ok(args)
    }

    /// An unsigned integer option with a default.
    pub(crate) fn usize_or(&self, key: &str, default: usize) -> Result<usize, String> {
        match self.options.get(key) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| format!("--{key} must be a non-negative integer, got `{v}`")),
        }
    }

    /// Whether a value-less flag (see [`FLAGS`]) was given.
    pub(crate) fn flag(&self, key: &str) -> bool {
        self.options.get(key).is_some_and(|v| v == "true")
    }

    /// A string option.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.options.get(key).map(String::as_str)
    }
}
