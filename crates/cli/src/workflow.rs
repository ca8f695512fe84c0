//! `power-loop workflow …`: workflow specs from files.

use std::path::Path;

use power_loop::{Error, ErrorCode, Result, WorkflowSpec};

/// `workflow validate FILE [--json]`: prints the verdict; `Ok(true)` when the spec is valid.
/// A file that cannot be read is an `io` error; a file that is not JSON is an invalid spec.
pub(crate) fn validate(file: &Path, json: bool) -> Result<bool> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        Error::new(
            ErrorCode::Io,
            format!("cannot read `{}`: {e}", file.display()),
        )
        .with_source(e)
    })?;
    let verdict = WorkflowSpec::from_json_str(&text);
    if json {
        let problems = match &verdict {
            Ok(_) => serde_json::Value::Array(Vec::new()),
            Err(e) => e.problems_value(),
        };
        let line = serde_json::json!({"valid": verdict.is_ok(), "problems": problems});
        println!("{}", serde_json::to_string(&line)?);
    } else {
        match &verdict {
            Ok(spec) => println!("valid: {} ({} nodes)", spec.name, spec.node_count()),
            Err(e) => println!("{e}"),
        }
    }
    Ok(verdict.is_ok())
}
