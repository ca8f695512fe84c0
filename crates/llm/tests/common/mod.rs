//! A tiny HTTP/1.1 server for tests: answers each connection with the next scripted reply,
//! byte-exact, then closes the connection. Records every request.
#![allow(dead_code, unreachable_pub)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use power_loop_contracts::{
    LlmRequest, LlmResponse, LlmService, Message, ResponseFormat, Result, ToolChoice,
    ToolDefinition,
};
use power_loop_llm::{LlmStack, RetryPolicy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One request as received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub at: Instant,
    pub method: String,
    pub path: String,
    /// (lower-cased name, value)
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == &name.to_ascii_lowercase())
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("request body is JSON")
    }
}

/// One scripted reply.
#[derive(Debug, Clone)]
pub struct Reply {
    pub head: String,
    pub parts: Vec<Vec<u8>>,
    pub gap: Duration,
    /// Wait this long before writing anything (a stalled server).
    pub stall: Duration,
}

impl Reply {
    /// 200 text/event-stream, body written in the given parts.
    pub fn sse_parts<S: AsRef<str>>(parts: &[S]) -> Reply {
        Reply {
            head: "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\nconnection: close\r\n\r\n".into(),
            parts: parts.iter().map(|p| p.as_ref().as_bytes().to_vec()).collect(),
            gap: Duration::from_millis(2),
            stall: Duration::ZERO,
        }
    }
    /// 200 text/event-stream, body written in pieces of `n` bytes.
    pub fn sse_split(body: &str, n: usize) -> Reply {
        let mut r = Reply::sse_parts::<&str>(&[]);
        r.parts = body
            .as_bytes()
            .chunks(n.max(1))
            .map(|c| c.to_vec())
            .collect();
        r.gap = Duration::from_millis(1);
        r
    }
    /// A status reply with extra headers and a body.
    pub fn status(code: u16, reason: &str, headers: &[(&str, &str)], body: &str) -> Reply {
        let mut head = format!(
            "HTTP/1.1 {code} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
            body.len()
        );
        for (n, v) in headers {
            head.push_str(&format!("{n}: {v}\r\n"));
        }
        head.push_str("\r\n");
        Reply {
            head,
            parts: vec![body.as_bytes().to_vec()],
            gap: Duration::ZERO,
            stall: Duration::ZERO,
        }
    }
    pub fn stalled(mut self, d: Duration) -> Reply {
        self.stall = d;
        self
    }
    pub fn with_gap(mut self, d: Duration) -> Reply {
        self.gap = d;
        self
    }
}

pub struct TestServer {
    pub base: String,
    pub requests: Arc<Mutex<Vec<Recorded>>>,
}

impl TestServer {
    /// Serves `replies` in order (one per connection); afterwards answers 500.
    pub async fn start(replies: Vec<Reply>) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let reqs = requests.clone();
        let replies = Arc::new(Mutex::new(std::collections::VecDeque::from(replies)));
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let reqs = reqs.clone();
                let replies = replies.clone();
                tokio::spawn(async move {
                    let Some(rec) = read_request(&mut sock).await else {
                        return;
                    };
                    reqs.lock().unwrap().push(rec);
                    let reply = replies.lock().unwrap().pop_front().unwrap_or_else(|| {
                        Reply::status(
                            500,
                            "Internal Server Error",
                            &[],
                            r#"{"error":{"message":"no more scripted replies"}}"#,
                        )
                    });
                    if !reply.stall.is_zero() {
                        tokio::time::sleep(reply.stall).await;
                    }
                    if sock.write_all(reply.head.as_bytes()).await.is_err() {
                        return;
                    }
                    let _ = sock.flush().await;
                    for p in &reply.parts {
                        if !reply.gap.is_zero() {
                            tokio::time::sleep(reply.gap).await;
                        }
                        if sock.write_all(p).await.is_err() {
                            return;
                        }
                        let _ = sock.flush().await;
                    }
                    let _ = sock.shutdown().await;
                });
            }
        });
        TestServer {
            base: format!("http://{addr}"),
            requests,
        }
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().unwrap().clone()
    }
    pub fn count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

async fn read_request(sock: &mut tokio::net::TcpStream) -> Option<Recorded> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    let head_end = loop {
        let n = sock.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let first = lines.next()?;
    let mut it = first.split(' ');
    let method = it.next()?.to_owned();
    let path = it.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        let n = sock.read(&mut tmp).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&tmp[..n]);
    }
    Some(Recorded {
        at: Instant::now(),
        method,
        path,
        headers,
        body,
    })
}

/// `data: <json>\n\n` lines for OpenAI-style streams.
pub fn data(lines: &[&str]) -> String {
    lines.iter().map(|l| format!("data: {l}\n\n")).collect()
}

/// `event: <name>\ndata: <json>\n\n` for Anthropic-style streams.
pub fn events(evs: &[(&str, &str)]) -> String {
    evs.iter()
        .map(|(e, d)| format!("event: {e}\ndata: {d}\n\n"))
        .collect()
}

/// Anthropic-style events named after their data's `type` field (how the API names them).
pub fn typed_events(datas: &[&str]) -> String {
    datas
        .iter()
        .map(|d| {
            let v: serde_json::Value = serde_json::from_str(d).expect("event data is JSON");
            let name = v["type"].as_str().expect("event data has a type");
            format!("event: {name}\ndata: {d}\n\n")
        })
        .collect()
}

/// The retry policy of these tests: default attempts, short backoff sleeps.
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy::default()
        .with_base_delay(Duration::from_millis(5))
        .with_max_delay(Duration::from_millis(20))
}

/// `complete` of the prompt `x` (the request most of these tests send).
pub async fn complete_x(llm: &(impl LlmService + ?Sized)) -> Result<LlmResponse> {
    llm.complete(LlmRequest::from_prompt("x")).await
}

/// Serves one SSE `body` and completes the prompt `x` through the service `make` builds for the
/// server (no retry layer).
pub async fn complete_sse<L: LlmService>(
    make: impl Fn(&TestServer) -> L,
    body: impl AsRef<str>,
) -> Result<LlmResponse> {
    let server = TestServer::start(vec![Reply::sse_parts(&[body])]).await;
    complete_x(&make(&server)).await
}

/// Completes the prompt `x` through `svc`, expecting an `llm.timeout` error well before the 2 s
/// a stuck call would take; returns the error for further checks.
pub async fn prompt_timeout(svc: &(impl LlmService + ?Sized)) -> power_loop_contracts::Error {
    let t0 = Instant::now();
    let e = complete_x(svc).await.unwrap_err();
    assert_eq!(e.code(), power_loop_contracts::ErrorCode::LlmTimeout, "{e}");
    assert!(t0.elapsed() < Duration::from_secs(2));
    e
}

/// `complete` of the prompt `x` through an [`LlmStack`] that retries `llm` with [`fast_retry`].
pub async fn complete_with_fast_retry(llm: impl LlmService + 'static) -> Result<LlmResponse> {
    LlmStack::new()
        .retry(fast_retry())
        .wrap(Arc::new(llm))
        .complete(LlmRequest::from_prompt("x"))
        .await
}

/// The parameter schema of the `lookup` tool that [`full_request`] offers.
pub fn lookup_schema() -> serde_json::Value {
    serde_json::json!({"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]})
}

/// The JSON schema of the response format that [`full_request`] asks for.
pub fn answer_schema() -> serde_json::Value {
    serde_json::json!({"type": "object", "required": ["x"]})
}

/// A request over `messages` with every option a transport renders into its wire format: the
/// system prompt `sys`, temperature 0.5, one tool `lookup` ("Look something up",
/// [`lookup_schema`]) forced by the tool choice, and the JSON-schema response format `answer`
/// ([`answer_schema`]). The exact-request tests of each transport send it.
pub fn full_request(messages: Vec<Message>) -> LlmRequest {
    LlmRequest::new(messages)
        .with_system_prompt("sys")
        .with_temperature(0.5)
        .with_tools(vec![ToolDefinition::new(
            "lookup",
            "Look something up",
            lookup_schema(),
        )])
        .with_tool_choice(ToolChoice::Function("lookup".into()))
        .with_response_format(ResponseFormat::json_schema("answer", answer_schema()))
}
