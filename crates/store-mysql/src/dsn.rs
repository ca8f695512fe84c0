//! Parsing of `mysql://user:password@host:port/database` URLs.
//!
//! The host defaults to `localhost`, port to `3306`, user and password are percent-decoded
//! (no user → driver default; no password → empty), the database is the path without its leading
//! `/` (none when empty). The query string is ignored.

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
}

impl std::fmt::Debug for MySqlUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MySqlUrl")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("database", &self.database)
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
        // Drop fragment and query string (ignored).
        let rest = rest.split(['?', '#']).next().unwrap_or("");
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
        let u = MySqlUrl::parse("MySQL+aiomysql://us%40r:p%3Aw%2Fd@db.example:3307/my%5Fdb?ssl=1")
            .unwrap();
        assert_eq!(u.host, "db.example");
        assert_eq!(u.port, 3307);
        assert_eq!(u.user.as_deref(), Some("us@r"));
        assert_eq!(u.password.as_deref(), Some("p:w/d"));
        assert_eq!(u.database.as_deref(), Some("my_db"));
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
}
