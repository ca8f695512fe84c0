//! The JSON form of a spec, as stored in run journals: defaults are left out, and
//! [`WorkflowSpec::from_value`] of the output rebuilds an equal spec.

use serde_json::{Map, Value};

use crate::spec::{DEFAULT_AGENT_INPUT, ForeachItems, Node, WorkflowSpec};

impl WorkflowSpec {
    /// `{name, root}` plus `input` when non-empty, `budget` (both fields) when set and `metadata`
    /// when non-empty.
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("name".into(), self.name.clone().into());
        m.insert("root".into(), self.root.to_value());
        if !self.input.is_empty() {
            m.insert("input".into(), self.input.clone().into());
        }
        if let Some(b) = &self.budget {
            let mut bm = Map::new();
            bm.insert("max_tokens".into(), b.max_tokens.into());
            bm.insert(
                "stop_at_remaining_pct".into(),
                b.stop_at_remaining_pct.into(),
            );
            m.insert("budget".into(), Value::Object(bm));
        }
        if !self.metadata.is_empty() {
            m.insert("metadata".into(), Value::Object(self.metadata.clone()));
        }
        Value::Object(m)
    }

    /// [`WorkflowSpec::to_value`] as compact JSON text.
    pub fn to_json_string(&self) -> String {
        self.to_value().to_string()
    }
}

impl Node {
    /// The node's JSON form (agent: `type, id, spec` with all ten AgentSpec fields, then
    /// `input` / `inputs_from` / `output_schema` when not default; containers: `type`, `id` when
    /// set, and their fields).
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert("type".into(), self.type_name().into());
        if let Some(id) = self.id() {
            m.insert("id".into(), id.into());
        }
        match self {
            Node::Agent(a) => {
                m.insert(
                    "spec".into(),
                    serde_json::to_value(&a.spec).unwrap_or(Value::Null),
                );
                if a.input != DEFAULT_AGENT_INPUT {
                    m.insert("input".into(), a.input.clone().into());
                }
                if !a.inputs_from.is_empty() {
                    m.insert("inputs_from".into(), a.inputs_from.clone().into());
                }
                if let Some(s) = &a.output_schema {
                    m.insert("output_schema".into(), s.to_value());
                }
            }
            Node::Sequence(s) => {
                m.insert("steps".into(), nodes(&s.steps));
            }
            Node::Parallel(p) => {
                m.insert("branches".into(), nodes(&p.branches));
                m.insert("max_concurrency".into(), p.max_concurrency.into());
                m.insert("on_error".into(), p.on_error.as_str().into());
            }
            Node::Foreach(f) => {
                m.insert("as".into(), f.as_name.clone().into());
                match &f.items {
                    ForeachItems::Items(items) => m.insert("items".into(), items.clone().into()),
                    ForeachItems::ItemsFrom(r) => m.insert("items_from".into(), r.clone().into()),
                };
                m.insert("body".into(), f.body.to_value());
                m.insert("parallel".into(), f.parallel.into());
                m.insert("max_concurrency".into(), f.max_concurrency.into());
                m.insert("on_error".into(), f.on_error.as_str().into());
            }
            Node::Branch(b) => {
                m.insert("on".into(), b.on.clone().into());
                let cases: Map<String, Value> = b
                    .cases
                    .iter()
                    .map(|(k, n)| (k.clone(), n.to_value()))
                    .collect();
                m.insert("cases".into(), Value::Object(cases));
                if let Some(d) = &b.default {
                    m.insert("default".into(), d.to_value());
                }
            }
        }
        Value::Object(m)
    }
}

fn nodes(list: &[Node]) -> Value {
    Value::Array(list.iter().map(Node::to_value).collect())
}
