#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The note/todo/background/board tools against the real durable store (SQLite).

mod common;
use std::path::Path;
use std::sync::Arc;

use common::{Fixture, failed, ok};
use power_loop_store::{NewSession, SessionStore, StoreOptions, open_store};
use power_loop_tools::{SharedStateBoard, ToolStore, register_blackboard_tools};
use serde_json::json;

/// Opens a SQLite session store in `dir` and creates the session `id` in it.
async fn open_with_session(dir: &Path, id: &str) -> (SessionStore, String) {
    let dsn = format!("sqlite:///{}", dir.join("s.db").display());
    let store = open_store(
        &dsn,
        StoreOptions::default(),
        &[power_loop_store_sqlite::BACKEND],
    )
    .await
    .unwrap();
    let sid = store
        .create_session(NewSession::new().with_id(id))
        .await
        .unwrap();
    (store, sid)
}

/// Polls background task `id` of `sid` every 100 ms, at most `tries` times, until it is no longer
/// running; its `"<status> <output tail>"`, or an empty string if it was still running.
async fn finished_task(store: &SessionStore, sid: &str, id: &str, tries: usize) -> String {
    for _ in 0..tries {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let row = store.get_background_task(sid, id).await.unwrap().unwrap();
        if row.status != "running" {
            return format!("{} {:?}", row.status, row.output_tail);
        }
    }
    String::new()
}

#[tokio::test]
async fn tools_on_session_store() {
    let db = tempfile::tempdir().unwrap();
    let (store, sid) = open_with_session(db.path(), "sess-1").await;
    let mut f = Fixture::with_env(|e| e.with_board_id("b1"));
    register_blackboard_tools(&mut f.reg, None, None, None, false).unwrap();
    let ts: Arc<dyn ToolStore> = Arc::new(store.clone());
    let ctx = f
        .ctx()
        .with_session(sid.clone())
        .with_store(ts.clone())
        .with_blackboard(Arc::new(SharedStateBoard::new(ts.clone())));

    assert_eq!(
        ok(&f
            .call_ctx(ctx.clone(), "note_add", json!({"content": "remember"}))
            .await),
        "noted as #1 (1/50 notes used)"
    );
    assert_eq!(store.list_notes(&sid).await.unwrap()[0].content, "remember");
    ok(&f
        .call_ctx(
            ctx.clone(),
            "note_update",
            json!({"note_id": 1, "pinned": true}),
        )
        .await);
    assert!(store.list_notes(&sid).await.unwrap()[0].pinned);
    assert!(
        failed(
            &f.call_ctx(ctx.clone(), "note_delete", json!({"note_id": 5}))
                .await
        )
        .contains("does not exist")
    );

    ok(&f
        .call_ctx(
            ctx.clone(),
            "todo",
            json!({"items": [{"id": "1", "text": "a", "status": "pending"}]}),
        )
        .await);
    let todo = store
        .get_runtime_state(&sid, "todo")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(todo["counts"]["total"], 1);

    let o = f
        .call_ctx(
            ctx.clone(),
            "background_run",
            json!({"command": "echo stored"}),
        )
        .await;
    let id = o.output.data["task_id"].as_str().unwrap().to_owned();
    assert_eq!(
        finished_task(&store, &sid, &id, 50).await,
        "completed Some(\"stored\")"
    );

    let o = f
        .call_ctx(ctx.clone(), "board_post", json!({"text": "shared"}))
        .await;
    assert!(ok(&o).contains("- #1 [note] (sess-1) shared"));
    let doc = store
        .get_shared_state("blackboard:b1", "board")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(doc["entries"][0]["text"], "shared");
}

/// A background task outlives the turn that started it: its completion is recorded although the
/// turn's fenced store handle (and its session lease) were released meanwhile, while the turn's
/// own writes through that handle are refused once the lease is gone.
#[tokio::test]
async fn background_completion_outlives_the_turns_lease() {
    let db = tempfile::tempdir().unwrap();
    let (store, sid) = open_with_session(db.path(), "sess-bg").await;
    let lease = store.acquire_session_lease(&sid).await.unwrap();
    let fenced = store.fenced(lease.fence());
    let f = Fixture::with_env(|e| e);
    let ts: Arc<dyn ToolStore> = Arc::new(fenced.clone());
    let ctx = f.ctx().with_session(sid.clone()).with_store(ts);
    let o = f
        .call_ctx(
            ctx.clone(),
            "background_run",
            json!({"command": "sleep 0.5; echo late"}),
        )
        .await;
    let id = o.output.data["task_id"].as_str().unwrap().to_owned();
    lease.release().await.unwrap();
    let e = fenced
        .add_note(&sid, "after release", false)
        .await
        .unwrap_err();
    assert_eq!(e.code().as_str(), "session.lease_lost", "{e}");
    assert_eq!(
        finished_task(&store, &sid, &id, 100).await,
        "completed Some(\"late\")"
    );
}
