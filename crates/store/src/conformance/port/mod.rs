//! The port-level conformance suite: how every backend's [`Database`] behaves (transactions,
//! matched-row counts, values and typed errors, dialect SQL, close, leases, concurrency).
//!
//! Every backend's `tests/port.rs` invokes:
//!
//! ```ignore
//! fn target() -> Option<PortTarget> { /* handles on one fresh database, or None to skip */ }
//! power_loop_store::port_conformance_suite!(target);
//! ```
//!
//! The factory is called once per scenario. Each [`PortTarget::open`] call must return a new,
//! independent handle (its own connection or pool) on the same database, so scenarios can check
//! what another connection sees. Scenarios create their tables under fresh names and drop them
//! when they pass. Behaviour only one backend has stays in that backend's own tests.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use power_loop_contracts::Result;

use crate::backend::ConnectOptions;
use crate::db::{Database, Row, Transaction, TxBody, TxMode, Value};

mod concurrency;
mod schema;
mod tx;

/// Scenario functions of the port suite, one per test the macro expands.
pub mod scenarios {
    pub use super::concurrency::*;
    pub use super::schema::*;
    pub use super::tx::*;
}

/// A future opening one database handle.
pub type OpenFuture = Pin<Box<dyn Future<Output = Result<Arc<dyn Database>>> + Send + 'static>>;

/// A boxed port scenario future.
pub type PortScenarioFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// How a backend opens handles on one test database for the port suite.
#[derive(Clone)]
pub struct PortTarget {
    open: Arc<dyn Fn(ConnectOptions) -> OpenFuture + Send + Sync>,
}

impl std::fmt::Debug for PortTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PortTarget")
    }
}

impl PortTarget {
    /// A target whose handles `open(options)` creates (each call a new, independent handle on
    /// the same database).
    pub fn new<F, Fut>(open: F) -> Self
    where
        F: Fn(ConnectOptions) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Arc<dyn Database>>> + Send + 'static,
    {
        PortTarget {
            open: Arc::new(move |o| Box::pin(open(o))),
        }
    }

    /// Opens a new handle with `options`.
    pub fn open(&self, options: ConnectOptions) -> OpenFuture {
        (self.open)(options)
    }
}

/// The context a port scenario runs in.
pub struct PortCtx {
    target: PortTarget,
    name: String,
    tables: Arc<Mutex<Vec<String>>>,
    prefixes: Arc<Mutex<Vec<String>>>,
}

impl PortCtx {
    /// A new handle with the default options.
    pub async fn open(&self) -> Arc<dyn Database> {
        self.open_with(ConnectOptions::default()).await
    }

    /// A new handle whose pool holds at most `size` connections.
    pub async fn open_pool(&self, size: usize) -> Arc<dyn Database> {
        let o = ConnectOptions {
            pool_max_size: size,
            connect_timeout_ms: 5_000,
            ..ConnectOptions::default()
        };
        self.open_with(o).await
    }

    /// A new handle with `options`.
    #[allow(clippy::panic)]
    pub async fn open_with(&self, options: ConnectOptions) -> Arc<dyn Database> {
        match self.target.open(options).await {
            Ok(db) => db,
            Err(e) => panic!("opening the port test database failed: {e}"),
        }
    }

    /// A fresh table name (dropped when the scenario ends).
    pub fn table(&self, tag: &str) -> String {
        let t = format!("{}{tag}", super::support::unique_prefix(&self.name));
        if let Ok(mut g) = self.tables.lock() {
            g.push(t.clone());
        }
        t
    }

    /// A fresh table prefix whose store schema is dropped when the scenario ends.
    pub fn prefix(&self) -> String {
        let p = super::support::unique_prefix(&self.name);
        if let Ok(mut g) = self.prefixes.lock() {
            g.push(p.clone());
        }
        p
    }

    /// Creates table `name` with `columns`, in the backend's text encoding for Unicode
    /// (MySQL needs an explicit utf8mb4 table charset).
    #[allow(clippy::expect_used)]
    pub async fn create_table(&self, db: &dyn Database, name: &str, columns: &str) {
        let suffix = if db.dialect().name() == "mysql" {
            " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
        } else {
            ""
        };
        let sql = format!("CREATE TABLE {name} ({columns}){suffix}");
        exec(db, &sql, vec![]).await.expect("creating a test table");
    }

    /// The column type for text of any length (`LONGTEXT` on MySQL, `TEXT` elsewhere).
    pub fn long_text(db: &dyn Database) -> &'static str {
        if db.dialect().name() == "mysql" {
            "LONGTEXT"
        } else {
            "TEXT"
        }
    }
}

/// Wraps a closure as a transaction body.
pub fn body(f: impl FnOnce(&mut dyn Transaction) -> Result<()> + Send + 'static) -> TxBody {
    Box::new(f)
}

/// Runs one statement in its own write transaction; returns its matched-row count.
pub async fn exec(db: &dyn Database, sql: &str, params: Vec<Value>) -> Result<u64> {
    let out = Arc::new(Mutex::new(0));
    let o = Arc::clone(&out);
    let sql = sql.to_owned();
    db.transact(
        TxMode::Write,
        body(move |tx| {
            let n = tx.execute(&sql, &params)?;
            if let Ok(mut g) = o.lock() {
                *g = n;
            }
            Ok(())
        }),
    )
    .await?;
    let n = out.lock().map(|g| *g).unwrap_or_default();
    Ok(n)
}

/// Runs one query in its own read transaction.
pub async fn query(db: &dyn Database, sql: &str, params: Vec<Value>) -> Result<Vec<Row>> {
    let out = Arc::new(Mutex::new(Vec::new()));
    let o = Arc::clone(&out);
    let sql = sql.to_owned();
    db.transact(
        TxMode::Read,
        body(move |tx| {
            let rows = tx.fetch_all(&sql, &params)?;
            if let Ok(mut g) = o.lock() {
                *g = rows;
            }
            Ok(())
        }),
    )
    .await?;
    let rows = out
        .lock()
        .map(|mut g| std::mem::take(&mut *g))
        .unwrap_or_default();
    Ok(rows)
}

/// One integer from a single-row, single-column query.
#[allow(clippy::panic)]
pub async fn scalar(db: &dyn Database, sql: &str) -> i64 {
    let rows = match query(db, sql, vec![]).await {
        Ok(r) => r,
        Err(e) => panic!("{sql} failed: {e}"),
    };
    match rows.first().and_then(|r| r.values().first()) {
        Some(Value::Int(v)) => *v,
        other => panic!("expected one integer from {sql}, got {other:?}"),
    }
}

/// Starts a write transaction that runs `insert`, works for 400 ms and then commits (or, with
/// `fail`, returns an error), and stops waiting for it after 100 ms: a caller that drops its
/// future while the body runs. Panics if the transaction finished before the caller left.
pub async fn leave_write(db: &dyn Database, insert: String, fail: bool) {
    let fut = db.transact(
        TxMode::Write,
        body(move |tx| {
            tx.execute(&insert, &[])?;
            std::thread::sleep(std::time::Duration::from_millis(400));
            if fail {
                Err(power_loop_contracts::Error::internal("late failure"))
            } else {
                Ok(())
            }
        }),
    );
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(100), fut)
            .await
            .is_err(),
        "the transaction ended before the caller gave up"
    );
}

/// Polls the one-integer query `count_sql` until it returns `want` (for up to 2.5 s); returns
/// the last value read.
pub async fn await_count(db: &dyn Database, count_sql: &str, want: i64) -> i64 {
    let mut last = scalar(db, count_sql).await;
    for _ in 0..50 {
        if last == want {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        last = scalar(db, count_sql).await;
    }
    last
}

/// Runs one port scenario: builds its runtime (current-thread for the scenarios listed in
/// [`CURRENT_THREAD_SCENARIOS`], else multi-thread), asks `make` for a target, runs the scenario,
/// then drops its tables.
#[allow(clippy::panic, clippy::expect_used)]
pub fn run_port_scenario<F>(name: &str, make: F, scenario: fn(PortCtx) -> PortScenarioFuture)
where
    F: FnOnce() -> Option<PortTarget>,
{
    let mut builder = if CURRENT_THREAD_SCENARIOS.contains(&name) {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(4);
        b
    };
    let rt = builder
        .enable_all()
        .build()
        .expect("building a tokio runtime for the port scenario");
    let Some(target) = make() else {
        eprintln!("skipping port scenario `{name}`: no test database (server DSN unset?)");
        return;
    };
    rt.block_on(async move {
        let tables = Arc::new(Mutex::new(Vec::new()));
        let prefixes = Arc::new(Mutex::new(Vec::new()));
        let ctx = PortCtx {
            target: target.clone(),
            name: name
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .take(4)
                .collect(),
            tables: Arc::clone(&tables),
            prefixes: Arc::clone(&prefixes),
        };
        scenario(ctx).await;
        let Ok(db) = target.open(ConnectOptions::default()).await else {
            return;
        };
        let tables: Vec<String> = tables.lock().map(|g| g.clone()).unwrap_or_default();
        for t in tables {
            let _ = exec(&*db, &format!("DROP TABLE IF EXISTS {t}"), vec![]).await;
        }
        let prefixes: Vec<String> = prefixes.lock().map(|g| g.clone()).unwrap_or_default();
        for p in prefixes {
            if let Err(e) = crate::migrate::drop_schema(&*db, &p).await {
                eprintln!("port cleanup of prefix `{p}` failed: {e}");
            }
        }
        let _ = db.close().await;
    });
}

/// Port scenarios run on a current-thread runtime (the rest run multi-threaded).
pub const CURRENT_THREAD_SCENARIOS: &[&str] = &["matched_row_counts"];

/// Every port scenario name, in suite order (checked by the generated `port_suite_is_complete`).
pub const PORT_SCENARIOS: &[&str] = &[
    "commit_on_ok_and_rollback_on_err",
    "panic_in_body_rolls_back_and_the_connection_is_reused",
    "failed_statement_rolls_back_the_whole_transaction",
    "matched_row_counts",
    "values_round_trip",
    "errors_are_typed",
    "dropped_caller_future_leaves_no_open_transaction",
    "many_small_transactions_on_one_connection",
    "deferred_writes_commit_together_or_not_at_all",
    "dialect_upsert_and_insert_ignore",
    "ddl_creates_the_prefixed_schema_idempotently",
    "exclusive_transactions_are_serialized",
    "concurrent_writers_are_serialized",
    "close_is_idempotent_and_later_calls_fail_closed",
    "leases_exclude_across_handles_and_are_freed",
];

/// Expands one named `#[test]` per port scenario for a backend (see the module docs).
#[macro_export]
macro_rules! port_conformance_suite {
    ($target:expr $(,)?) => {
        $crate::__port_conformance_tests!($target;
            commit_on_ok_and_rollback_on_err,
            panic_in_body_rolls_back_and_the_connection_is_reused,
            failed_statement_rolls_back_the_whole_transaction,
            matched_row_counts,
            values_round_trip,
            errors_are_typed,
            dropped_caller_future_leaves_no_open_transaction,
            many_small_transactions_on_one_connection,
            deferred_writes_commit_together_or_not_at_all,
            dialect_upsert_and_insert_ignore,
            ddl_creates_the_prefixed_schema_idempotently,
            exclusive_transactions_are_serialized,
            concurrent_writers_are_serialized,
            close_is_idempotent_and_later_calls_fail_closed,
            leases_exclude_across_handles_and_are_freed,
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __port_conformance_tests {
    ($target:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::conformance::port::run_port_scenario(
                    ::std::stringify!($name),
                    $target,
                    |ctx| ::std::boxed::Box::pin($crate::conformance::port::scenarios::$name(ctx)),
                );
            }
        )*

        #[test]
        fn port_suite_is_complete() {
            let expanded: &[&str] = &[$(::std::stringify!($name)),*];
            ::std::assert_eq!(expanded, $crate::conformance::port::PORT_SCENARIOS);
        }
    };
}
