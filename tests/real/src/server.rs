//! Finding the real server, and the skip-or-fail rule.
//!
//! `POWER_LOOP_REAL_BASE_URL` (default `http://127.0.0.1:18431`, the port of
//! `scripts/real-model.sh`) must answer `GET /health` with 200. When it does not, a test prints
//! why and skips, unless `POWER_LOOP_REQUIRE_REAL=1` (set by `.ci/run`), which makes it fail.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// The default base URL: the fixed port `scripts/real-model.sh` starts the server on.
pub const DEFAULT_BASE_URL: &str = "http://127.0.0.1:18431";

/// A reachable real server.
#[derive(Debug, Clone)]
pub struct RealServer {
    /// `http://host:port`, without a trailing `/` or `/v1`.
    pub base_url: String,
}

/// Whether the suite must run (`POWER_LOOP_REQUIRE_REAL=1`): a missing server is a failure.
pub fn required() -> bool {
    std::env::var("POWER_LOOP_REQUIRE_REAL").as_deref() == Ok("1")
}

/// The configured base URL (trailing `/` and `/v1` removed).
pub fn base_url() -> String {
    let raw = std::env::var("POWER_LOOP_REAL_BASE_URL")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_BASE_URL.to_owned());
    let b = raw.trim().trim_end_matches('/');
    b.strip_suffix("/v1").unwrap_or(b).to_owned()
}

/// The server, or `None` after printing why the test skips. Panics instead of skipping when
/// `POWER_LOOP_REQUIRE_REAL=1`.
pub fn real_server() -> Option<RealServer> {
    let base = base_url();
    match health(&base) {
        Ok(()) => Some(RealServer { base_url: base }),
        Err(why) => {
            assert!(
                !required(),
                "no real model server with POWER_LOOP_REQUIRE_REAL=1: {base}/health: {why} \
                 (start one with `bash scripts/real-model.sh up`)"
            );
            eprintln!(
                "SKIPPED: no real model server at {base} ({why}); run `bash scripts/real-model.sh up` \
                 or set POWER_LOOP_REAL_BASE_URL"
            );
            None
        }
    }
}

/// `host:port` of an `http://` base URL.
pub fn authority(base: &str) -> Result<String, String> {
    let rest = base
        .strip_prefix("http://")
        .ok_or_else(|| format!("only http:// base URLs are supported, got {base}"))?;
    let host = rest.split('/').next().unwrap_or(rest);
    Ok(if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:80")
    })
}

/// `GET {base}/health` answered 200 within a few seconds.
fn health(base: &str) -> Result<(), String> {
    let auth = authority(base)?;
    let addr = auth
        .to_socket_addrs()
        .map_err(|e| format!("resolving {auth}: {e}"))?
        .next()
        .ok_or_else(|| format!("{auth} resolves to nothing"))?;
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3))
        .map_err(|e| format!("connecting: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    write!(
        s,
        "GET /health HTTP/1.1\r\nHost: {auth}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("writing: {e}"))?;
    let mut head = [0u8; 64];
    let n = s.read(&mut head).map_err(|e| format!("reading: {e}"))?;
    let line = String::from_utf8_lossy(&head[..n]);
    if line.starts_with("HTTP/1.1 200") || line.starts_with("HTTP/1.0 200") {
        Ok(())
    } else {
        Err(format!(
            "answered {:?}",
            line.lines().next().unwrap_or_default()
        ))
    }
}
