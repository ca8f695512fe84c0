//! The backend-neutral conformance suites (feature `conformance`): the store suite below, the
//! port suite in [`port`] (how a `Database` behaves), and the [`support`] helpers every test
//! suite shares (server DSNs, fresh names).
//!
//! Every backend's `tests/conformance.rs` invokes:
//!
//! ```ignore
//! power_loop_store::store_conformance_suite!(make_db);
//! ```
//!
//! where `make_db` is any expression callable as `make_db()` returning a future whose output is
//! an `Arc<dyn Database>` (or `Option<Arc<dyn Database>>`: `None` skips with a printed reason,
//! e.g. when `POWER_LOOP_TEST_PG_DSN` is unset; or `Result<Arc<dyn Database>>`: `Err` fails).
//! The macro expands to one named `#[test]` per scenario (each builds its own multi-thread tokio
//! runtime, so the calling crate needs no tokio dependency) plus `suite_is_complete`. Each
//! scenario works under its own table prefix derived from its name and a random suffix, so the
//! suites of several backends can run concurrently on one server database; the prefix's tables
//! are dropped when the scenario passes.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use power_loop_contracts::Result;

use crate::db::Database;
use crate::{SchemaPolicy, SessionStore, StoreOptions};

mod archive_schema;
mod basic;
mod concurrency;
mod edge;
mod fencing;
mod migration;
pub mod port;
mod property;
pub mod support;
mod tables;
mod turns;
mod validation;
mod workflow_attempts;
mod workflows;

/// Scenario functions, one per test the macro expands (`scenarios::<name>(ctx)`).
pub mod scenarios {
    pub use super::archive_schema::*;
    pub use super::basic::*;
    pub use super::concurrency::*;
    pub use super::edge::*;
    pub use super::fencing::*;
    pub use super::migration::*;
    pub use super::property::*;
    pub use super::tables::*;
    pub use super::turns::*;
    pub use super::validation::*;
    pub use super::workflow_attempts::*;
    pub use super::workflows::*;
}

#[doc(hidden)]
pub use tokio as __tokio;

/// A failed store call's stable error code, as the scenarios compare it.
fn code(e: &power_loop_contracts::Error) -> &'static str {
    e.code().as_str()
}

/// Spawns `tasks` concurrent appenders on session `sid` (task `t` on `stores[t % stores.len()]`),
/// each appending `per_task` user messages `{t}-{i}` one call at a time, except that with
/// `pairs_every = Some(k)` every `k`-th is a pair `{t}-{i}a`, `{t}-{i}b` in one call. Returns
/// every seq the appenders were given, sorted (for the gap-free checks).
async fn append_concurrently(
    stores: &[SessionStore],
    sid: &str,
    tasks: usize,
    per_task: usize,
    pairs_every: Option<usize>,
) -> Vec<i64> {
    use crate::NewMessage;

    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let s = stores[t % stores.len()].clone();
            let sid = sid.to_owned();
            tokio::spawn(async move {
                let mut got = Vec::new();
                for i in 0..per_task {
                    if pairs_every.is_some_and(|k| i % k == k - 1) {
                        let pair = vec![
                            NewMessage::user(format!("{t}-{i}a")),
                            NewMessage::user(format!("{t}-{i}b")),
                        ];
                        let seqs = s.append_messages(&sid, pair).await;
                        got.extend(seqs.unwrap_or_else(|e| panic!("append_messages: {e}")));
                    } else {
                        let m = NewMessage::user(format!("{t}-{i}"));
                        let seq = s.append_message(&sid, m).await;
                        got.push(seq.unwrap_or_else(|e| panic!("append_message: {e}")));
                    }
                }
                got
            })
        })
        .collect();
    let mut all = Vec::new();
    for h in handles {
        all.extend(
            h.await
                .unwrap_or_else(|e| panic!("an appender task failed: {e}")),
        );
    }
    all.sort_unstable();
    all
}

/// The seqs of a session's messages folded out by a compaction, in seq order.
async fn compacted_seqs(s: &SessionStore, sid: &str) -> Vec<i64> {
    s.load_all_messages(sid)
        .await
        .unwrap_or_else(|e| panic!("load_all_messages: {e}"))
        .iter()
        .filter(|m| m.state == crate::MessageState::CompactedOut)
        .map(|m| m.seq)
        .collect()
}

/// Runs a DDL script (e.g. a printed provisioning or upgrade script) twice, each time in one
/// write transaction: a script must be re-runnable.
async fn run_script_twice(db: &dyn Database, script: &[String]) {
    for _ in 0..2 {
        let script = script.to_vec();
        crate::db::run::run_tx(db, crate::db::TxMode::Write, move |tx| {
            for stmt in &script {
                tx.execute(stmt, &[])?;
            }
            Ok(())
        })
        .await
        .unwrap_or_else(|e| panic!("the script failed: {e}"));
    }
}

/// A boxed scenario future.
pub type ScenarioFuture = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// What a test-database factory may return.
pub trait IntoTestDb {
    /// `Some(db)` to run, `None` to skip.
    fn into_test_db(self) -> Option<Arc<dyn Database>>;
}

impl IntoTestDb for Arc<dyn Database> {
    fn into_test_db(self) -> Option<Arc<dyn Database>> {
        Some(self)
    }
}

impl IntoTestDb for Option<Arc<dyn Database>> {
    fn into_test_db(self) -> Option<Arc<dyn Database>> {
        self
    }
}

impl IntoTestDb for Result<Arc<dyn Database>> {
    #[allow(clippy::panic)]
    fn into_test_db(self) -> Option<Arc<dyn Database>> {
        match self {
            Ok(db) => Some(db),
            Err(e) => panic!("the conformance database factory failed: {e}"),
        }
    }
}

/// The context a scenario runs in: one database and the scenario's own table prefix.
pub struct Ctx {
    /// The database under test.
    pub db: Arc<dyn Database>,
    /// The scenario's table prefix (fresh, unique).
    pub prefix: String,
    name: String,
    prefixes: Arc<Mutex<Vec<String>>>,
}

impl Ctx {
    /// A store on the scenario prefix (AutoCreate).
    pub async fn store(&self) -> SessionStore {
        self.store_on(&self.prefix).await
    }

    /// A store on `prefix` (AutoCreate).
    #[allow(clippy::panic)]
    pub async fn store_on(&self, prefix: &str) -> SessionStore {
        let opts = StoreOptions::new()
            .with_table_prefix(prefix)
            .with_schema_policy(SchemaPolicy::AutoCreate);
        match SessionStore::open_database(Arc::clone(&self.db), &opts).await {
            Ok(s) => s,
            Err(e) => panic!("opening a store on prefix `{prefix}` failed: {e}"),
        }
    }

    /// Another fresh prefix (dropped at the end like the main one).
    pub fn fresh_prefix(&self) -> String {
        let p = make_prefix(&self.name);
        if let Ok(mut g) = self.prefixes.lock() {
            g.push(p.clone());
        }
        p
    }
}

fn fnv(s: &str) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in s.bytes() {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

fn make_prefix(name: &str) -> String {
    let r: u32 = rand::random();
    format!("c{:06x}_{:06x}_", fnv(name) & 0xff_ffff, r & 0xff_ffff)
}

/// Runs one scenario: builds a runtime, asks `make` for a database, runs the scenario on a fresh
/// prefix, then drops the prefix's tables and closes the database.
#[allow(clippy::panic, clippy::expect_used)]
pub fn run_scenario<F, Fut, Out>(name: &str, make: F, scenario: fn(Ctx) -> ScenarioFuture)
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Out>,
    Out: IntoTestDb,
{
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("building a tokio runtime for the conformance scenario");
    rt.block_on(async move {
        let Some(db) = make().await.into_test_db() else {
            eprintln!("skipping conformance scenario `{name}`: the database factory returned none (server DSN unset?)");
            return;
        };
        let prefix = make_prefix(name);
        let prefixes = Arc::new(Mutex::new(vec![prefix.clone()]));
        let ctx = Ctx { db: Arc::clone(&db), prefix, name: name.to_owned(), prefixes: Arc::clone(&prefixes) };
        scenario(ctx).await;
        let used: Vec<String> = prefixes.lock().map(|g| g.clone()).unwrap_or_default();
        for p in used {
            if let Err(e) = crate::migrate::drop_schema(&*db, &p).await {
                eprintln!("conformance cleanup of prefix `{p}` failed: {e}");
            }
        }
        let _ = db.close().await;
    });
}

/// Every scenario name, in suite order (checked by the generated `suite_is_complete` test).
pub const SCENARIOS: &[&str] = &[
    "seq_starts_at_one_and_is_gapless",
    "seq_is_gapless_under_concurrency",
    "separate_store_handles_share_one_sequence",
    "append_to_unknown_session_fails_and_writes_nothing",
    "transaction_rolls_back_on_error",
    "compaction_folds_and_orders_logically",
    "timers_follow_the_state_machine",
    "notes_have_sequential_ids",
    "usage_and_stats_accumulate",
    "runtime_and_shared_state_round_trip",
    "background_updates_are_tracked_as_unseen",
    "close_session_cascades_by_lifecycle",
    "sub_agent_depth_is_enforced",
    "session_rows_round_trip",
    "pending_state_round_trips",
    "commit_turn_is_one_transaction",
    "export_import_round_trip",
    "export_import_refusals",
    "retention_prunes_only_folded_rows",
    "prefixes_are_isolated",
    "schema_verify_on_missing_schema_gives_ddl",
    "schema_newer_version_is_refused",
    "provisioning_script_is_idempotent",
    "concurrent_first_boot_stamps_one_version",
    "maintenance_is_forwarded_or_noop",
    "timer_and_note_ids_unique_under_concurrency",
    "runtime_state_rmw_is_atomic_under_concurrency",
    "shared_state_cas_and_blackboard_are_atomic",
    "session_lease_excludes_other_holders",
    "window_token_tracks_appends_and_folds",
    "claim_due_timers_exactly_once",
    "unknown_session_errors_are_not_found",
    "large_and_unicode_content_round_trips",
    "export_import_round_trip_property",
    "deferred_writes_are_all_or_nothing",
    "new_session_ids_are_validated",
    "import_validates_every_record",
    "workflow_runs_create_get_list",
    "workflow_steps_upsert_and_resequence",
    "workflow_steps_refused_on_finished_or_stale_attempt",
    "workflow_first_finish_wins",
    "workflow_finish_and_wake_are_atomic",
    "workflow_begin_attempt_is_compare_and_set",
    "workflow_woke_flips_exactly_once",
    "workflow_stale_runs_are_listed",
    "workflow_runs_go_with_their_parent_session",
    "schema_v1_database_is_migrated",
    "delete_session_removes_everything_and_refuses_unknown_ids",
    "lost_session_lease_refuses_every_write",
    "takeover_orders_the_old_holders_commits_first",
    "released_lease_is_taken_back_with_its_token",
    "lost_timer_claim_cannot_deliver_or_complete",
    "schema_v2_database_is_migrated_and_fenced",
];

/// Expands one named `#[test]` per conformance scenario for a backend (see the module docs).
///
/// ```ignore
/// async fn make_db() -> Option<Arc<dyn Database>> { /* fresh database or None to skip */ }
/// power_loop_store::store_conformance_suite!(make_db);
/// ```
#[macro_export]
macro_rules! store_conformance_suite {
    ($make_db:expr $(,)?) => {
        $crate::__store_conformance_tests!($make_db;
            seq_starts_at_one_and_is_gapless,
            seq_is_gapless_under_concurrency,
            separate_store_handles_share_one_sequence,
            append_to_unknown_session_fails_and_writes_nothing,
            transaction_rolls_back_on_error,
            compaction_folds_and_orders_logically,
            timers_follow_the_state_machine,
            notes_have_sequential_ids,
            usage_and_stats_accumulate,
            runtime_and_shared_state_round_trip,
            background_updates_are_tracked_as_unseen,
            close_session_cascades_by_lifecycle,
            sub_agent_depth_is_enforced,
            session_rows_round_trip,
            pending_state_round_trips,
            commit_turn_is_one_transaction,
            export_import_round_trip,
            export_import_refusals,
            retention_prunes_only_folded_rows,
            prefixes_are_isolated,
            schema_verify_on_missing_schema_gives_ddl,
            schema_newer_version_is_refused,
            provisioning_script_is_idempotent,
            concurrent_first_boot_stamps_one_version,
            maintenance_is_forwarded_or_noop,
            timer_and_note_ids_unique_under_concurrency,
            runtime_state_rmw_is_atomic_under_concurrency,
            shared_state_cas_and_blackboard_are_atomic,
            session_lease_excludes_other_holders,
            window_token_tracks_appends_and_folds,
            claim_due_timers_exactly_once,
            unknown_session_errors_are_not_found,
            large_and_unicode_content_round_trips,
            export_import_round_trip_property,
            deferred_writes_are_all_or_nothing,
            new_session_ids_are_validated,
            import_validates_every_record,
            workflow_runs_create_get_list,
            workflow_steps_upsert_and_resequence,
            workflow_steps_refused_on_finished_or_stale_attempt,
            workflow_first_finish_wins,
            workflow_finish_and_wake_are_atomic,
            workflow_begin_attempt_is_compare_and_set,
            workflow_woke_flips_exactly_once,
            workflow_stale_runs_are_listed,
            workflow_runs_go_with_their_parent_session,
            schema_v1_database_is_migrated,
            delete_session_removes_everything_and_refuses_unknown_ids,
            lost_session_lease_refuses_every_write,
            takeover_orders_the_old_holders_commits_first,
            released_lease_is_taken_back_with_its_token,
            lost_timer_claim_cannot_deliver_or_complete,
            schema_v2_database_is_migrated_and_fenced,
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __store_conformance_tests {
    ($make_db:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                $crate::conformance::run_scenario(
                    ::std::stringify!($name),
                    $make_db,
                    |ctx| ::std::boxed::Box::pin($crate::conformance::scenarios::$name(ctx)),
                );
            }
        )*

        #[test]
        fn suite_is_complete() {
            let expanded: &[&str] = &[$(::std::stringify!($name)),*];
            ::std::assert_eq!(expanded, $crate::conformance::SCENARIOS);
        }
    };
}
