//! What a run produces: per-leaf [`AgentResult`]s and the run's [`WorkflowResult`].
//!
//! The engine fills these; they live here so the journal, resume and the CLI share one shape.

use std::collections::HashMap;

use power_loop_agent::RunUsage;
use power_loop_contracts::{Error, ErrorCode, Result};
use serde_json::{Map, Value};

/// How one leaf ended: the sub-agent's own status, or a status the engine gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LeafStatus {
    /// A final answer.
    Completed,
    /// The leaf failed (executor error, crashed worker, unparsable answer from a worker).
    Failed,
    /// Cancelled, before it started or at a round checkpoint.
    Cancelled,
    /// Not started (or stopped) because the token budget was spent.
    BudgetExceeded,
    /// The sub-agent reached its round cap.
    HitRoundLimit,
    /// The model call gave up (retries exhausted).
    Degraded,
    /// The sub-agent asked for human input.
    WaitingForInput,
    /// The sub-agent requested tools but has no registry.
    PendingTools,
    /// The spawn was refused (depth limit).
    Rejected,
}

impl LeafStatus {
    /// Every status, in declaration order.
    pub const ALL: &'static [LeafStatus] = &[
        LeafStatus::Completed,
        LeafStatus::Failed,
        LeafStatus::Cancelled,
        LeafStatus::BudgetExceeded,
        LeafStatus::HitRoundLimit,
        LeafStatus::Degraded,
        LeafStatus::WaitingForInput,
        LeafStatus::PendingTools,
        LeafStatus::Rejected,
    ];

    /// The wire string (`completed`, `hit_round_limit`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            LeafStatus::Completed => "completed",
            LeafStatus::Failed => "failed",
            LeafStatus::Cancelled => "cancelled",
            LeafStatus::BudgetExceeded => "budget_exceeded",
            LeafStatus::HitRoundLimit => "hit_round_limit",
            LeafStatus::Degraded => "degraded",
            LeafStatus::WaitingForInput => "waiting_for_input",
            LeafStatus::PendingTools => "pending_tools",
            LeafStatus::Rejected => "rejected",
        }
    }

    /// Parses a wire string (`None` for an unknown one).
    pub fn parse(s: &str) -> Option<LeafStatus> {
        LeafStatus::ALL.iter().copied().find(|st| st.as_str() == s)
    }
}

impl std::fmt::Display for LeafStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<power_loop_agent::RunStatus> for LeafStatus {
    fn from(s: power_loop_agent::RunStatus) -> Self {
        use power_loop_agent::RunStatus as A;
        match s {
            A::Completed => LeafStatus::Completed,
            A::PendingTools => LeafStatus::PendingTools,
            A::WaitingForInput => LeafStatus::WaitingForInput,
            A::Cancelled => LeafStatus::Cancelled,
            A::HitRoundLimit => LeafStatus::HitRoundLimit,
            A::BudgetExceeded => LeafStatus::BudgetExceeded,
            A::Degraded => LeafStatus::Degraded,
        }
    }
}

/// How a whole run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RunStatus {
    /// Every node ran (check [`WorkflowResult::ok`] for leaf failures and errors).
    Completed,
    /// An error stopped the run.
    Failed,
    /// The shared budget refused a leaf.
    BudgetExceeded,
    /// The run was cancelled.
    Cancelled,
}

impl RunStatus {
    /// The wire string.
    pub const fn as_str(self) -> &'static str {
        match self {
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::BudgetExceeded => "budget_exceeded",
            RunStatus::Cancelled => "cancelled",
        }
    }

    /// Parses a wire string.
    pub fn parse(s: &str) -> Option<RunStatus> {
        [
            RunStatus::Completed,
            RunStatus::Failed,
            RunStatus::BudgetExceeded,
            RunStatus::Cancelled,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The result of one agent leaf (or of a foreach aggregate, under the foreach's id).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct AgentResult {
    /// The node id.
    pub node_id: String,
    /// How the leaf ended.
    pub status: LeafStatus,
    /// The final text (empty when none).
    pub text: String,
    /// The structured answer (nodes with an output schema that completed and parsed).
    pub payload: Option<Value>,
    /// Tokens the leaf used.
    pub usage: RunUsage,
    /// The leaf's session, when one was kept.
    pub session_id: Option<String>,
    /// Why the leaf failed or its payload is missing.
    pub error: Option<String>,
    /// The private database of an out-of-process leaf.
    pub db_path: Option<String>,
}

impl AgentResult {
    /// A result with empty text and usage and no payload, session, error or database.
    pub fn new(node_id: impl Into<String>, status: LeafStatus) -> Self {
        AgentResult {
            node_id: node_id.into(),
            status,
            text: String::new(),
            payload: None,
            usage: RunUsage::default(),
            session_id: None,
            error: None,
            db_path: None,
        }
    }

    /// Whether the leaf completed.
    pub fn ok(&self) -> bool {
        self.status == LeafStatus::Completed
    }

    /// The JSON form with exactly eight keys: `node_id, status, text, payload, usage,
    /// session_id, error, db_path`.
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("node_id".into(), self.node_id.clone().into());
        m.insert("status".into(), self.status.as_str().into());
        m.insert("text".into(), self.text.clone().into());
        m.insert(
            "payload".into(),
            self.payload.clone().unwrap_or(Value::Null),
        );
        m.insert("usage".into(), usage_value(&self.usage, true));
        m.insert("session_id".into(), opt_str(&self.session_id));
        m.insert("error".into(), opt_str(&self.error));
        m.insert("db_path".into(), opt_str(&self.db_path));
        Value::Object(m)
    }

    /// Reads the form [`AgentResult::to_value`] writes (a journal step). Missing usage counters
    /// read as 0; a missing or unknown status, or a missing `node_id`, is an error
    /// (`invalid_argument`).
    pub fn from_value(v: &Value) -> Result<AgentResult> {
        let bad = |what: &str| {
            Error::new(
                ErrorCode::InvalidArgument,
                format!("not an AgentResult: {what}"),
            )
        };
        let obj = v.as_object().ok_or_else(|| bad("not an object"))?;
        let node_id = obj
            .get("node_id")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("'node_id' must be a string"))?;
        let status_str = obj.get("status").and_then(Value::as_str).unwrap_or("");
        let status = LeafStatus::parse(status_str)
            .ok_or_else(|| bad(&format!("unknown status '{status_str}'")))?;
        let s = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_owned);
        Ok(AgentResult {
            node_id: node_id.to_owned(),
            status,
            text: s("text").unwrap_or_default(),
            payload: obj.get("payload").filter(|p| !p.is_null()).cloned(),
            usage: usage_from_value(obj.get("usage")),
            session_id: s("session_id"),
            error: s("error"),
            db_path: s("db_path"),
        })
    }
}

fn opt_str(s: &Option<String>) -> Value {
    s.clone().map_or(Value::Null, Value::String)
}

/// The JSON form of a usage: all six counters (`full`), or the run-level three
/// (`prompt_tokens, completion_tokens, total_tokens`).
pub fn usage_value(u: &RunUsage, full: bool) -> Value {
    let mut m = Map::new();
    if full {
        m.insert("calls".into(), u.calls.into());
    }
    m.insert("prompt_tokens".into(), u.prompt_tokens.into());
    m.insert("completion_tokens".into(), u.completion_tokens.into());
    if full {
        m.insert("cache_read_tokens".into(), u.cache_read_tokens.into());
        m.insert("reasoning_tokens".into(), u.reasoning_tokens.into());
    }
    m.insert("total_tokens".into(), u.total_tokens.into());
    Value::Object(m)
}

/// Reads a usage map leniently: absent or non-integer counters are 0.
pub fn usage_from_value(v: Option<&Value>) -> RunUsage {
    let get = |k: &str| {
        v.and_then(|v| v.get(k))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    RunUsage {
        calls: get("calls"),
        prompt_tokens: get("prompt_tokens"),
        completion_tokens: get("completion_tokens"),
        cache_read_tokens: get("cache_read_tokens"),
        reasoning_tokens: get("reasoning_tokens"),
        total_tokens: get("total_tokens"),
    }
}

/// Leaf results keyed by node id, in first-insertion order. Inserting an id again replaces the
/// earlier result in place (the engine keys foreach body leaves per item, `fanout[3]/research`, so they never collide).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResultMap {
    items: Vec<AgentResult>,
    index: HashMap<String, usize>,
}

impl ResultMap {
    /// An empty map.
    pub fn new() -> Self {
        ResultMap::default()
    }

    /// Inserts or replaces the result under its `node_id`.
    pub fn insert(&mut self, result: AgentResult) {
        match self.index.get(&result.node_id) {
            Some(&i) => self.items[i] = result,
            None => {
                self.index.insert(result.node_id.clone(), self.items.len());
                self.items.push(result);
            }
        }
    }

    /// The result of `node_id`.
    pub fn get(&self, node_id: &str) -> Option<&AgentResult> {
        self.index.get(node_id).map(|&i| &self.items[i])
    }

    /// Whether `node_id` has a result.
    pub fn contains(&self, node_id: &str) -> bool {
        self.index.contains_key(node_id)
    }

    /// Results in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = &AgentResult> {
        self.items.iter()
    }

    /// Number of results.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

impl FromIterator<AgentResult> for ResultMap {
    fn from_iter<I: IntoIterator<Item = AgentResult>>(iter: I) -> Self {
        let mut m = ResultMap::new();
        for r in iter {
            m.insert(r);
        }
        m
    }
}

/// The outcome of a run.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct WorkflowResult {
    /// The workflow's name.
    pub name: String,
    /// How the run ended.
    pub status: RunStatus,
    /// Every leaf (and foreach aggregate) result, in document / item order (a foreach aggregate after its items).
    pub results: ResultMap,
    /// The last leaf that really settled (or was replayed).
    pub final_result: Option<AgentResult>,
    /// Tokens of the whole run (`prompt_tokens`, `completion_tokens`, `total_tokens`).
    pub usage: RunUsage,
    /// Run-level errors (failed branches, unparsable structured answers, failed leaves).
    pub errors: Vec<String>,
}

impl WorkflowResult {
    /// An empty result with the given status.
    pub fn new(name: impl Into<String>, status: RunStatus) -> Self {
        WorkflowResult {
            name: name.into(),
            status,
            results: ResultMap::new(),
            final_result: None,
            usage: RunUsage::default(),
            errors: Vec::new(),
        }
    }

    /// True only when the run completed and recorded no error.
    pub fn ok(&self) -> bool {
        self.status == RunStatus::Completed && self.errors.is_empty()
    }

    /// The JSON form `{name, status, results: {id: result}, final, usage, errors}`.
    pub fn to_value(&self) -> Value {
        let mut results = Map::new();
        for r in self.results.iter() {
            results.insert(r.node_id.clone(), r.to_value());
        }
        let mut m = Map::new();
        m.insert("name".into(), self.name.clone().into());
        m.insert("status".into(), self.status.as_str().into());
        m.insert("results".into(), Value::Object(results));
        m.insert(
            "final".into(),
            self.final_result
                .as_ref()
                .map_or(Value::Null, AgentResult::to_value),
        );
        m.insert("usage".into(), usage_value(&self.usage, false));
        m.insert(
            "errors".into(),
            Value::Array(self.errors.iter().cloned().map(Value::String).collect()),
        );
        Value::Object(m)
    }

    /// A short rollup for people and models: a `workflow 'NAME' -> STATUS` line, one line per
    /// result (`  [ok] id: text` or `  [status] id: text`, text on one line, cut at 160 chars),
    /// the errors, and the token total when non-zero.
    pub fn summary(&self) -> String {
        let mut lines = vec![format!(
            "workflow '{}' -> {}",
            self.name,
            self.status.as_str()
        )];
        for r in self.results.iter() {
            let mark = if r.ok() { "ok" } else { r.status.as_str() };
            lines.push(format!(
                "  [{mark}] {}: {}",
                r.node_id,
                one_line(&r.text, 160)
            ));
        }
        if !self.errors.is_empty() {
            lines.push("errors:".into());
            lines.extend(self.errors.iter().map(|e| format!("  - {e}")));
        }
        if self.usage.total_tokens > 0 {
            lines.push(format!("tokens: {}", self.usage.total_tokens));
        }
        lines.join("\n")
    }
}

/// Collapses whitespace runs to one space; longer than `limit` chars → first `limit - 1` + `…`.
fn one_line(text: &str, limit: usize) -> String {
    let s = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.chars().count() <= limit {
        s
    } else {
        let mut cut: String = s.chars().take(limit.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_collapses_and_cuts() {
        assert_eq!(one_line("  a \n\t b  ", 160), "a b");
        let long = "x".repeat(200);
        let cut = one_line(&long, 160);
        assert_eq!(cut.chars().count(), 160);
        assert!(cut.ends_with('…'));
        assert_eq!(one_line(&"y".repeat(160), 160), "y".repeat(160));
    }
}
