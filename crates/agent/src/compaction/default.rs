//! [`DefaultCompactor`], with the trigger measured against the model's context window
//! instead of the reply cap, a malformed `CONTEXT_COMPACT_THRESHOLD` reported and ignored, the
//! summary call's usage returned in the plan, and a failed summary reported as
//! `compaction.failed` (the pipeline turns it into an `auto_compact` `failed` event). Unlike the
//! reference, the summary call is cancellable (the run's token) and bounded by
//! [`DefaultCompactor::summary_timeout`].

use std::sync::{Arc, Mutex};
use std::time::Duration;

use power_loop_contracts::{
    BoxFuture, CancellationToken, Error, ErrorCode, LlmRequest, LlmService, Message, Result, Role,
};

use super::span::{FoldSpan, select_span};
use super::{CompactRequest, CompactionPlan, Compactor};
use crate::budget::estimate_tokens;

/// Environment variable that, when set to an integer, is the absolute trigger threshold.
pub const COMPACT_THRESHOLD_ENV: &str = "CONTEXT_COMPACT_THRESHOLD";

/// The context window (tokens) of a model family; 32 000 for an unknown or empty name.
///
/// Matching is by case-insensitive substring of the model name, most specific first.
pub fn context_window_for_model(model: &str) -> u64 {
    let m = model.to_ascii_lowercase();
    const TABLE: &[(&str, u64)] = &[
        ("gpt-4.1", 1_047_576),
        ("gpt-5", 400_000),
        ("gpt-4o", 128_000),
        ("gpt-4-turbo", 128_000),
        ("gpt-3.5", 16_385),
        ("gpt-4", 8_192),
        ("o1", 200_000),
        ("o3", 200_000),
        ("o4", 200_000),
        ("claude", 200_000),
        ("gemini", 1_048_576),
        ("deepseek", 128_000),
        ("llama-3", 128_000),
        ("llama3", 128_000),
        ("qwen", 32_768),
        ("mistral", 32_000),
        ("mixtral", 32_000),
    ];
    if m.is_empty() {
        return 32_000;
    }
    TABLE
        .iter()
        .find(|(k, _)| m.contains(k))
        .map_or(32_000, |(_, w)| *w)
}

/// The spec's summarizing compactor: folds everything between the protected head and the kept
/// tail into one compact note written by a summary LLM call.
pub struct DefaultCompactor {
    /// Fire when the estimate reaches `trigger_ratio` × the usable window.
    pub trigger_ratio: f64,
    /// Trailing exchanges kept verbatim (`0` acts as `1`).
    pub keep_last_n: usize,
    /// `max_tokens` of the summary request.
    pub summary_max_tokens: u32,
    /// Separate service for the summary call (`None` = the loop's model).
    pub summary_llm: Option<Arc<dyn LlmService>>,
    /// Absolute trigger threshold (beats the ratio; the environment variable beats it).
    pub absolute_threshold: Option<u64>,
    /// The model's context window; `None` = [`context_window_for_model`] of the loop's model.
    pub context_window_tokens: Option<u64>,
    /// How long the summary call may take before compaction gives up for this round
    /// (`compaction.failed` with cause `llm.timeout`; the history stays unfolded, the store is
    /// untouched and the round goes on). `None` = no limit. Default
    /// [`DefaultCompactor::DEFAULT_SUMMARY_TIMEOUT`] (60 s). The limit covers the whole call,
    /// including any retries the summary service does itself.
    pub summary_timeout: Option<Duration>,
    warned: Mutex<Option<String>>,
}

impl std::fmt::Debug for DefaultCompactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DefaultCompactor")
            .field("trigger_ratio", &self.trigger_ratio)
            .field("keep_last_n", &self.keep_last_n)
            .field("summary_max_tokens", &self.summary_max_tokens)
            .field("summary_llm", &self.summary_llm.is_some())
            .field("absolute_threshold", &self.absolute_threshold)
            .field("context_window_tokens", &self.context_window_tokens)
            .field("summary_timeout", &self.summary_timeout)
            .finish()
    }
}

impl Default for DefaultCompactor {
    fn default() -> Self {
        DefaultCompactor {
            trigger_ratio: 0.75,
            keep_last_n: 4,
            summary_max_tokens: 5000,
            summary_llm: None,
            absolute_threshold: None,
            context_window_tokens: None,
            summary_timeout: Some(Self::DEFAULT_SUMMARY_TIMEOUT),
            warned: Mutex::new(None),
        }
    }
}

impl DefaultCompactor {
    /// The default [`summary_timeout`](DefaultCompactor::summary_timeout): 60 seconds.
    pub const DEFAULT_SUMMARY_TIMEOUT: Duration = Duration::from_secs(60);

    /// A compactor with the spec's defaults (ratio 0.75, keep 4 exchanges, summary cap 5000) and
    /// a 60 s summary timeout.
    pub fn new() -> Self {
        Self::default()
    }
    /// Sets the trigger ratio.
    pub fn with_trigger_ratio(mut self, r: f64) -> Self {
        self.trigger_ratio = r;
        self
    }
    /// Sets how many trailing exchanges stay verbatim.
    pub fn with_keep_last_n(mut self, n: usize) -> Self {
        self.keep_last_n = n;
        self
    }
    /// Sets the summary request's `max_tokens`.
    pub fn with_summary_max_tokens(mut self, n: u32) -> Self {
        self.summary_max_tokens = n;
        self
    }
    /// Uses a separate service for summaries.
    pub fn with_summary_llm(mut self, llm: Arc<dyn LlmService>) -> Self {
        self.summary_llm = Some(llm);
        self
    }
    /// Sets the absolute trigger threshold.
    pub fn with_absolute_threshold(mut self, t: Option<u64>) -> Self {
        self.absolute_threshold = t;
        self
    }
    /// Sets the model's context window in tokens.
    pub fn with_context_window_tokens(mut self, w: u64) -> Self {
        self.context_window_tokens = Some(w);
        self
    }
    /// Sets the summary call's timeout (`None` = no limit).
    pub fn with_summary_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.summary_timeout = timeout;
        self
    }

    /// The trigger threshold for a request: env `CONTEXT_COMPACT_THRESHOLD` (a malformed value is
    /// logged once and ignored), else `absolute_threshold`, else `trigger_ratio` × (window −
    /// reply reservation), where the reservation is the reply cap but at most half the window.
    /// `None` = never fire.
    pub fn threshold(&self, model: &str, reply_cap: u32) -> Option<u64> {
        let env = std::env::var(COMPACT_THRESHOLD_ENV).ok();
        self.threshold_with_env(env.as_deref(), model, reply_cap)
    }

    fn threshold_with_env(&self, env: Option<&str>, model: &str, reply_cap: u32) -> Option<u64> {
        if let Some(raw) = env {
            let v = raw.trim();
            if !v.is_empty() {
                match v.parse::<u64>() {
                    Ok(n) => return Some(n),
                    Err(_) => self.warn_bad_env(v),
                }
            }
        }
        if let Some(a) = self.absolute_threshold {
            return Some(a);
        }
        let window = self
            .context_window_tokens
            .unwrap_or_else(|| context_window_for_model(model));
        let usable = window.saturating_sub(u64::from(reply_cap).min(window / 2));
        let t = (usable as f64 * self.trigger_ratio) as u64;
        (t > 0).then_some(t)
    }

    fn warn_bad_env(&self, v: &str) {
        let mut last = self.warned.lock().unwrap_or_else(|p| p.into_inner());
        if last.as_deref() != Some(v) {
            tracing::warn!(target: "power_loop::agent", value = %v,
                "{COMPACT_THRESHOLD_ENV} is not a non-negative integer; ignored (using the configured threshold)");
            *last = Some(v.to_owned());
        }
    }

    async fn plan(&self, req: CompactRequest<'_>) -> Result<Option<CompactionPlan>> {
        let history = req.history;
        let before = estimate_tokens(history);
        let model = match req.model {
            Some(m) => m.to_owned(),
            None => req.llm.model_name(),
        };
        let Some(threshold) = self.threshold(&model, req.max_tokens) else {
            return Ok(None);
        };
        if before < threshold {
            return Ok(None);
        }
        let Some(span) = select_span(history, self.keep_last_n, Some(threshold / 2)) else {
            return Ok(None);
        };
        let persisted = |i: &usize| req.seqs.get(*i).copied().flatten().is_some();
        let fold: Vec<usize> = (span.start..=span.end).filter(persisted).collect();
        // Minimum gain: the non-note content folded must be worth a summary call (≥ 5% of the
        // threshold), so a tail that alone exceeds the threshold does not trigger a near-useless
        // summary every round.
        let foldable: Vec<Message> = fold
            .iter()
            .map(|&i| &history[i])
            .filter(|m| !super::span::is_compact_note(m))
            .cloned()
            .collect();
        if foldable.is_empty() || estimate_tokens(&foldable) < threshold / 20 {
            return Ok(None);
        }
        // A separate summary model is instrumented like the loop's (whose `req.llm` already is).
        let llm = match &self.summary_llm {
            Some(l) => req.context.instrument(Arc::clone(l)),
            None => Arc::clone(&req.llm),
        };
        let slice: Vec<&Message> = fold.iter().map(|&i| &history[i]).collect();
        let call = SummaryCall {
            max_tokens: self.summary_max_tokens,
            timeout: self.summary_timeout,
            cancel: &req.cancel,
        };
        let (summary, usage) = summarize(&*llm, &slice, call).await?;
        let after = estimate_after(history, span, &fold, &summary);
        let mut plan = CompactionPlan::new(fold, summary).with_tokens(before, after);
        if let Some(u) = usage {
            plan = plan.with_usage(u);
        }
        Ok(Some(plan))
    }
}

fn estimate_after(history: &[Message], span: FoldSpan, fold: &[usize], summary: &str) -> u64 {
    let note = Message::system(summary).with_name("compact_note");
    let kept: Vec<Message> = history
        .iter()
        .enumerate()
        .filter(|(i, _)| !(span.start..=span.end).contains(i) || !fold.contains(i))
        .map(|(_, m)| m.clone())
        .collect();
    estimate_tokens(&kept) + estimate_tokens(std::slice::from_ref(&note))
}

const PROMPT: &str = "You are compressing a slice of an AI agent's transcript to save context. \
The slice may contain earlier compact notes (summaries of even older turns): merge them into your \
summary so that only one note remains. Preserve the user's requests and pending intent, decisions \
made, facts established (names, paths, numbers, identifiers), errors met and how they were \
handled, and what remains to do. Be concise. Do not call tools. Wrap the result in \
<summary>...</summary>.";

/// Renders the slice: `[role]` (+ ` tool_calls=N (names)`), newline, content; blank-line joined.
fn render_slice(slice: &[&Message]) -> String {
    slice
        .iter()
        .map(|m| {
            let mut head = format!("[{}]", m.role.as_str());
            if !m.tool_calls.is_empty() {
                let names: Vec<&str> = m.tool_calls.iter().map(|c| c.name()).collect();
                head.push_str(&format!(
                    " tool_calls={} ({})",
                    m.tool_calls.len(),
                    names.join(", ")
                ));
            }
            if m.role == Role::Tool
                && let Some(n) = &m.name
            {
                head.push_str(&format!(" name={n}"));
            }
            format!("{head}\n{}", m.text())
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

fn failed(msg: impl Into<String>) -> Error {
    Error::new(ErrorCode::CompactionFailed, msg)
}

fn summary_cancelled() -> Error {
    Error::cancelled("during the compaction summary call")
}

/// How one summary call runs.
struct SummaryCall<'a> {
    max_tokens: u32,
    timeout: Option<Duration>,
    cancel: &'a CancellationToken,
}

/// One summary call; the reply's `<summary>` body (or whole text). Empty, failed or timed out →
/// `compaction.failed` (detail `cause_code`: the call's own code, e.g. `llm.timeout`); the run's
/// token fired → `cancelled`, even when the service does not watch the token itself.
async fn summarize(
    llm: &dyn LlmService,
    slice: &[&Message],
    call: SummaryCall<'_>,
) -> Result<(String, Option<power_loop_contracts::TokenUsage>)> {
    let cancel = call.cancel;
    if cancel.is_cancelled() {
        return Err(summary_cancelled());
    }
    let prompt = format!(
        "{PROMPT}\n\n--- transcript slice ---\n{}",
        render_slice(slice)
    );
    let mut request = LlmRequest::new(vec![Message::user(prompt)]);
    request.max_tokens = Some(call.max_tokens);
    request.temperature = Some(0.0);
    request.cancel = Some(cancel.clone());
    let bounded = async {
        match call.timeout {
            Some(limit) => match tokio::time::timeout(limit, llm.complete(request)).await {
                Ok(r) => r,
                Err(_) => Err(Error::new(
                    ErrorCode::LlmTimeout,
                    format!(
                        "the compaction summary call did not answer within {} ms (DefaultCompactor::summary_timeout)",
                        limit.as_millis()
                    ),
                )
                .with_detail("timeout_ms", u64::try_from(limit.as_millis()).unwrap_or(u64::MAX))),
            },
            None => llm.complete(request).await,
        }
    };
    let outcome = tokio::select! {
        biased;
        () = cancel.cancelled() => return Err(summary_cancelled()),
        r = bounded => r,
    };
    let resp = match outcome {
        Ok(resp) => resp,
        Err(e) if cancel.is_cancelled() => return Err(summary_cancelled().with_source(e)),
        Err(e) => {
            let code = e.code().as_str();
            return Err(failed(format!(
                "the compaction summary call failed ({code}): {}; the history stays unfolded and the next round retries",
                e.message()
            ))
            .with_detail("cause_code", code)
            .with_source(e));
        }
    };
    let usage = (!resp.token_usage.is_empty()).then_some(resp.token_usage);
    let raw = if resp.raw_text.trim().is_empty() {
        resp.content_text.trim()
    } else {
        resp.raw_text.trim()
    };
    let text = match (raw.find("<summary>"), raw.rfind("</summary>")) {
        (Some(a), Some(b)) if a + "<summary>".len() <= b => raw[a + "<summary>".len()..b].trim(),
        _ => raw,
    };
    if text.is_empty() {
        return Err(failed(
            "the compaction summary reply was empty; the history stays unfolded and the next round retries",
        ));
    }
    Ok((text.to_owned(), usage))
}

impl Compactor for DefaultCompactor {
    fn maybe_compact<'a>(
        &'a self,
        request: CompactRequest<'a>,
    ) -> BoxFuture<'a, Result<Option<CompactionPlan>>> {
        Box::pin(self.plan(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use power_loop_contracts::LlmStream;

    /// A summary model that never answers and ignores the cancellation token; when `cancel_on_call`
    /// it first fires the request's token (so the token must have been passed on).
    struct Hung {
        cancel_on_call: bool,
    }

    impl LlmService for Hung {
        fn stream(&self, request: LlmRequest) -> BoxFuture<'_, Result<LlmStream>> {
            if self.cancel_on_call
                && let Some(t) = &request.cancel
            {
                t.cancel();
            }
            Box::pin(std::future::pending())
        }
        fn model_name(&self) -> String {
            "hung".into()
        }
    }

    async fn plan_with(c: &DefaultCompactor, llm: Hung, cancel: CancellationToken) -> Error {
        let history = vec![
            Message::user("first question"),
            Message::assistant("first answer"),
            Message::user("second question"),
        ];
        let seqs = vec![Some(1), Some(2), Some(3)];
        let req = CompactRequest {
            history: &history,
            seqs: &seqs,
            llm: Arc::new(llm),
            max_tokens: 8000,
            round_index: 0,
            model: None,
            cancel,
            context: crate::CompactionContext::new(),
        };
        let out = tokio::time::timeout(Duration::from_secs(30), c.plan(req))
            .await
            .expect("the compactor returned");
        match out {
            Err(e) => e,
            Ok(p) => panic!("expected an error, got {p:?}"),
        }
    }

    fn small() -> DefaultCompactor {
        DefaultCompactor::new()
            .with_absolute_threshold(Some(1))
            .with_keep_last_n(1)
    }

    #[test]
    fn summary_timeout_defaults_to_a_minute() {
        let c = DefaultCompactor::new();
        assert_eq!(c.summary_timeout, Some(Duration::from_secs(60)));
        assert_eq!(
            c.with_summary_timeout(None).summary_timeout,
            None,
            "None disables the limit"
        );
    }

    #[tokio::test]
    async fn hung_summary_call_times_out_as_compaction_failed() {
        let c = small().with_summary_timeout(Some(Duration::from_millis(50)));
        let e = plan_with(
            &c,
            Hung {
                cancel_on_call: false,
            },
            CancellationToken::new(),
        )
        .await;
        assert_eq!(e.code(), ErrorCode::CompactionFailed, "{e}");
        assert_eq!(
            e.detail("cause_code").and_then(|v| v.as_str()),
            Some("llm.timeout")
        );
        let src = std::error::Error::source(&e)
            .and_then(|s| s.downcast_ref::<Error>())
            .expect("the timeout is the source");
        assert_eq!(src.code(), ErrorCode::LlmTimeout);
    }

    #[tokio::test]
    async fn cancel_during_summary_call_is_cancelled_even_if_the_model_ignores_it() {
        // No timeout: only the token can end the call.
        let c = small().with_summary_timeout(None);
        let token = CancellationToken::new();
        let e = plan_with(
            &c,
            Hung {
                cancel_on_call: true,
            },
            token.clone(),
        )
        .await;
        assert_eq!(e.code(), ErrorCode::Cancelled, "{e}");
        assert!(token.is_cancelled());
        // A token that fired before the compaction: cancelled as well.
        let e = plan_with(
            &c,
            Hung {
                cancel_on_call: false,
            },
            token,
        )
        .await;
        assert_eq!(e.code(), ErrorCode::Cancelled, "{e}");
    }

    #[test]
    fn windows_per_family() {
        assert_eq!(context_window_for_model("gpt-4o-mini"), 128_000);
        assert_eq!(context_window_for_model("claude-sonnet-4"), 200_000);
        assert_eq!(context_window_for_model("my-local-model"), 32_000);
        assert_eq!(context_window_for_model(""), 32_000);
    }

    #[test]
    fn threshold_uses_window_not_reply_cap() {
        let c = DefaultCompactor::new().with_context_window_tokens(10_000);
        // reply cap 2000 reserved, 0.75 of the remaining 8000
        assert_eq!(c.threshold("x", 2000), Some(6000));
        // a huge reply cap reserves at most half the window
        assert_eq!(c.threshold("x", 1_000_000), Some(3750));
        let c = DefaultCompactor::new();
        assert_eq!(c.threshold("claude-3", 0), Some(150_000));
        let c = c.with_absolute_threshold(Some(42));
        assert_eq!(c.threshold_with_env(None, "claude-3", 0), Some(42));
        // env beats absolute; malformed/blank env is ignored (logged), never an error
        assert_eq!(c.threshold_with_env(Some(" 7 "), "claude-3", 0), Some(7));
        assert_eq!(c.threshold_with_env(Some("lots"), "claude-3", 0), Some(42));
        assert_eq!(c.threshold_with_env(Some(""), "claude-3", 0), Some(42));
        assert_eq!(*c.warned.lock().unwrap(), Some("lots".to_owned()));
        // a zero window never fires
        let z = DefaultCompactor::new().with_context_window_tokens(0);
        assert_eq!(z.threshold_with_env(None, "x", 0), None);
    }
}
