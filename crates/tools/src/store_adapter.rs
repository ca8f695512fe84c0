//! [`ToolStore`] for the durable `power_loop_store::SessionStore`: the seam speaks the store's
//! own record types, so every method forwards as is.

use power_loop_contracts::{BoxFuture, Result};
use power_loop_store::{BackgroundTaskRow, BackgroundTaskUpdate, NoteRow, SessionStore};

use crate::backend::ToolStore;

impl ToolStore for SessionStore {
    fn list_notes<'a>(&'a self, session_id: &'a str) -> BoxFuture<'a, Result<Vec<NoteRow>>> {
        Box::pin(SessionStore::list_notes(self, session_id))
    }

    fn add_note<'a>(
        &'a self,
        session_id: &'a str,
        content: &'a str,
        pinned: bool,
    ) -> BoxFuture<'a, Result<NoteRow>> {
        Box::pin(SessionStore::add_note(self, session_id, content, pinned))
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

    /// Unfenced: a background task's status is a fact about a process this worker started, and
    /// its completion is recorded after the turn that started it (and its lease) has ended.
    fn upsert_background_task<'a>(
        &'a self,
        session_id: &'a str,
        task: &'a BackgroundTaskUpdate,
    ) -> BoxFuture<'a, Result<()>> {
        let store = self.unfenced();
        let (session_id, task) = (session_id.to_owned(), task.clone());
        Box::pin(
            async move { SessionStore::upsert_background_task(&store, &session_id, task).await },
        )
    }

    fn get_background_task<'a>(
        &'a self,
        session_id: &'a str,
        task_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<BackgroundTaskRow>>> {
        Box::pin(SessionStore::get_background_task(self, session_id, task_id))
    }

    fn list_background_tasks<'a>(
        &'a self,
        session_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<BackgroundTaskRow>>> {
        Box::pin(SessionStore::list_background_tasks(self, session_id))
    }
}
