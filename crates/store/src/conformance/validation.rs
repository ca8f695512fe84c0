//! Scenarios for input validation: new session ids and import archives.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use serde_json::json;

use super::{Ctx, code};
use crate::db::{TxMode, Value};
use crate::{NewMessage, NewSession, SessionArchive, SessionStore, run_tx};

pub async fn new_session_ids_are_validated(ctx: Ctx) {
    let s = ctx.store().await;
    let long = "x".repeat(129);
    let huge = "y".repeat(100_000);
    for bad in ["", "a\nb", "a b", "a/b", "é", long.as_str(), huge.as_str()] {
        let e = s
            .create_session(NewSession::new().with_id(bad))
            .await
            .unwrap_err();
        assert_eq!(code(&e), "invalid_argument", "{bad:?}: {e}");
        assert!(e.message().len() < 300, "the error echoes the whole id");
        assert!(!s.session_exists(bad).await.unwrap());
    }
    let max = "Z".repeat(128);
    for good in ["Ab9._:-x", "sess_0123", max.as_str()] {
        assert_eq!(
            s.create_session(NewSession::new().with_id(good))
                .await
                .unwrap(),
            good
        );
    }
    // A row written before the rule (or by another tool) stays readable and usable.
    let made = s.create_session(NewSession::new()).await.unwrap();
    let legacy = "legacy id/with space\nand newline";
    let (p, m, l) = (ctx.prefix.clone(), made.clone(), legacy.to_owned());
    run_tx(&*ctx.db, TxMode::Write, move |tx| {
        for table in ["sessions", "session_state"] {
            tx.execute(
                &format!("UPDATE {p}{table} SET session_id = ? WHERE session_id = ?"),
                &[Value::from(l.as_str()), Value::from(m.as_str())],
            )?;
        }
        Ok(())
    })
    .await
    .unwrap();
    assert!(s.get_session(legacy).await.unwrap().is_some());
    assert_eq!(
        s.append_message(legacy, NewMessage::user("still works"))
            .await
            .unwrap(),
        1
    );
    let archive = s.export_session(legacy).await.unwrap();
    assert_eq!(archive.session_id, legacy);
    // Importing it under a valid id works; under an invalid one it is refused.
    s.import_session(&archive, Some("legacy-copy"))
        .await
        .unwrap();
    let e = s
        .import_session(&archive, Some("bad\nid"))
        .await
        .unwrap_err();
    assert_eq!(code(&e), "invalid_argument");
}

async fn archive_with_tool_calls(s: &SessionStore) -> SessionArchive {
    let sid = s.create_session(NewSession::new()).await.unwrap();
    for i in 1..=3 {
        s.append_message(&sid, NewMessage::user(format!("m{i}")))
            .await
            .unwrap();
    }
    let mut a = s.export_session(&sid).await.unwrap();
    let calls = json!([{"id": "call_1", "type": "function",
        "function": {"name": "bash", "arguments": "{\"command\":\"ls\"}"}}]);
    let msg = &mut a.tables.get_mut("messages").unwrap()[1];
    msg.insert("role".into(), json!("assistant"));
    msg.insert("tool_calls_json".into(), json!(calls.to_string()));
    a
}

/// Applies `edit` to a copy of `base`, imports it as `target` and expects a refusal naming
/// `needle`, with nothing written.
async fn refused(
    s: &SessionStore,
    base: &SessionArchive,
    target: &str,
    needle: &str,
    edit: impl FnOnce(&mut SessionArchive),
) {
    let mut a = base.clone();
    edit(&mut a);
    let e = s.import_session(&a, Some(target)).await.unwrap_err();
    assert_eq!(code(&e), "store.archive_invalid", "{target}: {e}");
    assert!(e.message().contains(needle), "{target}: {e}");
    assert!(
        !s.session_exists(target).await.unwrap(),
        "{target}: a refused import wrote its session"
    );
}

fn set(a: &mut SessionArchive, table: &str, row: usize, col: &str, v: serde_json::Value) {
    a.tables.get_mut(table).unwrap()[row].insert(col.into(), v);
}

pub async fn import_validates_every_record(ctx: Ctx) {
    let s = ctx.store().await;
    let base = archive_with_tool_calls(&s).await;
    // The valid archive (OpenAI-shaped tool calls) imports and reads back.
    s.import_session(&base, Some("ok")).await.unwrap();
    let msgs = s.load_all_messages("ok").await.unwrap();
    assert_eq!(msgs[1].tool_calls.as_ref().unwrap().len(), 1);

    refused(&s, &base, "v-neg", "schema_version -1", |a| {
        a.schema_version = -1;
    })
    .await;
    refused(&s, &base, "v-zero", "schema_version 0", |a| {
        a.schema_version = 0;
    })
    .await;
    refused(&s, &base, "tc-json", "tool_calls_json", |a| {
        set(a, "messages", 1, "tool_calls_json", json!("[{not json"));
    })
    .await;
    refused(&s, &base, "tc-object", "tool_calls_json", |a| {
        set(a, "messages", 1, "tool_calls_json", json!("{\"id\":\"x\"}"));
    })
    .await;
    refused(&s, &base, "tc-shape", "tool_calls_json", |a| {
        set(
            a,
            "messages",
            1,
            "tool_calls_json",
            json!("[{\"id\":\"x\"}]"),
        );
    })
    .await;
    refused(&s, &base, "tc-args", "tool_calls_json", |a| {
        let bad =
            json!([{"id": "c", "type": "function", "function": {"name": "n", "arguments": 5}}]);
        set(a, "messages", 1, "tool_calls_json", json!(bad.to_string()));
    })
    .await;
    refused(&s, &base, "role", "`role`", |a| {
        set(a, "messages", 0, "role", json!("root"));
    })
    .await;
    refused(&s, &base, "role-null", "`role`", |a| {
        set(a, "messages", 0, "role", serde_json::Value::Null);
    })
    .await;
    refused(&s, &base, "state", "`state`", |a| {
        set(a, "messages", 2, "state", json!("deleted"));
    })
    .await;
    refused(&s, &base, "status", "`status`", |a| {
        set(a, "sessions", 0, "status", json!("pwned"));
    })
    .await;
    refused(&s, &base, "meta", "`meta_json`", |a| {
        set(a, "messages", 0, "meta_json", json!("{oops"));
    })
    .await;
    refused(&s, &base, "timer", "`status`", |a| {
        let mut t = crate::JsonMap::new();
        t.insert("timer_id".into(), json!(1));
        t.insert("due_at".into(), json!(1));
        t.insert("note".into(), json!("n"));
        t.insert("status".into(), json!("exploded"));
        a.tables.insert("timers".into(), vec![t]);
    })
    .await;
    // The error names the record.
    let mut a = base.clone();
    set(&mut a, "messages", 2, "role", json!("x"));
    let e = s.import_session(&a, Some("named")).await.unwrap_err();
    assert!(
        e.message().contains("`messages` row 2 column `role`"),
        "{e}"
    );
}
