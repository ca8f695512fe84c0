//! glob and grep with good and bad input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{Fixture, failed, ok};
use serde_json::json;

#[tokio::test]
async fn glob_recurses_and_skips() {
    common::check_resolver();
    let f = Fixture::new();
    f.write("src/a.rs", b"fn a() {}");
    f.write("src/deep/b.rs", b"fn b() {}");
    f.write("target/c.rs", b"");
    f.write(".hidden/d.rs", b"");
    f.write("notes.md", b"");
    let o = f.call("glob", json!({"pattern": "*.rs"})).await;
    let out = ok(&o);
    assert!(out.starts_with("[searched in: .]"));
    assert!(
        out.contains("src/a.rs") && out.contains("src/deep/b.rs"),
        "{out}"
    );
    assert!(
        !out.contains("target/") && !out.contains(".hidden"),
        "{out}"
    );
    let o = f
        .call("glob", json!({"pattern": "*.rs", "include_hidden": true}))
        .await;
    assert!(ok(&o).contains(".hidden/d.rs"));
    let o = f.call("glob", json!({"pattern": "src/*.rs"})).await;
    let out = ok(&o);
    assert!(out.contains("src/a.rs") && !out.contains("b.rs"), "{out}");
    let o = f
        .call("glob", json!({"pattern": "*.rs", "max_results": 1}))
        .await;
    assert!(ok(&o).contains("... and 1 more"));
    let o = f.call("glob", json!({"pattern": "*.zip"})).await;
    assert_eq!(ok(&o), "No files matching '**/*.zip' in .");
    // bad input
    assert!(failed(&f.call("glob", json!({})).await).contains("pattern"));
    assert!(
        failed(&f.call("glob", json!({"pattern": "  "})).await).contains("pattern is required")
    );
    assert!(
        failed(
            &f.call("glob", json!({"pattern": "*", "path": "notes.md"}))
                .await
        )
        .contains("not a directory")
    );
    assert!(
        failed(&f.call("glob", json!({"pattern": "*", "path": "../"})).await).contains("escapes")
    );
    assert!(
        failed(
            &f.call("glob", json!({"pattern": "*", "max_results": "x"}))
                .await
        )
        .contains("/max_results")
    );
}

#[tokio::test]
async fn grep_native() {
    common::check_resolver();
    let f = Fixture::new();
    f.write("src/a.rs", b"fn main() {\n    println!(\"Hello\");   \n}\n");
    f.write("src/b.txt", b"hello world\nHELLO\n");
    f.write("node_modules/x.js", b"hello");
    f.write("bin.dat", b"hello\0world");
    let o = f.call("grep", json!({"pattern": "Hello"})).await;
    assert_eq!(ok(&o), "src/a.rs:2:    println!(\"Hello\");");
    let o = f
        .call(
            "grep",
            json!({"pattern": "hello", "case_sensitive": false, "include": "*.txt"}),
        )
        .await;
    assert_eq!(ok(&o), "src/b.txt:1:hello world\nsrc/b.txt:2:HELLO");
    let o = f
        .call("grep", json!({"pattern": "(", "literal": true}))
        .await;
    assert!(ok(&o).contains("src/a.rs:1:"));
    let o = f
        .call("grep", json!({"pattern": ".", "max_results": 2}))
        .await;
    assert!(ok(&o).ends_with("... results truncated at 2"));
    let o = f.call("grep", json!({"pattern": "nomatch"})).await;
    assert_eq!(ok(&o), "No matches for 'nomatch' in .");
    let o = f
        .call("grep", json!({"pattern": "hello", "path": "src/b.txt"}))
        .await;
    assert_eq!(ok(&o), "src/b.txt:1:hello world");
    // bad input
    assert!(failed(&f.call("grep", json!({"pattern": "("})).await).contains("Invalid regex"));
    assert!(
        failed(
            &f.call("grep", json!({"pattern": "x", "path": "missing"}))
                .await
        )
        .contains("path does not exist")
    );
    assert!(failed(&f.call("grep", json!({"pattern": ""})).await).contains("pattern is required"));
    assert!(failed(&f.call("grep", json!({"pattern": 3})).await).contains("/pattern"));
    assert!(
        failed(
            &f.call("grep", json!({"pattern": "x", "path": "/etc"}))
                .await
        )
        .contains("escapes")
    );
}

#[test]
fn glob_and_grep_behave_the_same_through_the_fallback_walker() {
    common::rerun_through_walker(&["glob_recurses_and_skips", "grep_native"]);
}
