//! Tool dispatch of one round: calls run concurrently when every tool of
//! the batch is concurrency-safe (bounded by `tool_batch_concurrency`), sequentially otherwise;
//! results are persisted in call order either way (each result in its own transaction that also
//! resolves it in the pending state). Cancellation mid-batch gives every unfinished call a
//! cancelled result, so the session is never left pending.

use std::sync::Arc;

use power_loop_contracts::event::*;
use power_loop_contracts::hook::*;
use power_loop_contracts::{ErrorCode, EventPayload, Message, Result, ToolCall, ToolOutput};
use power_loop_store::PendingInteraction;
use power_loop_tools::{ToolContext, ToolOutcome, ToolRegistry};
use serde_json::Value;

use super::state::Run;
use crate::convert::{call_args, truncate_output};
use crate::result::{RunStatus, StatefulResult};

pub(super) struct BatchOutcome {
    pub(super) used_todo: bool,
    pub(super) waiting: Option<PendingInteraction>,
    pub(super) cancelled: bool,
}

enum Prepared {
    /// Answered without running (hook veto / batch stopped).
    Answered(String),
    Run {
        name: String,
        args: Value,
    },
}

struct AbortOnDrop(Vec<tokio::task::JoinHandle<ToolOutcome>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for h in &self.0 {
            h.abort();
        }
    }
}

const SKIPPED_HUMAN: &str = "[skipped: superseded by a user-input request]";
const SKIPPED_AFTER: &str = "[skipped: tool.after hook stopped the batch]";
const CANCELLED_BEFORE: &str = "[cancelled: the run was cancelled before this tool call ran]";

impl Run {
    fn ctx_for(&self, idx: u32, call_id: &str) -> ToolContext {
        let mut ctx = ToolContext::new(Arc::clone(&self.ctx.env))
            .with_session(self.sid.clone())
            .with_round(idx)
            .with_tool_call_id(call_id)
            .with_cancel(self.cancel.child_token())
            .with_store(Arc::new(self.store.clone()));
        ctx.extensions = self.extensions.clone();
        ctx
    }

    async fn prepare(&mut self, idx: u32, call: &ToolCall) -> Result<Prepared> {
        let mut name = call.name().to_owned();
        let mut args = call_args(call);
        if let Some(h) = (!self.ctx.hooks.is_empty()).then_some(&self.ctx.hooks) {
            let site = self.call_site(idx, call, name, args);
            let mut ctx = ToolBeforeCtx::new(site, "[skipped by hook]");
            h.run_tool_before(&mut ctx).await?;
            if ctx.directive == ToolBeforeDirective::Skip {
                return Ok(Prepared::Answered(ctx.output));
            }
            name = ctx.tool_name;
            args = ctx.tool_args;
        }
        let (n2, a2, id) = (name.clone(), args.clone(), call.id.clone());
        self.emitter
            .emit(EventType::ToolCallStarted, Some(idx), false, || {
                EventPayload::ToolCallStarted(ToolCallStartedPayload {
                    name: n2,
                    tool_input: a2,
                    tool_call_id: id,
                })
            })?;
        Ok(Prepared::Run { name, args })
    }

    /// What the tool hook points of `call` (round `idx`) see, with the tool and arguments to run.
    fn call_site(&self, idx: u32, call: &ToolCall, name: String, args: Value) -> ToolCallSite {
        ToolCallSite {
            session_id: self.sid.clone(),
            round_index: idx,
            tool_call: Some(call.clone()),
            tool_name: name,
            tool_args: args,
        }
    }

    /// Runs `name(args)` for call `call_id` of round `idx` through `registry`, in this run's
    /// tool context, on the current task.
    async fn invoke_here(
        &self,
        idx: u32,
        registry: &ToolRegistry,
        call_id: &str,
        name: &str,
        args: &Value,
    ) -> ToolOutcome {
        Self::invoke(
            registry.clone(),
            self.ctx_for(idx, call_id),
            name.to_owned(),
            args.clone(),
        )
        .await
    }

    async fn invoke(
        registry: ToolRegistry,
        ctx: ToolContext,
        name: String,
        args: Value,
    ) -> ToolOutcome {
        registry.invoke_args(ctx, &name, args).await
    }

    /// Persists one tool result (resolving it in the pending state).
    async fn persist_result(
        &mut self,
        idx: u32,
        call: &ToolCall,
        name: &str,
        output: String,
    ) -> Result<()> {
        let max = self.ctx.config.tool_result_max_chars;
        let msg = Message::tool(call.id.clone(), truncate_output(output, max)).with_name(name);
        self.append_tool_results(vec![msg], idx).await
    }

    /// Hooks `tool.error` / `tool.after`, events, persistence for one executed call. Returns
    /// whether `tool.after` asked to stop the batch.
    async fn complete_call(
        &mut self,
        idx: u32,
        registry: &ToolRegistry,
        call: &ToolCall,
        name: &str,
        args: &Value,
        outcome: ToolOutcome,
    ) -> Result<bool> {
        if outcome.handler_ran {
            self.tally.tool_calls += 1;
        }
        self.todo_updated(idx, name, &outcome.output)?;
        let mut output = outcome.output.content.clone();
        let mut failed = outcome.is_failed();
        let hooks = (!self.ctx.hooks.is_empty()).then(|| self.ctx.hooks.clone());
        let handler_error = failed
            && outcome.handler_ran
            && !matches!(outcome.error_code, Some(ErrorCode::Cancelled));
        let site = hooks
            .is_some()
            .then(|| self.call_site(idx, call, name.to_owned(), args.clone()));
        if let (Some(h), Some(site), true) = (&hooks, &site, handler_error) {
            let code = outcome.error_code.map(|c| c.as_str()).unwrap_or_default();
            let mut ctx = ToolErrorCtx::new(site.clone(), code, error_text(&outcome.output));
            h.run_tool_error(&mut ctx).await?;
            match ctx.directive {
                ToolErrorDirective::Skip => {
                    if !ctx.output.is_empty() {
                        output = ctx.output;
                    }
                    failed = false;
                }
                ToolErrorDirective::Retry => {
                    let again = self.invoke_here(idx, registry, &call.id, name, args).await;
                    if again.is_failed() {
                        output = format!("Error (retry failed): {}", again.output.content);
                        failed = true;
                    } else {
                        output = again.output.content;
                        failed = false;
                    }
                }
                ToolErrorDirective::Continue => {}
            }
        }
        let mut stop = false;
        if let (Some(h), Some(site)) = (&hooks, site) {
            let mut ctx = ToolAfterCtx::new(site, output, failed);
            h.run_tool_after(&mut ctx).await?;
            output = ctx.output;
            failed = ctx.failed;
            stop = ctx.directive == ToolAfterDirective::Break;
        }
        let completed = ToolCallCompletedPayload {
            name: name.to_owned(),
            output: output.clone(),
            tool_input: args.clone(),
            tool_call_id: call.id.clone(),
            failed,
        };
        if failed {
            let failed = ToolCallFailedPayload {
                name: completed.name.clone(),
                output: completed.output.clone(),
                tool_input: completed.tool_input.clone(),
                tool_call_id: completed.tool_call_id.clone(),
            };
            self.emitter
                .emit(EventType::ToolCallFailed, Some(idx), false, || {
                    EventPayload::ToolCallFailed(failed)
                })?;
        }
        self.emitter
            .emit(EventType::ToolCallCompleted, Some(idx), false, || {
                EventPayload::ToolCallCompleted(completed)
            })?;
        self.persist_result(idx, call, name, output).await?;
        Ok(stop)
    }

    pub(super) async fn run_batch(
        &mut self,
        idx: u32,
        calls: &[ToolCall],
        registry: &ToolRegistry,
    ) -> Result<BatchOutcome> {
        let mut out = BatchOutcome {
            used_todo: false,
            waiting: None,
            cancelled: false,
        };
        if !self.ctx.hooks.is_empty() {
            let mut ctx = ToolsBatchBeforeCtx {
                session_id: self.sid.clone(),
                round_index: idx,
                messages: self.window.history.to_vec(),
                tool_calls: calls.to_vec(),
                output: "[skipped by batch hook]".into(),
                directive: ToolsBatchDirective::Continue,
            };
            self.ctx.hooks.run_tools_batch_before(&mut ctx).await?;
            if ctx.directive == ToolsBatchDirective::Skip {
                self.answer_all(calls, &ctx.output, idx).await?;
                return Ok(out);
            }
        }
        out.used_todo = calls.iter().any(|c| c.name() == "todo");
        let concurrent = calls.len() > 1
            && self.ctx.config.tool_batch_concurrency > 1
            && calls
                .iter()
                .all(|c| registry.get(c.name()).is_some_and(|t| t.concurrency_safe()));
        if concurrent {
            self.batch_concurrent(idx, calls, registry, &mut out)
                .await?;
        } else {
            self.batch_sequential(idx, calls, registry, &mut out)
                .await?;
        }
        out.cancelled = out.waiting.is_none() && self.cancel.is_cancelled();
        Ok(out)
    }

    async fn batch_sequential(
        &mut self,
        idx: u32,
        calls: &[ToolCall],
        registry: &ToolRegistry,
        out: &mut BatchOutcome,
    ) -> Result<()> {
        let mut stopped: Option<&'static str> = None;
        for call in calls {
            if let Some(why) = stopped {
                self.persist_result(idx, call, call.name(), why.to_owned())
                    .await?;
                continue;
            }
            if self.cancel.is_cancelled() {
                self.persist_result(idx, call, call.name(), CANCELLED_BEFORE.to_owned())
                    .await?;
                continue;
            }
            let (name, args) = match self.prepare(idx, call).await? {
                Prepared::Answered(o) => {
                    self.persist_result(idx, call, call.name(), o).await?;
                    continue;
                }
                Prepared::Run { name, args } => (name, args),
            };
            let outcome = self
                .invoke_here(idx, registry, &call.id, &name, &args)
                .await;
            let counted = outcome.handler_ran;
            if let Some(why) = self
                .settle(idx, registry, call, (&name, &args), outcome, counted, out)
                .await?
            {
                stopped = Some(why);
            }
        }
        Ok(())
    }

    /// Settles one finished call of a batch: an interrupt records the pending interaction and
    /// stops the batch (`SKIPPED_HUMAN`; the call counts toward the tally when `counted`);
    /// otherwise the result is completed, and a stop-after verdict stops the batch
    /// (`SKIPPED_AFTER`). Returns why the rest of the batch is skipped, if it is.
    #[allow(clippy::too_many_arguments)]
    async fn settle(
        &mut self,
        idx: u32,
        registry: &ToolRegistry,
        call: &ToolCall,
        (name, args): (&str, &Value),
        outcome: ToolOutcome,
        counted: bool,
        out: &mut BatchOutcome,
    ) -> Result<Option<&'static str>> {
        if let Some(req) = outcome.interrupt.clone() {
            if counted {
                self.tally.tool_calls += 1;
            }
            let interaction = to_interaction(req, &call.id, name);
            self.record_interaction(interaction.clone(), idx).await?;
            out.waiting = Some(interaction);
            return Ok(Some(SKIPPED_HUMAN));
        }
        let stop = self
            .complete_call(idx, registry, call, name, args, outcome)
            .await?;
        Ok(stop.then_some(SKIPPED_AFTER))
    }

    async fn batch_concurrent(
        &mut self,
        idx: u32,
        calls: &[ToolCall],
        registry: &ToolRegistry,
        out: &mut BatchOutcome,
    ) -> Result<()> {
        let limit = Arc::new(tokio::sync::Semaphore::new(
            self.ctx.config.tool_batch_concurrency.max(1),
        ));
        let mut prepared = Vec::with_capacity(calls.len());
        let mut handles = AbortOnDrop(Vec::new());
        for call in calls {
            if self.cancel.is_cancelled() {
                prepared.push((Prepared::Answered(CANCELLED_BEFORE.to_owned()), None));
                continue;
            }
            let p = self.prepare(idx, call).await?;
            let slot = match &p {
                Prepared::Answered(_) => None,
                Prepared::Run { name, args } => {
                    let (reg, ctx, n, a, lim) = (
                        registry.clone(),
                        self.ctx_for(idx, &call.id),
                        name.clone(),
                        args.clone(),
                        Arc::clone(&limit),
                    );
                    handles.0.push(tokio::spawn(async move {
                        let _permit = lim.acquire_owned().await;
                        Self::invoke(reg, ctx, n, a).await
                    }));
                    Some(handles.0.len() - 1)
                }
            };
            prepared.push((p, slot));
        }
        let mut stopped: Option<&'static str> = None;
        let mut results: Vec<Option<ToolOutcome>> = Vec::with_capacity(handles.0.len());
        for h in handles.0.iter_mut() {
            let r = h.await.map_err(|e| {
                power_loop_contracts::Error::internal(format!("a tool task failed to join: {e}"))
            });
            results.push(r.ok());
        }
        for (call, (p, slot)) in calls.iter().zip(prepared) {
            match (p, slot) {
                (Prepared::Answered(o), _) => {
                    self.persist_result(idx, call, call.name(), o).await?;
                }
                (Prepared::Run { name, args }, Some(i)) => {
                    if let Some(why) = stopped {
                        self.persist_result(idx, call, &name, why.to_owned())
                            .await?;
                        continue;
                    }
                    let outcome = results
                        .get_mut(i)
                        .and_then(Option::take)
                        .unwrap_or_else(|| ToolOutcome {
                            tool_call_id: call.id.clone(),
                            name: name.clone(),
                            output: ToolOutput::failed(format!(
                                "Error: tool `{name}` did not finish"
                            )),
                            error_code: Some(ErrorCode::ToolFailed),
                            interrupt: None,
                            handler_ran: true,
                            elapsed_ms: 0,
                        });
                    // A concurrent call's interrupt always counts (as before the refactor).
                    if let Some(why) = self
                        .settle(idx, registry, call, (&name, &args), outcome, true, out)
                        .await?
                    {
                        stopped = Some(why);
                    }
                }
                (Prepared::Run { name, .. }, None) => {
                    self.persist_result(idx, call, &name, CANCELLED_BEFORE.to_owned())
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// `resume`: executes the pending calls through the normal dispatch (hooks, events,
    /// counted), then the loop continues. Returns a terminal result when the batch ends the run.
    pub(super) async fn run_pending_calls(
        &mut self,
        calls: Vec<ToolCall>,
        idx: u32,
    ) -> Result<Option<StatefulResult>> {
        let Some(registry) = self.registry.clone() else {
            let msgs = calls
                .iter()
                .map(|c| {
                    Message::tool(
                        c.id.clone(),
                        format!("Error: tool '{}' has no registry on resume", c.name()),
                    )
                    .with_name(c.name())
                })
                .collect();
            self.append_tool_results(msgs, idx).await?;
            return Ok(None);
        };
        let outcome = self.run_batch(idx, &calls, &registry).await?;
        if let Some(interaction) = outcome.waiting {
            let mut r = self
                .finish(
                    RunStatus::WaitingForInput,
                    String::new(),
                    0,
                    "waiting_for_input",
                )
                .await?;
            r.pending_tool_calls = calls;
            r.pending_interactions = vec![interaction];
            return Ok(Some(r));
        }
        if outcome.cancelled {
            return self.cancelled_result(0, Some(idx)).await.map(Some);
        }
        Ok(None)
    }
}

fn to_interaction(
    req: power_loop_tools::HumanInputRequest,
    call_id: &str,
    name: &str,
) -> PendingInteraction {
    let mut i = PendingInteraction::new(req.interaction_id, call_id);
    i.tool_name = Some(name.to_owned());
    i.kind = Some(req.kind);
    i.prompt = Some(req.prompt);
    i.options = req.options;
    i.metadata = req.metadata;
    i
}

/// The error's own text for the `tool.error` hook: a call that failed through an error carries
/// the model-facing `Error: <message>` (and an `error_code` datum); the hook gets `<message>`.
/// A tool that returned a failed output itself keeps its text as is.
fn error_text(output: &ToolOutput) -> String {
    match output.content.strip_prefix("Error: ") {
        Some(own) if output.data.contains_key("error_code") => own.to_owned(),
        _ => output.content.clone(),
    }
}
