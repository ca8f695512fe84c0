//! Stream resume: when an answer breaks after part of it was handed
//! out, ask the model to continue it instead of failing the call.
//!
//! Enabled by [`OpenAiConfig::with_stream_resume`](super::OpenAiConfig::with_stream_resume).
//! When the stream fails with a retryable error (`llm.stream_incomplete`, `llm.connection`,
//! `llm.timeout`, `llm.server`, `llm.rate_limited`, `llm.overloaded`; never `cancelled` or a
//! permanent error) **after** some text or reasoning was yielded, and fewer than
//! `stream_max_restarts` restarts happened, the request is sent again with the original messages
//! plus `{"role":"assistant","content": <text so far, stripped>}` (when there is text) and
//! `{"role":"user","content": stream_resume_instruction}`. The text already yielded is kept: the
//! call's answer is the text of the broken attempt followed by the continuation. A failure
//! before anything was yielded is returned unchanged, for the retry layer to retry the whole call.
//!
//! What the caller sees, so events and usage stay right:
//! - tool-call fragments are held back until the attempt's final chunk and handed out just before
//!   it, so the partial tool calls of a broken attempt are discarded, never half-delivered;
//! - a continuation that starts by repeating the text already yielded (the model restarted its
//!   answer) has that repeated text dropped, so no text is delivered twice; the check holds the
//!   continuation's first text only while it is still a prefix of what was already said;
//! - there is one final chunk, the continuation's, with its usage (the broken attempt's usage
//!   is unknown: the server sends usage at the end of a stream);
//! - a broken attempt counts as one restart, and so does a continuation request that fails to
//!   open; when restarts run out the last error is yielded.

use std::collections::VecDeque;
use std::sync::Arc;

use futures_util::StreamExt;
use power_loop_contracts::{Error, ErrorCode, LlmRequest, LlmStream, Message, Result, StreamChunk};

use super::{Inner, open_stream};
use crate::retry::is_retryable_code;

/// Wraps the first attempt's stream `first` of `request` with resume.
pub(super) fn resumable(first: LlmStream, inner: Arc<Inner>, request: LlmRequest) -> LlmStream {
    let max_restarts = inner.cfg.stream_max_restarts;
    let state = Resume {
        inner,
        request,
        current: Some(first),
        restarts: 0,
        max_restarts,
        text: String::new(),
        yielded: false,
        held_tools: Vec::new(),
        out: VecDeque::new(),
        repeat: None,
        done: false,
    };
    Box::pin(futures_util::stream::unfold(
        Some(state),
        |state| async move {
            let mut st = state?;
            match st.next().await? {
                Ok(chunk) => Some((Ok(chunk), Some(st))),
                Err(e) => Some((Err(e), None)),
            }
        },
    ))
}

/// The continuation's text held while it may be a repeat of what was already said.
struct RepeatCheck {
    said: String,
    held: String,
}

struct Resume {
    inner: Arc<Inner>,
    request: LlmRequest,
    current: Option<LlmStream>,
    restarts: u32,
    max_restarts: u32,
    /// Every piece of answer text handed out so far.
    text: String,
    /// Whether text or reasoning was handed out.
    yielded: bool,
    /// Tool-call fragments of the current attempt, held until its final chunk.
    held_tools: Vec<StreamChunk>,
    out: VecDeque<StreamChunk>,
    repeat: Option<RepeatCheck>,
    done: bool,
}

impl Resume {
    async fn next(&mut self) -> Option<Result<StreamChunk>> {
        loop {
            if let Some(chunk) = self.out.pop_front() {
                return Some(Ok(chunk));
            }
            if self.done {
                return None;
            }
            let Some(stream) = self.current.as_mut() else {
                match open_stream(&self.inner, self.continuation()).await {
                    Ok(s) => self.current = Some(s),
                    Err(e) => {
                        if let Some(e) = self.restart_or(e) {
                            return Some(Err(e));
                        }
                    }
                }
                continue;
            };
            match stream.next().await {
                Some(Ok(chunk)) => self.accept(chunk),
                Some(Err(e)) => {
                    if let Some(e) = self.restart_or(e) {
                        return Some(Err(e));
                    }
                }
                None => self.done = true,
            }
        }
    }

    /// Starts a restart after `e` when allowed (returns `None`), else gives `e` back.
    fn restart_or(&mut self, e: Error) -> Option<Error> {
        let resumable = self.yielded
            && self.restarts < self.max_restarts
            && e.code() != ErrorCode::Cancelled
            && is_retryable_code(e.code());
        if !resumable {
            self.done = true;
            return Some(e);
        }
        self.restarts += 1;
        tracing::warn!(
            target: "power_loop::llm",
            restart = self.restarts,
            max_restarts = self.max_restarts,
            code = %e.code(),
            kept_chars = self.text.chars().count(),
            "the OpenAI-compatible stream broke mid-answer; asking the model to continue"
        );
        self.current = None;
        self.held_tools.clear();
        let said = self.text.trim().to_owned();
        self.repeat = (!said.is_empty()).then(|| RepeatCheck {
            said,
            held: String::new(),
        });
        None
    }

    /// The original request plus the answer so far and the resume instruction.
    fn continuation(&self) -> LlmRequest {
        let mut req = self.request.clone();
        let mut messages: Vec<Message> = req.messages.as_ref().clone();
        let said = self.text.trim();
        if !said.is_empty() {
            messages.push(Message::assistant(said));
        }
        messages.push(Message::user(
            self.inner.cfg.stream_resume_instruction.clone(),
        ));
        req.messages = Arc::new(messages);
        req
    }

    /// Routes one chunk of the current attempt: text through the repeat check, tool fragments
    /// held, the final chunk after the held fragments.
    fn accept(&mut self, mut chunk: StreamChunk) {
        let text = std::mem::take(&mut chunk.delta_text);
        chunk.delta_text = self.filter_text(&text, chunk.is_final);
        let tools = std::mem::take(&mut chunk.delta_tool_calls);
        if !tools.is_empty() {
            let mut held = StreamChunk::default();
            held.delta_tool_calls = tools;
            self.held_tools.push(held);
        }
        self.text.push_str(&chunk.delta_text);
        if !chunk.delta_text.is_empty() || !chunk.think.is_empty() {
            self.yielded = true;
        }
        if chunk.is_final {
            self.out.extend(self.held_tools.drain(..));
            self.out.push_back(chunk);
            self.done = true;
        } else if !chunk.delta_text.is_empty() || !chunk.think.is_empty() {
            self.out.push_back(chunk);
        }
    }

    /// Text of the current attempt that may be handed out now (see [`RepeatCheck`]).
    fn filter_text(&mut self, t: &str, last: bool) -> String {
        let Some(rc) = self.repeat.as_mut() else {
            return t.to_owned();
        };
        rc.held.push_str(t);
        let held = rc.held.trim_start();
        if let Some(rest) = held.strip_prefix(rc.said.as_str()) {
            // The whole earlier answer was repeated: drop it, keep what follows.
            let rest = rest.to_owned();
            self.repeat = None;
            return rest;
        }
        if rc.said.starts_with(held) {
            // Still a possible repeat: hold it; at the end of the answer it was one, drop it.
            if last {
                self.repeat = None;
            }
            return String::new();
        }
        let out = std::mem::take(&mut rc.held);
        self.repeat = None;
        out
    }
}
