//! The loop's entry points: `send`, `resume`, `submit_input`, `abort_pending` / `heal_pending`
//! and `follow_up`. Each runs under the session guard ([`super::guard`]), loads or takes the
//! session's window, sets up a [`Run`] and drives it to its end.

use std::future::Future;
use std::sync::Arc;

use power_loop_contracts::{Error, ErrorCode, Message, Result, ToolCall};
use power_loop_store::{PendingChange, PendingState, SessionStore, TurnCommit, WindowToken};
use power_loop_tools::{Extensions, ToolRegistry};
use tokio_util::sync::CancellationToken;

use super::StatefulAgentLoop;
use crate::convert::{row_to_message, to_new_message};
use crate::emit::Emitter;
use crate::result::{
    FollowUpOutcome, FollowUpQueued, RunStatus, SendOptions, StatefulResult, UserInput,
};
use crate::run::{Run, RunSetup};

/// The session's own system prompt; `session.not_found` when the session does not exist.
async fn session_prompt(store: &SessionStore, sid: &str) -> Result<Option<String>> {
    let session = store
        .get_session(sid)
        .await?
        .ok_or_else(|| Error::session_not_found(sid))?;
    Ok(session.system_prompt)
}

fn pending_error(sid: &str, p: &PendingState) -> Error {
    let names: Vec<String> = p
        .tool_calls
        .iter()
        .filter_map(|c| c.pointer("/function/name").and_then(|n| n.as_str()))
        .map(str::to_owned)
        .collect();
    let count = p.unresolved_ids().len().max(p.tool_calls.len());
    let waiting = if p.pending_interactions.is_empty() {
        String::new()
    } else {
        format!(
            " and {} open user-input request(s)",
            p.pending_interactions.len()
        )
    };
    Error::new(
        ErrorCode::SessionPending,
        format!(
            "session `{sid}` has {count} unresolved tool call(s) [{}]{waiting}; recover with resume(), abort_pending() (or heal_pending()), or send with heal_pending=true",
            names.join(", ")
        ),
    )
    .with_detail("session_id", sid)
    .with_detail("assistant_seq", p.assistant_seq)
    .with_detail("pending_tool_calls", serde_json::Value::Array(p.tool_calls.clone()))
}

/// The result of a session that still waits for user input.
fn waiting_for_input(sid: &str, p: &PendingState) -> StatefulResult {
    let mut r = StatefulResult::new(sid, RunStatus::WaitingForInput);
    r.pending_tool_calls = calls_of(p);
    r.pending_interactions = p.pending_interactions.clone();
    r
}

fn calls_of(p: &PendingState) -> Vec<ToolCall> {
    p.tool_calls
        .iter()
        .filter_map(|c| serde_json::from_value::<ToolCall>(c.clone()).ok())
        .collect()
}

impl StatefulAgentLoop {
    /// Sends user input (text, parts or a message) and runs the loop to a terminal outcome.
    pub async fn send(
        &self,
        session_id: &str,
        input: impl Into<UserInput>,
    ) -> Result<StatefulResult> {
        self.send_with(session_id, input, SendOptions::default())
            .await
    }

    /// [`send`](Self::send) with options (cancellation, tool selection, prompt override, heal).
    pub async fn send_with(
        &self,
        session_id: &str,
        input: impl Into<UserInput>,
        opts: SendOptions,
    ) -> Result<StatefulResult> {
        self.check_open()?;
        let _in = self.enter();
        let input = input.into();
        let fence = opts.fence.clone();
        self.with_session_fenced(session_id, fence, |store| async move {
            self.send_locked(&store, session_id, input, opts).await
        })
        .await
    }

    async fn send_locked(
        &self,
        store: &SessionStore,
        sid: &str,
        input: UserInput,
        opts: SendOptions,
    ) -> Result<StatefulResult> {
        let (session, state) = store.get_session_and_state(sid).await?;
        let session = session.ok_or_else(|| Error::session_not_found(sid))?;
        let mut state = state.ok_or_else(|| Error::session_not_found(sid))?;
        if let Some(p) = state.pending.as_ref().filter(|p| !p.is_empty()) {
            if !opts.heal_pending {
                return Err(pending_error(sid, p));
            }
            let n = self
                .abort_locked(store, sid, "auto-healed by send(heal_pending=True)")
                .await?;
            tracing::warn!(target: "power_loop::agent", session = sid, aborted = n, "healed a pending session before sending");
            state = store
                .get_state(sid)
                .await?
                .ok_or_else(|| Error::session_not_found(sid))?;
        }
        // The user message is committed with the run's first durable write (one transaction
        // for a no-tool send), or alone before the run returns; see `run::state::DeferredUser`.
        let persist_first = opts.persist_input_first;
        let new = to_new_message(&input.0, None);
        let before = WindowToken {
            next_seq: state.next_seq,
            last_compact_seq: state.last_compact_seq,
        };
        // The run owns the window while it runs (taken out of the cache, put back updated by
        // `finish_run`), so appending to the history never copies it.
        let (history, seqs, token) = match self.shared.cache.take(sid, before) {
            Some((msgs, seqs)) => (msgs, seqs, before),
            None => self.load_fresh(store, sid).await?,
        };
        let registry = self.registry_for(&opts);
        let system_prompt = self.build_prompt(
            opts.system_prompt.as_deref(),
            session.system_prompt,
            registry.as_ref(),
        );
        let mut run = self
            .new_run(
                store,
                sid,
                registry,
                system_prompt,
                opts.cancel,
                (history, seqs, token),
            )
            .with_cancel_handle(opts.cancel_handle);
        run.defer_user(new);
        if persist_first {
            run.flush_user().await?;
        }
        self.finish_run(store, sid, run, true).await
    }

    /// A run of session `sid` over `window` (history, seqs, token).
    fn new_run(
        &self,
        store: &SessionStore,
        sid: &str,
        registry: Option<ToolRegistry>,
        system_prompt: String,
        cancel: Option<CancellationToken>,
        window: (Arc<Vec<Message>>, Vec<Option<i64>>, WindowToken),
    ) -> Run {
        let (history, seqs, token) = window;
        let mut extensions = Extensions::new();
        extensions.insert(Arc::new(self.clone()));
        Run::new(RunSetup {
            ctx: Arc::clone(&self.shared.run_ctx),
            store: store.clone(),
            sid: sid.to_owned(),
            emitter: Emitter {
                bus: self.shared.bus.clone(),
                sid: Arc::from(sid),
            },
            registry,
            system_prompt,
            cancel,
            extensions,
            history,
            seqs,
            token,
        })
    }

    /// Drives `run` to its end, then puts its window back in the cache (or invalidates it) and
    /// adds the stats its terminal write did not carry.
    async fn finish_run(
        &self,
        store: &SessionStore,
        sid: &str,
        run: Run,
        use_cache: bool,
    ) -> Result<StatefulResult> {
        let end = run.run_to_end(use_cache).await;
        match end.window {
            Some((token, window)) => self.shared.cache.put(sid, token, window),
            None => self.shared.cache.invalidate(sid),
        }
        if let Some(stats) = end.stats
            && let Err(e) = store.bump_session_stats(sid, stats).await
        {
            tracing::warn!(target: "power_loop::agent", session = sid, error = %e, "updating session stats failed");
        }
        end.result
    }

    async fn load_fresh(
        &self,
        store: &SessionStore,
        sid: &str,
    ) -> Result<(Arc<Vec<Message>>, Vec<Option<i64>>, WindowToken)> {
        let (token, rows) = store.load_active_window(sid).await?;
        Ok((
            Arc::new(rows.iter().map(row_to_message).collect()),
            rows.iter().map(|r| Some(r.seq)).collect(),
            token,
        ))
    }

    /// Runs the loop on the session's freshly loaded window (never cached afterwards), first
    /// dispatching `pending` calls (with their round) when given.
    async fn run_fresh(
        &self,
        store: &SessionStore,
        sid: &str,
        session_prompt: Option<String>,
        cancel: Option<CancellationToken>,
        pending: Option<(Vec<ToolCall>, u32)>,
    ) -> Result<StatefulResult> {
        let window = self.load_fresh(store, sid).await?;
        let registry = self.shared.tools.clone();
        let prompt = self.build_prompt(None, session_prompt, registry.as_ref());
        let mut run = self.new_run(store, sid, registry, prompt, cancel, window);
        if let Some((calls, round)) = pending {
            run = run.with_pending_calls(calls, round);
        }
        self.finish_run(store, sid, run, false).await
    }

    /// Continues a session: answers waiting interactions with `waiting_for_input`, else runs the
    /// pending tool calls through the normal dispatch (hooks, events, counted) and then the
    /// loop; with nothing pending, runs one more loop on the history.
    pub async fn resume(
        &self,
        session_id: &str,
        cancel: Option<CancellationToken>,
    ) -> Result<StatefulResult> {
        self.with_session_uncached(session_id, |store| async move {
            self.resume_locked(&store, session_id, cancel).await
        })
        .await
    }

    /// Runs `body` under the session guard, marked in flight, then drops the session's cached
    /// window (`resume` and `submit_input` run on a freshly loaded one and never cache it).
    async fn with_session_uncached<T, F, Fut>(&self, sid: &str, body: F) -> Result<T>
    where
        F: FnOnce(SessionStore) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let _in = self.enter();
        self.with_session(sid, |store| async move {
            let out = body(store).await;
            self.shared.cache.invalidate(sid);
            out
        })
        .await
    }

    async fn resume_locked(
        &self,
        store: &SessionStore,
        sid: &str,
        cancel: Option<CancellationToken>,
    ) -> Result<StatefulResult> {
        let session_prompt = session_prompt(store, sid).await?;
        let pending = store.get_pending(sid).await?;
        if let Some(p) = pending
            .as_ref()
            .filter(|p| !p.pending_interactions.is_empty())
        {
            return Ok(waiting_for_input(sid, p));
        }
        let calls = pending.filter(|p| p.has_unresolved()).map(|p| {
            let mut calls = calls_of(&p);
            for id in &p.tool_call_ids {
                if !calls.iter().any(|c| &c.id == id) {
                    calls.push(ToolCall::new(id.clone(), "unknown", "{}"));
                }
            }
            (calls, u32::try_from(p.round_index).unwrap_or(0))
        });
        self.run_fresh(store, sid, session_prompt, cancel, calls)
            .await
    }

    /// Answers a pending human-input interaction and continues the run when none remain.
    pub async fn submit_input(
        &self,
        session_id: &str,
        interaction_id: &str,
        value: serde_json::Value,
        cancel: Option<CancellationToken>,
    ) -> Result<StatefulResult> {
        self.with_session_uncached(session_id, |store| async move {
            self.submit_locked(&store, session_id, interaction_id, value, cancel)
                .await
        })
        .await
    }

    async fn submit_locked(
        &self,
        store: &SessionStore,
        sid: &str,
        interaction_id: &str,
        value: serde_json::Value,
        cancel: Option<CancellationToken>,
    ) -> Result<StatefulResult> {
        let session_prompt = session_prompt(store, sid).await?;
        let pending = store.get_pending(sid).await?.unwrap_or_default();
        let Some(interaction) = pending
            .pending_interactions
            .iter()
            .find(|i| i.interaction_id == interaction_id)
            .cloned()
        else {
            return Err(Error::invalid_argument(format!(
                "pending interaction not found: {interaction_id}"
            )));
        };
        let content = crate::convert::json_text(&value);
        let name = interaction
            .tool_name
            .clone()
            .unwrap_or_else(|| "request_user_input".to_owned());
        let msg = Message::tool(interaction.tool_call_id.clone(), content).with_name(name);
        let iid = interaction_id.to_owned();
        let call_id = interaction.tool_call_id.clone();
        let round = pending.round_index;
        let update = PendingChange::Update(Box::new(move |cur| {
            let mut p = cur?;
            p.pending_interactions.retain(|i| i.interaction_id != iid);
            p.resolve(&call_id, Some(round));
            (!p.is_empty()).then_some(p)
        }));
        store
            .commit_turn(
                sid,
                TurnCommit::new(vec![to_new_message(&msg, Some(round))]).with_pending(update),
            )
            .await?;
        let left = store.get_pending(sid).await?;
        if let Some(p) = left.as_ref().filter(|p| !p.pending_interactions.is_empty()) {
            return Ok(waiting_for_input(sid, p));
        }
        let calls = left
            .filter(|p| p.has_unresolved())
            .map(|p| (calls_of(&p), u32::try_from(p.round_index).unwrap_or(0)));
        self.run_fresh(store, sid, session_prompt, cancel, calls)
            .await
    }

    /// Answers every unresolved tool call with `<aborted: reason>` (one transaction, which also
    /// clears the pending state, including id-less calls). Takes the session lock and lease.
    /// Returns the number of calls aborted.
    pub async fn abort_pending(&self, session_id: &str, reason: &str) -> Result<usize> {
        self.with_session(session_id, |store| async move {
            if store.get_state(session_id).await?.is_none() {
                return Err(Error::session_not_found(session_id));
            }
            self.abort_locked(&store, session_id, reason).await
        })
        .await
    }

    /// `abort_pending` with the reason `healed by heal_pending()`.
    pub async fn heal_pending(&self, session_id: &str) -> Result<usize> {
        self.abort_pending(session_id, "healed by heal_pending()")
            .await
    }

    async fn abort_locked(&self, store: &SessionStore, sid: &str, reason: &str) -> Result<usize> {
        let Some(p) = store.get_pending(sid).await? else {
            return Ok(0);
        };
        let mut calls = calls_of(&p);
        for id in &p.tool_call_ids {
            if !calls.iter().any(|c| &c.id == id) {
                calls.push(ToolCall::new(id.clone(), "", "{}"));
            }
        }
        let text = format!("<aborted: {reason}>");
        let msgs: Vec<_> = calls
            .iter()
            .filter(|c| !c.id.is_empty())
            .map(|c| {
                let mut m = Message::tool(c.id.clone(), text.clone());
                if !c.name().is_empty() {
                    m = m.with_name(c.name());
                }
                to_new_message(&m, Some(p.round_index))
            })
            .collect();
        let n = calls.len();
        store
            .commit_turn(
                sid,
                TurnCommit::new(msgs).with_pending(PendingChange::Clear),
            )
            .await?;
        self.shared.cache.invalidate(sid);
        Ok(n)
    }

    /// Like `send`, but when a run is in progress on the session the input is queued and merged
    /// into that run's next round (in-process queue).
    pub async fn follow_up(
        &self,
        session_id: &str,
        input: impl Into<UserInput>,
        opts: SendOptions,
    ) -> Result<FollowUpOutcome> {
        self.check_open()?;
        let input = input.into();
        let lock = self.shared.lock_for(session_id);
        if lock.try_lock().is_err() {
            let store = self.store().await?;
            if store.get_state(session_id).await?.is_none() {
                return Err(Error::session_not_found(session_id));
            }
            let queue_depth = self.shared.run_ctx.follow_ups.push(session_id, input);
            return Ok(FollowUpOutcome::Queued(FollowUpQueued {
                session_id: session_id.to_owned(),
                queue_depth,
            }));
        }
        let opts = SendOptions {
            heal_pending: false,
            ..opts
        };
        self.send_with(session_id, input, opts)
            .await
            .map(|r| FollowUpOutcome::Ran(Box::new(r)))
    }
}
