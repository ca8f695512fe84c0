//! Declarative sub-agents: a strict [`AgentSpec`],
//! [`run_agent_spec`], and the `spawn_agent` / `run_agent` tools.
//!
//! A child runs in its own session (linked to the parent, one level deeper; the store enforces
//! `max_spawn_depth`) on a sibling loop that shares the parent's model, store, hooks and event bus,
//! with the parent's registry filtered to the spec's whitelist. Lifecycle events
//! (`subagent_task_start`, `subagent_text`/`subagent_limit`, `subagent_completed`) are published on
//! the parent's bus with `source = "subagent"`.

use std::sync::Arc;

use power_loop_contracts::event::*;
use power_loop_contracts::{
    AgentEvent, Error, ErrorCode, EventPayload, Result, ToolDefinition, ToolOutput,
};
use power_loop_store::{JsonMap, NewSession, SubagentLifecycle};
use power_loop_tools::{FnTool, ToolRegistry, tool_fn};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::StatefulAgentLoop;
use crate::budget::RunUsage;
use crate::config::AgentLoopConfig;
use crate::result::RunStatus;
use crate::structured::StructuredOutputSpec;

const DEFAULT_DELEGATE_PROMPT: &str = "You are a focused sub-agent. Complete the delegated task concisely and report the result; do not ask questions.";

fn default_max_rounds() -> u32 {
    8
}

/// A declarative sub-agent (strict: unknown fields are rejected).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct AgentSpec {
    /// Non-empty name.
    pub name: String,
    /// Non-empty system prompt.
    pub system_prompt: String,
    /// Tool whitelist (`None` inherits every parent tool).
    #[serde(default)]
    pub tools: Option<Vec<String>>,
    /// Round cap, 1..=50 (default 8).
    #[serde(default = "default_max_rounds")]
    pub max_rounds: u32,
    /// Completion cap per call. `None` (the default) inherits the parent loop's
    /// `AgentLoopConfig::max_tokens` (which itself may defer to the provider's setting).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Temperature (default 0.0).
    #[serde(default)]
    pub temperature: f64,
    /// Model override.
    #[serde(default)]
    pub model: Option<String>,
    /// Output schema (`{"name", "schema"}` or a bare schema): the child's answer is validated.
    #[serde(default)]
    pub output_schema: Option<Value>,
    /// `ephemeral` (default), `linked` or `detached`.
    #[serde(default = "default_lifecycle")]
    pub lifecycle: String,
    /// Free metadata (`preset` is reported in `subagent_task_start`).
    #[serde(default)]
    pub metadata: JsonMap,
}

fn default_lifecycle() -> String {
    "ephemeral".to_owned()
}

fn spec_error(msg: impl Into<String>) -> Error {
    Error::new(ErrorCode::SpecInvalid, msg)
}

impl AgentSpec {
    /// A spec with defaults.
    pub fn new(name: impl Into<String>, system_prompt: impl Into<String>) -> Self {
        AgentSpec {
            name: name.into(),
            system_prompt: system_prompt.into(),
            tools: None,
            max_rounds: default_max_rounds(),
            max_tokens: None,
            temperature: 0.0,
            model: None,
            output_schema: None,
            lifecycle: default_lifecycle(),
            metadata: JsonMap::new(),
        }
    }

    /// Parses a JSON object (or a JSON string holding one) and validates it (code `spec.invalid`).
    pub fn from_json(v: &Value) -> Result<Self> {
        let obj = match v {
            Value::String(s) => serde_json::from_str::<Value>(s)
                .map_err(|e| spec_error(format!("AgentSpec JSON parse error: {e}")))?,
            other => other.clone(),
        };
        let Value::Object(map) = &obj else {
            return Err(spec_error("AgentSpec payload must decode to an object"));
        };
        const KNOWN: &[&str] = &[
            "name",
            "system_prompt",
            "tools",
            "max_rounds",
            "max_tokens",
            "temperature",
            "model",
            "output_schema",
            "lifecycle",
            "metadata",
        ];
        let mut unknown: Vec<&str> = map
            .keys()
            .map(String::as_str)
            .filter(|k| !KNOWN.contains(k))
            .collect();
        if !unknown.is_empty() {
            unknown.sort_unstable();
            return Err(spec_error(format!(
                "unknown AgentSpec field(s): {}",
                unknown.join(", ")
            )));
        }
        let missing: Vec<&str> = ["name", "system_prompt"]
            .into_iter()
            .filter(|k| !map.contains_key(*k))
            .collect();
        if !missing.is_empty() {
            return Err(spec_error(format!(
                "AgentSpec is missing required field(s): {}",
                missing.join(", ")
            )));
        }
        let spec: AgentSpec = serde_json::from_value(obj)
            .map_err(|e| spec_error(format!("invalid AgentSpec: {e}")))?;
        spec.validate()?;
        Ok(spec)
    }

    /// Checks the fields (name, system_prompt, max_rounds, max_tokens, lifecycle, output_schema).
    pub fn validate(&self) -> Result<()> {
        if self.name.trim().is_empty() {
            return Err(spec_error("AgentSpec.name must be a non-empty string"));
        }
        if self.system_prompt.trim().is_empty() {
            return Err(spec_error(
                "AgentSpec.system_prompt must be a non-empty string",
            ));
        }
        if !(1..=50).contains(&self.max_rounds) {
            return Err(spec_error("AgentSpec.max_rounds must be in [1, 50]"));
        }
        if self.max_tokens == Some(0) {
            return Err(spec_error(
                "AgentSpec.max_tokens must be a positive integer (or absent to inherit the parent's)",
            ));
        }
        self.lifecycle()?;
        if self.output_schema.as_ref().is_some_and(|s| !s.is_object()) {
            return Err(spec_error(
                "AgentSpec.output_schema must be an object or None",
            ));
        }
        Ok(())
    }

    fn lifecycle(&self) -> Result<SubagentLifecycle> {
        SubagentLifecycle::parse(&self.lifecycle)
            .map_err(|_| spec_error(format!("unknown lifecycle: {}", self.lifecycle)))
    }
}

/// What [`run_agent_spec`] returns.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct SubagentReport {
    /// The child session (`None` when rejected, or deleted after an ephemeral completed run).
    pub session_id: Option<String>,
    /// The child's status (`rejected` when the depth limit refused the spawn).
    pub status: String,
    /// The child's final text (or the rejection reason).
    pub final_text: String,
    /// Rounds run.
    pub rounds: u32,
    /// Depth of the child.
    pub depth: u32,
    /// The child's usage.
    pub usage: RunUsage,
    /// The child's validated structured answer, when it has an output schema.
    pub structured: Option<Value>,
}

fn publish(parent: &StatefulAgentLoop, parent_sid: Option<&str>, payload: EventPayload) {
    let mut ev = AgentEvent::new(payload).with_source("subagent");
    if let Some(s) = parent_sid {
        ev = ev.with_session(s);
    }
    let _ = parent.event_bus().publish(ev);
}

/// Runs a sub-agent to completion under `parent_sid` (or as a root session when `None`).
pub async fn run_agent_spec(
    parent: &StatefulAgentLoop,
    parent_sid: Option<&str>,
    spec: &AgentSpec,
    input: &str,
    spawn_tool_call_id: Option<&str>,
    cancel: Option<CancellationToken>,
) -> Result<SubagentReport> {
    spec.validate()?;
    let store = parent.store().await?.clone();
    let max = store.max_spawn_depth();
    let parent_row = match parent_sid {
        Some(s) => store.get_session(s).await?,
        None => None,
    };
    let depth = parent_row
        .as_ref()
        .map_or(0, |p| u32::try_from(p.spawn_depth).unwrap_or(0) + 1);
    if parent_row.is_some() && depth > max {
        return Ok(SubagentReport {
            session_id: None,
            status: "rejected".into(),
            final_text: format!("spawn rejected — depth {depth} exceeds max {max}"),
            rounds: 0,
            depth,
            usage: RunUsage::default(),
            structured: None,
        });
    }
    // A spec without its own cap inherits the parent loop's.
    let max_tokens = spec.max_tokens.or(parent.config().max_tokens);
    let mut cfg = AgentLoopConfig::default()
        .with_system_prompt(spec.system_prompt.clone())
        .with_max_rounds(spec.max_rounds)
        .with_max_tokens(max_tokens)
        .with_temperature(Some(spec.temperature))
        .with_model(spec.model.clone());
    if let Some(schema) = &spec.output_schema {
        cfg = cfg.with_structured_output(Some(StructuredOutputSpec::from_output_schema(schema)));
    }
    let mut conf = JsonMap::new();
    conf.insert("spec_name".into(), spec.name.clone().into());
    conf.insert("max_rounds".into(), spec.max_rounds.into());
    conf.insert(
        "max_tokens".into(),
        max_tokens.map_or(Value::Null, Value::from),
    );
    conf.insert("temperature".into(), spec.temperature.into());
    conf.insert(
        "model".into(),
        spec.model.clone().map_or(Value::Null, Value::String),
    );
    let mut new = NewSession::new()
        .with_system_prompt(spec.system_prompt.clone())
        .with_config(conf)
        .with_lifecycle(spec.lifecycle()?)
        .with_metadata(spec.metadata.clone());
    if parent_row.is_some() {
        if let Some(p) = parent_sid {
            new = new.with_parent(p);
        }
        if let Some(id) = spawn_tool_call_id.filter(|s| !s.is_empty()) {
            new = new.with_spawn_tool_call_id(id);
        }
    }
    let child_sid = store.create_session(new).await?;
    let preset = spec
        .metadata
        .get("preset")
        .and_then(Value::as_str)
        .unwrap_or("core")
        .to_owned();
    publish(
        parent,
        parent_sid,
        EventPayload::SubagentTaskStart(SubagentTaskStartPayload {
            task: input.to_owned(),
            preset,
            sub_session_id: child_sid.clone(),
            depth,
        }),
    );
    let registry = parent
        .tool_registry()
        .map(|r| r.filtered(spec.tools.as_deref()));
    let mut b = StatefulAgentLoop::builder(Arc::clone(parent.llm()))
        .store(store.clone())
        .config(cfg)
        .hooks(parent.hooks().clone())
        .event_bus(parent.event_bus().clone())
        .runtime_env(Arc::clone(parent.runtime_env()));
    if let Some(r) = registry {
        b = b.tools(r);
    }
    let child = b.build()?;
    let mut opts = crate::SendOptions::new();
    if let Some(c) = cancel {
        opts = opts.with_cancel(c);
    }
    let r = child.send_with(&child_sid, input, opts).await?;
    match r.status {
        RunStatus::Completed => publish(
            parent,
            parent_sid,
            EventPayload::SubagentText(SubagentTextPayload {
                sub_session_id: child_sid.clone(),
                status: r.status.as_str().into(),
                rounds: r.rounds,
                final_text: r.final_text.clone(),
            }),
        ),
        RunStatus::HitRoundLimit => publish(
            parent,
            parent_sid,
            EventPayload::SubagentLimit(SubagentLimitPayload {
                sub_session_id: child_sid.clone(),
                max_rounds: spec.max_rounds,
            }),
        ),
        _ => {}
    }
    publish(
        parent,
        parent_sid,
        EventPayload::SubagentCompleted(SubagentCompletedPayload {
            sub_session_id: child_sid.clone(),
            status: r.status.as_str().into(),
            rounds: r.rounds,
            final_text: r.final_text.clone(),
        }),
    );
    let mut session_id = Some(child_sid.clone());
    if spec.lifecycle == "ephemeral" && r.status == RunStatus::Completed {
        store.close_session(&child_sid, true).await?;
        session_id = None;
    }
    Ok(SubagentReport {
        session_id,
        status: r.status.as_str().into(),
        final_text: r.final_text,
        rounds: r.rounds,
        depth,
        usage: r.usage,
        structured: r.structured,
    })
}

fn format_report(r: &SubagentReport) -> String {
    let text = if r.final_text.is_empty() {
        "(no output)".to_owned()
    } else {
        r.final_text.clone()
    };
    if r.status == "completed" {
        text
    } else {
        format!("[sub-agent status={}]\n{text}", r.status)
    }
}

fn loop_of(ctx: &power_loop_tools::ToolContext, tool: &str) -> Result<Arc<StatefulAgentLoop>> {
    ctx.extension::<StatefulAgentLoop>().ok_or_else(|| {
        Error::new(
            ErrorCode::ToolFailed,
            format!("{tool} must be invoked from inside an active StatefulAgentLoop run"),
        )
    })
}

/// The `spawn_agent {task, system_prompt?, tools?, max_rounds?, name?}` tool.
pub fn spawn_agent_tool() -> FnTool {
    let def = ToolDefinition::new(
        "spawn_agent",
        "Delegate a task to a sub-agent and return its final answer.",
        json!({"type": "object", "properties": {
            "task": {"type": "string", "description": "What the sub-agent must do"},
            "system_prompt": {"type": "string"},
            "tools": {"type": "array", "items": {"type": "string"}},
            "max_rounds": {"type": "integer", "minimum": 1, "maximum": 50},
            "name": {"type": "string"}
        }, "required": ["task"]}),
    );
    tool_fn(def, |ctx, args| async move {
        let lp = loop_of(&ctx, "spawn_agent")?;
        let task = args["task"].as_str().unwrap_or_default().trim().to_owned();
        if task.is_empty() {
            return Err(Error::invalid_argument("spawn_agent requires 'task'."));
        }
        let mut spec = AgentSpec::new(
            args["name"].as_str().unwrap_or("delegate"),
            args["system_prompt"]
                .as_str()
                .filter(|s| !s.trim().is_empty())
                .unwrap_or(DEFAULT_DELEGATE_PROMPT),
        );
        spec.tools = args["tools"].as_array().map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        });
        spec.max_rounds = args["max_rounds"]
            .as_u64()
            .map_or(20, |n| u32::try_from(n).unwrap_or(u32::MAX));
        let r = run_agent_spec(
            &lp,
            Some(&ctx.session_id),
            &spec,
            &task,
            Some(&ctx.tool_call_id),
            Some(ctx.cancel.clone()),
        )
        .await?;
        Ok(ToolOutput::ok(format_report(&r)))
    })
}

/// The `run_agent {spec, input}` tool (spec as an object or a JSON string).
pub fn run_agent_tool() -> FnTool {
    let def = ToolDefinition::new(
        "run_agent",
        "Run a declarative sub-agent (AgentSpec) on an input and return its final answer.",
        json!({"type": "object", "properties": {
            "spec": {"type": ["object", "string"], "description": "AgentSpec: name, system_prompt, tools?, max_rounds?, output_schema?, lifecycle?"},
            "input": {"type": "string"}
        }, "required": ["spec", "input"]}),
    );
    tool_fn(def, |ctx, args| async move {
        let lp = loop_of(&ctx, "run_agent")?;
        let input = args["input"].as_str().unwrap_or_default().to_owned();
        if input.trim().is_empty() {
            return Err(Error::invalid_argument("run_agent requires 'input'."));
        }
        let spec = AgentSpec::from_json(&args["spec"])
            .map_err(|e| Error::new(e.code(), format!("invalid AgentSpec — {}", e.message())))?;
        let r = run_agent_spec(
            &lp,
            Some(&ctx.session_id),
            &spec,
            &input,
            Some(&ctx.tool_call_id),
            Some(ctx.cancel.clone()),
        )
        .await?;
        Ok(ToolOutput::ok(format_report(&r)))
    })
}

/// Registers `spawn_agent` (and `run_agent`) in `registry`.
pub fn register_subagent_tools(registry: &mut ToolRegistry, include_run_agent: bool) -> Result<()> {
    registry.register(spawn_agent_tool())?;
    if include_run_agent {
        registry.register(run_agent_tool())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_spec_validation() {
        let ok = AgentSpec::from_json(&json!({"name": "a", "system_prompt": "p"})).unwrap();
        assert_eq!(ok.max_rounds, 8);
        assert_eq!(ok.lifecycle, "ephemeral");
        let e = AgentSpec::from_json(&json!({"name": "a", "system_prompt": "p", "zz": 1, "aa": 2}))
            .unwrap_err();
        assert_eq!(e.message(), "unknown AgentSpec field(s): aa, zz");
        let e = AgentSpec::from_json(&json!({"name": "a"})).unwrap_err();
        assert!(e.message().contains("system_prompt"));
        let e = AgentSpec::from_json(&json!({"name": "a", "system_prompt": "p", "max_rounds": 0}))
            .unwrap_err();
        assert_eq!(e.message(), "AgentSpec.max_rounds must be in [1, 50]");
        let e = AgentSpec::from_json(&json!({"name": "a", "system_prompt": "p", "lifecycle": "x"}))
            .unwrap_err();
        assert_eq!(e.message(), "unknown lifecycle: x");
        let e = AgentSpec::from_json(&json!("{nope")).unwrap_err();
        assert!(e.message().starts_with("AgentSpec JSON parse error"));
        assert_eq!(e.code(), ErrorCode::SpecInvalid);
    }
}
