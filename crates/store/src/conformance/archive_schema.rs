//! Scenarios for export/import, retention, prefixes, schema provisioning and maintenance (the
//! concurrency ones are in `concurrency.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::json;

use super::{Ctx, code};
use crate::db::{TxMode, Value};
use crate::{
    CURRENT_SCHEMA_VERSION, CompactionRequest, NewMessage, NewSession, SchemaPolicy, SessionStore,
    StoreOptions, SubagentLifecycle, UsageRecord, ensure_schema, provisioning_ddl, run_tx,
};

async fn populated(s: &SessionStore) -> String {
    let parent = s.create_session(NewSession::new()).await.unwrap();
    let mut meta = crate::JsonMap::new();
    meta.insert("tag".into(), json!("ü"));
    let sid = s
        .create_session(
            NewSession::new()
                .with_parent(&parent)
                .with_lifecycle(SubagentLifecycle::Linked)
                .with_system_prompt("prompt ☃")
                .with_metadata(meta),
        )
        .await
        .unwrap();
    for i in 1..=4 {
        s.append_message(&sid, NewMessage::user(format!("m{i}")).with_round_index(i))
            .await
            .unwrap();
    }
    s.record_compaction(&sid, CompactionRequest::fold(vec![1, 2], "sum"))
        .await
        .unwrap();
    s.add_note(&sid, "note", true).await.unwrap();
    s.create_timer(&sid, 123, "wake", Some(30)).await.unwrap();
    s.set_runtime_state(&sid, "todo", json!({"a": [1, 2]}))
        .await
        .unwrap();
    s.record_usage(&sid, UsageRecord::new(0, Some(1), Some(2), Some(3)))
        .await
        .unwrap();
    s.bump_session_stats(&sid, crate::StatsDelta::new(1, 1, 0, 1, 2, 3))
        .await
        .unwrap();
    sid
}

fn renamed(a: &crate::SessionArchive, to: &str) -> BTreeMap<String, Vec<crate::JsonMap>> {
    let mut t = a.tables.clone();
    for rows in t.values_mut() {
        for r in rows.iter_mut() {
            r.insert("session_id".into(), json!(to));
        }
    }
    if let Some(rows) = t.get_mut("sessions") {
        for r in rows.iter_mut() {
            r.insert("parent_session_id".into(), serde_json::Value::Null);
            r.insert("spawn_tool_call_id".into(), serde_json::Value::Null);
            r.insert("spawn_depth".into(), json!(0));
            r.insert("kind".into(), json!("root"));
        }
    }
    t
}

pub async fn export_import_round_trip(ctx: Ctx) {
    let s = ctx.store().await;
    let sid = populated(&s).await;
    let a = s.export_session(&sid).await.unwrap();
    let text = serde_json::to_string(&a).unwrap();
    let back: crate::SessionArchive = serde_json::from_str(&text).unwrap();
    assert_eq!(back, a);
    assert_eq!(a.tables.len(), 9);
    for k in [
        "sessions",
        "session_state",
        "messages",
        "compactions",
        "usage_rounds",
        "session_runtime_state",
        "timers",
        "notes",
        "session_stats",
    ] {
        assert!(a.tables.contains_key(k), "{k}");
    }
    let r = s.import_session(&back, Some("restored")).await.unwrap();
    assert_eq!(r, "restored");
    let b = s.export_session("restored").await.unwrap();
    assert_eq!(b.tables, renamed(&a, "restored"));
    let src = s.load_active_messages(&sid, None).await.unwrap();
    let dst = s.load_active_messages("restored", None).await.unwrap();
    let key = |m: &crate::MessageRow| (m.seq, m.role.clone(), m.name.clone(), m.content.clone());
    assert_eq!(
        src.iter().map(key).collect::<Vec<_>>(),
        dst.iter().map(key).collect::<Vec<_>>()
    );
    assert_eq!(dst[0].name.as_deref(), Some("compact_note"));
    let row = s.get_session("restored").await.unwrap().unwrap();
    assert_eq!(
        (row.parent_session_id, row.kind, row.spawn_depth),
        (None, crate::SessionKind::Root, 0)
    );
    assert_eq!(row.system_prompt.as_deref(), Some("prompt ☃"));
    assert_eq!(s.list_notes("restored").await.unwrap().len(), 1);
    assert_eq!(
        s.get_runtime_state("restored", "todo").await.unwrap(),
        Some(json!({"a": [1, 2]}))
    );
    // The restored session keeps allocating where the source stopped.
    assert_eq!(
        s.append_message("restored", NewMessage::user("next"))
            .await
            .unwrap(),
        6
    );
    let generated = s.import_session(&a, None).await.unwrap();
    assert!(generated.starts_with("sess_"));
}

pub async fn export_import_refusals(ctx: Ctx) {
    let s = ctx.store().await;
    let sid = populated(&s).await;
    let a = s.export_session(&sid).await.unwrap();
    let e = s.import_session(&a, Some(&sid)).await.unwrap_err();
    assert_eq!(code(&e), "session.exists");
    let mut newer = a.clone();
    newer.schema_version = CURRENT_SCHEMA_VERSION + 1;
    let e = s.import_session(&newer, Some("x1")).await.unwrap_err();
    assert_eq!(code(&e), "store.archive_invalid");
    assert!(e.message().contains("newer"), "{e}");
    let mut broken = a.clone();
    broken.tables.get_mut("session_state").unwrap()[0].insert("next_seq".into(), json!(2));
    let e = s.import_session(&broken, Some("x2")).await.unwrap_err();
    assert_eq!(code(&e), "store.archive_invalid");
    let mut empty = a.clone();
    empty.tables.insert("sessions".into(), vec![]);
    assert_eq!(
        code(&s.import_session(&empty, Some("x3")).await.unwrap_err()),
        "store.archive_invalid"
    );
    assert!(
        s.get_session("x1").await.unwrap().is_none()
            && s.get_session("x2").await.unwrap().is_none()
    );
    assert_eq!(
        code(&s.export_session("ghost").await.unwrap_err()),
        "session.not_found"
    );
}

pub async fn retention_prunes_only_folded_rows(ctx: Ctx) {
    let s = ctx.store().await;
    let sid = s.create_session(NewSession::new()).await.unwrap();
    for i in 1..=8 {
        s.append_message(&sid, NewMessage::user(format!("m{i}")))
            .await
            .unwrap();
    }
    s.record_compaction(&sid, CompactionRequest::fold(vec![1, 2, 3, 4, 5], "sum"))
        .await
        .unwrap();
    let window = s.load_active_messages(&sid, None).await.unwrap();
    assert_eq!(
        s.prune_compacted_messages(&sid, Some(3_600_000), 0)
            .await
            .unwrap(),
        0,
        "too young"
    );
    assert_eq!(s.prune_compacted_messages(&sid, None, 2).await.unwrap(), 3);
    let left = super::compacted_seqs(&s, &sid).await;
    assert_eq!(
        left,
        vec![4, 5],
        "keep_recent keeps the highest folded seqs"
    );
    assert_eq!(
        s.prune_compacted_messages(&sid, Some(-1000), 0)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        s.load_active_messages(&sid, None).await.unwrap(),
        window,
        "the active window is unchanged"
    );
    for r in 0..5 {
        s.record_usage(&sid, UsageRecord::new(r, Some(r), None, None))
            .await
            .unwrap();
    }
    assert_eq!(s.prune_usage_rounds(&sid, Some(2), None).await.unwrap(), 3);
    let rounds: Vec<i64> = s
        .list_usage_rounds(&sid)
        .await
        .unwrap()
        .iter()
        .map(|u| u.round_index)
        .collect();
    assert_eq!(rounds, vec![3, 4]);
    assert_eq!(
        s.prune_usage_rounds(&sid, None, Some(3_600_000))
            .await
            .unwrap(),
        0
    );
    assert_eq!(s.prune_usage_rounds(&sid, None, None).await.unwrap(), 2);
}

pub async fn prefixes_are_isolated(ctx: Ctx) {
    let a = ctx.store().await;
    let other = ctx.fresh_prefix();
    let b = ctx.store_on(&other).await;
    let sid = a.create_session(NewSession::new()).await.unwrap();
    a.append_message(&sid, NewMessage::user("x")).await.unwrap();
    assert!(b.get_session(&sid).await.unwrap().is_none());
    assert_eq!(
        code(
            &b.append_message(&sid, NewMessage::user("y"))
                .await
                .unwrap_err()
        ),
        "session.not_found"
    );
    let sid_b = b
        .create_session(NewSession::new().with_id(sid.clone()))
        .await
        .unwrap();
    assert_eq!(
        b.append_message(&sid_b, NewMessage::user("y"))
            .await
            .unwrap(),
        1
    );
    assert_eq!(a.tables().sessions, format!("{}sessions", ctx.prefix));
    for name in a.tables().all() {
        assert!(name.starts_with(&ctx.prefix), "{name}");
    }
}

pub async fn schema_verify_on_missing_schema_gives_ddl(ctx: Ctx) {
    let p = ctx.prefix.clone();
    let e = ensure_schema(&*ctx.db, &p, SchemaPolicy::Verify)
        .await
        .unwrap_err();
    assert_eq!(code(&e), "store.schema_missing");
    assert!(e.message().contains("not initialized"), "{e}");
    let ddl = e.ddl();
    assert!(ddl.len() >= 13, "{ddl:?}");
    assert!(
        e.to_string().contains(&format!("{p}schema_migrations")),
        "Display prints the script"
    );
    let opts = StoreOptions::new()
        .with_table_prefix(&p)
        .with_schema_policy(SchemaPolicy::Verify);
    assert_eq!(
        code(
            &SessionStore::open_database(Arc::clone(&ctx.db), &opts)
                .await
                .unwrap_err()
        ),
        "store.schema_missing"
    );
    assert_eq!(
        ensure_schema(&*ctx.db, &p, SchemaPolicy::AutoCreate)
            .await
            .unwrap(),
        CURRENT_SCHEMA_VERSION
    );
    assert_eq!(
        ensure_schema(&*ctx.db, &p, SchemaPolicy::Verify)
            .await
            .unwrap(),
        CURRENT_SCHEMA_VERSION
    );
    let s = SessionStore::open_database(Arc::clone(&ctx.db), &opts)
        .await
        .unwrap();
    assert_eq!(s.schema_version(), CURRENT_SCHEMA_VERSION);
    // Version stamped but a data table dropped → Verify reports it.
    let notes = s.tables().notes.clone();
    run_tx(&*ctx.db, TxMode::Write, move |tx| {
        tx.execute(&format!("DROP TABLE {notes}"), &[]).map(|_| ())
    })
    .await
    .unwrap();
    assert_eq!(
        code(
            &ensure_schema(&*ctx.db, &p, SchemaPolicy::Verify)
                .await
                .unwrap_err()
        ),
        "store.schema_missing"
    );
    // The version table dropped while data tables remain: the stamp was lost out of band. Both
    // policies name it, and AutoCreate does not quietly re-create and re-stamp it.
    let versions = s.tables().schema_migrations.clone();
    let dropped = versions.clone();
    run_tx(&*ctx.db, TxMode::Write, move |tx| {
        tx.execute(&format!("DROP TABLE {dropped}"), &[])
            .map(|_| ())
    })
    .await
    .unwrap();
    for policy in [SchemaPolicy::AutoCreate, SchemaPolicy::Verify] {
        let e = ensure_schema(&*ctx.db, &p, policy).await.unwrap_err();
        assert_eq!(code(&e), "store.schema_missing", "{policy}: {e}");
        assert!(e.message().contains(&versions), "{policy}: {e}");
    }
}

pub async fn schema_newer_version_is_refused(ctx: Ctx) {
    let s = ctx.store().await;
    let t = s.tables().schema_migrations.clone();
    run_tx(&*ctx.db, TxMode::Write, move |tx| {
        tx.execute(
            &format!("UPDATE {t} SET version = ? WHERE id = ?"),
            &[Value::Int(CURRENT_SCHEMA_VERSION + 1), Value::Int(1)],
        )
        .map(|_| ())
    })
    .await
    .unwrap();
    for policy in [SchemaPolicy::AutoCreate, SchemaPolicy::Verify] {
        let e = ensure_schema(&*ctx.db, &ctx.prefix, policy)
            .await
            .unwrap_err();
        assert_eq!(code(&e), "store.schema_newer", "{policy}");
        assert!(
            e.message().contains("newer than this power_loop build"),
            "{e}"
        );
    }
}

pub async fn provisioning_script_is_idempotent(ctx: Ctx) {
    let p = ctx.prefix.clone();
    let ddl = provisioning_ddl(ctx.db.dialect(), &p).unwrap();
    assert!(
        ddl.last()
            .unwrap()
            .contains(&format!("{p}schema_migrations"))
    );
    super::run_script_twice(&*ctx.db, &ddl).await;
    assert_eq!(
        ensure_schema(&*ctx.db, &p, SchemaPolicy::Verify)
            .await
            .unwrap(),
        CURRENT_SCHEMA_VERSION
    );
}

pub async fn concurrent_first_boot_stamps_one_version(ctx: Ctx) {
    let p = ctx.prefix.clone();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let db = Arc::clone(&ctx.db);
        let p = p.clone();
        tasks.push(tokio::spawn(async move {
            ensure_schema(&*db, &p, SchemaPolicy::AutoCreate).await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), CURRENT_SCHEMA_VERSION);
    }
    let t = format!("{p}schema_migrations");
    let rows = run_tx(&*ctx.db, TxMode::Read, move |tx| {
        tx.fetch_all(&format!("SELECT id, version FROM {t}"), &[])
    })
    .await
    .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].i64("version").unwrap(), CURRENT_SCHEMA_VERSION);
    let s = ctx.store().await;
    assert_eq!(
        s.append_message(
            &s.create_session(NewSession::new()).await.unwrap(),
            NewMessage::user("x")
        )
        .await
        .unwrap(),
        1
    );
}

pub async fn maintenance_is_forwarded_or_noop(ctx: Ctx) {
    let s = ctx.store().await;
    let sid = s.create_session(NewSession::new()).await.unwrap();
    s.append_message(&sid, NewMessage::user("x".repeat(10_000)))
        .await
        .unwrap();
    let has = ctx.db.maintenance().is_some();
    assert_eq!(s.checkpoint("truncate").await.unwrap(), has);
    assert_eq!(s.checkpoint("PASSIVE").await.unwrap(), has);
    assert_eq!(
        code(&s.checkpoint("bogus").await.unwrap_err()),
        "invalid_argument"
    );
    assert_eq!(s.vacuum(true).await.unwrap(), has);
    assert_eq!(s.close_session(&sid, true).await.unwrap(), 1);
    assert_eq!(s.vacuum(false).await.unwrap(), has);
}
