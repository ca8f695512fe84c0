//! The tools one server offers right now, filtered by the allow/deny lists, with their local
//! (registered) names and compiled argument validators.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::config::McpServerConfig;
use crate::names::NameAllocator;
use crate::schema::{compile, normalize_input_schema};

/// One remote tool as power-loop offers it.
#[derive(Debug, Clone, Serialize)]
pub struct McpToolInfo {
    /// The server it comes from.
    pub server: String,
    /// Its name on the server (what `tools/call` sends).
    pub remote_name: String,
    /// Its registered name (prefixed, sanitized, unique).
    pub local_name: String,
    /// Human title, when the server gave one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Description for the model.
    pub description: String,
    /// The argument schema offered to the model (normalized, see
    /// [`normalize_input_schema`](crate::normalize_input_schema)).
    pub input_schema: Value,
    /// The server's `outputSchema`, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<Value>,
    /// The server's `annotations` (`readOnlyHint`, `destructiveHint`, …), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub annotations: Option<Value>,
}

impl McpToolInfo {
    /// Whether the server marked the tool read-only (`annotations.readOnlyHint`).
    pub fn read_only(&self) -> bool {
        self.annotations
            .as_ref()
            .and_then(|a| a.get("readOnlyHint"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }
}

/// A listed tool plus its validator.
#[derive(Clone)]
pub(crate) struct Entry {
    pub(crate) info: McpToolInfo,
    pub(crate) validator: Arc<jsonschema::Validator>,
}

/// The current tools of one server.
#[derive(Clone, Default)]
pub(crate) struct ToolTable {
    pub(crate) entries: Vec<Entry>,
    /// Remote tools left out: `(remote name, reason)`.
    pub(crate) skipped: Vec<(String, String)>,
}

impl ToolTable {
    /// Builds the table from a `tools/list` result. Names already given in `previous` are kept
    /// (a refresh never renames a tool); new ones are allocated avoiding `taken`.
    pub(crate) fn build(
        server: &str,
        prefix: &str,
        config: &McpServerConfig,
        listed: &[Value],
        previous: &HashMap<String, String>,
        taken: impl IntoIterator<Item = String>,
    ) -> ToolTable {
        let mut names = NameAllocator::with_taken(taken);
        for local in previous.values() {
            names.reserve(local);
        }
        let mut table = ToolTable::default();
        let mut seen = std::collections::HashSet::new();
        for t in listed {
            let Some(remote) = t.get("name").and_then(Value::as_str) else {
                table
                    .skipped
                    .push(("(unnamed)".into(), "the tool has no name".into()));
                continue;
            };
            if !seen.insert(remote.to_owned()) {
                table
                    .skipped
                    .push((remote.into(), "listed twice by the server".into()));
                continue;
            }
            if !config.tool_allowed(remote) {
                table
                    .skipped
                    .push((remote.into(), "left out by the allow/deny lists".into()));
                continue;
            }
            let schema = normalize_input_schema(t.get("inputSchema").unwrap_or(&Value::Null));
            let validator = match compile(&schema) {
                Ok(v) => Arc::new(v),
                Err(e) => {
                    table
                        .skipped
                        .push((remote.into(), format!("its input schema is invalid: {e}")));
                    continue;
                }
            };
            let local = match previous.get(remote) {
                Some(l) => l.clone(),
                None => names.allocate(prefix, remote),
            };
            let title = t
                .get("title")
                .and_then(Value::as_str)
                .or_else(|| t.pointer("/annotations/title").and_then(Value::as_str))
                .map(str::to_owned);
            let description = t
                .get("description")
                .and_then(Value::as_str)
                .filter(|d| !d.trim().is_empty())
                .map(str::to_owned)
                .or_else(|| title.clone())
                .unwrap_or_else(|| format!("MCP tool {remote} (server {server})"));
            table.entries.push(Entry {
                info: McpToolInfo {
                    server: server.to_owned(),
                    remote_name: remote.to_owned(),
                    local_name: local,
                    title,
                    description,
                    input_schema: schema,
                    output_schema: t.get("outputSchema").filter(|v| !v.is_null()).cloned(),
                    annotations: t.get("annotations").filter(|v| !v.is_null()).cloned(),
                },
                validator,
            });
        }
        table
    }

    /// The entry of the remote tool `remote`.
    pub(crate) fn by_remote(&self, remote: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.info.remote_name == remote)
    }

    /// remote name → local name.
    pub(crate) fn local_names(&self) -> HashMap<String, String> {
        self.entries
            .iter()
            .map(|e| (e.info.remote_name.clone(), e.info.local_name.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn filters_names_and_schemas() {
        let cfg = McpServerConfig::stdio("x", Vec::<String>::new()).deny_tools(["secret"]);
        let listed = vec![
            json!({"name": "read.file", "description": "Reads", "inputSchema": {"type": "object", "properties": {"p": {"type": "string"}}}}),
            json!({"name": "read_file", "inputSchema": {}}),
            json!({"name": "secret", "inputSchema": {}}),
            json!({"name": "bad", "inputSchema": {"type": "object", "properties": {"a": {"type": 7}}}}),
            json!({"name": "read.file", "inputSchema": {}}),
            json!({"description": "no name"}),
        ];
        let t = ToolTable::build(
            "fs",
            "fs_",
            &cfg,
            &listed,
            &HashMap::new(),
            ["fs_read_file".to_owned()],
        );
        let names: Vec<_> = t
            .entries
            .iter()
            .map(|e| e.info.local_name.as_str())
            .collect();
        assert_eq!(names, ["fs_read_file_2", "fs_read_file_3"]);
        assert_eq!(
            t.entries[1].info.description,
            "MCP tool read_file (server fs)"
        );
        let skipped: Vec<_> = t.skipped.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(skipped, ["secret", "bad", "read.file", "(unnamed)"]);
        // A refresh keeps the names it gave before.
        let again = ToolTable::build(
            "fs",
            "fs_",
            &cfg,
            &listed[1..2],
            &t.local_names(),
            Vec::new(),
        );
        assert_eq!(again.entries[0].info.local_name, "fs_read_file_3");
    }
}
