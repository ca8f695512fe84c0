//! Scenario for the schema version ladder: a version-1 database (built from the version-1
//! tables of the DDL model) is migrated to the current version with its data intact.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;

use serde_json::json;

use super::Ctx;
use crate::db::{Database, TxMode, Value};
use crate::ddl::statements_since_version;
use crate::schema::schema_migrations_ddl;
use crate::{
    CURRENT_SCHEMA_VERSION, NewMessage, NewSession, NewWorkflowRun, SchemaPolicy, SessionStore,
    StoreOptions, WorkflowStepInput, ensure_schema, run_tx,
};

/// Creates the version-1 schema of `prefix` and stamps version 1.
async fn create_v1(db: &dyn Database, prefix: &str) {
    let p = prefix.to_owned();
    run_tx(db, TxMode::Write, move |tx| {
        tx.execute(&schema_migrations_ddl(&p), &[])?;
        let v1 = statements_since_version(&tx.dialect().ddl(&p), &p, 1);
        assert!(!v1.iter().any(|s| s.contains("workflow_")), "{v1:?}");
        for stmt in &v1 {
            tx.execute(stmt, &[])?;
        }
        tx.execute(
            &format!("INSERT INTO {p}schema_migrations (id, version) VALUES (?, ?)"),
            &[Value::Int(1), Value::Int(1)],
        )?;
        Ok(())
    })
    .await
    .unwrap();
}

fn opts(prefix: &str, policy: SchemaPolicy) -> StoreOptions {
    StoreOptions::new()
        .with_table_prefix(prefix)
        .with_schema_policy(policy)
}

async fn stamped(db: &dyn Database, prefix: &str) -> i64 {
    let t = format!("{prefix}schema_migrations");
    let rows = run_tx(db, TxMode::Read, move |tx| {
        tx.fetch_all(&format!("SELECT version FROM {t}"), &[])
    })
    .await
    .unwrap();
    assert_eq!(rows.len(), 1);
    rows[0].i64("version").unwrap()
}

pub async fn schema_v1_database_is_migrated(ctx: Ctx) {
    let p = ctx.prefix.clone();
    create_v1(&*ctx.db, &p).await;
    // Data written by a version-1 build (a store handle that skips the schema check).
    let v1 = SessionStore::new(Arc::clone(&ctx.db), &opts(&p, SchemaPolicy::Verify)).unwrap();
    let sid = v1
        .create_session(NewSession::new().with_system_prompt("old ☃"))
        .await
        .unwrap();
    v1.append_message(&sid, NewMessage::user("before the upgrade"))
        .await
        .unwrap();
    v1.create_timer(&sid, 123, "old timer", None).await.unwrap();
    let runs = v1.tables().workflow_runs.clone();
    let absent = run_tx(&*ctx.db, TxMode::Read, move |tx| {
        tx.fetch_all(&format!("SELECT run_id FROM {runs}"), &[])
    })
    .await;
    assert!(absent.is_err(), "version 1 has no workflow tables");

    // Verify refuses with an upgrade script; AutoCreate migrates (concurrent openers included).
    let e = ensure_schema(&*ctx.db, &p, SchemaPolicy::Verify)
        .await
        .unwrap_err();
    assert_eq!(e.code().as_str(), "store.schema_outdated", "{e}");
    assert!(e.to_string().contains(&format!("{p}workflow_runs")), "{e}");
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let db = Arc::clone(&ctx.db);
        let p = p.clone();
        tasks.push(tokio::spawn(async move {
            SessionStore::open_database(db, &opts(&p, SchemaPolicy::AutoCreate)).await
        }));
    }
    let mut stores = Vec::new();
    for t in tasks {
        stores.push(t.await.unwrap().unwrap());
    }
    assert_eq!(stamped(&*ctx.db, &p).await, CURRENT_SCHEMA_VERSION);
    assert_eq!(
        ensure_schema(&*ctx.db, &p, SchemaPolicy::Verify)
            .await
            .unwrap(),
        CURRENT_SCHEMA_VERSION
    );

    // Old data intact; the new tables work.
    let s = &stores[0];
    let session = s.get_session(&sid).await.unwrap().unwrap();
    assert_eq!(session.system_prompt.as_deref(), Some("old ☃"));
    let msgs = s.load_all_messages(&sid).await.unwrap();
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].content.as_deref(), Some("before the upgrade"));
    assert_eq!(s.list_live_timers(&sid).await.unwrap()[0].note, "old timer");
    s.create_workflow_run(NewWorkflowRun::new("r", "w", json!({}), "").with_parent(&sid))
        .await
        .unwrap();
    assert!(
        s.record_workflow_step("r", 1, WorkflowStepInput::new("a", "a", "completed"))
            .await
            .unwrap()
    );
    assert_eq!(s.list_workflow_steps("r").await.unwrap().len(), 1);

    // The upgrade script an operator runs instead reaches the same state, and is re-runnable.
    let q = ctx.fresh_prefix();
    create_v1(&*ctx.db, &q).await;
    let script = match ensure_schema(&*ctx.db, &q, SchemaPolicy::Verify).await {
        Err(e) => e
            .detail("ddl")
            .and_then(|d| d.as_array().cloned())
            .unwrap()
            .into_iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect::<Vec<_>>(),
        Ok(v) => panic!("a version-1 schema verified as {v}"),
    };
    super::run_script_twice(&*ctx.db, &script).await;
    assert_eq!(
        ensure_schema(&*ctx.db, &q, SchemaPolicy::Verify)
            .await
            .unwrap(),
        CURRENT_SCHEMA_VERSION
    );
}
