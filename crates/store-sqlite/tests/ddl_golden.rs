//! Golden-file test: the full provisioning script (version table, every data-table and index
//! statement, version stamp) for a few table prefixes must match `tests/golden/ddl.sql` byte for
//! byte, so any schema drift shows up in review. After a deliberate schema change, regenerate
//! with `POWER_LOOP_BLESS_DDL=1 cargo nextest run -p power-loop-store-sqlite --test ddl_golden`.
#![allow(clippy::expect_used)]

use std::path::PathBuf;

use power_loop_store::provisioning_ddl;
use power_loop_store_sqlite::SqliteDialect;

/// Prefixes covered: none, the default, and a mixed-case one with a digit.
const PREFIXES: [&str; 3] = ["", "pl_", "Zz9_"];

fn render() -> String {
    let mut out = String::new();
    for prefix in PREFIXES {
        out.push_str(&format!("-- prefix `{prefix}`\n"));
        let script = provisioning_ddl(&SqliteDialect, prefix).expect("valid prefix");
        for stmt in script {
            out.push_str(&stmt);
            out.push_str(";\n");
        }
    }
    out
}

#[test]
fn provisioning_ddl_matches_the_golden_file() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/ddl.sql");
    let actual = render();
    if std::env::var_os("POWER_LOOP_BLESS_DDL").is_some() {
        std::fs::write(&path, &actual).expect("write golden file");
        return;
    }
    let expected = std::fs::read_to_string(&path).expect("read tests/golden/ddl.sql");
    if actual != expected {
        let first = actual
            .lines()
            .zip(expected.lines())
            .position(|(a, e)| a != e)
            .unwrap_or(actual.lines().count().min(expected.lines().count()));
        panic!(
            "DDL drifted from tests/golden/ddl.sql (first difference at line {}):\n  now:    {}\n  golden: {}",
            first + 1,
            actual.lines().nth(first).unwrap_or("<end>"),
            expected.lines().nth(first).unwrap_or("<end>")
        );
    }
}
