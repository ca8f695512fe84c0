//! A local HTTP server speaking the OpenAI chat-completions wire format (SSE), recording what
//! reaches it, and helpers to run the `power-loop` binary in a clean environment.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the server answers to the n-th request (0-based).
#[derive(Debug, Clone)]
pub enum Reply {
    /// A streamed answer in these pieces, with usage.
    Text(Vec<String>),
    /// `429 Too Many Requests` with `Retry-After: 0`.
    TooMany,
    /// A streamed tool call of this tool with `{}` arguments.
    ToolCall(String),
    /// One streamed piece, then nothing for this long (a slow model).
    Stall(Duration),
    /// After this long, a streamed answer `echo: {the last user message}` (a slow echo model).
    EchoAfter(Duration),
}

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Lower-cased header lines.
    pub headers: Vec<String>,
    /// The JSON body.
    pub body: serde_json::Value,
}

/// The fake server.
pub struct Fake {
    /// `http://127.0.0.1:PORT/v1`.
    pub url: String,
    /// Every request, in arrival order.
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl Fake {
    /// Starts a server answering request n with `reply(n)`.
    pub fn start(reply: impl Fn(usize) -> Reply + Send + Sync + 'static) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let reply = Arc::new(reply);
        std::thread::spawn(move || {
            for (n, stream) in listener.incoming().enumerate() {
                let Ok(stream) = stream else { continue };
                let log = Arc::clone(&log);
                let reply = Arc::clone(&reply);
                std::thread::spawn(move || serve(stream, n, &log, reply(n)));
            }
        });
        Fake {
            url: format!("http://{addr}/v1"),
            seen,
        }
    }

    /// A server that always answers `text`.
    pub fn text(text: &str) -> Fake {
        let t = text.to_owned();
        Fake::start(move |_| Reply::Text(vec![t.clone()]))
    }

    /// The recorded requests.
    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// One chat-completions SSE chunk of response `c{n}` with this `delta` and `finish_reason` (JSON).
pub fn chunk(n: usize, delta: &str, finish: &str) -> String {
    format!(
        "data: {{\"id\":\"c{n}\",\"object\":\"chat.completion.chunk\",\"model\":\"gpt-test\",\"choices\":[{{\"index\":0,\"delta\":{delta},\"finish_reason\":{finish}}}]}}\n\n"
    )
}

/// The head of a 200 SSE answer.
pub const SSE_HEAD: &str =
    "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n";

const USAGE: &str = "data: {\"id\":\"u\",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":{\"prompt_tokens\":70,\"completion_tokens\":30,\"total_tokens\":100}}\n\n";

/// Reads one HTTP request: its lower-cased header lines and its body (`None` when the
/// connection ends first).
pub fn read_request(stream: &TcpStream) -> Option<(Vec<String>, Vec<u8>)> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut len = 0usize;
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return None;
        }
        let l = line.trim_end().to_ascii_lowercase();
        if l.is_empty() {
            break;
        }
        if let Some(v) = l.strip_prefix("content-length:") {
            len = v.trim().parse().unwrap_or(0);
        }
        headers.push(l);
    }
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body).ok()?;
    Some((headers, body))
}

fn serve(mut stream: TcpStream, n: usize, log: &Mutex<Vec<Seen>>, reply: Reply) {
    let Some((headers, body)) = read_request(&stream) else {
        return;
    };
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    log.lock().unwrap().push(Seen {
        headers,
        body: body.clone(),
    });
    let sse_head = SSE_HEAD;
    let reply = match reply {
        Reply::EchoAfter(d) => {
            std::thread::sleep(d);
            Reply::Text(vec![format!("echo: {}", last_user_text(&body))])
        }
        other => other,
    };
    match reply {
        Reply::TooMany => {
            let body = "{\"error\":{\"message\":\"rate limited\",\"type\":\"rate_limit\"}}";
            let _ = write!(
                stream,
                "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\nretry-after: 0\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
        Reply::Text(pieces) => {
            let mut out = String::from(sse_head);
            out.push_str(&chunk(
                n,
                "{\"role\":\"assistant\",\"content\":\"\"}",
                "null",
            ));
            for p in pieces {
                out.push_str(&chunk(
                    n,
                    &serde_json::json!({ "content": p }).to_string(),
                    "null",
                ));
            }
            out.push_str(&chunk(n, "{}", "\"stop\""));
            out.push_str(USAGE);
            out.push_str("data: [DONE]\n\n");
            let _ = stream.write_all(out.as_bytes());
        }
        Reply::ToolCall(name) => {
            let mut out = String::from(sse_head);
            let delta = serde_json::json!({
                "role": "assistant",
                "content": null,
                "tool_calls": [{"index": 0, "id": format!("call_{n}"), "type": "function",
                    "function": {"name": name, "arguments": "{}"}}]
            });
            out.push_str(&chunk(n, &delta.to_string(), "null"));
            out.push_str(&chunk(n, "{}", "\"tool_calls\""));
            out.push_str(USAGE);
            out.push_str("data: [DONE]\n\n");
            let _ = stream.write_all(out.as_bytes());
        }
        Reply::EchoAfter(_) => unreachable!("answered as a text above"),
        Reply::Stall(d) => {
            let mut out = String::from(sse_head);
            out.push_str(&chunk(
                n,
                "{\"role\":\"assistant\",\"content\":\"thinking\"}",
                "null",
            ));
            let _ = stream.write_all(out.as_bytes());
            let _ = stream.flush();
            std::thread::sleep(d);
        }
    }
    let _ = stream.flush();
}

/// The text of the last user message of a chat-completions body.
fn last_user_text(body: &serde_json::Value) -> String {
    body["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
        .map(|m| match &m["content"] {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .unwrap_or_default()
}

/// A `power-loop` command in `dir` with a clean environment (PATH only) plus `env`.
pub fn cmd(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_power-loop"));
    c.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().copied())
        .args(args);
    c
}

/// Runs `power-loop` with stdin closed.
pub fn run(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    cmd(dir, env, args)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

/// The provider environment of a fake server (no API key: a local server needs none).
pub fn provider_env(fake: &Fake) -> Vec<(&'static str, String)> {
    vec![
        ("POWER_LOOP_BASE_URL", fake.url.clone()),
        ("POWER_LOOP_MODEL", "gpt-test".to_owned()),
        ("POWER_LOOP_MAX_RETRIES", "1".to_owned()),
    ]
}

/// `(k, v)` pairs as `&str`.
pub fn pairs<'a>(v: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    v.iter().map(|(k, s)| (*k, s.as_str())).collect()
}

/// stdout, stderr and the exit code, for assertion messages.
pub fn show(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The exit code.
pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// stdout parsed as one JSON value.
pub fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", show(o)))
}
