//! read_file, write_file, edit_file, apply_patch: confinement, stamps, bad input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{Fixture, denied, failed, ok};
use power_loop_contracts::ErrorCode;
use serde_json::json;

#[tokio::test]
async fn read_file_pages_and_lists() {
    common::check_resolver();
    let f = Fixture::new();
    let body: String = (1..=10).map(|i| format!("line {i}\n")).collect();
    f.write("a.txt", body.as_bytes());
    let o = f
        .call(
            "read_file",
            json!({"path": "a.txt", "offset": 3, "limit": 2}),
        )
        .await;
    assert_eq!(
        ok(&o),
        "(a.txt: showing lines 3-4 of 10) Use offset=5 to continue.\n     3|line 3\n     4|line 4"
    );
    let o = f
        .call("read_file", json!({"path": "a.txt", "offset": 50}))
        .await;
    assert!(ok(&o).contains("past the end"));
    f.write("dir/sub/x.txt", b"x");
    f.write("dir/b.txt", b"hello");
    let o = f.call("read_file", json!({"path": "dir"})).await;
    assert_eq!(ok(&o), "Directory: dir/\n  d sub\n  f b.txt (5 bytes)");
}

#[tokio::test]
async fn read_file_bad_input() {
    common::check_resolver();
    let f = Fixture::new();
    // missing field, wrong type
    let o = f.call("read_file", json!({})).await;
    assert!(
        failed(&o).contains("\"path\" is a required property"),
        "{}",
        o.output.content
    );
    let o = f.call("read_file", json!({"path": 5})).await;
    assert!(failed(&o).contains("/path"));
    let o = f
        .call("read_file", json!({"path": "a.txt", "limit": "ten"}))
        .await;
    assert!(failed(&o).contains("/limit"));
    // missing file
    let o = f.call("read_file", json!({"path": "nope.txt"})).await;
    assert!(failed(&o).contains("nope.txt"));
    // escapes
    for p in ["../outside.txt", "/etc/passwd", "a/../../x"] {
        let o = f.call("read_file", json!({"path": p})).await;
        denied(&o, p);
        assert!(o.output.content.contains("escapes the workspace"));
    }
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), "s").unwrap();
    std::os::unix::fs::symlink(outside.path(), f.ws().join("link")).unwrap();
    let o = f.call("read_file", json!({"path": "link/secret"})).await;
    assert_eq!(o.error_code, Some(ErrorCode::ToolDenied));
    // binary
    f.write("bin.dat", &[0u8, 1, 2, 3, 255, 0]);
    let o = f.call("read_file", json!({"path": "bin.dat"})).await;
    assert!(failed(&o).contains("binary-looking"));
    // too large without limit, fine with limit
    let big = "y".repeat(100) + "\n";
    f.write("big.txt", big.repeat(60_000).as_bytes());
    let o = f.call("read_file", json!({"path": "big.txt"})).await;
    assert!(failed(&o).contains("too large"));
    let o = f
        .call("read_file", json!({"path": "big.txt", "limit": 3}))
        .await;
    assert!(ok(&o).contains("showing lines 1-3"));
    // huge single line gets char-truncated with a marker
    f.write("wide.txt", "z".repeat(200_000).as_bytes());
    let o = f.call("read_file", json!({"path": "wide.txt"})).await;
    assert!(ok(&o).contains("chars omitted"));
    assert!(o.output.content.chars().count() < 51_000);
}

#[tokio::test]
async fn write_file_read_before_overwrite() {
    common::check_resolver();
    let f = Fixture::new();
    let o = f
        .call(
            "write_file",
            json!({"path": "new/dir/n.txt", "content": "a\nb\n"}),
        )
        .await;
    assert_eq!(
        ok(&o),
        "Wrote 4 bytes (2 lines) to new/dir/n.txt (new file)"
    );
    // a file just written may be overwritten
    let o = f
        .call(
            "write_file",
            json!({"path": "new/dir/n.txt", "content": "c"}),
        )
        .await;
    assert!(ok(&o).contains("(overwritten, was 4 bytes)"));
    // existing file never read → refused
    f.write("e.txt", b"old");
    let o = f
        .call("write_file", json!({"path": "e.txt", "content": "new"}))
        .await;
    assert!(failed(&o).contains("has not been read yet"));
    assert_eq!(f.read("e.txt"), b"old");
    // read, then changed behind our back → refused
    ok(&f.call("read_file", json!({"path": "e.txt"})).await);
    std::thread::sleep(std::time::Duration::from_millis(20));
    f.write("e.txt", b"changed!");
    let o = f
        .call("write_file", json!({"path": "e.txt", "content": "new"}))
        .await;
    assert!(failed(&o).contains("changed since last read"));
    // another session's read does not authorize this one
    ok(&f.call("read_file", json!({"path": "e.txt"})).await);
    let other = f.ctx().with_session("s2");
    let o = f
        .call_ctx(
            other,
            "write_file",
            json!({"path": "e.txt", "content": "x"}),
        )
        .await;
    assert!(failed(&o).contains("has not been read yet"));
    // overwrite=false, directory, escape, missing content
    let o = f
        .call(
            "write_file",
            json!({"path": "e.txt", "content": "x", "overwrite": false}),
        )
        .await;
    assert!(failed(&o).contains("overwrite=false"));
    std::fs::create_dir(f.ws().join("d")).unwrap();
    let o = f
        .call("write_file", json!({"path": "d", "content": "x"}))
        .await;
    assert!(failed(&o).contains("is a directory"));
    let o = f
        .call("write_file", json!({"path": "../evil.txt", "content": "x"}))
        .await;
    assert_eq!(o.error_code, Some(ErrorCode::ToolDenied));
    assert!(!f.dir.path().parent().unwrap().join("evil.txt").exists());
    let outside = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), f.ws().join("out")).unwrap();
    let o = f
        .call("write_file", json!({"path": "out/new.txt", "content": "x"}))
        .await;
    assert_eq!(o.error_code, Some(ErrorCode::ToolDenied));
    assert!(!outside.path().join("new.txt").exists());
    let o = f.call("write_file", json!({"path": "x.txt"})).await;
    assert!(failed(&o).contains("content"));
    let o = f
        .call("write_file", json!({"path": "x.txt", "content": ["a"]}))
        .await;
    assert!(failed(&o).contains("/content"));
}

#[tokio::test]
async fn edit_file_rules() {
    common::check_resolver();
    let f = Fixture::new();
    f.write("c.txt", "\u{feff}one\r\ntwo\r\nthree\r\ntwo\r\n".as_bytes());
    let o = f
        .call(
            "edit_file",
            json!({"path": "c.txt", "old_text": "one", "new_text": "1"}),
        )
        .await;
    assert!(failed(&o).contains("has not been read yet"));
    ok(&f.call("read_file", json!({"path": "c.txt"})).await);
    let o = f
        .call(
            "edit_file",
            json!({"path": "c.txt", "old_text": "two", "new_text": "2"}),
        )
        .await;
    assert!(failed(&o).contains("matches 2 locations in c.txt (first lines: 2, 4)"));
    let o = f
        .call(
            "edit_file",
            json!({"path": "c.txt", "old_text": "zzz", "new_text": "2"}),
        )
        .await;
    assert!(failed(&o).contains("Text not found"));
    let o = f
        .call(
            "edit_file",
            json!({"path": "c.txt", "old_text": "", "new_text": "2"}),
        )
        .await;
    assert!(failed(&o).contains("must not be empty"));
    let o = f
        .call(
            "edit_file",
            json!({"path": "c.txt", "old_text": "one", "new_text": "one"}),
        )
        .await;
    assert!(failed(&o).contains("identical"));
    let o = f
        .call(
            "edit_file",
            json!({"path": "c.txt", "old_text": "one\ntwo", "new_text": "ONE\nTWO"}),
        )
        .await;
    let out = ok(&o);
    assert!(
        out.starts_with("Edited c.txt (exact, 1 replacement)\n--- before\n+++ after\n@@"),
        "{out}"
    );
    assert!(out.contains("-one\n-two\n+ONE\n+TWO"), "{out}");
    // BOM and CRLF preserved
    assert_eq!(
        f.read("c.txt"),
        "\u{feff}ONE\r\nTWO\r\nthree\r\ntwo\r\n".as_bytes()
    );
    let o = f
        .call(
            "edit_file",
            json!({"path": "c.txt", "old_text": "T", "new_text": "t", "replace_all": true}),
        )
        .await;
    assert!(ok(&o).contains("replace_all, 1 replacement"));
    // fuzzy
    f.write("q.txt", "say \u{201c}hi\u{201d}\n".as_bytes());
    ok(&f.call("read_file", json!({"path": "q.txt"})).await);
    let o = f
        .call(
            "edit_file",
            json!({"path": "q.txt", "old_text": "say \"hi\"", "new_text": "x"}),
        )
        .await;
    assert!(failed(&o).contains("fuzzy normalization"));
    // missing fields, binary
    let o = f
        .call("edit_file", json!({"path": "q.txt", "old_text": "a"}))
        .await;
    assert!(failed(&o).contains("new_text"));
    f.write("b.bin", &[0, 159, 146, 150]);
    ok(&f
        .call("write_file", json!({"path": "b2.txt", "content": "x"}))
        .await);
    let o = f.call("read_file", json!({"path": "b.bin"})).await;
    assert!(failed(&o).contains("binary"));
}

#[tokio::test]
async fn apply_patch_rules() {
    common::check_resolver();
    let f = Fixture::new();
    let body: String = (1..=8).map(|i| format!("l{i}\n")).collect();
    f.write("p.txt", body.as_bytes());
    ok(&f.call("read_file", json!({"path": "p.txt"})).await);
    let patch = "--- a/p.txt\n+++ b/p.txt\n@@ -2,3 +2,3 @@\n l2\n-l3\n+L3\n l4\n@@ -6,2 +6,3 @@\n l6\n+new\n l7\n";
    let o = f
        .call("apply_patch", json!({"path": "p.txt", "patch": patch}))
        .await;
    assert!(
        ok(&o).starts_with("Patched p.txt (2 hunks)\n--- before"),
        "{}",
        o.output.content
    );
    assert_eq!(
        String::from_utf8(f.read("p.txt")).unwrap(),
        "l1\nl2\nL3\nl4\nl5\nl6\nnew\nl7\nl8\n"
    );
    // invalid patches
    let o = f
        .call(
            "apply_patch",
            json!({"path": "p.txt", "patch": "just text"}),
        )
        .await;
    assert!(failed(&o).contains("No valid hunks found"));
    assert_eq!(o.error_code, Some(ErrorCode::ToolInvalidArgs));
    let o = f
        .call(
            "apply_patch",
            json!({"path": "p.txt", "patch": "@@ -1 +1 @@\n-nothere\n+x\n"}),
        )
        .await;
    assert!(failed(&o).contains("Could not locate original lines for hunk 1"));
    f.write("r.txt", b"a\nx\na\nx\n");
    ok(&f.call("read_file", json!({"path": "r.txt"})).await);
    let o = f
        .call(
            "apply_patch",
            json!({"path": "r.txt", "patch": "@@\n a\n-x\n+y\n"}),
        )
        .await;
    assert!(failed(&o).contains("matches multiple locations"));
    let o = f
        .call(
            "apply_patch",
            json!({"path": "r.txt", "patch": "@@ nothere @@\n+y\n"}),
        )
        .await;
    assert!(failed(&o).contains("Could not locate anchor"));
    let o = f.call("apply_patch", json!({"path": "r.txt"})).await;
    assert!(failed(&o).contains("patch"));
    let o = f
        .call(
            "apply_patch",
            json!({"path": "/etc/hosts", "patch": "@@\n+x\n"}),
        )
        .await;
    assert_eq!(o.error_code, Some(ErrorCode::ToolDenied));
}

#[test]
fn file_tools_behave_the_same_through_the_fallback_walker() {
    common::rerun_through_walker(&[
        "read_file_pages_and_lists",
        "read_file_bad_input",
        "write_file_read_before_overwrite",
        "edit_file_rules",
        "apply_patch_rules",
    ]);
}
