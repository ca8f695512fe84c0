//! Test support shared by the backend, agent and workspace test suites: which server to test
//! against, and fresh names so suites can share one server database.
//!
//! The rule for server suites lives here once: a server test runs when its DSN variable is set
//! (`POWER_LOOP_TEST_PG_DSN`, `POWER_LOOP_TEST_MYSQL_DSN`); when it is unset the test prints why
//! and skips, unless `POWER_LOOP_REQUIRE_SERVERS=1`, which turns the skip into a failure (CI sets
//! it so a missing server can never pass as green).

use std::sync::atomic::{AtomicU64, Ordering};

use crate::{BackendDescriptor, SessionStore, StoreOptions, open_store};

/// The variable naming the PostgreSQL test server.
pub const PG_DSN_VAR: &str = "POWER_LOOP_TEST_PG_DSN";
/// The variable naming the MySQL/MariaDB test server.
pub const MYSQL_DSN_VAR: &str = "POWER_LOOP_TEST_MYSQL_DSN";
/// The variable that turns a skipped server test into a failure when set to `1`.
pub const REQUIRE_SERVERS_VAR: &str = "POWER_LOOP_REQUIRE_SERVERS";

/// Whether server suites must run (`POWER_LOOP_REQUIRE_SERVERS=1`).
pub fn servers_required() -> bool {
    std::env::var(REQUIRE_SERVERS_VAR).as_deref() == Ok("1")
}

fn example_for(var: &str) -> &'static str {
    match var {
        PG_DSN_VAR => " (e.g. postgres://postgres@127.0.0.1:5432/test)",
        MYSQL_DSN_VAR => " (e.g. mysql://root@127.0.0.1:3306/test)",
        _ => "",
    }
}

/// The DSN in the environment variable `var`, or `None` after printing that the test is skipped.
///
/// # Panics
/// When the variable is unset or blank and [`servers_required`]: the server test must run.
#[allow(clippy::panic)]
pub fn server_dsn(var: &str) -> Option<String> {
    match std::env::var(var) {
        Ok(dsn) if !dsn.trim().is_empty() => Some(dsn),
        _ => {
            if servers_required() {
                panic!(
                    "{var} is not set but {REQUIRE_SERVERS_VAR}=1: the server test must run, not skip"
                );
            }
            eprintln!("skipped: {var} is not set{}", example_for(var));
            None
        }
    }
}

/// The PostgreSQL test DSN (see [`server_dsn`]).
pub fn pg_dsn() -> Option<String> {
    server_dsn(PG_DSN_VAR)
}

/// The MySQL/MariaDB test DSN (see [`server_dsn`]).
pub fn mysql_dsn() -> Option<String> {
    server_dsn(MYSQL_DSN_VAR)
}

static NEXT: AtomicU64 = AtomicU64::new(0);

fn unique_suffix() -> (u32, u64) {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let r: u32 = rand::random();
    (r, n)
}

/// A table prefix no other test (in this or another process) uses: `t<tag>_<random>_`, at most
/// 24 characters (the store's prefix limit) for a tag of up to 6 characters.
pub fn unique_prefix(tag: &str) -> String {
    let tag: String = tag
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(6)
        .collect();
    let (r, n) = unique_suffix();
    format!("t{tag}_{:08x}_", r ^ (n as u32).rotate_left(24))
}

/// Opens the store at `dsn` with one of `backends`, its tables prefixed `prefix` when given (the
/// default prefix otherwise): the one way the test suites open a store by DSN.
///
/// # Panics
/// When the store cannot be opened.
#[allow(clippy::panic)]
pub async fn open_test_store(
    dsn: &str,
    prefix: Option<&str>,
    backends: &[BackendDescriptor],
) -> SessionStore {
    let options = match prefix {
        Some(p) => StoreOptions::default().with_table_prefix(p),
        None => StoreOptions::default(),
    };
    open_store(dsn, options, backends)
        .await
        .unwrap_or_else(|e| panic!("opening the test store failed: {e}"))
}
