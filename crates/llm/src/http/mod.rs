//! The HTTP/SSE plumbing shared by the OpenAI-compatible and Anthropic transports.
//!
//! One reqwest client per service (rustls with the ring provider, no system proxy, no automatic
//! retries: retry lives in [`crate::retry`]), HTTP status → [`ErrorCode`] mapping with the
//! `Retry-After` / `retry-after-ms` value kept as the `retry_after_ms` detail, and a driver that
//! turns an SSE byte stream into [`StreamChunk`]s through a provider-specific [`SseParser`].

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use eventsource_stream::{Event, EventStreamError, Eventsource};
use futures_core::Stream;
use futures_util::StreamExt;
use power_loop_contracts::{CancellationToken, Error, ErrorCode, LlmStream, Result, StreamChunk};

use crate::util::run_cancellable;

/// Largest error body kept in error details (characters).
const MAX_ERROR_BODY_CHARS: usize = 2000;

/// Builds the reqwest client: connect timeout ≤ 30 s, idle read timeout `timeout`.
pub(crate) fn build_client(timeout: Duration) -> Result<reqwest::Client> {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Another thread may win the race; either way a provider is installed afterwards.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    let connect = timeout.min(Duration::from_secs(30));
    reqwest::Client::builder()
        .connect_timeout(connect)
        .read_timeout(timeout)
        .build()
        .map_err(|e| {
            Error::config(format!(
                "could not build the HTTP client for the model provider: {e}"
            ))
            .with_source(e)
        })
}

/// The reqwest client for a provider's `timeout_s` setting (validated like every duration).
pub(crate) fn client_for_timeout_s(timeout_s: f64) -> Result<reqwest::Client> {
    build_client(crate::util::duration_from_secs("timeout_s", timeout_s)?)
}

/// Sends one streaming request and returns the response once its head says success.
///
/// `request` is the provider's POST with its auth headers; this adds `accept: text/event-stream`
/// and `body` as JSON. A send failure maps through [`send_error`], a non-success status through
/// [`status_error`]; `cancel` firing before the head arrives gives `cancelled`. `provider` names
/// the server in messages.
pub(crate) async fn send_streaming(
    provider: &str,
    url: &str,
    request: reqwest::RequestBuilder,
    body: &serde_json::Value,
    cancel: Option<&CancellationToken>,
) -> Result<reqwest::Response> {
    let send = async {
        let resp = request
            .header("accept", "text/event-stream")
            .json(body)
            .send()
            .await
            .map_err(|e| send_error(provider, url, e))?;
        if !resp.status().is_success() {
            return Err(status_error(provider, resp).await);
        }
        Ok(resp)
    };
    run_cancellable(cancel, "before the model answered", send).await
}

/// Maps a reqwest error raised while sending the request or reading the response head.
pub(crate) fn send_error(provider: &str, url: &str, e: reqwest::Error) -> Error {
    if e.is_timeout() {
        Error::new(
            ErrorCode::LlmTimeout,
            format!("{provider} request to {url} timed out; raise timeout_s or check the server"),
        )
        .with_detail("stage", "send")
        .with_source(e)
    } else if e.is_builder() {
        Error::config(format!(
            "{provider} request to {url} could not be built (check base_url): {e}"
        ))
        .with_source(e)
    } else {
        Error::new(
            ErrorCode::LlmConnection,
            format!("could not reach {provider} at {url}: {e}; check base_url and the network"),
        )
        .with_source(e)
    }
}

/// `retry-after-ms` (milliseconds) or `retry-after` (seconds or an HTTP date) from the response
/// headers; see [`parse_retry_after`].
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = get("retry-after-ms").and_then(|v| v.parse::<f64>().ok())
        && ms.is_finite()
        && ms >= 0.0
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    get("retry-after").and_then(|v| parse_retry_after(v, std::time::SystemTime::now()))
}

/// A `Retry-After` value as a wait from `now`.
///
/// Accepts delay-seconds (a non-negative number; fractions tolerated) and an HTTP date in any of
/// the three forms of RFC 9110 section 5.6.7 (IMF-fixdate `Sun, 06 Nov 1994 08:49:37 GMT`, the obsolete
/// RFC 850 `Sunday, 06-Nov-94 08:49:37 GMT` and asctime `Sun Nov  6 08:49:37 1994`). A date in
/// the past gives a zero wait (the retry layer then uses its own backoff); anything else is
/// ignored (`None`). The retry layer clamps the result to `RetryPolicy::max_retry_after`.
pub(crate) fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let v = value.trim();
    if let Ok(s) = v.parse::<f64>() {
        return (s.is_finite() && s >= 0.0).then(|| Duration::from_secs_f64(s.min(1.0e9)));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The code for an HTTP status (before looking at the body).
pub(crate) fn code_for_status(status: u16) -> ErrorCode {
    match status {
        400 | 422 => ErrorCode::LlmBadRequest,
        401 | 403 => ErrorCode::LlmAuth,
        404 => ErrorCode::LlmNotFound,
        429 => ErrorCode::LlmRateLimited,
        529 => ErrorCode::LlmOverloaded,
        408 | 409 => ErrorCode::LlmServer,
        s if s >= 500 => ErrorCode::LlmServer,
        _ => ErrorCode::LlmBadRequest,
    }
}

fn advice(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::LlmBadRequest => "fix the request (model parameters, messages, tools)",
        ErrorCode::LlmAuth => "check the API key",
        ErrorCode::LlmNotFound => "check base_url and the model name",
        ErrorCode::LlmRateLimited => "slow down or wait for the rate limit to reset",
        ErrorCode::LlmOverloaded => "the provider is overloaded; retry later",
        _ => "the provider failed; retry later",
    }
}

/// Reads the error body (bounded) and maps a non-success response to an [`Error`].
pub(crate) async fn status_error(provider: &str, resp: reqwest::Response) -> Error {
    let status = resp.status().as_u16();
    let after = retry_after(resp.headers());
    let body = match resp.bytes().await {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(_) => String::new(),
    };
    error_from_status(provider, status, after, &body)
}

/// Maps an HTTP status (+ optional Retry-After and body) to an [`Error`].
pub(crate) fn error_from_status(
    provider: &str,
    status: u16,
    retry_after: Option<Duration>,
    body: &str,
) -> Error {
    let mut code = code_for_status(status);
    let parsed: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let err_obj = parsed.as_ref().and_then(|v| v.get("error"));
    let err_type = err_obj
        .and_then(|e| e.get("type").or_else(|| e.get("code")))
        .and_then(|t| t.as_str())
        .map(str::to_owned);
    if err_type.as_deref() == Some("overloaded_error") {
        code = ErrorCode::LlmOverloaded;
    }
    let provider_msg = err_obj
        .and_then(|e| e.get("message").or(Some(e)))
        .and_then(|m| m.as_str())
        .map(str::to_owned)
        .unwrap_or_else(|| body.chars().take(300).collect());
    let mut e = Error::new(
        code,
        format!(
            "{provider} answered HTTP {status}: {provider_msg}; {}",
            advice(code)
        ),
    )
    .with_detail("status", status)
    .with_detail("provider", provider);
    if let Some(t) = err_type {
        e = e.with_detail("provider_error_type", t);
    }
    if let Some(after) = retry_after {
        e = e.with_detail("retry_after_ms", after.as_millis() as u64);
    }
    if !body.is_empty() {
        let kept: String = body.chars().take(MAX_ERROR_BODY_CHARS).collect();
        e = e.with_detail("body", kept);
    }
    e
}

/// A provider's SSE event interpreter.
pub(crate) trait SseParser: Send + 'static {
    /// Interprets one event, pushing chunks to `out`. An error ends the stream.
    fn on_event(&mut self, event: &Event, out: &mut VecDeque<StreamChunk>) -> Result<()>;
    /// Whether the documented end was reached (later bytes are ignored).
    fn is_done(&self) -> bool;
    /// Called when the byte stream ended before [`is_done`](SseParser::is_done).
    fn incomplete_error(&self) -> Error;
    /// Interprets a whole non-streamed answer (a server that answered the streaming request with
    /// an `application/json` body), pushing the chunks the SSE path would have produced for the
    /// same answer, final chunk included.
    fn on_json_body(
        &mut self,
        body: &serde_json::Value,
        out: &mut VecDeque<StreamChunk>,
    ) -> Result<()>;
}

fn event_stream_error<E: std::fmt::Display>(provider: &str, e: EventStreamError<E>) -> Error {
    match e {
        EventStreamError::Transport(t) => Error::new(
            ErrorCode::LlmStreamIncomplete,
            format!(
                "the {provider} stream broke before its end: {t}; the partial answer was discarded (retry the call)"
            ),
        ),
        EventStreamError::Utf8(u) => Error::new(
            ErrorCode::LlmProtocol,
            format!("the {provider} stream is not valid UTF-8: {u}"),
        )
        .with_source(u),
        EventStreamError::Parser(p) => Error::new(
            ErrorCode::LlmProtocol,
            format!("the {provider} stream is not valid server-sent events: {p:?}"),
        ),
    }
}

/// Decodes an SSE byte stream through `parser` into a chunk stream.
///
/// The stream ends after the parser reports its documented end, after the first error, or with an
/// `llm.stream_incomplete` error when the bytes stop early.
pub(crate) fn decode<S, E, P>(provider: &'static str, bytes: S, parser: P) -> LlmStream
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Send + 'static,
    E: std::fmt::Display + Send + 'static,
    P: SseParser,
{
    let events = Box::pin(bytes.eventsource());
    let state = Some((events, parser, VecDeque::<StreamChunk>::new()));
    Box::pin(futures_util::stream::unfold(
        state,
        move |state| async move {
            let (mut events, mut parser, mut queue) = state?;
            loop {
                if let Some(chunk) = queue.pop_front() {
                    return Some((Ok(chunk), Some((events, parser, queue))));
                }
                if parser.is_done() {
                    return None;
                }
                match events.next().await {
                    Some(Ok(ev)) => {
                        if let Err(e) = parser.on_event(&ev, &mut queue) {
                            // Deliver chunks parsed before the failure? No: the failure is terminal.
                            return Some((Err(e), None));
                        }
                    }
                    Some(Err(e)) => return Some((Err(event_stream_error(provider, e)), None)),
                    None => {
                        let err = parser.incomplete_error();
                        return Some((Err(err), None));
                    }
                }
            }
        },
    ))
}

/// [`decode`] for a public `decode_stream`: the chunk stream also ends after its first error.
pub(crate) fn decode_fused<S, E, P>(provider: &'static str, bytes: S, parser: P) -> LlmStream
where
    S: Stream<Item = std::result::Result<Bytes, E>> + Send + 'static,
    E: std::fmt::Display + Send + 'static,
    P: SseParser,
{
    crate::util::fuse_on_error(decode(provider, bytes, parser))
}

/// Whether a success response carries a plain JSON body instead of server-sent events
/// (`content-type: application/json` or any `+json` type).
pub(crate) fn is_json_response(resp: &reqwest::Response) -> bool {
    resp.headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            let mime = v
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            mime == "application/json" || mime.ends_with("+json")
        })
        .unwrap_or(false)
}

/// Decodes a plain JSON answer to a streaming request into the chunks the SSE path would give.
///
/// The whole body is read, parsed and handed to [`SseParser::on_json_body`]; the chunks are then
/// yielded in order. A body that is really SSE despite its content type (it starts with `data:`,
/// `event:` or a `:` comment) goes through [`decode`]. A read failure is `llm.stream_incomplete`,
/// a body that is not JSON is `llm.protocol`.
pub(crate) fn decode_json_body<P: SseParser>(
    provider: &'static str,
    resp: reqwest::Response,
    mut parser: P,
) -> LlmStream {
    let chunks = async move {
        let bytes = match resp.bytes().await {
            Ok(b) => b,
            Err(e) => {
                let err = Error::new(
                    ErrorCode::LlmStreamIncomplete,
                    format!("the {provider} JSON answer could not be read to its end: {e} (retry the call)"),
                )
                .with_source(e);
                return futures_util::stream::iter(vec![Err(err)]).boxed();
            }
        };
        let head = String::from_utf8_lossy(&bytes[..bytes.len().min(64)])
            .trim_start()
            .to_owned();
        if head.starts_with("data:") || head.starts_with("event:") || head.starts_with(':') {
            let once = futures_util::stream::iter([Ok::<Bytes, String>(bytes)]);
            return decode(provider, once, parser);
        }
        let body: serde_json::Value = match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(e) => {
                let text = String::from_utf8_lossy(&bytes);
                let shown: String = text.chars().take(200).collect();
                let err = Error::new(
                    ErrorCode::LlmProtocol,
                    format!("{provider} answered the streaming request with a JSON content type, but the body is not valid JSON ({e}): {shown}"),
                )
                .with_source(e);
                return futures_util::stream::iter(vec![Err(err)]).boxed();
            }
        };
        let mut queue = VecDeque::new();
        let mut items: Vec<Result<StreamChunk>> = Vec::new();
        let outcome = parser.on_json_body(&body, &mut queue);
        items.extend(queue.into_iter().map(Ok));
        match outcome {
            Err(e) => items = vec![Err(e)],
            Ok(()) if !parser.is_done() => items.push(Err(parser.incomplete_error())),
            Ok(()) => {}
        }
        futures_util::stream::iter(items).boxed()
    };
    Box::pin(futures_util::stream::once(chunks).flatten())
}

/// Turns a reqwest response body into the byte stream [`decode`] reads, mapping read errors.
pub(crate) fn body_stream(
    resp: reqwest::Response,
) -> impl Stream<Item = std::result::Result<Bytes, String>> + Send + 'static {
    resp.bytes_stream().map(|r| {
        r.map_err(|e| {
            if e.is_timeout() {
                format!("no data within the read timeout ({e})")
            } else {
                e.to_string()
            }
        })
    })
}

/// The `llm.unsupported_content` error for a content part `provider` cannot take (raised before
/// anything is sent).
pub(crate) fn unsupported_content(
    provider: &str,
    part: &str,
    why: impl std::fmt::Display,
) -> Error {
    Error::new(
        ErrorCode::LlmUnsupportedContent,
        format!("{provider} cannot take this {part} content part: {why}"),
    )
    .with_detail("provider", provider)
    .with_detail("part_type", part)
}

/// A `llm.protocol` error for an undecodable event payload.
pub(crate) fn protocol_error(provider: &str, data: &str, e: serde_json::Error) -> Error {
    let shown: String = data.chars().take(200).collect();
    Error::new(
        ErrorCode::LlmProtocol,
        format!("{provider} sent a stream event that is not valid JSON ({e}): {shown}"),
    )
    .with_source(e)
}

/// Joins a base URL and a path with exactly one `/` (the OpenAI-compatible endpoint's rule).
#[cfg(feature = "openai")]
pub(crate) fn join_url(base: &str, path: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use super::parse_retry_after;

    #[test]
    fn retry_after_seconds_and_every_http_date_form() {
        // 1994-11-06 08:49:37 UTC
        let at = UNIX_EPOCH + Duration::from_secs(784_111_777);
        let now = at - Duration::from_secs(90);
        for v in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(
                parse_retry_after(v, now),
                Some(Duration::from_secs(90)),
                "{v}"
            );
        }
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", at + Duration::from_secs(5)),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after(" 7 ", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("1.5", now),
            Some(Duration::from_millis(1500))
        );
        for bad in ["-3", "soon", "", "Sun, 32 Nov 1994 08:49:37 GMT", "NaN"] {
            assert_eq!(parse_retry_after(bad, SystemTime::now()), None, "{bad}");
        }
    }
}
