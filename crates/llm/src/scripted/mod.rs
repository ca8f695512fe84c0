//! [`ScriptedLlm`]: an offline model driven by a script of [`Step`]s.
//!
//! Each call takes the next step: a text answer (streamed as a few deltas), one or several
//! (parallel) tool calls, a structured JSON answer, an error with any [`ErrorCode`] (e.g. a 429 with
//! `retry_after_ms`, then a success), a cut-off stream, or an echo of the last user message. When
//! the script runs out, the [`Fallback`] answers (default: echo). Every [`LlmRequest`] received is
//! recorded so tests can assert the exact requests. A closure mode ([`ScriptedLlm::from_fn`])
//! computes the step from the request.
//!
//! Fast by design: no sleeping unless a delay is set, chunks are produced eagerly into a vector,
//! and request recording can be turned off for benchmarks ([`ScriptedLlm::record_requests`]).
//!
//! ```
//! use power_loop_llm::{ScriptedLlm, Step};
//! use power_loop_contracts::{ErrorCode, LlmService, LlmRequest};
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! let llm = ScriptedLlm::new()
//!     .tool_call("echo", serde_json::json!({"text": "hi"}))
//!     .step(Step::error(ErrorCode::LlmRateLimited))
//!     .then_text("done");
//! let r = llm.complete(LlmRequest::from_prompt("hello")).await.unwrap();
//! assert_eq!(r.tool_calls[0].name(), "echo");
//! assert!(llm.complete(LlmRequest::from_prompt("again")).await.is_err());
//! assert_eq!(llm.complete(LlmRequest::from_prompt("x")).await.unwrap().raw_text, "done");
//! assert_eq!(llm.requests().len(), 3);
//! # });
//! ```

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use power_loop_contracts::{
    BoxFuture, Error, ErrorCode, FinishReason, LlmRequest, LlmService, LlmStream,
    ProviderCapabilities, Result, StreamChunk, TokenUsage, ToolCallDelta,
};

use crate::util::{run_cancellable, with_cancel};

/// What answers when the script is exhausted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fallback {
    /// Echo the text of the last user message (empty when none).
    Echo,
    /// Echo the last user message after this prefix.
    EchoWithPrefix(String),
    /// Always this text.
    Text(String),
    /// Fail with this code (a test that must not call the model more often than scripted).
    Error(ErrorCode),
}

#[derive(Debug, Clone)]
enum Kind {
    Reply {
        text: String,
        calls: Vec<(String, String)>,
    },
    Echo(String),
    Fail {
        code: ErrorCode,
        message: Option<String>,
        retry_after: Option<Duration>,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum Ending {
    Complete,
    CutOff,
    Fail(ErrorCode),
}

/// One scripted model answer. Build with the constructors, refine with the `with_*` methods.
#[derive(Debug, Clone)]
pub struct Step {
    kind: Kind,
    usage: Option<TokenUsage>,
    delay: Option<Duration>,
    think: Option<String>,
    finish: Option<FinishReason>,
    ending: Ending,
}

impl Step {
    fn of(kind: Kind) -> Self {
        Step {
            kind,
            usage: None,
            delay: None,
            think: None,
            finish: None,
            ending: Ending::Complete,
        }
    }
    /// A text answer.
    pub fn text(text: impl Into<String>) -> Self {
        Self::of(Kind::Reply {
            text: text.into(),
            calls: Vec::new(),
        })
    }
    /// One tool call with JSON arguments.
    pub fn tool_call(name: impl Into<String>, args: serde_json::Value) -> Self {
        Self::tool_calls([(name, args)])
    }
    /// Several tool calls in one answer (parallel calls).
    pub fn tool_calls<N: Into<String>>(
        calls: impl IntoIterator<Item = (N, serde_json::Value)>,
    ) -> Self {
        Self::text_with_tool_calls("", calls)
    }
    /// Text plus tool calls.
    pub fn text_with_tool_calls<N: Into<String>>(
        text: impl Into<String>,
        calls: impl IntoIterator<Item = (N, serde_json::Value)>,
    ) -> Self {
        Self::of(Kind::Reply {
            text: text.into(),
            calls: calls
                .into_iter()
                .map(|(n, a)| (n.into(), a.to_string()))
                .collect(),
        })
    }
    /// A tool call whose arguments are raw text (e.g. malformed JSON on purpose).
    pub fn tool_call_raw(name: impl Into<String>, raw_args: impl Into<String>) -> Self {
        Self::of(Kind::Reply {
            text: String::new(),
            calls: vec![(name.into(), raw_args.into())],
        })
    }
    /// A structured answer: the JSON-encoded value as text.
    pub fn json(value: serde_json::Value) -> Self {
        Self::text(value.to_string())
    }
    /// Echo the last user message.
    pub fn echo() -> Self {
        Self::of(Kind::Echo(String::new()))
    }
    /// Fail the call (before any chunk) with `code`.
    pub fn error(code: ErrorCode) -> Self {
        Self::of(Kind::Fail {
            code,
            message: None,
            retry_after: None,
        })
    }
    /// Fail the call with `code` and a message.
    pub fn error_msg(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::of(Kind::Fail {
            code,
            message: Some(message.into()),
            retry_after: None,
        })
    }
    /// A 429 carrying a server wait (`retry_after_ms` detail, honoured by the retry layer).
    pub fn rate_limited(retry_after: Duration) -> Self {
        Self::of(Kind::Fail {
            code: ErrorCode::LlmRateLimited,
            message: None,
            retry_after: Some(retry_after),
        })
    }
    /// Sets the usage reported in the final chunk (default: a rough estimate, bytes / 4).
    pub fn with_usage(mut self, usage: TokenUsage) -> Self {
        self.usage = Some(usage);
        self
    }
    /// Sets prompt and completion tokens (total = sum).
    pub fn with_tokens(self, prompt: u64, completion: u64) -> Self {
        self.with_usage(TokenUsage {
            prompt_tokens: Some(prompt),
            completion_tokens: Some(completion),
            total_tokens: Some(prompt + completion),
            ..Default::default()
        })
    }
    /// Waits this long before answering (cancellable).
    pub fn with_delay(mut self, d: Duration) -> Self {
        self.delay = Some(d);
        self
    }
    /// Streams this reasoning text before the answer.
    pub fn with_think(mut self, think: impl Into<String>) -> Self {
        self.think = Some(think.into());
        self
    }
    /// Overrides the finish reason (default `stop`, or `tool_calls` when calling tools).
    pub fn with_finish_reason(mut self, f: FinishReason) -> Self {
        self.finish = Some(f);
        self
    }
    /// Ends the stream without its final chunk (`complete` fails with `llm.stream_incomplete`).
    pub fn cut_off(mut self) -> Self {
        self.ending = Ending::CutOff;
        self
    }
    /// Streams the content, then fails with `code` instead of the final chunk.
    pub fn fail_mid_stream(mut self, code: ErrorCode) -> Self {
        self.ending = Ending::Fail(code);
        self
    }
}

type StepFn = dyn Fn(&LlmRequest) -> Step + Send + Sync;

struct State {
    steps: VecDeque<Step>,
    func: Option<Arc<StepFn>>,
    fallback: Fallback,
    model: String,
    delay: Option<Duration>,
    caps: ProviderCapabilities,
    record: bool,
    pieces: usize,
    requests: Vec<LlmRequest>,
    calls: u64,
}

/// The scripted offline model. Cloning shares the script and the recorded requests.
#[derive(Clone)]
pub struct ScriptedLlm {
    state: Arc<Mutex<State>>,
}

impl std::fmt::Debug for ScriptedLlm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.lock();
        f.debug_struct("ScriptedLlm")
            .field("remaining_steps", &s.steps.len())
            .field("fallback", &s.fallback)
            .field("calls", &s.calls)
            .finish()
    }
}

impl Default for ScriptedLlm {
    fn default() -> Self {
        Self::new()
    }
}

impl ScriptedLlm {
    /// An empty script (every call echoes, see [`Fallback::Echo`]).
    pub fn new() -> Self {
        ScriptedLlm {
            state: Arc::new(Mutex::new(State {
                steps: VecDeque::new(),
                func: None,
                fallback: Fallback::Echo,
                model: "scripted".into(),
                delay: None,
                caps: ProviderCapabilities::new("scripted")
                    .with_image_input(true)
                    .with_reasoning(true),
                record: true,
                pieces: 3,
                requests: Vec::new(),
                calls: 0,
            })),
        }
    }

    /// A model whose every answer is computed from the request (after any queued steps).
    pub fn from_fn(f: impl Fn(&LlmRequest) -> Step + Send + Sync + 'static) -> Self {
        let llm = Self::new();
        llm.lock().func = Some(Arc::new(f));
        llm
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends a step (usable after the model was shared).
    pub fn push(&self, step: Step) {
        self.lock().steps.push_back(step);
    }
    /// Appends a step.
    pub fn step(self, step: Step) -> Self {
        self.push(step);
        self
    }
    /// Appends several steps.
    pub fn steps(self, steps: impl IntoIterator<Item = Step>) -> Self {
        self.lock().steps.extend(steps);
        self
    }
    /// Appends a text answer.
    pub fn text(self, text: impl Into<String>) -> Self {
        self.step(Step::text(text))
    }
    /// Appends a text answer (reads well after a tool call).
    pub fn then_text(self, text: impl Into<String>) -> Self {
        self.text(text)
    }
    /// Appends one tool call.
    pub fn tool_call(self, name: impl Into<String>, args: serde_json::Value) -> Self {
        self.step(Step::tool_call(name, args))
    }
    /// Appends parallel tool calls.
    pub fn tool_calls<N: Into<String>>(
        self,
        calls: impl IntoIterator<Item = (N, serde_json::Value)>,
    ) -> Self {
        self.step(Step::tool_calls(calls))
    }
    /// Appends a structured JSON answer.
    pub fn json(self, value: serde_json::Value) -> Self {
        self.step(Step::json(value))
    }
    /// Appends an error.
    pub fn error(self, code: ErrorCode) -> Self {
        self.step(Step::error(code))
    }
    /// Sets the fallback.
    pub fn fallback(self, f: Fallback) -> Self {
        self.lock().fallback = f;
        self
    }
    /// Sets the reported model name (default `scripted`).
    pub fn with_model(self, m: impl Into<String>) -> Self {
        self.lock().model = m.into();
        self
    }
    /// Sets a default delay before every answer (steps may set their own).
    pub fn with_delay(self, d: Duration) -> Self {
        self.lock().delay = Some(d);
        self
    }
    /// Sets the reported capabilities.
    pub fn with_capabilities(self, caps: ProviderCapabilities) -> Self {
        self.lock().caps = caps;
        self
    }
    /// Turns request recording on (default) or off (benchmarks). Recording a request is O(1)
    /// (it shares the caller's message vector), but a recorded request keeps that vector alive,
    /// so a caller that appends to it afterwards (the agent loop, every round) copies it once:
    /// turn recording off when measuring.
    pub fn record_requests(self, on: bool) -> Self {
        self.lock().record = on;
        self
    }
    /// How many text deltas a text answer is split into (default 3, at least 1).
    pub fn text_pieces(self, n: usize) -> Self {
        self.lock().pieces = n.max(1);
        self
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<LlmRequest> {
        self.lock().requests.clone()
    }
    /// The last request received.
    pub fn last_request(&self) -> Option<LlmRequest> {
        self.lock().requests.last().cloned()
    }
    /// How many calls were made (counted even when recording is off).
    pub fn call_count(&self) -> u64 {
        self.lock().calls
    }
    /// Steps not yet consumed.
    pub fn remaining_steps(&self) -> usize {
        self.lock().steps.len()
    }
    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.lock().requests.clear();
    }

    /// Takes the step for this call and the settings needed to play it.
    fn next_step(&self, req: &LlmRequest) -> (Step, u64, String, usize, Option<Duration>) {
        let mut s = self.lock();
        s.calls += 1;
        if s.record {
            s.requests.push(req.clone());
        }
        let step = match s.steps.pop_front() {
            Some(step) => step,
            None => match s.func.clone() {
                Some(f) => {
                    drop(s);
                    let step = f(req);
                    s = self.lock();
                    step
                }
                None => match &s.fallback {
                    Fallback::Echo => Step::echo(),
                    Fallback::EchoWithPrefix(p) => Step::of(Kind::Echo(p.clone())),
                    Fallback::Text(t) => Step::text(t.clone()),
                    Fallback::Error(code) => Step::error_msg(
                        *code,
                        "the scripted model's script is exhausted (fallback: error)",
                    ),
                },
            },
        };
        (step, s.calls, s.model.clone(), s.pieces, s.delay)
    }
}

fn estimate_tokens(bytes: usize) -> u64 {
    (bytes as u64).div_ceil(4).max(1)
}

fn request_bytes(req: &LlmRequest) -> usize {
    let msgs: usize = req
        .messages
        .iter()
        .map(|m| {
            m.content.as_ref().map_or(0, |c| match c {
                power_loop_contracts::Content::Text(t) => t.len(),
                power_loop_contracts::Content::Parts(p) => p.len() * 16,
            }) + m
                .tool_calls
                .iter()
                .map(|c| c.function.arguments.len() + c.function.name.len())
                .sum::<usize>()
        })
        .sum();
    msgs + req.system_prompt.as_ref().map_or(0, String::len)
}

/// Splits `text` into at most `n` pieces at char boundaries.
fn split_pieces(text: &str, n: usize) -> Vec<&str> {
    if text.is_empty() {
        return Vec::new();
    }
    let n = n.max(1);
    let target = text.len().div_ceil(n).max(1);
    let mut out = Vec::with_capacity(n);
    let mut start = 0;
    while start < text.len() {
        let mut end = (start + target).min(text.len());
        while end < text.len() && !text.is_char_boundary(end) {
            end += 1;
        }
        out.push(&text[start..end]);
        start = end;
    }
    out
}

fn play(
    step: Step,
    call_no: u64,
    model: String,
    pieces: usize,
    req: &LlmRequest,
) -> Result<Vec<Result<StreamChunk>>> {
    let (text, calls) = match step.kind {
        Kind::Fail {
            code,
            message,
            retry_after,
        } => {
            let mut e = Error::new(
                code,
                message.unwrap_or_else(|| format!("scripted model error `{code}` (on cue)")),
            )
            .with_detail("scripted", true);
            if let Some(d) = retry_after {
                e = e.with_detail("retry_after_ms", d.as_millis() as u64);
            }
            return Err(e);
        }
        Kind::Echo(prefix) => (format!("{prefix}{}", req.last_user_text()), Vec::new()),
        Kind::Reply { text, calls } => (text, calls),
    };
    let mut out: Vec<Result<StreamChunk>> = Vec::with_capacity(pieces + 2 * calls.len() + 2);
    if let Some(t) = step.think.as_deref().filter(|t| !t.is_empty()) {
        out.push(Ok(StreamChunk::think(t)));
    }
    for p in split_pieces(&text, pieces) {
        out.push(Ok(StreamChunk::text(p)));
    }
    let mut out_bytes = text.len();
    for (i, (name, args)) in calls.iter().enumerate() {
        out_bytes += name.len() + args.len();
        let mid = {
            let mut m = args.len() / 2;
            while m < args.len() && !args.is_char_boundary(m) {
                m += 1;
            }
            m
        };
        out.push(Ok(StreamChunk::tool_call(ToolCallDelta {
            index: i as u32,
            id: Some(format!("call_{call_no}_{i}")),
            name: Some(name.clone()),
            arguments: args[..mid].to_owned(),
        })));
        out.push(Ok(StreamChunk::tool_call(ToolCallDelta {
            index: i as u32,
            id: None,
            name: None,
            arguments: args[mid..].to_owned(),
        })));
    }
    match step.ending {
        Ending::CutOff => {}
        Ending::Fail(code) => out.push(Err(Error::new(
            code,
            format!("scripted model failed mid-stream with `{code}` (on cue)"),
        )
        .with_detail("scripted", true))),
        Ending::Complete => {
            let usage = step.usage.unwrap_or_else(|| {
                let p = estimate_tokens(request_bytes(req));
                let c = estimate_tokens(out_bytes);
                TokenUsage {
                    prompt_tokens: Some(p),
                    completion_tokens: Some(c),
                    total_tokens: Some(p + c),
                    ..Default::default()
                }
            });
            let finish = step.finish.unwrap_or(if calls.is_empty() {
                FinishReason::Stop
            } else {
                FinishReason::ToolCalls
            });
            let mut last = StreamChunk::finished(Some(finish), Some(usage));
            last.model = Some(model);
            last.response_id = Some(format!("scripted-{call_no}"));
            out.push(Ok(last));
        }
    }
    Ok(out)
}

impl LlmService for ScriptedLlm {
    fn stream(&self, request: LlmRequest) -> BoxFuture<'_, Result<LlmStream>> {
        Box::pin(async move {
            let cancel = request.cancel.clone();
            if cancel.as_ref().is_some_and(|t| t.is_cancelled()) {
                return Err(crate::util::cancelled_error("before the model call"));
            }
            let (step, call_no, model, pieces, default_delay) = self.next_step(&request);
            if let Some(d) = step.delay.or(default_delay).filter(|d| !d.is_zero()) {
                run_cancellable(
                    cancel.as_ref(),
                    "while the scripted model was waiting",
                    async {
                        tokio::time::sleep(d).await;
                        Ok(())
                    },
                )
                .await?;
            }
            let chunks = play(step, call_no, model, pieces, &request)?;
            let stream: LlmStream = Box::pin(futures_util::stream::iter(chunks));
            Ok(with_cancel(stream, cancel))
        })
    }

    fn capabilities(&self) -> ProviderCapabilities {
        self.lock().caps.clone()
    }

    fn model_name(&self) -> String {
        self.lock().model.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_char_boundaries() {
        assert_eq!(split_pieces("héllo wörld", 3).concat(), "héllo wörld");
        assert_eq!(split_pieces("ab", 5), vec!["a", "b"]);
        assert!(split_pieces("", 3).is_empty());
    }
}
