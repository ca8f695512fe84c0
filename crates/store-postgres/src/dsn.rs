//! Strict parsing of PostgreSQL DSNs: every parameter is checked against the documented list,
//! the TLS parameters tokio-postgres does not know (`sslmode=verify-ca|verify-full`,
//! `sslrootcert`) are taken out and mapped to a rustls configuration (`tls.rs`), and the rest is
//! handed to [`tokio_postgres::Config`].
//!
//! Both DSN forms are accepted: a URL (`postgres://user:pw@host:port/db?key=value&…`) and a libpq
//! `key=value` string (`host=h dbname=d sslmode=require`, values optionally single-quoted).

use std::path::PathBuf;
use std::str::FromStr;

use power_loop_contracts::{Error, ErrorCode, Result};
use power_loop_store::dsn::redact_dsn;

use crate::error::chain_text;

/// Parameters passed through to tokio-postgres (its own parser validates their values).
const DRIVER_PARAMS: &[&str] = &[
    "user",
    "password",
    "dbname",
    "options",
    "application_name",
    "sslnegotiation",
    "host",
    "hostaddr",
    "port",
    "connect_timeout",
    "tcp_user_timeout",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_retries",
    "target_session_attrs",
    "channel_binding",
    "load_balance_hosts",
];

/// Parameters this crate handles itself.
const OWN_PARAMS: &[&str] = &["sslmode", "sslrootcert"];

/// Parameters that may appear more than once (libpq host lists).
const LIST_PARAMS: &[&str] = &["host", "hostaddr", "port"];

/// How (and whether) a connection uses TLS — libpq's `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SslMode {
    /// Plain TCP only.
    Disable,
    /// TLS when the server offers it (the server certificate is not checked), else plain.
    Prefer,
    /// TLS or fail; the certificate is checked against `sslrootcert` only when one is given
    /// (libpq's rule), else not at all.
    Require,
    /// TLS; the server certificate must chain to a root of `sslrootcert`. The host name is not
    /// checked.
    VerifyCa,
    /// TLS; the chain must verify and the certificate must name the host connected to.
    VerifyFull,
}

/// Where the trusted roots come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RootCerts {
    /// A PEM file of one or more CA certificates.
    File(PathBuf),
    /// The Mozilla root program (`sslrootcert=system`).
    System,
}

/// A parsed PostgreSQL DSN: the driver's configuration plus the TLS settings we apply.
#[derive(Debug)]
pub(crate) struct PgDsn {
    /// Everything tokio-postgres understands (its `sslmode` is set from [`PgDsn::ssl_mode`]).
    pub(crate) config: tokio_postgres::Config,
    /// The requested TLS mode (libpq default: `prefer`).
    pub(crate) ssl_mode: SslMode,
    /// Roots that verify the server certificate; `None` means "do not verify".
    pub(crate) roots: Option<RootCerts>,
}

fn invalid(dsn: &str, why: &str) -> Error {
    let shown = redact_dsn(dsn);
    Error::new(
        ErrorCode::StoreDsnInvalid,
        format!("invalid PostgreSQL DSN `{shown}`: {why}"),
    )
    .with_detail("dsn", shown)
}

fn percent_decode(dsn: &str, part: &str) -> Result<String> {
    let bytes = part.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| invalid(dsn, "bad percent-escape in the query string"))?;
                out.push(hex);
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out)
        .map_err(|_| invalid(dsn, "the query string is not UTF-8 after percent-decoding"))
}

/// Splits a libpq `key=value …` string into pairs (values may be single-quoted, with `\\` and
/// `\'` escapes).
fn split_key_values(dsn: &str) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut chars = dsn.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Ok(out);
        }
        let mut key = String::new();
        while let Some(&c) = chars.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            chars.next();
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next() != Some('=') {
            return Err(invalid(dsn, &format!("expected `=` after `{key}`")));
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'\'') {
            chars.next();
            loop {
                match chars.next() {
                    Some('\'') => break,
                    Some('\\') => match chars.next() {
                        Some(c) => value.push(c),
                        None => return Err(invalid(dsn, "unterminated quoted value")),
                    },
                    Some(c) => value.push(c),
                    None => return Err(invalid(dsn, "unterminated quoted value")),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() {
                    break;
                }
                if c == '\\' {
                    chars.next();
                    if let Some(e) = chars.next() {
                        value.push(e);
                    }
                    continue;
                }
                value.push(c);
                chars.next();
            }
        }
        out.push((key, value));
    }
}

fn quote_value(v: &str) -> String {
    format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn check_key(dsn: &str, key: &str, seen: &mut Vec<String>) -> Result<()> {
    if !DRIVER_PARAMS.contains(&key) && !OWN_PARAMS.contains(&key) {
        return Err(invalid(
            dsn,
            &format!(
                "unknown or unsupported parameter `{key}` (supported: {}, {})",
                OWN_PARAMS.join(", "),
                DRIVER_PARAMS.join(", ")
            ),
        )
        .with_detail("parameter", key));
    }
    if !LIST_PARAMS.contains(&key) && seen.iter().any(|s| s == key) {
        return Err(invalid(dsn, &format!("parameter `{key}` is given twice"))
            .with_detail("parameter", key));
    }
    seen.push(key.to_owned());
    Ok(())
}

fn parse_ssl_mode(dsn: &str, v: &str) -> Result<SslMode> {
    Ok(match v {
        "disable" => SslMode::Disable,
        "prefer" => SslMode::Prefer,
        "require" => SslMode::Require,
        "verify-ca" => SslMode::VerifyCa,
        "verify-full" => SslMode::VerifyFull,
        other => {
            return Err(invalid(
                dsn,
                &format!(
                    "sslmode `{other}` is not supported (use disable, prefer, require, verify-ca \
                     or verify-full)"
                ),
            )
            .with_detail("parameter", "sslmode"));
        }
    })
}

/// The parameters this layer takes out of a DSN (TLS) or checks (`channel_binding`), gathered
/// while the rest is handed to the driver.
#[derive(Default)]
struct OwnParams {
    ssl_mode: Option<SslMode>,
    root: Option<String>,
    channel_binding_required: bool,
}

impl OwnParams {
    /// Checks one parameter (unknown or duplicate → error) and takes it if it is ours; returns
    /// whether the driver must also get it.
    fn take(&mut self, dsn: &str, seen: &mut Vec<String>, key: &str, value: &str) -> Result<bool> {
        check_key(dsn, key, seen)?;
        match key {
            "sslmode" => self.ssl_mode = Some(parse_ssl_mode(dsn, value)?),
            "sslrootcert" => self.root = Some(value.to_owned()),
            _ => {
                if key == "channel_binding" && value == "require" {
                    self.channel_binding_required = true;
                }
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The `sslmode` the driver gets: it negotiates TLS (`require` for every verifying mode);
    /// our rustls connector does the verification.
    fn driver_ssl_mode(&self) -> &'static str {
        match self.ssl_mode.unwrap_or(SslMode::Prefer) {
            SslMode::Disable => "sslmode=disable",
            SslMode::Prefer => "sslmode=prefer",
            _ => "sslmode=require",
        }
    }
}

impl PgDsn {
    /// Parses `dsn` strictly (see the module docs). An unknown parameter, a duplicate, a bad
    /// value or a verifying `sslmode` without any root certificates is `store.dsn_invalid`
    /// naming the parameter.
    pub(crate) fn parse(dsn: &str) -> Result<PgDsn> {
        let is_url = dsn.starts_with("postgres://") || dsn.starts_with("postgresql://");
        let mut seen = Vec::new();
        let mut own = OwnParams::default();
        let driver_dsn = if is_url {
            if dsn.contains('#') {
                return Err(invalid(dsn, "a fragment (`#…`) is not allowed"));
            }
            let (base, query) = match dsn.split_once('?') {
                Some((b, q)) => (b, q),
                None => (dsn, ""),
            };
            let mut kept = Vec::new();
            for pair in query.split('&').filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once('=').ok_or_else(|| {
                    invalid(dsn, &format!("query parameter `{pair}` has no `=value`"))
                })?;
                let key = percent_decode(dsn, k)?;
                let value = percent_decode(dsn, v)?;
                if own.take(dsn, &mut seen, &key, &value)? {
                    kept.push(pair);
                }
            }
            kept.push(own.driver_ssl_mode());
            format!("{base}?{}", kept.join("&"))
        } else {
            let mut kept = Vec::new();
            for (key, value) in split_key_values(dsn)? {
                if own.take(dsn, &mut seen, &key, &value)? {
                    kept.push(format!("{key}={}", quote_value(&value)));
                }
            }
            kept.push(own.driver_ssl_mode().to_owned());
            kept.join(" ")
        };
        let OwnParams {
            ssl_mode,
            root,
            channel_binding_required,
        } = own;
        let ssl_mode = ssl_mode.unwrap_or(SslMode::Prefer);
        if channel_binding_required {
            return Err(invalid(
                dsn,
                "channel_binding=require is not supported (the TLS connector offers no channel \
                 binding); use channel_binding=prefer or disable",
            )
            .with_detail("parameter", "channel_binding"));
        }
        let roots = match root.as_deref() {
            Some("") => {
                return Err(
                    invalid(dsn, "sslrootcert is empty").with_detail("parameter", "sslrootcert")
                );
            }
            Some("system") => Some(RootCerts::System),
            Some(path) => Some(RootCerts::File(PathBuf::from(path))),
            None => None,
        };
        if ssl_mode == SslMode::Disable && roots.is_some() {
            return Err(invalid(dsn, "sslrootcert is given but sslmode=disable")
                .with_detail("parameter", "sslrootcert"));
        }
        let roots = match (ssl_mode, roots) {
            (SslMode::VerifyCa | SslMode::VerifyFull, None) => {
                // libpq's default root file.
                let default = std::env::var_os("HOME")
                    .map(|h| PathBuf::from(h).join(".postgresql/root.crt"))
                    .filter(|p| p.is_file());
                match default {
                    Some(p) => Some(RootCerts::File(p)),
                    None => {
                        return Err(invalid(
                            dsn,
                            "sslmode=verify-ca/verify-full needs the trusted roots: set \
                             sslrootcert=/path/to/ca.pem (or sslrootcert=system), or provide \
                             ~/.postgresql/root.crt",
                        )
                        .with_detail("parameter", "sslrootcert"));
                    }
                }
            }
            // `prefer` never verifies (it would fall back to plain text anyway).
            (SslMode::Prefer, _) => None,
            (_, r) => r,
        };
        let config = tokio_postgres::Config::from_str(&driver_dsn).map_err(|e| {
            invalid(
                dsn,
                &format!(
                    "{}; use postgres://user:password@host:port/database?sslmode=…",
                    chain_text(&e)
                ),
            )
            .with_source(e)
        })?;
        Ok(PgDsn {
            config,
            ssl_mode,
            roots,
        })
    }
}

#[cfg(test)]
#[path = "dsn_tests.rs"]
mod tests;
