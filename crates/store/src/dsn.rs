//! Strict DSN parsing: an unknown scheme or a malformed DSN is an error (`store.dsn_invalid`)
//! before anything is created, never a fallback to another backend or path.
//!
//! | DSN | Backend | Target |
//! |---|---|---|
//! | `:memory:`, `sqlite://`, `sqlite://:memory:` | sqlite | private in-memory database |
//! | `sqlite:///abs/path.db` (also `sqlite:////abs/path.db`) | sqlite | the **absolute** path `/abs/path.db` |
//! | `sqlite://rel/path.db` | sqlite | `rel/path.db`, relative to the working directory |
//! | a bare path without scheme (`app.db`, `./x.db`, `/tmp/x.db`, `~/x.db`) | sqlite | that file |
//! | `postgres://…`, `postgresql://…` | postgres | the URL, verbatim after the scheme |
//! | `mysql://…`, `mariadb://…` | mysql | the URL with the scheme rewritten to `mysql://` |
//!
//! Schemes are case-insensitive; a `+driver` suffix (`postgresql+psycopg://`) is accepted and
//! ignored; `sqlite3` is an alias of `sqlite`. Anything else with a scheme (`redis://…`,
//! `sqlite:x.db`, `mysql:/x`), an empty DSN, a SQLite DSN with a query string, or a server URL
//! with a malformed authority is `store.dsn_invalid`; no file is ever created for it.
//!
//! Note on `sqlite:///x`: SQLAlchemy reads three slashes as a relative path; this crate reads it
//! as the absolute path `/x` (what a URL's path means), and keeps `sqlite:////x` absolute too.

use std::path::PathBuf;

use power_loop_contracts::{Error, ErrorCode, Result};

use crate::backend::{DsnTarget, ParsedDsn};

fn invalid(dsn: &str, why: &str) -> Error {
    let shown = redact_dsn(dsn);
    Error::new(
        ErrorCode::StoreDsnInvalid,
        format!(
            "invalid store DSN `{shown}`: {why}. Use `sqlite:///abs/path.db`, a file path, `:memory:`, `postgres://user@host/db` or `mysql://user@host/db`"
        ),
    )
    .with_detail("dsn", shown)
}

/// The DSN with any password replaced by `***` (safe for messages and logs).
pub fn redact_dsn(dsn: &str) -> String {
    let Some(idx) = dsn.find("://") else {
        return dsn.to_owned();
    };
    let (head, rest) = dsn.split_at(idx + 3);
    let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..auth_end];
    match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            match userinfo.find(':') {
                Some(colon) => format!("{head}{}:***{}", &userinfo[..colon], &rest[at..]),
                None => dsn.to_owned(),
            }
        }
        None => dsn.to_owned(),
    }
}

fn split_scheme(dsn: &str) -> Option<(&str, &str)> {
    // A scheme is `[A-Za-z][A-Za-z0-9+.-]*` followed by `:`. A one-letter scheme is treated as
    // a Windows drive letter (`C:\x.db`), i.e. a path.
    let colon = dsn.find(':')?;
    let scheme = &dsn[..colon];
    let mut chars = scheme.chars();
    let first = chars.next()?;
    if !first.is_ascii_alphabetic()
        || !chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-'))
        || scheme.len() < 2
    {
        return None;
    }
    Some((scheme, &dsn[colon + 1..]))
}

fn check_authority(dsn: &str, rest: &str) -> Result<()> {
    let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..auth_end];
    let hostport = match authority.rfind('@') {
        Some(at) => &authority[at + 1..],
        None => authority,
    };
    let port = if let Some(stripped) = hostport.strip_prefix('[') {
        match stripped.find(']') {
            Some(close) => stripped[close + 1..].strip_prefix(':'),
            None => return Err(invalid(dsn, "unterminated IPv6 address in the host")),
        }
    } else {
        // libpq allows a comma-separated host list; check each port.
        for part in hostport.split(',') {
            if let Some((_, p)) = part.rsplit_once(':')
                && !p.is_empty()
                && p.parse::<u16>().map(|p| p == 0).unwrap_or(true)
            {
                return Err(invalid(
                    dsn,
                    &format!("port `{p}` is not a number in 1..=65535"),
                ));
            }
        }
        None
    };
    if let Some(p) = port
        && !p.is_empty()
        && p.parse::<u16>().map(|p| p == 0).unwrap_or(true)
    {
        return Err(invalid(
            dsn,
            &format!("port `{p}` is not a number in 1..=65535"),
        ));
    }
    Ok(())
}

/// Parses a DSN strictly into the backend it names and its target (see the module table).
pub fn parse_dsn(dsn: &str) -> Result<ParsedDsn> {
    if dsn.trim().is_empty() {
        return Err(invalid(dsn, "the DSN is empty"));
    }
    if dsn.chars().any(|c| c.is_control()) {
        return Err(invalid(dsn, "the DSN contains control characters"));
    }
    if dsn == ":memory:" {
        return Ok(ParsedDsn {
            backend: "sqlite",
            target: DsnTarget::SqliteMemory,
        });
    }
    let Some((scheme_raw, after)) = split_scheme(dsn) else {
        return Ok(ParsedDsn {
            backend: "sqlite",
            target: DsnTarget::SqliteFile(PathBuf::from(dsn)),
        });
    };
    let scheme_lower = scheme_raw.to_ascii_lowercase();
    let base = scheme_lower.split('+').next().unwrap_or("");
    let backend = match base {
        "sqlite" | "sqlite3" => "sqlite",
        "postgres" | "postgresql" => "postgres",
        "mysql" | "mariadb" => "mysql",
        _ => {
            return Err(invalid(
                dsn,
                &format!(
                    "unknown scheme `{scheme_raw}` (known: sqlite, sqlite3, postgres, postgresql, mysql, mariadb)"
                ),
            ));
        }
    };
    let Some(rest) = after.strip_prefix("//") else {
        return Err(invalid(
            dsn,
            &format!("expected `{scheme_raw}://` after the scheme"),
        ));
    };
    if backend == "sqlite" {
        if rest.contains('?') || rest.contains('#') {
            return Err(invalid(dsn, "SQLite DSNs take no query string or fragment"));
        }
        if rest.is_empty() || rest == ":memory:" || rest == "/:memory:" {
            return Ok(ParsedDsn {
                backend,
                target: DsnTarget::SqliteMemory,
            });
        }
        let path = if rest.starts_with('/') {
            // `sqlite:///abs` and `sqlite:////abs` both mean `/abs`.
            format!("/{}", rest.trim_start_matches('/'))
        } else {
            rest.to_owned()
        };
        if path == "/" {
            return Err(invalid(dsn, "the SQLite path is empty"));
        }
        return Ok(ParsedDsn {
            backend,
            target: DsnTarget::SqliteFile(PathBuf::from(path)),
        });
    }
    if rest.chars().any(char::is_whitespace) {
        return Err(invalid(
            dsn,
            "server URLs may not contain whitespace (percent-encode it)",
        ));
    }
    check_authority(dsn, rest)?;
    if backend == "mysql" {
        let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        if rest[..auth_end].rsplit('@').next().unwrap_or("").is_empty() {
            return Err(invalid(
                dsn,
                "a MySQL DSN needs a host (`mysql://user@host/db`)",
            ));
        }
    }
    let normalized = match base {
        "mariadb" => "mysql",
        other => other,
    };
    Ok(ParsedDsn {
        backend,
        target: DsnTarget::Url(format!("{normalized}://{rest}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(p: &str) -> DsnTarget {
        DsnTarget::SqliteFile(PathBuf::from(p))
    }

    #[test]
    fn dsn_table() {
        let cases: &[(&str, &str, DsnTarget)] = &[
            (":memory:", "sqlite", DsnTarget::SqliteMemory),
            ("sqlite://", "sqlite", DsnTarget::SqliteMemory),
            ("sqlite://:memory:", "sqlite", DsnTarget::SqliteMemory),
            ("SQLite://:memory:", "sqlite", DsnTarget::SqliteMemory),
            ("sqlite:///abs/path.db", "sqlite", file("/abs/path.db")),
            ("sqlite:////abs/path.db", "sqlite", file("/abs/path.db")),
            ("SQLITE3:///abs/x.db", "sqlite", file("/abs/x.db")),
            ("sqlite+pysqlite:///abs/x.db", "sqlite", file("/abs/x.db")),
            ("sqlite://rel.db", "sqlite", file("rel.db")),
            ("sqlite://data/x.db", "sqlite", file("data/x.db")),
            ("power-loop.db", "sqlite", file("power-loop.db")),
            ("./x.db", "sqlite", file("./x.db")),
            ("/tmp/x.db", "sqlite", file("/tmp/x.db")),
            ("~/x.db", "sqlite", file("~/x.db")),
            ("C:\\data\\x.db", "sqlite", file("C:\\data\\x.db")),
            (
                "postgres://u:p@localhost:5432/db?sslmode=disable",
                "postgres",
                DsnTarget::Url("postgres://u:p@localhost:5432/db?sslmode=disable".into()),
            ),
            (
                "PostgreSQL+psycopg://u@h/db",
                "postgres",
                DsnTarget::Url("postgresql://u@h/db".into()),
            ),
            (
                "postgres:///db?host=/run/pg",
                "postgres",
                DsnTarget::Url("postgres:///db?host=/run/pg".into()),
            ),
            (
                "mysql://root@127.0.0.1:3306/test",
                "mysql",
                DsnTarget::Url("mysql://root@127.0.0.1:3306/test".into()),
            ),
            (
                "mysql+aiomysql://root@h/test",
                "mysql",
                DsnTarget::Url("mysql://root@h/test".into()),
            ),
            (
                "MariaDB://root@[::1]:3306/test",
                "mysql",
                DsnTarget::Url("mysql://root@[::1]:3306/test".into()),
            ),
        ];
        for (dsn, backend, target) in cases {
            let p = parse_dsn(dsn).unwrap_or_else(|e| panic!("{dsn}: {e}"));
            assert_eq!(p.backend, *backend, "{dsn}");
            assert_eq!(&p.target, target, "{dsn}");
        }
    }

    #[test]
    fn bad_dsns_are_rejected() {
        for dsn in [
            "",
            "   ",
            "redis://localhost",
            "sqlite:x.db",
            "mysql:/x",
            "sqlite:///x.db?mode=ro",
            "postgres://h:notaport/db",
            "postgres://h:0/db",
            "postgres://h:99999/db",
            "mysql://",
            "mysql:///db",
            "postgres://a b@h/db",
            "postgres://[::1/db",
            "sqlite:///",
            "x\u{0}y.db",
            "http://example.com/x.db",
        ] {
            let e = parse_dsn(dsn).unwrap_err();
            assert_eq!(e.code(), ErrorCode::StoreDsnInvalid, "{dsn}: {e}");
        }
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_dsn("postgres://u:secret@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(redact_dsn("mysql://root@h/db"), "mysql://root@h/db");
        let e = parse_dsn("postgres://u:secret@h:x/db").unwrap_err();
        assert!(!e.to_string().contains("secret"), "{e}");
    }
}
