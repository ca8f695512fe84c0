//! Runnable example programs live in `examples/examples/` (`cargo run -p examples --example
//! NAME`; `examples/run-offline.sh` runs the ones that need no network). This library holds no
//! code of its own: under `cfg(doctest)` it includes the user guide's pages so that their Rust
//! blocks are compiled and run, and its unit tests check the guide against the frozen API files.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

#[cfg(doctest)]
pub mod guide;

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn read(rel: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// Every frozen code of `api/error-codes.txt` has a row on docs/error-codes.md, and the page
    /// names no code that is not frozen.
    #[test]
    fn error_code_page_lists_every_frozen_code() {
        let frozen: Vec<String> = read("api/error-codes.txt")
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(_, code)| code.trim().trim_matches('"').to_owned())
            .collect();
        assert!(frozen.len() > 50, "api/error-codes.txt looks empty");
        let page = read("docs/error-codes.md");
        let documented: Vec<String> = page
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .filter_map(|l| l.split_once('`'))
            .map(|(code, _)| code.to_owned())
            .collect();
        for code in &frozen {
            assert!(
                documented.contains(code),
                "docs/error-codes.md lacks `{code}`"
            );
        }
        for code in &documented {
            assert!(
                frozen.contains(code),
                "docs/error-codes.md lists `{code}`, which is not frozen"
            );
        }
        for code in &frozen {
            let parsed = power_loop::ErrorCode::from_code_str(code);
            assert!(parsed.is_some(), "`{code}` does not parse as an ErrorCode");
        }
    }

    /// docs/README.md links every page of docs/ (and nothing that does not exist, except the
    /// observability page another change adds).
    #[test]
    fn docs_index_links_every_page() {
        let index = read("docs/README.md");
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
        for entry in std::fs::read_dir(&dir).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            if name.ends_with(".md") && name != "README.md" {
                assert!(
                    index.contains(&format!("]({name})")),
                    "docs/README.md does not link {name}"
                );
            }
        }
    }

    /// Every example program has a header saying what it shows and how to run it, and is either
    /// run by run-offline.sh or named there as needing a peer.
    #[test]
    fn every_example_is_documented_and_accounted_for() {
        let script = read("examples/run-offline.sh");
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_stem().unwrap().to_string_lossy().into_owned();
            let src = std::fs::read_to_string(&path).unwrap();
            assert!(src.starts_with("//! "), "{name}: no header doc comment");
            assert!(
                src.contains(&format!("--example {name}")),
                "{name}: the header does not say how to run it"
            );
            assert!(
                script.contains(&format!(" {name}")),
                "{name}: neither run nor listed in run-offline.sh"
            );
            n += 1;
        }
        assert!(n >= 20, "only {n} examples");
    }
}
