#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Every fixture under `tests/fixtures/` is a spec (or raw `text`) with the EXACT list of
//! problems validation must report, in order (`[path, message]` pairs; `[]` means valid). Valid
//! fixtures must also round-trip through `to_value` and, when given, have `node_count` nodes.

use std::path::Path;

use power_loop_contracts::ErrorCode;
use power_loop_workflow::{WorkflowSpec, WorkflowSpecError};
use serde_json::Value;

fn load(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn validate(fx: &Value) -> Result<WorkflowSpec, WorkflowSpecError> {
    match fx.get("text").and_then(Value::as_str) {
        Some(text) => WorkflowSpec::from_json_str(text),
        None => WorkflowSpec::from_value(&fx["spec"]),
    }
}

#[test]
fn every_fixture_reports_exactly_its_problems() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    names.sort();
    assert!(names.len() >= 30, "only {} fixtures", names.len());
    let mut failures = Vec::new();
    for path in &names {
        let fx = load(path);
        let expected: Vec<(String, String)> = fx["problems"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p[0].as_str().unwrap().to_owned(),
                    p[1].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        match validate(&fx) {
            Ok(spec) => {
                if !expected.is_empty() {
                    failures.push(format!("{name}: valid, expected {expected:#?}"));
                    continue;
                }
                let again = WorkflowSpec::from_value(&spec.to_value());
                if again.as_ref() != Ok(&spec) {
                    failures.push(format!("{name}: does not round-trip: {again:?}"));
                }
                let text_again = WorkflowSpec::from_json_str(&spec.to_json_string());
                if text_again.as_ref() != Ok(&spec) {
                    failures.push(format!("{name}: text does not round-trip"));
                }
                if let Some(n) = fx.get("node_count").and_then(Value::as_u64)
                    && spec.node_count() as u64 != n
                {
                    failures.push(format!("{name}: node_count {}", spec.node_count()));
                }
            }
            Err(e) => {
                let got: Vec<(String, String)> = e
                    .problems
                    .iter()
                    .map(|p| (p.path.clone(), p.message.clone()))
                    .collect();
                if got != expected {
                    failures.push(format!(
                        "{name}:\n  got      {got:#?}\n  expected {expected:#?}"
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn display_lists_problems_with_and_without_paths() {
    let err = WorkflowSpec::from_value(&serde_json::json!({
        "name": "", "root": {"type": "sequence", "steps": []}
    }))
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid WorkflowSpec — 2 problem(s):\n  - 'name' must be a non-empty string\n  - root: 'steps' must be a non-empty list"
    );
    let converted: power_loop_contracts::Error = err.clone().into();
    assert_eq!(converted.code(), ErrorCode::SpecInvalid);
    assert_eq!(converted.code().as_str(), "spec.invalid");
    assert_eq!(converted.message(), err.to_string());
    assert_eq!(
        converted.detail("problems"),
        Some(&serde_json::json!([
            {"path": "", "message": "'name' must be a non-empty string"},
            {"path": "root", "message": "'steps' must be a non-empty list"}
        ]))
    );
}
