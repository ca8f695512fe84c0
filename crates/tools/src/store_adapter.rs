//! [`ToolStore`] for the durable `power_loop_store::SessionStore`.

use power_loop_contracts::{BoxFuture, Result};
use power_loop_store::{BackgroundTaskUpdate, SessionStore};

use crate::backend::{BackgroundTaskRecord, NoteRecord, ToolStore};

fn task_from(row: power_loop_store::BackgroundTaskRow) -> BackgroundTaskRecord {
    BackgroundTaskRecord {
        session_id: row.session_id,
        task_id: row.task_id,
        command: row.command,
        status: row.status,
        return_code: row.return_code,
        output_tail: row.output_tail,
    }
}

impl ToolStore for SessionStore {
    fn list_notes<'a>(&'a self, session_id: &'a str) -> BoxFuture<'a, Result<Vec<NoteRecord>>> {
        Box::pin(async move {
            Ok(SessionStore::list_notes(self, session_id)
                .await?
                .into_iter()
                .map(|n| NoteRecord {
                    note_id: n.note_id,
                    content: n.content,
                    pinned: n.pinned,
                })
                .collect())
        })
    }

    fn add_note<'a>(
        &'a self,
        session_id: &'a str,
        content: &'a str,
        pinned: bool,
    ) -> BoxFuture<'a, Result<NoteRecord>> {
        Box::pin(async move {
            let n = SessionStore::add_note(self, session_id, content, pinned).await?;
            Ok(NoteRecord {
                note_id: n.note_id,
                content: n.content,
                pinned: n.pinned,
            })
        })
    }

    fn update_note<'a>(
        &'a self,
        session_id: &'a str,
        note_id: i64,
        content: Option<&'a str>,
        pinned: Option<bool>,
    ) -> BoxFuture<'a, Result<bool>> {
        Box::pin(SessionStore::update_note(
            self,
            session_id,
            note_id,
            content.map(str::to_owned),
            pinned,
        ))
    }

    fn delete_note<'a>(&'a self, session_id: &'a str, note_id: i64) -> BoxFuture<'a, Result<bool>> {
        Box::pin(SessionStore::delete_note(self, session_id, note_id))
    }

    fn get_shared_state<'a>(
        &'a self,
        owner: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<serde_json::Value>>> {
        Box::pin(SessionStore::get_shared_state(self, owner, key))
    }

    fn set_shared_state<'a>(
        &'a self,
        owner: &'a str,
        key: &'a str,
        value: serde_json::Value,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(SessionStore::set_shared_state(self, owner, key, value))
    }

    fn set_runtime_state<'a>(
        &'a self,
        session_id: &'a str,
        key: &'a str,
        value: serde_json::Value,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(SessionStore::set_runtime_state(
            self, session_id, key, value,
        ))
    }

    fn upsert_background_task<'a>(
        &'a self,
        task: &'a BackgroundTaskRecord,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut up = BackgroundTaskUpdate::new(&task.task_id, &task.command, &task.status);
            if let Some(rc) = task.return_code {
                up = up.with_return_code(rc);
            }
            if let Some(t) = &task.output_tail {
                up = up.with_output_tail(t);
            }
            SessionStore::upsert_background_task(self, &task.session_id, up).await
        })
    }

    fn get_background_task<'a>(
        &'a self,
        session_id: &'a str,
        task_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<BackgroundTaskRecord>>> {
        Box::pin(async move {
            Ok(SessionStore::get_background_task(self, session_id, task_id)
                .await?
                .map(task_from))
        })
    }

    fn list_background_tasks<'a>(
        &'a self,
        session_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<BackgroundTaskRecord>>> {
        Box::pin(async move {
            Ok(SessionStore::list_background_tasks(self, session_id)
                .await?
                .into_iter()
                .map(task_from)
                .collect())
        })
    }
}
