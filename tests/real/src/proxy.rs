//! A recording HTTP/1.1 proxy in front of the real server.
//!
//! Each accepted connection carries one exchange: the request (head + `Content-Length` body) is
//! recorded and forwarded upstream with `Connection: close`; the upstream answer is copied back
//! to the client as it arrives (so streaming stays streaming) and recorded. The proxy rewrites
//! the answer's `Connection` header to `close`, so the client never reuses a connection the proxy
//! is about to close.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::server::authority;

/// One request through the proxy and what came back.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// `POST`, `GET`, …
    pub method: String,
    /// The request path, e.g. `/v1/chat/completions`.
    pub path: String,
    /// The request body as JSON (`Null` when empty or not JSON).
    pub body: Value,
    /// The answer as received (status line, headers and body), lossily decoded.
    pub response: String,
}

impl Exchange {
    /// The text of every `data:` line of a streamed (SSE) answer, in order.
    pub fn sse_data(&self) -> Vec<Value> {
        self.response
            .lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .map(str::trim)
            .filter(|d| !d.is_empty() && *d != "[DONE]")
            .filter_map(|d| serde_json::from_str(d).ok())
            .collect()
    }
}

/// A running proxy; its listener thread lives as long as the test process.
#[derive(Debug, Clone)]
pub struct Proxy {
    /// `http://127.0.0.1:PORT`: use it in place of the server's base URL.
    pub base_url: String,
    log: Arc<Mutex<Vec<Exchange>>>,
}

impl Proxy {
    /// Starts a proxy forwarding to `upstream` (`http://host:port`).
    pub fn start(upstream: &str) -> Proxy {
        let upstream = authority(upstream).expect("upstream base URL");
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let base_url = format!("http://{}", listener.local_addr().expect("proxy address"));
        let log = Arc::new(Mutex::new(Vec::new()));
        let seen = log.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let seen = seen.clone();
                let upstream = upstream.clone();
                std::thread::spawn(move || {
                    if let Err(e) = serve(client, &upstream, &seen) {
                        eprintln!("proxy: {e}");
                    }
                });
            }
        });
        Proxy { base_url, log }
    }

    /// Every exchange so far, oldest first.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.log.lock().unwrap().clone()
    }

    /// The model calls so far (`POST` to the chat or messages endpoint), oldest first.
    pub fn model_calls(&self) -> Vec<Exchange> {
        self.exchanges()
            .into_iter()
            .filter(|e| {
                e.method == "POST"
                    && (e.path.ends_with("/chat/completions") || e.path.ends_with("/messages"))
            })
            .collect()
    }

    /// Forgets the exchanges recorded so far.
    pub fn clear(&self) {
        self.log.lock().unwrap().clear();
    }
}

/// Reads an HTTP head (up to the blank line): the first line and the header lines.
fn read_head(r: &mut impl BufRead) -> std::io::Result<Option<(String, Vec<String>)>> {
    let mut first = String::new();
    if r.read_line(&mut first)? == 0 {
        return Ok(None);
    }
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line)? == 0 {
            break;
        }
        let line = line.trim_end().to_owned();
        if line.is_empty() {
            break;
        }
        headers.push(line);
    }
    Ok(Some((first.trim_end().to_owned(), headers)))
}

fn is_header(line: &str, name: &str) -> bool {
    line.split(':')
        .next()
        .is_some_and(|n| n.trim().eq_ignore_ascii_case(name))
}

/// Serves one exchange on `client`.
fn serve(client: TcpStream, upstream: &str, log: &Mutex<Vec<Exchange>>) -> std::io::Result<()> {
    let mut reader = BufReader::new(client.try_clone()?);
    let Some((request_line, headers)) = read_head(&mut reader)? else {
        return Ok(());
    };
    let len = headers
        .iter()
        .find(|h| is_header(h, "content-length"))
        .and_then(|h| h.split_once(':'))
        .and_then(|(_, v)| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body)?;
    let mut parts = request_line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let path = parts.next().unwrap_or_default().to_owned();
    let index = {
        let mut l = log.lock().unwrap();
        l.push(Exchange {
            method,
            path,
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
            response: String::new(),
        });
        l.len() - 1
    };

    let mut up = TcpStream::connect(upstream)?;
    up.set_read_timeout(Some(Duration::from_secs(600)))?;
    let mut head = format!("{request_line}\r\n");
    for h in headers.iter().filter(|h| !is_header(h, "connection")) {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str("Connection: close\r\n\r\n");
    up.write_all(head.as_bytes())?;
    up.write_all(&body)?;
    up.flush()?;

    // The answer's head, with `Connection: close`, then the body as it streams.
    let mut up_reader = BufReader::new(up);
    let mut client = client;
    let Some((status, rheaders)) = read_head(&mut up_reader)? else {
        return Ok(());
    };
    let mut rhead = format!("{status}\r\n");
    for h in rheaders.iter().filter(|h| !is_header(h, "connection")) {
        rhead.push_str(h);
        rhead.push_str("\r\n");
    }
    rhead.push_str("Connection: close\r\n\r\n");
    append(log, index, rhead.as_bytes());
    client.write_all(rhead.as_bytes())?;
    let mut buf = [0u8; 8192];
    loop {
        let n = match up_reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        append(log, index, &buf[..n]);
        // A client that went away (a cancelled stream) ends the exchange; dropping the upstream
        // connection tells the server to stop generating.
        if client
            .write_all(&buf[..n])
            .and_then(|()| client.flush())
            .is_err()
        {
            break;
        }
    }
    let _ = client.shutdown(std::net::Shutdown::Both);
    Ok(())
}

fn append(log: &Mutex<Vec<Exchange>>, index: usize, bytes: &[u8]) {
    if let Some(e) = log.lock().unwrap().get_mut(index) {
        e.response.push_str(&String::from_utf8_lossy(bytes));
    }
}
