//! One test per documented PostgreSQL DSN parameter, plus the unknown-parameter error.

use std::time::Duration;

use tokio_postgres::config::{
    ChannelBinding, Host, LoadBalanceHosts, SslMode as DriverSslMode, SslNegotiation,
    TargetSessionAttrs,
};

use super::*;

const BASE: &str = "postgres://u@h:5433/db";

fn url(q: &str) -> PgDsn {
    PgDsn::parse(&format!("{BASE}?{q}")).unwrap_or_else(|e| panic!("{q}: {e}"))
}

fn url_err(q: &str) -> Error {
    PgDsn::parse(&format!("{BASE}?{q}")).expect_err(q)
}

fn assert_invalid_naming(e: &Error, param: &str) {
    assert_eq!(e.code(), ErrorCode::StoreDsnInvalid, "{e}");
    assert!(e.to_string().contains(param), "`{param}` named in: {e}");
}

#[test]
fn user_password_dbname() {
    let d = url("user=alice&password=s%3Acret&dbname=other");
    assert_eq!(d.config.get_user(), Some("alice"));
    assert_eq!(d.config.get_password(), Some(&b"s:cret"[..]));
    assert_eq!(d.config.get_dbname(), Some("other"));
    // Without the parameters, the URL's parts.
    let d = PgDsn::parse(BASE).unwrap();
    assert_eq!(d.config.get_user(), Some("u"));
    assert_eq!(d.config.get_dbname(), Some("db"));
}

#[test]
fn options_and_application_name() {
    let d = url("options=-c%20statement_timeout%3D5000&application_name=worker-1");
    assert_eq!(d.config.get_options(), Some("-c statement_timeout=5000"));
    assert_eq!(d.config.get_application_name(), Some("worker-1"));
}

#[test]
fn host_hostaddr_port() {
    let d = url("host=/run/postgresql");
    assert!(
        d.config
            .get_hosts()
            .iter()
            .any(|h| matches!(h, Host::Unix(p) if p.to_str() == Some("/run/postgresql")))
    );
    let d = url("hostaddr=127.0.0.1&port=6543");
    assert_eq!(
        d.config.get_hostaddrs(),
        &["127.0.0.1".parse::<std::net::IpAddr>().unwrap()]
    );
    assert!(d.config.get_ports().contains(&6543));
    assert_invalid_naming(&url_err("port=notanumber"), "port");
}

#[test]
fn timeouts_and_keepalives() {
    let d = url(
        "connect_timeout=7&tcp_user_timeout=9&keepalives=0&keepalives_idle=30&\
         keepalives_interval=5&keepalives_retries=4",
    );
    assert_eq!(
        d.config.get_connect_timeout(),
        Some(&Duration::from_secs(7))
    );
    assert_eq!(
        d.config.get_tcp_user_timeout(),
        Some(&Duration::from_secs(9))
    );
    assert!(!d.config.get_keepalives());
    assert_eq!(d.config.get_keepalives_idle(), Duration::from_secs(30));
    assert_eq!(
        d.config.get_keepalives_interval(),
        Some(Duration::from_secs(5))
    );
    assert_eq!(d.config.get_keepalives_retries(), Some(4));
    assert_invalid_naming(&url_err("connect_timeout=soon"), "connect_timeout");
}

#[test]
fn target_session_attrs_and_load_balance_hosts() {
    let d = url("target_session_attrs=read-write&load_balance_hosts=random");
    assert_eq!(
        d.config.get_target_session_attrs(),
        TargetSessionAttrs::ReadWrite
    );
    assert_eq!(d.config.get_load_balance_hosts(), LoadBalanceHosts::Random);
    assert_invalid_naming(
        &url_err("target_session_attrs=primary"),
        "target_session_attrs",
    );
}

#[test]
fn sslnegotiation() {
    let d = url("sslnegotiation=direct&sslmode=require");
    assert_eq!(d.config.get_ssl_negotiation(), SslNegotiation::Direct);
}

#[test]
fn channel_binding() {
    let d = url("channel_binding=disable");
    assert_eq!(d.config.get_channel_binding(), ChannelBinding::Disable);
    let d = url("channel_binding=prefer");
    assert_eq!(d.config.get_channel_binding(), ChannelBinding::Prefer);
    assert_invalid_naming(&url_err("channel_binding=require"), "channel_binding");
}

#[test]
fn sslmode_every_value() {
    let cases = [
        ("", SslMode::Prefer, DriverSslMode::Prefer),
        ("sslmode=disable", SslMode::Disable, DriverSslMode::Disable),
        ("sslmode=prefer", SslMode::Prefer, DriverSslMode::Prefer),
        ("sslmode=require", SslMode::Require, DriverSslMode::Require),
        (
            "sslmode=verify-ca&sslrootcert=/x/ca.pem",
            SslMode::VerifyCa,
            DriverSslMode::Require,
        ),
        (
            "sslmode=verify-full&sslrootcert=system",
            SslMode::VerifyFull,
            DriverSslMode::Require,
        ),
    ];
    for (q, ours, driver) in cases {
        let d = url(q);
        assert_eq!(d.ssl_mode, ours, "{q}");
        assert_eq!(d.config.get_ssl_mode(), driver, "{q}");
    }
    assert_invalid_naming(&url_err("sslmode=allow"), "sslmode");
    assert_invalid_naming(&url_err("sslmode=bogus"), "sslmode");
}

#[test]
fn sslrootcert() {
    let d = url("sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem");
    assert_eq!(d.roots, Some(RootCerts::File(PathBuf::from("/etc/ca.pem"))));
    let d = url("sslmode=verify-ca&sslrootcert=system");
    assert_eq!(d.roots, Some(RootCerts::System));
    // require + sslrootcert verifies the chain (libpq); prefer never verifies.
    assert!(url("sslmode=require&sslrootcert=/ca.pem").roots.is_some());
    assert!(url("sslmode=require").roots.is_none());
    assert!(url("sslmode=prefer&sslrootcert=/ca.pem").roots.is_none());
    assert_invalid_naming(
        &url_err("sslmode=disable&sslrootcert=/ca.pem"),
        "sslrootcert",
    );
    assert_invalid_naming(&url_err("sslmode=verify-ca&sslrootcert="), "sslrootcert");
}

#[test]
fn verify_modes_without_roots_need_a_root_file() {
    // With HOME pointing at a directory without .postgresql/root.crt, there are no roots.
    let has_default = std::env::var_os("HOME")
        .map(|h| PathBuf::from(h).join(".postgresql/root.crt").is_file())
        .unwrap_or(false);
    if !has_default {
        assert_invalid_naming(&url_err("sslmode=verify-full"), "sslrootcert");
    }
}

#[test]
fn unknown_parameters_are_named() {
    for q in [
        "sslcert=/c.pem",
        "pool_size=4",
        "ssl=true",
        "SSLMODE=require",
    ] {
        let key = q.split('=').next().unwrap();
        let e = url_err(q);
        assert_invalid_naming(&e, key);
        assert!(e.to_string().contains("unknown"), "{e}");
    }
    assert_invalid_naming(&url_err("sslmode=require&sslmode=disable"), "sslmode");
    assert_eq!(
        url_err("sslmode").code(),
        ErrorCode::StoreDsnInvalid,
        "a parameter without a value"
    );
    assert_eq!(
        PgDsn::parse("postgres://h/db#frag").unwrap_err().code(),
        ErrorCode::StoreDsnInvalid
    );
}

#[test]
fn key_value_form() {
    let d = PgDsn::parse(
        "host=localhost port=5433 user=u dbname='my db' sslmode=verify-ca sslrootcert='/a b/ca.pem'",
    )
    .unwrap();
    assert_eq!(d.config.get_dbname(), Some("my db"));
    assert_eq!(d.ssl_mode, SslMode::VerifyCa);
    assert_eq!(d.roots, Some(RootCerts::File(PathBuf::from("/a b/ca.pem"))));
    let e = PgDsn::parse("host=h bogus=1").unwrap_err();
    assert_invalid_naming(&e, "bogus");
    assert_eq!(
        PgDsn::parse("host=h dbname='x").unwrap_err().code(),
        ErrorCode::StoreDsnInvalid
    );
}

#[test]
fn passwords_are_not_shown_in_errors() {
    let e = PgDsn::parse("postgres://u:topsecret@h/db?bogus=1").unwrap_err();
    assert!(!e.to_string().contains("topsecret"), "{e}");
}
