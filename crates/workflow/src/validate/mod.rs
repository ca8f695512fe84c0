//! Validation: JSON → [`WorkflowSpec`], collecting every problem before failing.
//!
//! Order of problems: unknown top-level keys, `name`, `input`, `budget`, `metadata`, then either
//! the missing `root` or the duplicate-id problem followed by node problems in depth-first
//! document order (each node's own problems before its children's).

mod node;
mod prewalk;
mod refs;

use serde_json::{Map, Value};

use crate::error::{SpecProblem, WorkflowSpecError};
use crate::spec::{BudgetSpec, WorkflowSpec};
use power_loop_tools::pyrepr::sorted_list;

use prewalk::IdIndex;

/// Collected problems, each with its path.
#[derive(Debug, Default)]
pub(crate) struct Problems(pub(crate) Vec<SpecProblem>);

impl Problems {
    pub(crate) fn push(&mut self, path: &str, message: impl Into<String>) {
        self.0.push(SpecProblem::new(path, message));
    }
}

const TOP_KEYS: &[&str] = &["name", "root", "input", "budget", "metadata"];

impl WorkflowSpec {
    /// Parses and validates JSON text. Text that is not JSON is one problem with the empty path
    /// (serde_json refuses text nested deeper than 128 levels, which lands here too).
    pub fn from_json_str(text: &str) -> Result<WorkflowSpec, WorkflowSpecError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| WorkflowSpecError::single("", format!("JSON parse error: {e}")))?;
        WorkflowSpec::from_value(&value)
    }

    /// Validates a decoded JSON value, reporting every problem at once. Never panics; nodes
    /// nested deeper than [`crate::MAX_NODE_DEPTH`] are one problem and are not walked.
    pub fn from_value(value: &Value) -> Result<WorkflowSpec, WorkflowSpecError> {
        let Some(obj) = value.as_object() else {
            return Err(WorkflowSpecError::single(
                "",
                "payload must decode to an object",
            ));
        };
        let mut p = Problems::default();
        let unknown: Vec<&str> = obj
            .keys()
            .map(String::as_str)
            .filter(|k| !TOP_KEYS.contains(k))
            .collect();
        if !unknown.is_empty() {
            p.push(
                "",
                format!("unknown top-level key(s): {}", sorted_list(unknown)),
            );
        }
        let name = match obj.get("name").and_then(Value::as_str) {
            Some(n) if !n.trim().is_empty() => n.to_owned(),
            _ => {
                p.push("", "'name' must be a non-empty string");
                String::new()
            }
        };
        let input = match obj.get("input") {
            None => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(_) => {
                p.push("", "'input' must be a string");
                String::new()
            }
        };
        let budget = match obj.get("budget") {
            None | Some(Value::Null) => None,
            Some(b) => parse_budget(b, &mut p),
        };
        let metadata = match obj.get("metadata") {
            None => Map::new(),
            Some(Value::Object(m)) => m.clone(),
            Some(_) => {
                p.push("", "'metadata' must be an object");
                Map::new()
            }
        };
        let root = match obj.get("root") {
            None => {
                p.push("", "missing required key 'root'");
                None
            }
            Some(raw) => {
                let ids = IdIndex::build(raw);
                if !ids.duplicates.is_empty() {
                    p.push(
                        "",
                        format!(
                            "duplicate node id(s): {} — every node id (agent and container) must be unique across the workflow",
                            sorted_list(ids.duplicates.iter().map(String::as_str))
                        ),
                    );
                }
                let mut walker = node::Walker::new(&ids, &mut p);
                walker.node(raw, "root")
            }
        };
        match (root, p.0.is_empty()) {
            (Some(root), true) => Ok(WorkflowSpec {
                name,
                root,
                input,
                budget,
                metadata,
            }),
            (None, true) => Err(WorkflowSpecError::single(
                "root",
                "node could not be built (internal validation gap; please report)",
            )),
            (_, false) => Err(WorkflowSpecError::new(p.0)),
        }
    }
}

fn parse_budget(b: &Value, p: &mut Problems) -> Option<BudgetSpec> {
    let Some(obj) = b.as_object() else {
        p.push("", "'budget' must be an object");
        return None;
    };
    let unknown: Vec<&str> = obj
        .keys()
        .map(String::as_str)
        .filter(|k| !["max_tokens", "stop_at_remaining_pct"].contains(k))
        .collect();
    if !unknown.is_empty() {
        p.push(
            "",
            format!("'budget' has unknown key(s): {}", sorted_list(unknown)),
        );
    }
    let Some(max_tokens) = obj
        .get("max_tokens")
        .and_then(Value::as_u64)
        .filter(|&n| n > 0)
    else {
        p.push("", "'budget.max_tokens' must be a positive integer");
        return None;
    };
    let pct = match obj.get("stop_at_remaining_pct") {
        None => 0.0,
        Some(Value::Number(n)) => match n.as_f64() {
            Some(f) if (0.0..=100.0).contains(&f) => f,
            _ => {
                p.push(
                    "",
                    "'budget.stop_at_remaining_pct' must be a number in [0, 100]",
                );
                0.0
            }
        },
        Some(_) => {
            p.push(
                "",
                "'budget.stop_at_remaining_pct' must be a number in [0, 100]",
            );
            0.0
        }
    };
    Some(BudgetSpec {
        max_tokens,
        stop_at_remaining_pct: pct,
    })
}

impl serde::Serialize for WorkflowSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for WorkflowSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        WorkflowSpec::from_value(&v).map_err(serde::de::Error::custom)
    }
}
