//! Input schemas of MCP tools, made acceptable to LLM providers and compiled for validation.

use power_loop_tools::schema_problem;
use serde_json::{Map, Value};

/// The schema offered to the model for an MCP tool's `inputSchema`.
///
/// Top-level keys some providers reject are dropped (`$schema`, `$id`, `$comment`), the root is
/// forced to `"type": "object"` with a `properties` object (MCP requires an object schema, and
/// some servers send `{}` for "no arguments"); everything else (`$defs`, `enum`, `default`, …)
/// is kept as the server sent it.
pub fn normalize_input_schema(schema: &Value) -> Value {
    let mut obj = match schema {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    for key in ["$schema", "$id", "$comment"] {
        obj.remove(key);
    }
    obj.insert("type".to_owned(), Value::String("object".to_owned()));
    if !obj.get("properties").is_some_and(Value::is_object) {
        obj.insert("properties".to_owned(), Value::Object(Map::new()));
    }
    Value::Object(obj)
}

/// Compiles a schema for argument validation (no remote `$ref`s are ever fetched).
pub(crate) fn compile(schema: &Value) -> Result<jsonschema::Validator, String> {
    jsonschema::validator_for(schema).map_err(|e| e.to_string())
}

/// Checks `args` against `validator`: `Err` lists at most 8 violations, one per line.
pub(crate) fn check(validator: &jsonschema::Validator, args: &Value) -> Result<(), String> {
    let problems: Vec<String> = validator
        .iter_errors(args)
        .take(8)
        .map(|e| schema_problem(&e))
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn provider_hostile_keys_go_and_the_root_is_an_object() {
        let s = normalize_input_schema(&json!({
            "$schema": "http://json-schema.org/draft-07/schema#",
            "type": "object",
            "properties": {"a": {"type": "number", "default": 1}},
            "required": ["a"],
            "additionalProperties": false
        }));
        assert!(s.get("$schema").is_none());
        assert_eq!(s["properties"]["a"]["default"], 1);
        assert_eq!(s["required"], json!(["a"]));
        assert_eq!(
            normalize_input_schema(&json!({})),
            json!({"type": "object", "properties": {}})
        );
        assert_eq!(normalize_input_schema(&json!(null))["type"], "object");
    }

    #[test]
    fn validation_lists_the_violations() {
        let v = compile(&normalize_input_schema(&json!({
            "type": "object", "properties": {"a": {"type": "number"}}, "required": ["a"]
        })))
        .unwrap();
        assert!(check(&v, &json!({"a": 1})).is_ok());
        let e = check(&v, &json!({"a": "x"})).unwrap_err();
        assert!(e.starts_with("/a:"), "{e}");
        assert!(check(&v, &json!({})).unwrap_err().contains("required"));
    }
}
