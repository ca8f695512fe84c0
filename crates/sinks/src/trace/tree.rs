//! The span state machine: which span opens and closes on which event, for any span backend.
//!
//! Every exit path closes what it opened: `session_ended` closes the send with everything under
//! it (whatever the reason: completed, degraded, cancelled, pending_tools, error, hook_break);
//! a new `session_started` for a session whose previous send never ended closes that orphan as
//! `abandoned`; [`SpanTree::close_all`] (flush / drop) closes everything.

use std::collections::{BTreeMap, HashMap};

use power_loop_contracts::event::StatusChanged;
use power_loop_contracts::{AgentEvent, EventPayload};

use super::TraceOptions;
use super::semconv as k;

/// The kinds of span in the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Session,
    Send,
    Round,
    Chat,
    Tool,
    Compaction,
}

/// An attribute value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val {
    Str(String),
    I64(i64),
    F64(f64),
    Bool(bool),
}

impl From<&str> for Val {
    fn from(s: &str) -> Self {
        Val::Str(s.to_owned())
    }
}
impl From<String> for Val {
    fn from(s: String) -> Self {
        Val::Str(s)
    }
}
impl From<i64> for Val {
    fn from(v: i64) -> Self {
        Val::I64(v)
    }
}
impl From<u32> for Val {
    fn from(v: u32) -> Self {
        Val::I64(i64::from(v))
    }
}
impl From<u64> for Val {
    fn from(v: u64) -> Self {
        Val::I64(i64::try_from(v).unwrap_or(i64::MAX))
    }
}
impl From<f64> for Val {
    fn from(v: f64) -> Self {
        Val::F64(v)
    }
}
impl From<bool> for Val {
    fn from(v: bool) -> Self {
        Val::Bool(v)
    }
}

pub(crate) type Attrs = Vec<(&'static str, Val)>;

/// Where spans are made: native `tracing` spans or OpenTelemetry API spans.
pub(crate) trait Backend {
    type Span;
    /// Starts a span (`parent = None`: a root).
    fn start(
        &self,
        kind: Kind,
        name: String,
        parent: Option<&Self::Span>,
        attrs: Attrs,
    ) -> Self::Span;
    /// Adds attributes to an open span.
    fn set(&self, span: &Self::Span, attrs: Attrs);
    /// Marks a span failed with a description.
    fn fail(&self, span: &Self::Span, description: &str);
    /// Ends a span.
    fn end(&self, span: Self::Span);
}

struct Child<S> {
    round: Option<u32>,
    span: S,
}

struct Send<S> {
    span: S,
    rounds: BTreeMap<u32, S>,
    llm: HashMap<String, Child<S>>,
    tools: HashMap<String, Child<S>>,
    compaction: Option<Child<S>>,
}

struct Session<S> {
    span: Option<S>,
    send: Option<Send<S>>,
    used: u64,
}

/// The open spans, keyed by session id.
pub(crate) struct SpanTree<B: Backend> {
    backend: B,
    opts: TraceOptions,
    sessions: HashMap<String, Session<B::Span>>,
    tick: u64,
}

impl<B: Backend> SpanTree<B> {
    pub(crate) fn new(backend: B, opts: TraceOptions) -> Self {
        SpanTree {
            backend,
            opts,
            sessions: HashMap::new(),
            tick: 0,
        }
    }

    /// Number of spans currently open (for tests and diagnostics).
    pub(crate) fn open_spans(&self) -> usize {
        self.sessions
            .values()
            .map(|s| {
                usize::from(s.span.is_some())
                    + s.send.as_ref().map_or(0, |d| {
                        1 + d.rounds.len()
                            + d.llm.len()
                            + d.tools.len()
                            + usize::from(d.compaction.is_some())
                    })
            })
            .sum()
    }

    fn session(&mut self, sid: &str) -> &mut Session<B::Span> {
        self.tick += 1;
        if !self.sessions.contains_key(sid) {
            self.evict_idle();
            let span = self.opts.session_span.then(|| {
                self.backend.start(
                    Kind::Session,
                    k::SESSION_SPAN.to_owned(),
                    None,
                    vec![
                        (k::CONVERSATION_ID, sid.into()),
                        (k::SESSION_ID, sid.into()),
                    ],
                )
            });
            self.sessions.insert(
                sid.to_owned(),
                Session {
                    span,
                    send: None,
                    used: 0,
                },
            );
        }
        let tick = self.tick;
        let s = self
            .sessions
            .entry(sid.to_owned())
            .or_insert_with(|| Session {
                span: None,
                send: None,
                used: 0,
            });
        s.used = tick;
        s
    }

    /// Ends the least recently used idle sessions while the cap is reached.
    fn evict_idle(&mut self) {
        while self.sessions.len() >= self.opts.max_open_sessions {
            let victim = self
                .sessions
                .iter()
                .filter(|(_, s)| s.send.is_none())
                .min_by_key(|(_, s)| s.used)
                .map(|(id, _)| id.clone());
            let Some(id) = victim else {
                return;
            };
            self.end_session(&id);
        }
    }

    /// Ends a session span (and an open send under it, as `abandoned`).
    pub(crate) fn end_session(&mut self, sid: &str) {
        if let Some(mut s) = self.sessions.remove(sid) {
            if let Some(send) = s.send.take() {
                Self::close_send(&self.backend, send, "abandoned");
            }
            if let Some(span) = s.span {
                self.backend.end(span);
            }
        }
    }

    /// Ends every open span, children first.
    pub(crate) fn close_all(&mut self) {
        let ids: Vec<String> = self.sessions.keys().cloned().collect();
        for id in ids {
            self.end_session(&id);
        }
    }

    fn open_send(&mut self, sid: &str, scope: &str) {
        let agent = self.opts.agent_name.clone();
        let session = self.session(sid);
        let orphan = session.send.take();
        if let Some(orphan) = orphan {
            Self::close_send(&self.backend, orphan, "abandoned");
        }
        let Some(session) = self.sessions.get(sid) else {
            return;
        };
        let span = self.backend.start(
            Kind::Send,
            format!("invoke_agent {agent}"),
            session.span.as_ref(),
            vec![
                (k::OPERATION_NAME, "invoke_agent".into()),
                (k::AGENT_NAME, agent.into()),
                (k::CONVERSATION_ID, sid.into()),
                (k::SCOPE, scope.into()),
            ],
        );
        if let Some(session) = self.sessions.get_mut(sid) {
            session.send = Some(Send {
                span,
                rounds: BTreeMap::new(),
                llm: HashMap::new(),
                tools: HashMap::new(),
                compaction: None,
            });
        }
    }

    /// The open send of a session, opened on the fly when events arrive without
    /// `session_started` (a sink attached mid-send).
    fn ensure_send(&mut self, sid: &str) {
        let missing = self.sessions.get(sid).is_none_or(|s| s.send.is_none());
        if missing {
            self.open_send(sid, "");
        }
    }

    fn close_child(b: &B, c: Child<B::Span>, fail: Option<&str>) {
        if let Some(d) = fail {
            b.set(&c.span, vec![(k::ERROR_TYPE, d.into())]);
            b.fail(&c.span, d);
        }
        b.end(c.span);
    }

    /// Closes the children of round `r` (`None`: every child), then the round(s).
    fn close_rounds(b: &B, send: &mut Send<B::Span>, r: Option<u32>, why: Option<&str>) {
        let hit = |c: &Child<B::Span>| r.is_none() || c.round == r;
        if send.compaction.as_ref().is_some_and(hit)
            && let Some(c) = send.compaction.take()
        {
            Self::close_child(b, c, None);
        }
        for map in [&mut send.llm, &mut send.tools] {
            let keys: Vec<String> = map
                .iter()
                .filter(|(_, c)| hit(c))
                .map(|(id, _)| id.clone())
                .collect();
            for id in keys {
                if let Some(c) = map.remove(&id) {
                    Self::close_child(b, c, why);
                }
            }
        }
        let rounds: Vec<u32> = match r {
            Some(r) => vec![r],
            None => send.rounds.keys().copied().collect(),
        };
        for i in rounds {
            if let Some(span) = send.rounds.remove(&i) {
                b.end(span);
            }
        }
    }

    fn close_send(b: &B, mut send: Send<B::Span>, reason: &str) {
        let why = (reason == "abandoned").then_some("abandoned");
        Self::close_rounds(b, &mut send, None, why);
        b.set(&send.span, vec![(k::END_REASON, reason.into())]);
        if matches!(reason, "error" | "degraded" | "abandoned") {
            b.set(&send.span, vec![(k::ERROR_TYPE, reason.into())]);
            b.fail(&send.span, reason);
        }
        b.end(send.span);
    }

    fn parent_of(send: &Send<B::Span>, round: u32) -> &B::Span {
        send.rounds.get(&round).unwrap_or(&send.span)
    }

    fn open_round(&mut self, sid: &str, r: u32) {
        self.ensure_send(sid);
        let Some(send) = self.sessions.get(sid).and_then(|s| s.send.as_ref()) else {
            return;
        };
        if send.rounds.contains_key(&r) {
            return;
        }
        let earlier: Vec<u32> = send.rounds.keys().copied().filter(|i| *i != r).collect();
        let mut send_taken = self.sessions.get_mut(sid).and_then(|s| s.send.take());
        if let Some(send) = send_taken.as_mut() {
            for i in earlier {
                Self::close_rounds(&self.backend, send, Some(i), None);
            }
            let span = self.backend.start(
                Kind::Round,
                k::ROUND_SPAN.to_owned(),
                Some(&send.span),
                vec![(k::ROUND_INDEX, r.into())],
            );
            send.rounds.insert(r, span);
        }
        if let Some(s) = self.sessions.get_mut(sid) {
            s.send = send_taken;
        }
    }

    /// Applies one event.
    pub(crate) fn handle(&mut self, ev: &AgentEvent) {
        let sid = ev.session_id.clone().unwrap_or_default();
        let is_compaction = matches!(
            &ev.payload,
            EventPayload::StatusChanged(StatusChanged::AutoCompact(_))
        );
        if !is_compaction
            && let Some(send) = self.sessions.get_mut(&sid).and_then(|s| s.send.as_mut())
            && let Some(c) = send.compaction.take()
        {
            self.backend.end(c.span);
        }
        match &ev.payload {
            EventPayload::SessionStarted(p) => self.open_send(&sid, &p.scope),
            EventPayload::SessionEnded(p) => {
                let send = self.sessions.get_mut(&sid).and_then(|s| s.send.take());
                if let Some(send) = send {
                    Self::close_send(&self.backend, send, &p.reason);
                }
            }
            EventPayload::RoundStarted(p) => self.open_round(&sid, p.round_index),
            EventPayload::RoundCompleted(p) => {
                let mut send = self.sessions.get_mut(&sid).and_then(|s| s.send.take());
                if let Some(send) = send.as_mut() {
                    if let Some(span) = send.rounds.get(&p.round_index) {
                        self.backend
                            .set(span, vec![(k::HAS_TOOLS, p.has_tools.into())]);
                    }
                    Self::close_rounds(&self.backend, send, Some(p.round_index), None);
                }
                if let Some(s) = self.sessions.get_mut(&sid) {
                    s.send = send;
                }
            }
            EventPayload::LlmCallStarted(p) => {
                let provider = self.opts.provider_name.clone();
                self.ensure_send(&sid);
                let Some(send) = self.sessions.get_mut(&sid).and_then(|s| s.send.as_mut()) else {
                    return;
                };
                let mut attrs: Attrs = vec![
                    (k::OPERATION_NAME, "chat".into()),
                    (k::REQUEST_MODEL, p.model.clone().into()),
                    (k::CONVERSATION_ID, sid.clone().into()),
                    (k::CALL_ID, p.call_id.clone().into()),
                    (k::ATTEMPT, p.attempt.max(1).into()),
                    (k::ROUND_INDEX, p.round_index.into()),
                ];
                if let Some(pn) = provider {
                    attrs.push((k::PROVIDER_NAME, pn.into()));
                }
                let span = self.backend.start(
                    Kind::Chat,
                    format!("chat {}", p.model),
                    Some(Self::parent_of(send, p.round_index)),
                    attrs,
                );
                let key = format!("{}#{}", p.call_id, p.attempt);
                let round = send
                    .rounds
                    .contains_key(&p.round_index)
                    .then_some(p.round_index);
                if let Some(old) = send.llm.insert(key, Child { round, span }) {
                    self.backend.end(old.span);
                }
            }
            EventPayload::LlmCallCompleted(p) => {
                let key = format!("{}#{}", p.call_id, p.attempt);
                let Some(c) = self
                    .sessions
                    .get_mut(&sid)
                    .and_then(|s| s.send.as_mut())
                    .and_then(|d| d.llm.remove(&key))
                else {
                    return;
                };
                let mut attrs: Attrs = vec![
                    (k::RESPONSE_MODEL, p.model.clone().into()),
                    (k::DURATION_MS, p.duration_ms.into()),
                ];
                if let Some(t) = p.prompt_tokens {
                    attrs.push((k::USAGE_INPUT_TOKENS, t.into()));
                }
                if let Some(t) = p.completion_tokens {
                    attrs.push((k::USAGE_OUTPUT_TOKENS, t.into()));
                }
                self.backend.set(&c.span, attrs);
                let fail = (!p.success).then(|| {
                    if p.error_type.is_empty() {
                        "llm_error".to_owned()
                    } else {
                        p.error_type.clone()
                    }
                });
                Self::close_child(&self.backend, c, fail.as_deref());
            }
            EventPayload::ToolCallStarted(p) => {
                let content = self
                    .opts
                    .redactor
                    .includes_content()
                    .then(|| self.opts.redactor.sanitize(&p.tool_input).to_string());
                let ri = ev.round_index.unwrap_or(0);
                self.ensure_send(&sid);
                let Some(send) = self.sessions.get_mut(&sid).and_then(|s| s.send.as_mut()) else {
                    return;
                };
                let mut attrs: Attrs = vec![
                    (k::OPERATION_NAME, "execute_tool".into()),
                    (k::TOOL_NAME, p.name.clone().into()),
                    (k::TOOL_CALL_ID, p.tool_call_id.clone().into()),
                    (k::TOOL_TYPE, "function".into()),
                    (k::CONVERSATION_ID, sid.clone().into()),
                ];
                if let Some(args) = content {
                    attrs.push((k::TOOL_CALL_ARGUMENTS, args.into()));
                }
                let span = self.backend.start(
                    Kind::Tool,
                    format!("execute_tool {}", p.name),
                    Some(Self::parent_of(send, ri)),
                    attrs,
                );
                let round = send.rounds.contains_key(&ri).then_some(ri);
                if let Some(old) = send
                    .tools
                    .insert(p.tool_call_id.clone(), Child { round, span })
                {
                    self.backend.end(old.span);
                }
            }
            EventPayload::ToolCallFailed(p) => {
                self.end_tool(&sid, &p.tool_call_id, &p.output, true);
            }
            EventPayload::ToolCallCompleted(p) => {
                self.end_tool(&sid, &p.tool_call_id, &p.output, p.failed);
            }
            EventPayload::StatusChanged(StatusChanged::AutoCompact(c)) => {
                let r = ev.round_index.unwrap_or(c.round_index);
                self.open_round(&sid, r);
                let Some(send) = self.sessions.get_mut(&sid).and_then(|s| s.send.as_mut()) else {
                    return;
                };
                let old = send.compaction.take();
                let attrs: Attrs = vec![
                    (k::COMPACTION_PHASE, c.phase.clone().into()),
                    (k::COMPACTION_TRIGGER, c.trigger.clone().into()),
                    (k::COMPACTION_BEFORE, c.before_tokens.into()),
                    (k::COMPACTION_AFTER, c.after_tokens.into()),
                    (k::ROUND_INDEX, r.into()),
                ];
                match c.phase.as_str() {
                    "completed" | "skipped" => {
                        if let Some(old) = old {
                            self.backend.set(&old.span, attrs);
                            self.backend.end(old.span);
                        }
                    }
                    phase => {
                        if let Some(old) = old {
                            self.backend.end(old.span);
                        }
                        let span = self.backend.start(
                            Kind::Compaction,
                            k::COMPACTION_SPAN.to_owned(),
                            Some(Self::parent_of(send, r)),
                            attrs,
                        );
                        let child = Child {
                            round: Some(r),
                            span,
                        };
                        if phase == "failed" {
                            let d = c.trigger.clone();
                            Self::close_child(&self.backend, child, Some(&d));
                        } else if let Some(send) =
                            self.sessions.get_mut(&sid).and_then(|s| s.send.as_mut())
                        {
                            send.compaction = Some(child);
                        }
                    }
                }
            }
            _ => {}
        }
    }

    fn end_tool(&mut self, sid: &str, call_id: &str, output: &str, failed: bool) {
        let Some(c) = self
            .sessions
            .get_mut(sid)
            .and_then(|s| s.send.as_mut())
            .and_then(|d| d.tools.remove(call_id))
        else {
            return;
        };
        if self.opts.redactor.includes_content() {
            let out = crate::redact::truncate(output, self.opts.redactor.max_field_len());
            self.backend
                .set(&c.span, vec![(k::TOOL_CALL_RESULT, out.into())]);
        }
        Self::close_child(&self.backend, c, failed.then_some("tool_error"));
    }
}

impl<B: Backend> Drop for SpanTree<B> {
    fn drop(&mut self) {
        self.close_all();
    }
}
