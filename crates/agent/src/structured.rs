//! Structured output: a JSON-schema answer format, the lenient JSON extraction of
//! [`parse_structured`], and full JSON-Schema validation (the `jsonschema` crate, no remote refs).
//!
//! The loop uses it when [`AgentLoopConfig::structured_output`](crate::AgentLoopConfig) is set:
//! the format goes on every request as `response_format`, the final answer is parsed and
//! validated, and an answer that does not validate is answered with a corrective user message and
//! retried a bounded number of times.

use power_loop_contracts::{Error, ErrorCode, JsonSchemaFormat, ResponseFormat, Result};
// The balanced-object scan and trailing-comma repair live in the contracts crate (one
// implementation, shared with the providers).
use power_loop_contracts::llm::json::{extract_json_substring, remove_trailing_commas};
use power_loop_tools::schema_problem;
use serde_json::Value;

/// A named JSON schema the final answer must match.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct StructuredOutputSpec {
    /// Schema name (`Output` by default).
    pub name: String,
    /// The JSON schema.
    pub schema: Value,
    /// Ask the provider to enforce it strictly.
    pub strict: bool,
    /// Optional description.
    pub description: Option<String>,
}

impl StructuredOutputSpec {
    /// A strict spec.
    pub fn new(name: impl Into<String>, schema: Value) -> Self {
        StructuredOutputSpec {
            name: name.into(),
            schema,
            strict: true,
            description: None,
        }
    }

    /// From an `output_schema` value: `{"name", "schema"}` or a bare schema (name `Output`).
    pub fn from_output_schema(v: &Value) -> Self {
        match (v.get("schema"), v.get("name").and_then(Value::as_str)) {
            (Some(schema), name) if schema.is_object() => {
                Self::new(name.unwrap_or("Output"), schema.clone())
            }
            _ => Self::new("Output", v.clone()),
        }
    }

    /// The OpenAI `response_format` for this spec.
    pub fn to_response_format(&self) -> ResponseFormat {
        ResponseFormat::JsonSchema {
            json_schema: JsonSchemaFormat {
                name: self.name.clone(),
                schema: self.schema.clone(),
                strict: self.strict,
                description: self.description.clone(),
            },
        }
    }

    /// Parses and validates an answer against this spec.
    pub fn parse(&self, text: &str) -> Result<Value> {
        parse_structured(text, Some(&self.schema))
    }
}

fn structured_error(reason: &str, detail: String, raw: &str) -> Error {
    let raw: String = raw.chars().take(1000).collect();
    Error::new(
        ErrorCode::StructuredOutputInvalid,
        format!("the structured answer is invalid ({reason}): {detail}"),
    )
    .with_detail("reason", reason)
    .with_detail("raw_text", raw)
    .with_detail("detail", detail)
}

fn strip_fences(text: &str) -> &str {
    let t = text.trim();
    let Some(rest) = t.strip_prefix("```") else {
        return t;
    };
    let rest = rest
        .strip_prefix("json")
        .or_else(|| rest.strip_prefix("JSON"))
        .unwrap_or(rest);
    let rest = rest.strip_suffix("```").unwrap_or(rest);
    rest.trim()
}

/// The JSON Schema name of `v`'s type: `null`, `boolean`, `number`, `string`, `array` or
/// `object`.
pub fn json_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Extracts a JSON object from a model answer and, with `schema`, validates it fully.
///
/// Strategies: strip Markdown fences → direct parse → first balanced `{…}` → trailing commas
/// removed. Errors (code `structured_output.invalid`, detail `reason`): `no_json`, `invalid_json`,
/// `not_object`, `schema_invalid` (the schema itself does not compile), `schema_mismatch` (with
/// every violation, path first).
pub fn parse_structured(text: &str, schema: Option<&Value>) -> Result<Value> {
    let body = strip_fences(text);
    let block = extract_json_substring(body);
    let parsed: Option<Value> = serde_json::from_str(body)
        .ok()
        .or_else(|| block.and_then(|b| serde_json::from_str(b).ok()))
        .or_else(|| {
            let src = block.unwrap_or(body);
            serde_json::from_str(&remove_trailing_commas(src)).ok()
        });
    let value = match parsed {
        Some(v) => v,
        None if block.is_none() => {
            return Err(structured_error(
                "no_json",
                "the answer holds no JSON object".into(),
                text,
            ));
        }
        None => {
            return Err(structured_error(
                "invalid_json",
                "the JSON object in the answer does not parse".into(),
                text,
            ));
        }
    };
    if !value.is_object() {
        return Err(structured_error(
            "not_object",
            format!("expected a JSON object, got {}", json_type_name(&value)),
            text,
        ));
    }
    if let Some(schema) = schema {
        validate_against(schema, &value, text)?;
    }
    Ok(value)
}

fn validate_against(schema: &Value, value: &Value, raw: &str) -> Result<()> {
    let validator = jsonschema::validator_for(schema).map_err(|e| {
        structured_error(
            "schema_invalid",
            format!("the output schema does not compile: {e}"),
            raw,
        )
    })?;
    let problems: Vec<String> = validator
        .iter_errors(value)
        .map(|e| schema_problem(&e))
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(structured_error(
            "schema_mismatch",
            problems.join("; "),
            raw,
        ))
    }
}

/// The corrective user message sent when a structured answer does not validate.
pub fn corrective_message(err: &Error) -> String {
    let detail = err
        .detail("detail")
        .and_then(Value::as_str)
        .unwrap_or_else(|| err.message());
    format!(
        "Your previous answer is not valid for the required JSON schema: {detail}. Reply again with only one JSON object that matches the schema, with no other text."
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn extraction_strategies() {
        assert_eq!(
            parse_structured("{\"a\": 1}", None).unwrap(),
            json!({"a": 1})
        );
        assert_eq!(
            parse_structured("```json\n{\"a\": 1}\n```", None).unwrap(),
            json!({"a": 1})
        );
        assert_eq!(
            parse_structured("} here: {\"a\": \"}\"} trailing", None).unwrap(),
            json!({"a": "}"})
        );
        assert_eq!(
            parse_structured("{\"a\": [1, 2,],}", None).unwrap(),
            json!({"a": [1, 2]})
        );
        let e = parse_structured("nothing", None).unwrap_err();
        assert_eq!(e.detail("reason"), Some(&json!("no_json")));
        let e = parse_structured("{oops", None).unwrap_err();
        assert_eq!(e.detail("reason"), Some(&json!("no_json")));
        let e = parse_structured("{\"a\": nope}", None).unwrap_err();
        assert_eq!(e.detail("reason"), Some(&json!("invalid_json")));
        let e = parse_structured("[1]", None).unwrap_err();
        assert_eq!(e.detail("reason"), Some(&json!("not_object")));
    }

    #[test]
    fn nested_schema_validation() {
        let schema = json!({"type": "object", "required": ["x"], "properties": {
            "x": {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}}}});
        assert!(parse_structured("{\"x\": {\"n\": 3}}", Some(&schema)).is_ok());
        let e = parse_structured("{\"x\": {\"n\": \"3\"}}", Some(&schema)).unwrap_err();
        assert_eq!(e.code(), ErrorCode::StructuredOutputInvalid);
        assert_eq!(e.detail("reason"), Some(&json!("schema_mismatch")));
        assert!(e.message().contains("/x/n"), "{e}");
        assert!(corrective_message(&e).contains("/x/n"));
        let spec =
            StructuredOutputSpec::from_output_schema(&json!({"name": "N", "schema": schema}));
        assert_eq!(spec.name, "N");
    }
}
