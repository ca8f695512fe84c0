//! The node walk of validation: one function per node type, each reporting its own problems in
//! a fixed order (unknown keys first, then the type's fields; the order per node type is listed
//! in `docs/workflows.md`, "Validation") before walking its children.

use power_loop_agent::AgentSpec;
use serde_json::{Map, Value};

use super::Problems;
use super::prewalk::{Comp, IdIndex};
use crate::spec::{
    AgentNode, BranchNode, DEFAULT_AGENT_INPUT, DEFAULT_MAX_CONCURRENCY, ForeachItems, ForeachNode,
    MAX_NODE_DEPTH, Node, OnError, OutputSchema, ParallelNode, SequenceNode,
};
use power_loop_tools::pyrepr::{repr_str, repr_value, sorted_list};

const NODE_TYPES: &str = "['agent', 'branch', 'foreach', 'parallel', 'sequence']";

/// Walks raw node JSON into [`Node`]s, pushing problems as it goes.
pub(super) struct Walker<'a> {
    pub(super) ids: &'a IdIndex,
    pub(super) problems: &'a mut Problems,
    /// The sorted referenceable ids, rendered once for "unknown node" messages.
    pub(super) known: String,
    /// The position of the node being walked (empty at the root; its nesting depth is its
    /// length + 1).
    pub(super) pos: Vec<Comp>,
}

impl<'a> Walker<'a> {
    pub(super) fn new(ids: &'a IdIndex, problems: &'a mut Problems) -> Self {
        let known = sorted_list(ids.referenceable.keys().map(String::as_str));
        Walker {
            ids,
            problems,
            known,
            pos: Vec::new(),
        }
    }

    /// Validates one node (at [`Walker::pos`]); `None` when it (or a descendant) has a problem.
    pub(super) fn node(&mut self, v: &Value, path: &str) -> Option<Node> {
        if self.pos.len() + 1 > MAX_NODE_DEPTH {
            self.problems.push(
                path,
                format!("nodes nest deeper than {MAX_NODE_DEPTH} levels; flatten the workflow"),
            );
            return None;
        }
        let Some(obj) = v.as_object() else {
            self.problems.push(path, "node must be an object");
            return None;
        };
        match obj.get("type").and_then(Value::as_str) {
            Some("agent") => self.agent(obj, path),
            Some("sequence") => self.sequence(obj, path),
            Some("parallel") => self.parallel(obj, path),
            Some("foreach") => self.foreach(obj, path),
            Some("branch") => self.branch(obj, path),
            _ => {
                let got = obj
                    .get("type")
                    .map_or_else(|| "None".to_owned(), repr_value);
                self.problems.push(
                    path,
                    format!("'type' must be one of {NODE_TYPES} (got {got})"),
                );
                None
            }
        }
    }

    /// Validates the child node `comp` of the current one.
    fn child(&mut self, v: &Value, path: String, comp: Comp) -> Option<Node> {
        self.pos.push(comp);
        let out = self.node(v, &path);
        self.pos.pop();
        out
    }

    /// The container's list `key` of child nodes; reports a problem (and gives `None`) when it
    /// is missing, not a list or empty.
    fn non_empty_list<'v>(
        &mut self,
        obj: &'v Map<String, Value>,
        key: &str,
        path: &str,
    ) -> Option<&'v [Value]> {
        let list = obj
            .get(key)
            .and_then(Value::as_array)
            .filter(|l| !l.is_empty());
        if list.is_none() {
            self.problems
                .push(path, format!("'{key}' must be a non-empty list"));
        }
        list.map(Vec::as_slice)
    }

    /// Walks every child node of the list `key` (each at `{path}.{key}[i]`, position `comp(i)`),
    /// reporting all their problems; `None` when any child has one.
    fn children(
        &mut self,
        raw: &[Value],
        key: &str,
        comp: fn(usize) -> Comp,
        path: &str,
    ) -> Option<Vec<Node>> {
        let nodes: Vec<Option<Node>> = raw
            .iter()
            .enumerate()
            .map(|(i, v)| self.child(v, format!("{path}.{key}[{i}]"), comp(i)))
            .collect();
        nodes.into_iter().collect()
    }

    fn unknown_keys(&mut self, obj: &Map<String, Value>, allowed: &[&str], path: &str) {
        let unknown: Vec<&str> = obj
            .keys()
            .map(String::as_str)
            .filter(|k| !allowed.contains(k))
            .collect();
        if !unknown.is_empty() {
            self.problems
                .push(path, format!("unknown key(s): {}", sorted_list(unknown)));
        }
    }

    fn max_concurrency(&mut self, obj: &Map<String, Value>, path: &str) -> Option<u32> {
        match obj.get("max_concurrency") {
            None => Some(DEFAULT_MAX_CONCURRENCY),
            Some(Value::Number(n)) if n.as_u64().is_some_and(|n| n >= 1) => Some(
                n.as_u64()
                    .map_or(u32::MAX, |n| u32::try_from(n).unwrap_or(u32::MAX)),
            ),
            Some(other) => {
                self.problems.push(
                    path,
                    format!(
                        "'max_concurrency' must be an integer >= 1 (got {})",
                        repr_value(other)
                    ),
                );
                None
            }
        }
    }

    fn on_error(&mut self, obj: &Map<String, Value>, path: &str) -> Option<OnError> {
        match obj.get("on_error") {
            None => Some(OnError::Halt),
            Some(v) => match v.as_str().and_then(OnError::parse) {
                Some(e) => Some(e),
                None => {
                    self.problems.push(
                        path,
                        format!(
                            "'on_error' must be one of ['continue', 'halt'] (got {})",
                            repr_value(v)
                        ),
                    );
                    None
                }
            },
        }
    }

    /// The required non-empty string field `key`; `problem` is reported when it is missing,
    /// not a string, or blank.
    fn non_empty(
        &mut self,
        obj: &Map<String, Value>,
        key: &str,
        path: &str,
        problem: &str,
    ) -> Option<String> {
        match obj.get(key).and_then(Value::as_str) {
            Some(s) if !s.trim().is_empty() => Some(s.to_owned()),
            _ => {
                self.problems.push(path, problem);
                None
            }
        }
    }

    fn agent(&mut self, obj: &Map<String, Value>, path: &str) -> Option<Node> {
        const KEYS: &[&str] = &[
            "type",
            "id",
            "spec",
            "input",
            "inputs_from",
            "output_schema",
        ];
        self.unknown_keys(obj, KEYS, path);
        let id = self.non_empty(
            obj,
            "id",
            path,
            "agent node requires a non-empty string 'id'",
        );
        let spec = match obj.get("spec") {
            None => {
                self.problems.push(path, "agent node requires 'spec'");
                None
            }
            Some(raw) => match AgentSpec::from_json(raw) {
                Ok(s) => Some(s),
                Err(e) => {
                    self.problems.push(&format!("{path}.spec"), e.message());
                    None
                }
            },
        };
        let input = match obj.get("input") {
            None => Some(DEFAULT_AGENT_INPUT.to_owned()),
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                self.problems
                    .push(path, "'input' must be a string template");
                None
            }
        };
        let inputs_from = match obj.get("inputs_from") {
            None => Some(Vec::new()),
            Some(Value::Array(items)) if items.iter().all(Value::is_string) => {
                let refs: Vec<String> = items
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect();
                let before = self.problems.0.len();
                for r in &refs {
                    self.check_reference(r, "inputs_from", path);
                }
                (self.problems.0.len() == before).then_some(refs)
            }
            Some(_) => {
                self.problems
                    .push(path, "'inputs_from' must be a list[str]");
                None
            }
        };
        let output_schema = match obj.get("output_schema") {
            None | Some(Value::Null) => Some(None),
            Some(v) => match output_schema(v) {
                Some(s) => Some(Some(s)),
                None => {
                    self.problems
                        .push(path, "'output_schema' must be an object {name, schema}");
                    None
                }
            },
        };
        Some(Node::Agent(AgentNode {
            id: id?,
            spec: spec?,
            input: input?,
            inputs_from: inputs_from?,
            output_schema: output_schema?,
        }))
    }

    fn sequence(&mut self, obj: &Map<String, Value>, path: &str) -> Option<Node> {
        self.unknown_keys(obj, &["type", "id", "steps"], path);
        let raw = self.non_empty_list(obj, "steps", path)?;
        let steps = self.children(raw, "steps", Comp::Step, path);
        Some(Node::Sequence(SequenceNode {
            id: container_id(obj),
            steps: steps?,
        }))
    }

    fn parallel(&mut self, obj: &Map<String, Value>, path: &str) -> Option<Node> {
        const KEYS: &[&str] = &["type", "id", "branches", "max_concurrency", "on_error"];
        self.unknown_keys(obj, KEYS, path);
        let raw = self.non_empty_list(obj, "branches", path)?;
        let max_concurrency = self.max_concurrency(obj, path);
        let on_error = self.on_error(obj, path);
        let branches = self.children(raw, "branches", Comp::Branch, path);
        Some(Node::Parallel(ParallelNode {
            id: container_id(obj),
            branches: branches?,
            max_concurrency: max_concurrency?,
            on_error: on_error?,
        }))
    }

    fn foreach(&mut self, obj: &Map<String, Value>, path: &str) -> Option<Node> {
        const KEYS: &[&str] = &[
            "type",
            "id",
            "items_from",
            "items",
            "as",
            "body",
            "parallel",
            "max_concurrency",
            "on_error",
        ];
        self.unknown_keys(obj, KEYS, path);
        let as_name = self.non_empty(obj, "as", path, "foreach requires a non-empty string 'as'");
        let items_from = obj.get("items_from").filter(|v| !v.is_null());
        let items = obj.get("items").filter(|v| !v.is_null());
        let mut source_ok = true;
        match (items_from, items) {
            (None, None) => {
                self.problems
                    .push(path, "foreach requires either 'items_from' or 'items'");
                source_ok = false;
            }
            (Some(_), Some(_)) => {
                self.problems
                    .push(path, "foreach cannot have both 'items_from' and 'items'");
                source_ok = false;
            }
            _ => {}
        }
        let mut source = None;
        if let Some(r) = items_from {
            match r.as_str() {
                None => {
                    self.problems
                        .push(path, "'items_from' must be a string 'node_id.key'");
                    source_ok = false;
                }
                Some(s) => {
                    let before = self.problems.0.len();
                    self.check_reference(s, "items_from", path);
                    source_ok &= self.problems.0.len() == before;
                    source = Some(ForeachItems::ItemsFrom(s.to_owned()));
                }
            }
        }
        if let Some(list) = items {
            match list.as_array() {
                Some(a) => source = Some(ForeachItems::Items(a.clone())),
                None => {
                    self.problems.push(path, "'items' must be a list");
                    source_ok = false;
                }
            }
        }
        let max_concurrency = self.max_concurrency(obj, path);
        let parallel = match obj.get("parallel") {
            None => Some(true),
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => {
                self.problems.push(path, "'parallel' must be a boolean");
                None
            }
        };
        let on_error = self.on_error(obj, path);
        let body = match obj.get("body") {
            None => {
                self.problems.push(path, "foreach requires 'body'");
                None
            }
            Some(b) => self.child(b, format!("{path}.body"), Comp::Body),
        };
        Some(Node::Foreach(ForeachNode {
            id: container_id(obj),
            items: source.filter(|_| source_ok)?,
            as_name: as_name?,
            body: Box::new(body?),
            parallel: parallel?,
            max_concurrency: max_concurrency?,
            on_error: on_error?,
        }))
    }

    fn branch(&mut self, obj: &Map<String, Value>, path: &str) -> Option<Node> {
        self.unknown_keys(obj, &["type", "id", "on", "cases", "default"], path);
        let on = match obj.get("on").and_then(Value::as_str) {
            Some(s) if !s.trim().is_empty() => {
                let before = self.problems.0.len();
                self.check_reference(s, "on", path);
                (self.problems.0.len() == before).then(|| s.to_owned())
            }
            _ => {
                self.problems.push(
                    path,
                    "branch requires a non-empty string 'on' ('node_id.key')",
                );
                None
            }
        };
        let cases = match obj.get("cases").and_then(Value::as_object) {
            Some(map) if !map.is_empty() => {
                let parsed: Vec<Option<(String, Node)>> = map
                    .iter()
                    .map(|(k, child)| {
                        let p = format!("{path}.cases[{}]", repr_str(k));
                        self.child(child, p, Comp::Case(k.clone()))
                            .map(|n| (k.clone(), n))
                    })
                    .collect();
                parsed.into_iter().collect::<Option<Vec<_>>>()
            }
            _ => {
                self.problems
                    .push(path, "branch requires a non-empty 'cases' object");
                None
            }
        };
        let default = match obj.get("default") {
            None | Some(Value::Null) => Some(None),
            Some(d) => self
                .child(d, format!("{path}.default"), Comp::Default)
                .map(|n| Some(Box::new(n))),
        };
        Some(Node::Branch(BranchNode {
            id: container_id(obj),
            on: on?,
            cases: cases?,
            default: default?,
        }))
    }
}

/// A container's optional id: a non-blank string is kept; anything else (the reference does
/// not type-check it) is ignored.
fn container_id(obj: &Map<String, Value>) -> Option<String> {
    obj.get("id")
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .map(str::to_owned)
}

/// `{name?, schema}` (name a string, schema an object), or a bare schema object (named `Output`).
fn output_schema(v: &Value) -> Option<OutputSchema> {
    let obj = v.as_object()?;
    match obj.get("schema") {
        None => Some(OutputSchema::new("Output", v.clone())),
        Some(schema) if schema.is_object() => {
            let name = match obj.get("name") {
                None => "Output".to_owned(),
                Some(Value::String(s)) => s.clone(),
                Some(_) => return None,
            };
            Some(OutputSchema::new(name, schema.clone()))
        }
        Some(_) => None,
    }
}
