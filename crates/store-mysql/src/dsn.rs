//! Parsing of `mysql://user:password@host:port/database` URLs.
//!
//! The host defaults to `localhost`, port to `3306`, user and password are percent-decoded
//! (no user → driver default; no password → empty), the database is the path without its leading
//! `/` (none when empty).
//!
//! Unlike the reference (which drops the query string), the query string is parsed strictly:
//! `require_ssl`, `verify_ca`, `verify_identity`, `ssl_ca` and `connect_timeout` are honoured
//! (see [`MySqlTls`]); any other parameter, a duplicate or a bad value is `store.dsn_invalid`
//! naming it.

use power_loop_contracts::{Error, ErrorCode, Result};

/// Connection parameters taken from a `mysql://` URL.
#[derive(Clone, PartialEq, Eq)]
pub struct MySqlUrl {
    /// Host name or IP address (`localhost` when absent).
    pub host: String,
    /// TCP port (`3306` when absent).
    pub port: u16,
    /// User name, percent-decoded.
    pub user: Option<String>,
    /// Password, percent-decoded.
    pub password: Option<String>,
    /// Database name, percent-decoded (`None` when the path is empty).
    pub database: Option<String>,
    /// TLS settings (`None`: plain TCP, the default).
    pub tls: Option<MySqlTls>,
    /// `connect_timeout` in seconds, as milliseconds (overrides the connect options' timeout).
    pub connect_timeout_ms: Option<u64>,
}

/// TLS settings from a MySQL DSN (`require_ssl=true` turns TLS on; the connection then fails
/// rather than fall back to plain text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MySqlTls {
    /// `verify_ca` (default `true`): the server certificate must chain to a trusted root — the
    /// `ssl_ca` file when given, else the Mozilla roots.
    pub verify_ca: bool,
    /// `verify_identity` (default: the value of `verify_ca`): the certificate must name the host
    /// connected to. `true` requires `verify_ca=true`; `false` with `verify_ca=true` is refused
    /// (the driver cannot skip only the host-name check).
    pub verify_identity: bool,
    /// `ssl_ca`: a PEM file of trusted CA certificates (replaces the built-in roots).
    pub ca_file: Option<std::path::PathBuf>,
}

/// The query parameters a MySQL DSN may carry.
pub(crate) const MYSQL_PARAMS: &[&str] = &[
    "require_ssl",
    "verify_ca",
    "verify_identity",
    "ssl_ca",
    "connect_timeout",
];

fn parse_bool(dsn: &str, key: &str, v: &str) -> Result<bool> {
    match v {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        other => Err(invalid(
            dsn,
            &format!("parameter `{key}` must be true or false, not `{other}`"),
        )
        .with_detail("parameter", key)),
    }
}

struct Query {
    tls: Option<MySqlTls>,
    connect_timeout_ms: Option<u64>,
}

fn parse_query(dsn: &str, query: &str) -> Result<Query> {
    let mut seen: Vec<String> = Vec::new();
    let mut require_ssl = false;
    let mut verify_ca = None;
    let mut verify_identity = None;
    let mut ca_file = None;
    let mut connect_timeout_ms = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| invalid(dsn, &format!("query parameter `{pair}` has no `=value`")))?;
        let key = percent_decode(dsn, k, "query string")?;
        let value = percent_decode(dsn, v, "query string")?;
        if !MYSQL_PARAMS.contains(&key.as_str()) {
            return Err(invalid(
                dsn,
                &format!(
                    "unknown or unsupported parameter `{key}` (supported: {})",
                    MYSQL_PARAMS.join(", ")
                ),
            )
            .with_detail("parameter", key));
        }
        if seen.contains(&key) {
            return Err(invalid(dsn, &format!("parameter `{key}` is given twice"))
                .with_detail("parameter", key));
        }
        match key.as_str() {
            "require_ssl" => require_ssl = parse_bool(dsn, &key, &value)?,
            "verify_ca" => verify_ca = Some(parse_bool(dsn, &key, &value)?),
            "verify_identity" => verify_identity = Some(parse_bool(dsn, &key, &value)?),
            "ssl_ca" => {
                if value.is_empty() {
                    return Err(invalid(dsn, "parameter `ssl_ca` is empty")
                        .with_detail("parameter", "ssl_ca"));
                }
                ca_file = Some(std::path::PathBuf::from(value));
            }
            _ => {
                let secs = value
                    .parse::<u64>()
                    .ok()
                    .filter(|s| *s > 0)
                    .ok_or_else(|| {
                        invalid(
                            dsn,
                            &format!(
                                "parameter `connect_timeout` must be a positive number of seconds, \
                             not `{value}`"
                            ),
                        )
                        .with_detail("parameter", "connect_timeout")
                    })?;
                connect_timeout_ms = Some(secs.saturating_mul(1000));
            }
        }
        seen.push(key);
    }
    if !require_ssl {
        for (given, key) in [
            (verify_ca.is_some(), "verify_ca"),
            (verify_identity.is_some(), "verify_identity"),
            (ca_file.is_some(), "ssl_ca"),
        ] {
            if given {
                return Err(invalid(
                    dsn,
                    &format!("parameter `{key}` needs require_ssl=true (TLS is off without it)"),
                )
                .with_detail("parameter", key));
            }
        }
        return Ok(Query {
            tls: None,
            connect_timeout_ms,
        });
    }
    let verify_ca = verify_ca.unwrap_or(true);
    let verify_identity = verify_identity.unwrap_or(verify_ca);
    if verify_ca && !verify_identity {
        // mysql_async 0.37 recognises a host-name mismatch by the text "NotValidForName", which
        // rustls 0.23.2x no longer prints (`NotValidForNameContext`): its "skip the host name"
        // option silently fails every connection. Refuse it rather than pretend.
        return Err(invalid(
            dsn,
            "verify_identity=false with verify_ca=true is not supported (the MySQL driver cannot \
             skip only the host-name check); use a certificate that names the host, or \
             verify_ca=false",
        )
        .with_detail("parameter", "verify_identity"));
    }
    if verify_identity && !verify_ca {
        return Err(invalid(
            dsn,
            "verify_identity=true needs verify_ca=true (a host name is only meaningful on a \
             verified certificate)",
        )
        .with_detail("parameter", "verify_identity"));
    }
    Ok(Query {
        tls: Some(MySqlTls {
            verify_ca,
            verify_identity,
            ca_file,
        }),
        connect_timeout_ms,
    })
}

impl std::fmt::Debug for MySqlUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MySqlUrl")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("database", &self.database)
            .field("tls", &self.tls)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .finish()
    }
}

fn invalid(dsn: &str, why: &str) -> Error {
    Error::new(
        ErrorCode::StoreDsnInvalid,
        format!(
            "invalid MySQL DSN `{}`: {why}; expected mysql://user:password@host:port/database",
            redact(dsn)
        ),
    )
}

/// The DSN with any password replaced by `***` (safe for messages and logs).
pub(crate) fn redact(dsn: &str) -> String {
    let Some((scheme, rest)) = dsn.split_once("://") else {
        return dsn.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            let host = &authority[at + 1..];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{scheme}://{user}:***@{host}{tail}"),
                None => dsn.to_owned(),
            }
        }
        None => dsn.to_owned(),
    }
}

fn percent_decode(dsn: &str, part: &str, what: &str) -> Result<String> {
    let bytes = part.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| invalid(dsn, &format!("bad percent-escape in the {what}")))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| {
        invalid(
            dsn,
            &format!("the {what} is not UTF-8 after percent-decoding"),
        )
    })
}

impl MySqlUrl {
    /// Parses a `mysql://` URL (the scheme is matched case-insensitively; a `+driver` suffix such
    /// as `mysql+aiomysql://` and the `mariadb` scheme are accepted).
    pub fn parse(dsn: &str) -> Result<MySqlUrl> {
        let (scheme, rest) = dsn
            .split_once("://")
            .ok_or_else(|| invalid(dsn, "missing `://`"))?;
        let base = scheme
            .split('+')
            .next()
            .unwrap_or(scheme)
            .to_ascii_lowercase();
        if base != "mysql" && base != "mariadb" {
            return Err(invalid(dsn, &format!("scheme `{scheme}` is not mysql")));
        }
        if rest.contains('#') {
            return Err(invalid(dsn, "a fragment (`#…`) is not allowed"));
        }
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let query = parse_query(dsn, query)?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, ""),
        };
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
            None => (None, authority),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(ui) => {
                let (u, p) = match ui.split_once(':') {
                    Some((u, p)) => (u, Some(p)),
                    None => (ui, None),
                };
                let user = if u.is_empty() {
                    None
                } else {
                    Some(percent_decode(dsn, u, "user")?)
                };
                let password = p.map(|p| percent_decode(dsn, p, "password")).transpose()?;
                (user, password)
            }
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6
                .split_once(']')
                .ok_or_else(|| invalid(dsn, "unterminated `[` in the host"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => Some(p),
                None if after.is_empty() => None,
                None => return Err(invalid(dsn, "unexpected text after the IPv6 host")),
            };
            (h.to_owned(), port)
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), Some(p)),
                None => (hostport.to_owned(), None),
            }
        };
        let port =
            match port {
                None | Some("") => 3306,
                Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| {
                    invalid(dsn, &format!("port `{p}` is not a number in 1..=65535"))
                })?,
            };
        let host = if host.is_empty() {
            "localhost".to_owned()
        } else {
            host
        };
        let database = if path.is_empty() {
            None
        } else {
            let db = percent_decode(dsn, path.trim_end_matches('/'), "database name")?;
            if db.contains('/') {
                return Err(invalid(dsn, "the database name contains `/`"));
            }
            Some(db)
        };
        Ok(MySqlUrl {
            host,
            port,
            user,
            password,
            database,
            tls: query.tls,
            connect_timeout_ms: query.connect_timeout_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let u = MySqlUrl::parse("mysql://").unwrap();
        assert_eq!(u.host, "localhost");
        assert_eq!(u.port, 3306);
        assert_eq!(u.user, None);
        assert_eq!(u.password, None);
        assert_eq!(u.database, None);
    }

    #[test]
    fn full_url_with_escapes_and_query() {
        let u = MySqlUrl::parse(
            "MySQL+aiomysql://us%40r:p%3Aw%2Fd@db.example:3307/my%5Fdb?connect_timeout=3",
        )
        .unwrap();
        assert_eq!(u.host, "db.example");
        assert_eq!(u.port, 3307);
        assert_eq!(u.user.as_deref(), Some("us@r"));
        assert_eq!(u.password.as_deref(), Some("p:w/d"));
        assert_eq!(u.database.as_deref(), Some("my_db"));
        assert_eq!(u.connect_timeout_ms, Some(3000));
        assert_eq!(u.tls, None);
    }

    #[test]
    fn ipv6_and_user_only() {
        let u = MySqlUrl::parse("mysql://root@[::1]:3306/test").unwrap();
        assert_eq!(u.host, "::1");
        assert_eq!(u.user.as_deref(), Some("root"));
        assert_eq!(u.password, None);
        assert_eq!(u.database.as_deref(), Some("test"));
    }

    #[test]
    fn bad_inputs() {
        for dsn in [
            "postgres://x/y",
            "mysql://h:99999/db",
            "mysql://h:abc/db",
            "mysql://u:%zz@h/d",
        ] {
            let e = MySqlUrl::parse(dsn).unwrap_err();
            assert_eq!(e.code(), ErrorCode::StoreDsnInvalid, "{dsn}");
        }
    }

    #[test]
    fn redaction() {
        assert_eq!(redact("mysql://u:secret@h/db"), "mysql://u:***@h/db");
        assert_eq!(redact("mysql://u@h/db"), "mysql://u@h/db");
        let e = MySqlUrl::parse("mysql://u:secret@h:0/db").unwrap_err();
        assert!(!e.message().contains("secret"));
    }

    fn err(dsn: &str) -> Error {
        MySqlUrl::parse(dsn).expect_err(dsn)
    }

    fn assert_names(e: &Error, param: &str) {
        assert_eq!(e.code(), ErrorCode::StoreDsnInvalid, "{e}");
        assert!(e.message().contains(param), "`{param}` named in: {e}");
    }

    fn tls(q: &str) -> Option<MySqlTls> {
        MySqlUrl::parse(&format!("mysql://root@h/db?{q}"))
            .unwrap_or_else(|e| panic!("{q}: {e}"))
            .tls
    }

    #[test]
    fn require_ssl() {
        assert_eq!(tls(""), None);
        assert_eq!(tls("require_ssl=false"), None);
        assert_eq!(
            tls("require_ssl=true"),
            Some(MySqlTls {
                verify_ca: true,
                verify_identity: true,
                ca_file: None
            })
        );
        assert_eq!(tls("require_ssl=1"), tls("require_ssl=true"));
        assert_names(&err("mysql://h/db?require_ssl=yes"), "require_ssl");
    }

    #[test]
    fn verify_ca() {
        let t = tls("require_ssl=true&verify_ca=false").unwrap();
        assert!(!t.verify_ca);
        assert!(!t.verify_identity, "identity follows verify_ca by default");
        assert!(tls("require_ssl=true&verify_ca=true").unwrap().verify_ca);
        assert_names(&err("mysql://h/db?verify_ca=false"), "verify_ca");
        assert_names(
            &err("mysql://h/db?require_ssl=true&verify_ca=x"),
            "verify_ca",
        );
    }

    #[test]
    fn verify_identity() {
        let t = tls("require_ssl=true&verify_identity=true").unwrap();
        assert!(t.verify_ca && t.verify_identity);
        let t = tls("require_ssl=true&verify_ca=false&verify_identity=false").unwrap();
        assert!(!t.verify_ca && !t.verify_identity);
        assert_names(
            &err("mysql://h/db?require_ssl=true&verify_identity=false"),
            "verify_identity",
        );
        assert_names(
            &err("mysql://h/db?require_ssl=true&verify_ca=false&verify_identity=true"),
            "verify_identity",
        );
        assert_names(&err("mysql://h/db?verify_identity=true"), "verify_identity");
    }

    #[test]
    fn ssl_ca() {
        let t = tls("require_ssl=true&ssl_ca=%2Fetc%2Fmy%20ca.pem").unwrap();
        assert_eq!(
            t.ca_file.as_deref(),
            Some(std::path::Path::new("/etc/my ca.pem"))
        );
        assert_names(&err("mysql://h/db?ssl_ca=/ca.pem"), "ssl_ca");
        assert_names(&err("mysql://h/db?require_ssl=true&ssl_ca="), "ssl_ca");
    }

    #[test]
    fn connect_timeout() {
        let u = MySqlUrl::parse("mysql://h/db?connect_timeout=12").unwrap();
        assert_eq!(u.connect_timeout_ms, Some(12_000));
        for bad in ["0", "-1", "soon"] {
            assert_names(
                &err(&format!("mysql://h/db?connect_timeout={bad}")),
                "connect_timeout",
            );
        }
    }

    #[test]
    fn unknown_and_duplicate_parameters_are_named() {
        for (q, key) in [
            ("ssl=1", "ssl"),
            ("sslmode=require", "sslmode"),
            ("pool_max=3", "pool_max"),
            ("REQUIRE_SSL=true", "REQUIRE_SSL"),
        ] {
            let e = err(&format!("mysql://h/db?{q}"));
            assert_names(&e, key);
            assert!(e.message().contains("unknown"), "{e}");
        }
        assert_names(
            &err("mysql://h/db?require_ssl=true&require_ssl=false"),
            "require_ssl",
        );
        assert_eq!(
            err("mysql://h/db?require_ssl").code(),
            ErrorCode::StoreDsnInvalid
        );
        assert_eq!(err("mysql://h/db#x").code(), ErrorCode::StoreDsnInvalid);
        let e = err("mysql://u:topsecret@h/db?bogus=1");
        assert!(!e.message().contains("topsecret"), "{e}");
    }
}
