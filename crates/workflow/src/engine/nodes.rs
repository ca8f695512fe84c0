//! Container semantics (with the departures listed in `docs/workflows.md`, "Running"): `sequence`, `parallel`, `foreach`,
//! `branch`. Every node runs as a boxed future, so nesting depth costs heap, not stack.

use std::sync::Arc;

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use power_loop_agent::structured::json_type_name;
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use tracing::Instrument;

use super::leaf::run_leaf;
use super::observe;
use super::state::{NodeError, NodeResult, RunCtx, Scope};
use crate::reference::resolve_reference;
use crate::result::{AgentResult, LeafStatus};
use crate::spec::{BranchNode, ForeachItems, ForeachNode, Node, OnError, ParallelNode};

/// Runs any node.
pub(crate) fn run_node<'a>(
    ctx: &'a Arc<RunCtx>,
    node: &'a Node,
    scope: Scope,
) -> BoxFuture<'a, NodeResult> {
    let span = observe::step_span(node, &scope);
    let fut = async move {
        match node {
            Node::Agent(n) => {
                let key = format!("{}{}", scope.prefix, n.id);
                run_leaf(ctx, n, scope)
                    .instrument(observe::leaf_span(&key, &n.spec.name))
                    .await
            }
            Node::Sequence(n) => {
                let mut last = None;
                for (i, step) in n.steps.iter().enumerate() {
                    if let Some(r) = run_node(ctx, step, scope.child(i, &scope.cancel)).await? {
                        last = Some(r);
                    }
                    if ctx.stop_requested() {
                        break;
                    }
                }
                Ok(last)
            }
            Node::Parallel(n) => run_parallel(ctx, n, scope).await,
            Node::Foreach(n) => run_foreach(ctx, n, scope).await,
            Node::Branch(n) => run_branch(ctx, n, scope).await,
        }
    };
    match span {
        Some(span) => Box::pin(fut.instrument(span)),
        None => Box::pin(fut),
    }
}

/// Runs `jobs` (index, scope, node) at most `limit` at a time. Under `halt` the first error
/// cancels the siblings (their scope token) and is returned once they unwound; under `continue`
/// each error is recorded as `{label} error: …`. Returns each job's result by index.
async fn run_concurrently<'a>(
    ctx: &'a Arc<RunCtx>,
    jobs: Vec<(Scope, &'a Node)>,
    limit: u32,
    on_error: OnError,
    halt: &CancellationToken,
    label: &str,
) -> Result<Vec<Option<AgentResult>>, NodeError> {
    let sem = Arc::new(Semaphore::new(usize::try_from(limit.max(1)).unwrap_or(1)));
    let mut out: Vec<Option<AgentResult>> = vec![None; jobs.len()];
    let mut running: FuturesUnordered<_> = jobs
        .into_iter()
        .enumerate()
        .map(|(i, (scope, node))| {
            let sem = Arc::clone(&sem);
            async move {
                let Ok(_permit) = sem.acquire_owned().await else {
                    return (i, Ok(None));
                };
                // A halted sibling that never started produces nothing; a run-wide cancel still
                // reaches the leaves (they record the cancelled-before-start result).
                if halt.is_cancelled() && !ctx.run_cancelled() {
                    return (i, Ok(None));
                }
                (i, run_node(ctx, node, scope).await)
            }
        })
        .collect();
    let mut first_err: Option<NodeError> = None;
    while let Some((i, r)) = running.next().await {
        match r {
            Ok(v) => out[i] = v,
            Err(e) => match on_error {
                OnError::Continue => ctx.push_error(format!("{label} error: {}", e.0)),
                OnError::Halt => {
                    if first_err.is_none() {
                        halt.cancel();
                        first_err = Some(e);
                    }
                }
            },
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

async fn run_parallel(ctx: &Arc<RunCtx>, n: &ParallelNode, scope: Scope) -> NodeResult {
    let halt = scope.cancel.child_token();
    let jobs = n
        .branches
        .iter()
        .enumerate()
        .map(|(i, b)| (scope.child(i, &halt), b))
        .collect();
    let out = run_concurrently(
        ctx,
        jobs,
        n.max_concurrency,
        n.on_error,
        &halt,
        "parallel branch",
    )
    .await?;
    Ok(out.into_iter().flatten().last())
}

/// The key of a foreach: its id, or `#` + its order position for one without an id.
fn foreach_key(n: &ForeachNode, scope: &Scope) -> String {
    let id = match &n.id {
        Some(id) => id.clone(),
        None => {
            let pos: Vec<String> = scope.pos.iter().map(u32::to_string).collect();
            format!("#{}", pos.join("."))
        }
    };
    format!("{}{id}", scope.prefix)
}

async fn run_foreach(ctx: &Arc<RunCtx>, n: &ForeachNode, scope: Scope) -> NodeResult {
    let key = foreach_key(n, &scope);
    let items: Vec<Value> = match &n.items {
        ForeachItems::Items(v) => v.clone(),
        ForeachItems::ItemsFrom(r) => {
            let v = resolve_reference(r, &ctx.lock().live).map_err(NodeError)?;
            match v {
                Value::Array(a) => a,
                other => {
                    return Err(NodeError(format!(
                        "foreach items_from '{r}' did not resolve to a list (got {})",
                        json_type_name(&other)
                    )));
                }
            }
        }
    };
    ctx.grow_total(super::leaf_estimate(&n.body).saturating_mul(items.len() as u64));
    let halt = scope.cancel.child_token();
    let item_scope = |i: usize, item: &Value| {
        let mut s = scope.child(i, &halt);
        s.prefix = format!("{key}[{i}]/");
        s.env.insert(n.as_name.clone(), item.clone());
        s.item = Some((key.clone(), i64::try_from(i).unwrap_or(i64::MAX)));
        s
    };
    let mut outs: Vec<Option<AgentResult>> = Vec::with_capacity(items.len());
    let mut failed = false;
    if n.parallel {
        let jobs = items
            .iter()
            .enumerate()
            .map(|(i, item)| (item_scope(i, item), &*n.body))
            .collect();
        outs = run_concurrently(
            ctx,
            jobs,
            n.max_concurrency,
            n.on_error,
            &halt,
            "foreach item",
        )
        .await?;
    } else {
        for (i, item) in items.iter().enumerate() {
            match run_node(ctx, &n.body, item_scope(i, item)).await {
                Ok(r) => outs.push(r),
                Err(e) if n.on_error == OnError::Continue => {
                    ctx.push_error(format!("foreach item error: {}", e.0));
                    failed = true;
                    outs.push(None);
                }
                Err(e) => return Err(e),
            }
            if ctx.stop_requested() {
                break;
            }
        }
    }
    let last = outs.iter().flatten().last().cloned();
    if n.id.is_none() {
        return Ok(last);
    }
    let complete =
        outs.len() == items.len() && outs.iter().all(|o| o.as_ref().is_some_and(AgentResult::ok));
    let status = if complete {
        LeafStatus::Completed
    } else if ctx.run_cancelled() {
        LeafStatus::Cancelled
    } else if !failed && ctx.lock().budget_hit {
        LeafStatus::BudgetExceeded
    } else {
        LeafStatus::Failed
    };
    let leaves: Vec<&AgentResult> = outs.iter().flatten().collect();
    let mut agg = AgentResult::new(key.clone(), status);
    agg.text = leaves
        .iter()
        .map(|r| r.text.as_str())
        .collect::<Vec<_>>()
        .join("\n\n");
    agg.payload = Some(json!({
        "items": leaves
            .iter()
            .map(|r| r.payload.clone().unwrap_or_else(|| Value::String(r.text.clone())))
            .collect::<Vec<_>>()
    }));
    agg.usage = ctx.usage_under(&scope.pos);
    if !complete {
        let done = outs.iter().flatten().filter(|r| r.ok()).count();
        agg.error = Some(format!("{done} of {} items completed", items.len()));
    }
    let mut pos = scope.pos.clone();
    pos.push(u32::MAX);
    let unchanged = ctx.replay.get(&key).is_some_and(|r| r == &agg);
    ctx.settle(pos, &agg, scope.top_level(), false, false);
    if !unchanged {
        super::leaf::journal_step(ctx, &key, n.id.as_deref().unwrap_or(&key), &scope, &agg).await;
    }
    Ok(last)
}

async fn run_branch(ctx: &Arc<RunCtx>, n: &BranchNode, scope: Scope) -> NodeResult {
    let value = resolve_reference(&n.on, &ctx.lock().live).map_err(NodeError)?;
    let key = match &value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let idx = n.cases.iter().position(|(k, _)| *k == key);
    let chosen = match (idx, &n.default) {
        (Some(i), _) => Some((i, &n.cases[i].1)),
        (None, Some(d)) => Some((n.cases.len(), &**d)),
        (None, None) => None,
    };
    let untaken: u64 = n
        .cases
        .iter()
        .enumerate()
        .filter(|(i, _)| chosen.is_none_or(|(c, _)| c != *i))
        .map(|(_, (_, c))| super::leaf_estimate(c))
        .sum::<u64>()
        + n.default
            .as_deref()
            .filter(|_| chosen.is_none_or(|(c, _)| c != n.cases.len()))
            .map_or(0, super::leaf_estimate);
    ctx.shrink_total(untaken);
    let Some((i, node)) = chosen else {
        return Err(NodeError(format!(
            "branch on '{}' got value {value} with no matching case and no default",
            n.on
        )));
    };
    run_node(ctx, node, scope.child(i, &scope.cancel)).await
}
