//! Builders for the parameter schemas of the built-in tools (JSON schema objects), so each tool
//! lists only its own properties.

use serde_json::{Map, Value, json};

/// A tool's parameter schema: an object with `props` (name, property schema) in this order, of
/// which the `required` ones must be given (no `required` key when none is).
pub(crate) fn params(props: &[(&str, Value)], required: &[&str]) -> Value {
    let properties: Map<String, Value> = props
        .iter()
        .map(|(name, schema)| ((*name).to_owned(), schema.clone()))
        .collect();
    let mut schema = json!({"type": "object", "properties": properties});
    if !required.is_empty() {
        schema["required"] = json!(required);
    }
    schema
}

/// A string property.
pub(crate) fn string_prop(description: &str) -> Value {
    typed("string", description)
}

/// An integer property.
pub(crate) fn integer_prop(description: &str) -> Value {
    typed("integer", description)
}

/// A boolean property.
pub(crate) fn boolean_prop(description: &str) -> Value {
    typed("boolean", description)
}

/// A string property that must be one of `values`.
pub(crate) fn choice_prop(values: &[String], description: &str) -> Value {
    json!({"type": "string", "enum": values, "description": description})
}

fn typed(ty: &str, description: &str) -> Value {
    json!({"type": ty, "description": description})
}
