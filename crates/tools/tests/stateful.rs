//! todo, notes, human input, blackboard and skills tools.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use std::sync::Arc;

use common::{Fixture, failed, ok};
use power_loop_contracts::ErrorCode;
use power_loop_tools::{
    MemoryToolStore, NotesEviction, NotesPolicy, SharedStateBoard, ToolStore,
    register_blackboard_tools,
};
use serde_json::json;

#[tokio::test]
async fn todo_validation_and_render() {
    let f = Fixture::new();
    let store = Arc::new(MemoryToolStore::new());
    let ctx = f.ctx().with_store(store.clone());
    let o = f
        .call_ctx(
            ctx.clone(),
            "todo",
            json!({"items": [
                {"id": "1", "text": "plan", "status": "completed"},
                {"id": "2", "text": "build", "status": "in_progress"},
                {"id": "3", "text": "ship", "status": "pending"}
            ]}),
        )
        .await;
    assert_eq!(
        ok(&o),
        "[x] #1: plan\n[>] #2: build\n[ ] #3: ship\n\n(1/3 completed)"
    );
    let st = store.runtime_state("s1", "todo").unwrap();
    assert_eq!(st["counts"]["completed"], 1);
    let two_active = json!({"items": [
        {"id": "1", "text": "a", "status": "in_progress"},
        {"id": "2", "text": "b", "status": "in_progress"}]});
    assert!(failed(&f.call("todo", two_active).await).contains("Only one task can be in_progress"));
    let blank = json!({"items": [{"id": "1", "text": "  ", "status": "pending"}]});
    assert!(failed(&f.call("todo", blank).await).contains("Item 1: text required"));
    let bad_status = json!({"items": [{"id": "1", "text": "a", "status": "later"}]});
    assert!(failed(&f.call("todo", bad_status).await).contains("/items/0/status"));
    assert!(failed(&f.call("todo", json!({"items": "x"})).await).contains("/items"));
    assert!(failed(&f.call("todo", json!({})).await).contains("items"));
    let many: Vec<_> = (0..21)
        .map(|i| json!({"id": i.to_string(), "text": "t", "status": "pending"}))
        .collect();
    assert!(failed(&f.call("todo", json!({"items": many})).await).contains("Max 20 todos"));
    assert_eq!(ok(&f.call("todo", json!({"items": []})).await), "No todos.");
}

#[tokio::test]
async fn notes_policy() {
    let f = Fixture::with_env(|mut e| {
        e.notes_policy = NotesPolicy {
            max_notes: 2,
            max_note_chars: 20,
            eviction: NotesEviction::Reject,
        };
        e
    });
    // no store → clear failure
    assert!(
        failed(&f.call("note_add", json!({"content": "x"})).await)
            .contains("need an active session")
    );
    let store = Arc::new(MemoryToolStore::new());
    let ctx = f.ctx().with_store(store.clone());
    let o = f
        .call_ctx(ctx.clone(), "note_add", json!({"content": " first "}))
        .await;
    assert_eq!(ok(&o), "noted as #1 (1/2 notes used)");
    ok(&f
        .call_ctx(
            ctx.clone(),
            "note_add",
            json!({"content": "second", "pinned": true}),
        )
        .await);
    let o = f
        .call_ctx(ctx.clone(), "note_add", json!({"content": "third"}))
        .await;
    assert_eq!(o.error_code, Some(ErrorCode::NotesFull));
    let o = f
        .call_ctx(ctx.clone(), "note_add", json!({"content": "x".repeat(21)}))
        .await;
    assert!(failed(&o).contains("note too long (21 chars > 20)"));
    assert!(
        failed(
            &f.call_ctx(ctx.clone(), "note_add", json!({"content": "  "}))
                .await
        )
        .contains("empty")
    );
    assert_eq!(
        ok(&f
            .call_ctx(
                ctx.clone(),
                "note_update",
                json!({"note_id": 1, "content": "upd"})
            )
            .await),
        "note #1 updated"
    );
    assert!(
        failed(
            &f.call_ctx(ctx.clone(), "note_update", json!({"note_id": 1}))
                .await
        )
        .contains("nothing to update")
    );
    assert!(
        failed(
            &f.call_ctx(
                ctx.clone(),
                "note_update",
                json!({"note_id": 9, "pinned": true})
            )
            .await
        )
        .contains("#9 does not exist")
    );
    assert!(
        failed(
            &f.call_ctx(
                ctx.clone(),
                "note_update",
                json!({"note_id": "1", "pinned": true})
            )
            .await
        )
        .contains("/note_id")
    );
    assert_eq!(
        ok(&f
            .call_ctx(ctx.clone(), "note_delete", json!({"note_id": 1}))
            .await),
        "note #1 deleted (1 remaining)"
    );
    assert!(
        failed(
            &f.call_ctx(ctx.clone(), "note_delete", json!({"note_id": 1}))
                .await
        )
        .contains("does not exist")
    );
    assert_eq!(store.list_notes("s1").await.unwrap().len(), 1);
}

#[tokio::test]
async fn request_user_input_interrupts() {
    let f = Fixture::new();
    let o = f
        .call("request_user_input", json!({"prompt": " Proceed? ", "kind": "confirm", "options": [{"id": "y", "label": "Yes"}]}))
        .await;
    let req = o.interrupt.expect("interrupt");
    assert_eq!(req.prompt, "Proceed?");
    assert_eq!(req.kind, "confirm");
    assert_eq!(req.tool_call_id, "call_1");
    assert!(req.interaction_id.starts_with("input_") && req.interaction_id.len() == 22);
    assert_eq!(req.options[0]["id"], "y");
    assert_eq!(o.error_code, Some(ErrorCode::HumanInputRequired));
    let o = f.call("request_user_input", json!({"prompt": "  "})).await;
    assert!(o.interrupt.is_none());
    assert!(failed(&o).contains("prompt is required"));
    assert!(failed(&f.call("request_user_input", json!({})).await).contains("prompt"));
}

#[tokio::test]
async fn blackboard_tools() {
    let mut f = Fixture::with_env(|e| e.with_board_id("team"));
    register_blackboard_tools(&mut f.reg, None, None, None, false).unwrap();
    assert!(
        failed(&f.call("board_read", json!({})).await).contains("no shared board is configured")
    );
    let store: Arc<dyn ToolStore> = Arc::new(MemoryToolStore::new());
    let board = Arc::new(SharedStateBoard::new(store));
    let ctx = f.ctx().with_blackboard(board).with_agent_name("alice");
    assert_eq!(
        ok(&f.call_ctx(ctx.clone(), "board_read", json!({})).await),
        "Shared board:\n(the board is empty)"
    );
    let o = f
        .call_ctx(
            ctx.clone(),
            "board_post",
            json!({"text": "find bug", "kind": "task", "status": "open"}),
        )
        .await;
    assert_eq!(
        ok(&o),
        "Posted. Shared board:\n- #1 [task\u{b7}open] (alice) find bug"
    );
    let o = f
        .call_ctx(
            ctx.clone(),
            "board_update",
            json!({"entry_id": 1, "status": "done"}),
        )
        .await;
    assert!(ok(&o).contains("[task\u{b7}done]"));
    assert!(
        failed(
            &f.call_ctx(
                ctx.clone(),
                "board_post",
                json!({"text": "x", "kind": "poem"})
            )
            .await
        )
        .contains("/kind")
    );
    assert!(
        failed(
            &f.call_ctx(ctx.clone(), "board_post", json!({"text": " "}))
                .await
        )
        .contains("'text' is required")
    );
    assert!(
        failed(
            &f.call_ctx(ctx.clone(), "board_update", json!({"entry_id": 1}))
                .await
        )
        .contains("nothing to update")
    );
    assert!(
        failed(
            &f.call_ctx(ctx.clone(), "board_remove", json!({"entry_id": 7}))
                .await
        )
        .contains("no board entry with id #7")
    );
    assert!(failed(&f.call_ctx(ctx.clone(), "board_remove", json!({})).await).contains("entry_id"));
    assert_eq!(
        ok(&f
            .call_ctx(ctx.clone(), "board_remove", json!({"entry_id": 1}))
            .await),
        "Removed. Shared board:\n(the board is empty)"
    );
    let o = f
        .call_ctx(ctx.clone(), "board_post", json!({"text": "again"}))
        .await;
    assert!(
        ok(&o).contains("- #2 [note] (alice) again"),
        "ids are never reused"
    );
}

#[tokio::test]
async fn load_skill() {
    let skills = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(skills.path().join("pdf")).unwrap();
    std::fs::write(
        skills.path().join("pdf/SKILL.md"),
        "---\nname: ignored\ndescription: Work with PDFs\n---\n\n# PDF\nUse tools.\n",
    )
    .unwrap();
    std::fs::create_dir_all(skills.path().join("plain")).unwrap();
    std::fs::write(skills.path().join("plain/SKILL.md"), "Just body").unwrap();
    let dir = skills.path().to_path_buf();
    let f = Fixture::with_env(move |e| e.with_skills_dir(&dir).unwrap());
    let o = f.call("load_skill", json!({"name": "pdf"})).await;
    let out = ok(&o);
    assert!(out.starts_with("<skill name=\"pdf\" path=\""), "{out}");
    assert!(out.contains("[Execution Context]"));
    assert!(out.ends_with("# PDF\nUse tools.\n</skill>"), "{out}");
    let o = f.call("load_skill", json!({"name": "nope"})).await;
    assert_eq!(
        failed(&o),
        "Error: Unknown skill 'nope'. Available: pdf, plain"
    );
    assert!(failed(&f.call("load_skill", json!({})).await).contains("name"));
    let loader = power_loop_tools::SkillLoader::new(skills.path()).unwrap();
    assert_eq!(
        loader.descriptions(),
        "Available skills:\n  - pdf: Work with PDFs\n  - plain: No description"
    );
    // without a skills dir
    let g = Fixture::new();
    assert_eq!(
        g.call("load_skill", json!({"name": "pdf"}))
            .await
            .error_code,
        Some(ErrorCode::RuntimeEnvMissing)
    );
}
