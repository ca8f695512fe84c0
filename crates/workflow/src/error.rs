//! [`WorkflowSpecError`]: every problem of a spec, each with where it is and what is wrong.

use power_loop_contracts::{Error, ErrorCode};
use serde_json::{Value, json};

/// One validation problem.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct SpecProblem {
    /// Where: empty for the top-level object, else a node path such as `root.steps[1]`,
    /// `root.branches[0].spec` or `root.cases['k']`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl SpecProblem {
    /// A problem at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        SpecProblem {
            path: path.into(),
            message: message.into(),
        }
    }

    /// `{"path": …, "message": …}`.
    pub fn to_value(&self) -> Value {
        json!({"path": self.path, "message": self.message})
    }
}

impl std::fmt::Display for SpecProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every problem found in a workflow spec, in a stable order.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkflowSpecError {
    /// The problems, in the order validation met them; never empty.
    pub problems: Vec<SpecProblem>,
}

impl WorkflowSpecError {
    /// An error from its problems.
    pub fn new(problems: Vec<SpecProblem>) -> Self {
        WorkflowSpecError { problems }
    }

    /// An error with one problem at `path`.
    pub fn single(path: impl Into<String>, message: impl Into<String>) -> Self {
        WorkflowSpecError::new(vec![SpecProblem::new(path, message)])
    }

    /// The problems as a JSON array of `{"path", "message"}` objects.
    pub fn problems_value(&self) -> Value {
        Value::Array(self.problems.iter().map(SpecProblem::to_value).collect())
    }
}

impl std::fmt::Display for WorkflowSpecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "invalid WorkflowSpec — {} problem(s):",
            self.problems.len()
        )?;
        for p in &self.problems {
            write!(f, "\n  - {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for WorkflowSpecError {}

impl From<WorkflowSpecError> for Error {
    /// Code `spec.invalid`; the message is the full display and detail `problems` holds the list.
    fn from(e: WorkflowSpecError) -> Error {
        let problems = e.problems_value();
        Error::new(ErrorCode::SpecInvalid, e.to_string()).with_detail("problems", problems)
    }
}
