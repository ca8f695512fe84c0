//! The tool registry: registration, whitelists, argument decoding and validation, invocation.

use std::collections::HashMap;
use std::fmt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use futures_util::FutureExt;
use power_loop_contracts::{
    Error, ErrorCode, Result, ToolCall, ToolDefinition, ToolOutput, ToolResult,
};

use crate::builtin::human::HumanInputRequest;
use crate::tool::{Tool, ToolContext};

/// At most this many schema violations are listed in one error.
const MAX_REPORTED_VIOLATIONS: usize = 8;

#[derive(Clone)]
struct Entry {
    tool: Arc<dyn Tool>,
    validator: Arc<jsonschema::Validator>,
}

/// An ordered set of tools, keyed by name, each with its argument schema compiled once.
///
/// Cloning is cheap (tools and validators are shared).
#[derive(Clone, Default)]
pub struct ToolRegistry {
    entries: Vec<Entry>,
    index: HashMap<String, usize>,
}

impl fmt::Debug for ToolRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ToolRegistry")
            .field("tools", &self.names())
            .finish()
    }
}

/// What one tool call produced: the result for the model plus facts for events and the loop.
#[derive(Debug, Clone)]
pub struct ToolOutcome {
    /// The call this answers.
    pub tool_call_id: String,
    /// The tool name as requested by the model.
    pub name: String,
    /// The result; `output.ok == false` marks a failed call.
    pub output: ToolOutput,
    /// The error code when the call failed through an error (`tool.invalid_args`,
    /// `tool.not_found`, `tool.denied`, `tool.failed`, `cancelled`, …).
    pub error_code: Option<ErrorCode>,
    /// Set when the tool asked for human input; the loop records a pending interaction and
    /// does not send `output` as a normal result.
    pub interrupt: Option<HumanInputRequest>,
    /// Whether the handler was started (false for unknown tools and invalid arguments).
    pub handler_ran: bool,
    /// Wall time of the call in milliseconds.
    pub elapsed_ms: u64,
}

impl ToolOutcome {
    fn failed(call: &ToolCall, code: ErrorCode, message: String) -> Self {
        ToolOutcome {
            tool_call_id: call.id.clone(),
            name: call.name().to_owned(),
            output: ToolOutput::failed(message).with_data("error_code", code.as_str()),
            error_code: Some(code),
            interrupt: None,
            handler_ran: false,
            elapsed_ms: 0,
        }
    }

    /// Whether the call failed.
    pub fn is_failed(&self) -> bool {
        !self.output.ok
    }

    /// The persisted/reported form.
    pub fn to_result(&self) -> ToolResult {
        ToolResult {
            tool_call_id: self.tool_call_id.clone(),
            name: self.name.clone(),
            content: self.output.content.clone(),
            failed: !self.output.ok,
        }
    }
}

/// One JSON-Schema violation as `path: message`, for error texts shown to a model or a user: the
/// path is the JSON pointer of the offending part of the checked value (`/a/0`), or `(root)` for
/// the value itself.
pub fn schema_problem(err: &jsonschema::ValidationError<'_>) -> String {
    let path = err.instance_path().to_string();
    let path = if path.is_empty() { "(root)" } else { &path };
    format!("{path}: {err}")
}

/// Decodes a model's `arguments` string into a JSON object.
///
/// Blank → `{}`. On a parse error, retries once after escaping raw newlines, carriage returns
/// and tabs (models often put them unescaped inside strings). A non-object value is an error.
pub fn decode_arguments(raw: &str) -> std::result::Result<serde_json::Value, String> {
    if raw.trim().is_empty() {
        return Ok(serde_json::Value::Object(serde_json::Map::new()));
    }
    let parsed = match serde_json::from_str::<serde_json::Value>(raw) {
        Ok(v) => v,
        Err(first) => {
            let escaped = raw
                .replace('\n', "\\n")
                .replace('\r', "\\r")
                .replace('\t', "\\t");
            serde_json::from_str::<serde_json::Value>(&escaped)
                .map_err(|_| format!("the arguments are not valid JSON ({first})"))?
        }
    };
    match parsed {
        serde_json::Value::Object(_) => Ok(parsed),
        other => Err(format!(
            "the arguments must be a JSON object, got {}",
            json_type_name(&other)
        )),
    }
}

fn json_type_name(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

fn valid_tool_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn compile_schema(def: &ToolDefinition) -> Result<jsonschema::Validator> {
    if !def.parameters.is_object() {
        return Err(Error::new(
            ErrorCode::InvalidArgument,
            format!(
                "tool `{}`: the parameters schema must be a JSON object",
                def.name
            ),
        ));
    }
    jsonschema::validator_for(&def.parameters).map_err(|e| {
        Error::new(
            ErrorCode::InvalidArgument,
            format!(
                "tool `{}`: the parameters schema is not a valid JSON Schema: {e}",
                def.name
            ),
        )
    })
}

impl ToolRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a tool. A duplicate name, an invalid name or an invalid schema is an error.
    pub fn register(&mut self, tool: impl Tool + 'static) -> Result<()> {
        self.register_arc(Arc::new(tool), false)
    }

    /// Registers a tool, replacing one of the same name in place (its position is kept).
    pub fn register_overwrite(&mut self, tool: impl Tool + 'static) -> Result<()> {
        self.register_arc(Arc::new(tool), true)
    }

    /// Registers a shared tool; with `overwrite` an existing tool of the same name is replaced.
    pub fn register_arc(&mut self, tool: Arc<dyn Tool>, overwrite: bool) -> Result<()> {
        let def = tool.definition();
        if !valid_tool_name(&def.name) {
            return Err(Error::new(
                ErrorCode::InvalidArgument,
                format!(
                    "invalid tool name {:?}: use 1-64 characters from A-Z a-z 0-9 _ - .",
                    def.name
                ),
            ));
        }
        let validator = Arc::new(compile_schema(def)?);
        let name = def.name.clone();
        let entry = Entry { tool, validator };
        match self.index.get(&name) {
            Some(&i) if overwrite => self.entries[i] = entry,
            Some(_) => {
                return Err(Error::new(
                    ErrorCode::InvalidArgument,
                    format!(
                        "tool already registered: {name}; unregister it first or register with overwrite"
                    ),
                ));
            }
            None => {
                self.index.insert(name, self.entries.len());
                self.entries.push(entry);
            }
        }
        Ok(())
    }

    /// Removes a tool (no-op when absent).
    pub fn unregister(&mut self, name: &str) {
        if self.index.remove(name).is_some() {
            self.entries.retain(|e| e.tool.definition().name != name);
            self.reindex();
        }
    }

    fn reindex(&mut self) {
        self.index = self
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| (e.tool.definition().name.clone(), i))
            .collect();
    }

    /// Whether a tool of that name is registered.
    pub fn has(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    /// The tool of that name.
    pub fn get(&self, name: &str) -> Option<Arc<dyn Tool>> {
        self.index
            .get(name)
            .map(|&i| Arc::clone(&self.entries[i].tool))
    }

    /// Number of tools.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no tool is registered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Tool names in registration order.
    pub fn names(&self) -> Vec<String> {
        self.entries
            .iter()
            .map(|e| e.tool.definition().name.clone())
            .collect()
    }

    /// Definitions for the model, in registration order (stable).
    pub fn definitions(&self) -> Vec<ToolDefinition> {
        self.entries
            .iter()
            .map(|e| e.tool.definition().clone())
            .collect()
    }

    /// OpenAI-style tool list, in registration order.
    pub fn to_openai_tools(&self) -> Vec<serde_json::Value> {
        self.entries
            .iter()
            .map(|e| e.tool.definition().to_openai())
            .collect()
    }

    /// A registry with only the named tools, in THIS registry's order; unknown names ignored.
    pub fn subset(&self, names: &[&str]) -> ToolRegistry {
        let mut out = ToolRegistry::new();
        for e in &self.entries {
            if names.contains(&e.tool.definition().name.as_str()) {
                out.index
                    .insert(e.tool.definition().name.clone(), out.entries.len());
                out.entries.push(e.clone());
            }
        }
        out
    }

    /// A registry for a sub-agent: the whitelisted tools present here, in WHITELIST order;
    /// unknown names are skipped. `None` → a clone of this registry.
    pub fn filtered(&self, whitelist: Option<&[String]>) -> ToolRegistry {
        let Some(list) = whitelist else {
            return self.clone();
        };
        let mut out = ToolRegistry::new();
        for name in list {
            if out.index.contains_key(name) {
                continue;
            }
            if let Some(&i) = self.index.get(name) {
                out.index.insert(name.clone(), out.entries.len());
                out.entries.push(self.entries[i].clone());
            }
        }
        out
    }

    /// Closes every tool (see [`Tool::close`]): stops the server processes of MCP tools and
    /// whatever else tools hold outside memory. The registry keeps its tools; a tool may start
    /// its resources again when called later.
    pub async fn close(&self) {
        for e in &self.entries {
            e.tool.close().await;
        }
    }

    /// Checks `args` against the tool's schema; `Err` carries one line per violation
    /// (`/field: message (rule: keyword)`).
    pub fn validate(&self, name: &str, args: &serde_json::Value) -> Result<()> {
        let Some(&i) = self.index.get(name) else {
            return Err(self.not_found_error(name));
        };
        let entry = &self.entries[i];
        let mut problems = Vec::new();
        let mut total = 0usize;
        for err in entry.validator.iter_errors(args) {
            total += 1;
            if problems.len() < MAX_REPORTED_VIOLATIONS {
                let schema_path = err.schema_path().to_string();
                let rule = schema_path
                    .rsplit('/')
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                problems.push(format!("{} (rule: {rule})", schema_problem(&err)));
            }
        }
        if problems.is_empty() {
            return Ok(());
        }
        let more = if total > problems.len() {
            format!("\n(and {} more problem(s))", total - problems.len())
        } else {
            String::new()
        };
        Err(Error::new(
            ErrorCode::ToolInvalidArgs,
            format!(
                "invalid arguments for tool `{name}`; the tool was not run. Fix these and call it again:\n{}{more}",
                problems.join("\n")
            ),
        )
        .with_detail("tool", name))
    }

    fn not_found_error(&self, name: &str) -> Error {
        let names = self.names();
        let available = if names.is_empty() {
            "(none)".to_owned()
        } else {
            names.join(", ")
        };
        Error::new(
            ErrorCode::ToolNotFound,
            format!("unknown tool `{name}`. Available tools: {available}"),
        )
        .with_detail("tool", name)
    }

    /// Runs one model tool call: decode, validate, run the handler once, map every failure
    /// (including panics and cancellation) to a failed result. Never panics.
    pub async fn invoke(&self, ctx: ToolContext, call: &ToolCall) -> ToolOutcome {
        let started = Instant::now();
        let name = call.name();
        let Some(tool) = self.get(name) else {
            return ToolOutcome::failed(
                call,
                ErrorCode::ToolNotFound,
                format!("Error: {}", self.not_found_error(name).message()),
            );
        };
        let args = match decode_arguments(&call.function.arguments) {
            Ok(v) => v,
            Err(why) => {
                return ToolOutcome::failed(
                    call,
                    ErrorCode::ToolInvalidArgs,
                    format!(
                        "Error: invalid arguments for tool `{name}`; the tool was not run: {why}. Send the arguments as one JSON object."
                    ),
                );
            }
        };
        if let Err(e) = self.validate(name, &args) {
            return ToolOutcome::failed(call, e.code(), format!("Error: {}", e.message()));
        }
        let mut outcome = self.run_handler(tool, ctx, args, call).await;
        outcome.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        outcome
    }

    /// Runs a tool by name with already-decoded arguments (validation included).
    pub async fn invoke_args(
        &self,
        ctx: ToolContext,
        name: &str,
        args: serde_json::Value,
    ) -> ToolOutcome {
        let raw = args.to_string();
        let call = ToolCall::new(ctx.tool_call_id.clone(), name, raw);
        self.invoke(ctx, &call).await
    }

    async fn run_handler(
        &self,
        tool: Arc<dyn Tool>,
        ctx: ToolContext,
        args: serde_json::Value,
        call: &ToolCall,
    ) -> ToolOutcome {
        let cancel = ctx.cancel.clone();
        let name = call.name();
        let fut = match std::panic::catch_unwind(AssertUnwindSafe(|| tool.call(ctx, args))) {
            Ok(f) => f,
            Err(p) => return panicked(call, &p),
        };
        let result = tokio::select! {
            biased;
            r = AssertUnwindSafe(fut).catch_unwind() => r,
            () = cancel.cancelled() => {
                let mut o = ToolOutcome::failed(
                    call,
                    ErrorCode::Cancelled,
                    format!("Error: tool `{name}` was cancelled before it finished"),
                );
                o.handler_ran = true;
                return o;
            }
        };
        let mut outcome = match result {
            Err(p) => panicked(call, &p),
            Ok(Ok(output)) => ToolOutcome {
                tool_call_id: call.id.clone(),
                name: name.to_owned(),
                error_code: (!output.ok).then_some(ErrorCode::ToolFailed),
                output,
                interrupt: None,
                handler_ran: true,
                elapsed_ms: 0,
            },
            Ok(Err(e)) if e.code() == ErrorCode::HumanInputRequired => {
                match HumanInputRequest::from_error(&e, &call.id, name) {
                    Some(req) => ToolOutcome {
                        tool_call_id: call.id.clone(),
                        name: name.to_owned(),
                        output: ToolOutput::ok(format!("[waiting for user input: {}]", req.prompt))
                            .with_data("interaction_id", req.interaction_id.clone()),
                        error_code: Some(ErrorCode::HumanInputRequired),
                        interrupt: Some(req),
                        handler_ran: true,
                        elapsed_ms: 0,
                    },
                    None => ToolOutcome::failed(
                        call,
                        ErrorCode::ToolFailed,
                        format!("Error: {}", e.message()),
                    ),
                }
            }
            Ok(Err(e)) => {
                let code = match e.code() {
                    ErrorCode::ToolInvalidArgs
                    | ErrorCode::ToolDenied
                    | ErrorCode::ToolTimeout
                    | ErrorCode::SandboxUnavailable
                    | ErrorCode::RuntimeEnvMissing
                    | ErrorCode::NotesFull
                    | ErrorCode::BlackboardInvalid
                    | ErrorCode::Cancelled
                    | ErrorCode::McpFailed
                    | ErrorCode::McpUnavailable
                    | ErrorCode::ToolNotFound => e.code(),
                    _ => ErrorCode::ToolFailed,
                };
                let mut o = ToolOutcome::failed(call, code, format!("Error: {}", e.message()));
                if code == ErrorCode::ToolFailed && e.code() != ErrorCode::ToolFailed {
                    o.output = o.output.with_data("cause_code", e.code().as_str());
                }
                // A stable finer-grained reason (e.g. `fs.escape`, `fs.not_regular`).
                if let Some(reason) = e.detail("reason") {
                    o.output = o.output.with_data("reason", reason.clone());
                }
                o
            }
        };
        outcome.handler_ran = true;
        outcome
    }
}

fn panicked(call: &ToolCall, payload: &Box<dyn std::any::Any + Send>) -> ToolOutcome {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_owned());
    let mut o = ToolOutcome::failed(
        call,
        ErrorCode::ToolFailed,
        format!(
            "Error: tool `{}` crashed (panic: {what}); this is a bug in the tool, not in your arguments",
            call.name()
        ),
    );
    o.handler_ran = true;
    o
}
