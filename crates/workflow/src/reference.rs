//! References to earlier results: `node_id` (the node's text) or `node_id.key` (a field of its
//! structured payload), used by `items_from`, `branch.on` and `inputs_from`.

use serde_json::Value;

use crate::result::ResultMap;
use power_loop_tools::pyrepr::sorted_list;

/// A parsed reference string, split at the first `.`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Reference {
    /// The node whose result is read.
    pub node_id: String,
    /// The payload key, or `None` for the node's text (`"a"` and `"a."` both mean the text).
    pub key: Option<String>,
}

impl Reference {
    /// Splits `raw` at its first `.`; an empty key means "the text".
    pub fn parse(raw: &str) -> Reference {
        match raw.split_once('.') {
            Some((id, key)) => Reference {
                node_id: id.to_owned(),
                key: (!key.is_empty()).then(|| key.to_owned()),
            },
            None => Reference {
                node_id: raw.to_owned(),
                key: None,
            },
        }
    }

    /// Resolves this reference (written `raw` in messages) against the results so far: the
    /// node's text as a JSON string, or the payload field. The error says what is missing
    /// (the unknown node, the missing or non-object payload, the missing field), worded as the
    /// reference words it; the engine turns it into a run error.
    pub fn resolve(&self, raw: &str, results: &ResultMap) -> Result<Value, String> {
        let Some(res) = results.get(&self.node_id) else {
            return Err(format!(
                "reference '{raw}': node '{}' has not produced a result",
                self.node_id
            ));
        };
        let Some(key) = &self.key else {
            return Ok(Value::String(res.text.clone()));
        };
        let Some(payload) = &res.payload else {
            return Err(format!(
                "reference '{raw}': node '{}' has no structured payload (does it declare an output_schema and complete?)",
                self.node_id
            ));
        };
        match payload.as_object().and_then(|m| m.get(key)) {
            Some(v) => Ok(v.clone()),
            None => {
                let keys: Vec<&str> = payload
                    .as_object()
                    .map(|m| m.keys().map(String::as_str).collect())
                    .unwrap_or_default();
                Err(format!(
                    "reference '{raw}': key '{key}' not in node '{}' payload (keys: {})",
                    self.node_id,
                    sorted_list(keys)
                ))
            }
        }
    }
}

/// Parses and resolves `raw` in one step (see [`Reference::resolve`]).
pub fn resolve_reference(raw: &str, results: &ResultMap) -> Result<Value, String> {
    Reference::parse(raw).resolve(raw, results)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::result::{AgentResult, LeafStatus};
    use serde_json::json;

    fn results() -> ResultMap {
        let mut plan = AgentResult::new("plan", LeafStatus::Completed);
        plan.text = "the plan".into();
        plan.payload = Some(json!({"subtopics": ["a", "b"], "count": 2}));
        let mut bare = AgentResult::new("bare", LeafStatus::Completed);
        bare.text = "no payload".into();
        [plan, bare].into_iter().collect()
    }

    #[test]
    fn parse_splits_at_the_first_dot() {
        assert_eq!(Reference::parse("a.b.c").key.as_deref(), Some("b.c"));
        assert_eq!(Reference::parse("a.").key, None);
        assert_eq!(Reference::parse("a").node_id, "a");
    }

    #[test]
    fn resolution_and_its_messages() {
        let r = results();
        assert_eq!(resolve_reference("plan", &r), Ok(json!("the plan")));
        assert_eq!(resolve_reference("plan.", &r), Ok(json!("the plan")));
        assert_eq!(
            resolve_reference("plan.subtopics", &r),
            Ok(json!(["a", "b"]))
        );
        assert_eq!(
            resolve_reference("x.k", &r),
            Err("reference 'x.k': node 'x' has not produced a result".into())
        );
        assert_eq!(
            resolve_reference("bare.k", &r),
            Err("reference 'bare.k': node 'bare' has no structured payload (does it declare an output_schema and complete?)".into())
        );
        assert_eq!(
            resolve_reference("plan.nope", &r),
            Err("reference 'plan.nope': key 'nope' not in node 'plan' payload (keys: ['count', 'subtopics'])".into())
        );
    }
}
