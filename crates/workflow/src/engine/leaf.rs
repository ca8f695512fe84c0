//! An `agent` leaf (with the departures listed in `docs/workflows.md`, "Running"): replay, cancellation and budget
//! gates, input rendering, the executor call, the structured payload and the journal write.

use std::sync::Arc;
use std::time::Instant;

use power_loop_agent::parse_structured;
use serde_json::{Map, Value};

use super::observe;
use super::state::{NodeError, NodeResult, RunCtx, Scope};
use crate::executor::LeafRequest;
use crate::result::{AgentResult, LeafStatus};
use crate::spec::{AgentNode, OutputSchema};
use crate::template::render_template;

/// Error text of a leaf cancelled before it started.
pub const CANCELLED_BEFORE_START: &str = "workflow cancelled before this step started";
/// Error text of a leaf refused by the shared budget.
pub const BUDGET_EXHAUSTED: &str = "shared token budget exhausted";

pub(crate) async fn run_leaf(ctx: &Arc<RunCtx>, node: &AgentNode, scope: Scope) -> NodeResult {
    let key = format!("{}{}", scope.prefix, node.id);
    // 1. Replay a step an earlier attempt completed (a completed step whose declared payload is
    //    missing is re-run instead of replaying the gap forever).
    if let Some(cached) = ctx.replay.get(&key)
        && (node.output_schema.is_none() || cached.payload.is_some())
    {
        let cached = cached.clone();
        if let Some(b) = &ctx.budget {
            b.commit(&cached.usage);
        }
        ctx.lock().replayed += 1;
        ctx.settle(scope.pos.clone(), &cached, scope.top_level(), true, true);
        return Ok(Some(cached));
    }
    // 2. Cancellation: the run's → a recorded cancelled-before-start result; a halting
    //    sibling's → nothing (the node is skipped).
    if scope.cancel.is_cancelled() {
        if !ctx.run_cancelled() {
            return Ok(None);
        }
        ctx.lock().cancelled = true;
        let mut r = AgentResult::new(key.clone(), LeafStatus::Cancelled);
        r.error = Some(CANCELLED_BEFORE_START.into());
        finish(ctx, &key, node, &scope, &r, false).await;
        return Ok(None);
    }
    // 3. Budget.
    if let Some(b) = &ctx.budget
        && !b.can_spawn()
    {
        ctx.lock().budget_hit = true;
        let mut r = AgentResult::new(key.clone(), LeafStatus::BudgetExceeded);
        r.error = Some(BUDGET_EXHAUSTED.into());
        finish(ctx, &key, node, &scope, &r, false).await;
        return Ok(None);
    }
    // 4–5. Input and effective spec.
    let input = leaf_input(ctx, node, &scope);
    let mut spec = node.spec.clone();
    spec.system_prompt = render_template(&spec.system_prompt, &scope.env);
    spec.lifecycle = "linked".into();
    spec.output_schema = node.output_schema.as_ref().map(OutputSchema::to_value);
    if let Some(run_id) = &ctx.run_id {
        let m = &mut spec.metadata;
        m.insert("workflow_run_id".into(), run_id.clone().into());
        m.insert("workflow_node_id".into(), node.id.clone().into());
        m.insert("workflow_step_key".into(), key.clone().into());
        m.insert("idempotency_key".into(), format!("{run_id}:{key}").into());
    }
    // 6. Run.
    let mut request = LeafRequest::new(
        spec,
        input,
        ctx.lp.clone(),
        ctx.driver.clone(),
        key.clone(),
        scope.cancel.clone(),
    );
    if let Some(j) = &ctx.journal {
        request = request.with_attempt(j.attempt);
    }
    ctx.lock().executed += 1;
    let started = Instant::now();
    let outcome = match ctx.executor.run_leaf(request).await {
        Ok(o) => o,
        Err(e) => {
            let mut r = AgentResult::new(key.clone(), LeafStatus::Failed);
            r.error = Some(format!("{} ({})", e.message(), e.code()));
            observe::leaf_completed(ctx, &node.spec.name, &r, started);
            finish(ctx, &key, node, &scope, &r, true).await;
            return Err(NodeError(format!(
                "leaf '{key}' raised an error: {} ({})",
                e.message(),
                e.code()
            )));
        }
    };
    let mut r = AgentResult::new(key.clone(), outcome.status);
    r.text = outcome.final_text;
    r.usage = outcome.usage;
    r.session_id = outcome.session_id;
    r.error = outcome.error;
    r.db_path = outcome.db_path;
    // 8. Structured payload: the child's validated answer, else the lenient parse.
    if let Some(schema) = &node.output_schema
        && r.status == LeafStatus::Completed
    {
        match outcome.payload {
            Some(p) => r.payload = Some(p),
            None => match fallback_payload(&r.text, &schema.schema) {
                Ok(p) => r.payload = Some(p),
                Err(reason) => {
                    let msg = format!(
                        "output_schema parse failed for '{key}': structured output rejected ({reason})"
                    );
                    r.error = Some(msg.clone());
                    ctx.push_error(msg);
                }
            },
        }
    }
    observe::leaf_completed(ctx, &node.spec.name, &r, started);
    finish(ctx, &key, node, &scope, &r, true).await;
    match r.status {
        LeafStatus::Completed => Ok(Some(r)),
        LeafStatus::Cancelled => {
            // Stopped by the run's cancellation (counts against the run) or by a halting
            // sibling (the sibling's error already fails the run).
            if ctx.run_cancelled() {
                ctx.lock().cancelled = true;
                ctx.push_error(format!("leaf '{key}' was cancelled"));
            }
            Ok(Some(r))
        }
        st => Err(NodeError(format!(
            "leaf '{key}' ended with status {st}{}",
            r.error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        ))),
    }
}

/// Records a settled leaf in the run state and the journal.
async fn finish(
    ctx: &Arc<RunCtx>,
    key: &str,
    node: &AgentNode,
    scope: &Scope,
    r: &AgentResult,
    real: bool,
) {
    if let Some(b) = &ctx.budget {
        b.commit(&r.usage);
    }
    ctx.settle(scope.pos.clone(), r, scope.top_level(), true, real);
    journal_step(ctx, key, &node.id, scope, r).await;
}

/// Writes one step to the journal (when the run has one). A refused write means another
/// attempt owns the run: this one is cancelled. A failed write is a run error.
pub(crate) async fn journal_step(
    ctx: &Arc<RunCtx>,
    key: &str,
    node_id: &str,
    scope: &Scope,
    r: &AgentResult,
) {
    let Some(j) = &ctx.journal else { return };
    match j.record(key, node_id, scope.item.as_ref(), r).await {
        Ok(true) => {}
        Ok(false) => {
            ctx.push_error(format!(
                "journal: step '{key}' was refused (the run was finished or resumed elsewhere); stopping this attempt"
            ));
            ctx.cancel.cancel();
        }
        Err(e) => ctx.push_error(format!("journal: could not record step '{key}': {e}")),
    }
}

/// The rendered input plus the `inputs_from` context block.
fn leaf_input(ctx: &RunCtx, node: &AgentNode, scope: &Scope) -> String {
    let input = render_template(&node.input, &scope.env);
    if node.inputs_from.is_empty() {
        return input;
    }
    let st = ctx.lock();
    let texts: Vec<&str> = node
        .inputs_from
        .iter()
        .filter_map(|id| st.live.get(id).map(|r| r.text.as_str()))
        .collect();
    if texts.is_empty() {
        input
    } else {
        format!("{input}\n\n--- context ---\n{}", texts.join("\n\n"))
    }
}

/// The lenient parse of a leaf's answer (see `docs/workflows.md`, "Running"): a JSON object found in the text, whose top-level
/// `type` (absent or `object`) and `required` keys the schema allows. Err is the reason.
pub(crate) fn fallback_payload(text: &str, schema: &Value) -> Result<Value, String> {
    let v = parse_structured(text, None).map_err(|e| {
        let reason = e
            .detail("reason")
            .and_then(Value::as_str)
            .unwrap_or("invalid_json");
        if reason == "not_object" {
            format!("not_object: {}", e.message())
        } else {
            reason.to_owned()
        }
    })?;
    let empty = Map::new();
    let schema = schema.as_object().unwrap_or(&empty);
    if let Some(t) = schema.get("type").and_then(Value::as_str)
        && t != "object"
    {
        return Err(format!("not_object: schema requires type='{t}'"));
    }
    let obj = v.as_object().unwrap_or(&empty);
    if let Some(req) = schema.get("required").and_then(Value::as_array) {
        for f in req.iter().filter_map(Value::as_str) {
            if !obj.contains_key(f) {
                return Err(format!("missing_required:{f}"));
            }
        }
    }
    Ok(v)
}
