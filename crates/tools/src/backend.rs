//! Persistence seams used by the stateful tools, and in-process implementations.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use power_loop_contracts::{BoxFuture, Error, ErrorCode, Result};
use power_loop_store::{BackgroundTaskRow, BackgroundTaskUpdate, NoteRow};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// What the notes, todo, background and board tools need from a session store.
///
/// It speaks the store's own record types (`power_loop_store::NoteRow`, `BackgroundTaskUpdate`,
/// `BackgroundTaskRow`). The store crate's `SessionStore` implements it (in an adapter);
/// [`MemoryToolStore`] is the in-process implementation used without a database and in tests.
pub trait ToolStore: Send + Sync {
    /// Notes of a session ordered by id.
    fn list_notes<'a>(&'a self, session_id: &'a str) -> BoxFuture<'a, Result<Vec<NoteRow>>>;
    /// Adds a note (id = max+1) and returns it.
    fn add_note<'a>(
        &'a self,
        session_id: &'a str,
        content: &'a str,
        pinned: bool,
    ) -> BoxFuture<'a, Result<NoteRow>>;
    /// Updates the given fields; `false` when the note does not exist.
    fn update_note<'a>(
        &'a self,
        session_id: &'a str,
        note_id: i64,
        content: Option<&'a str>,
        pinned: Option<bool>,
    ) -> BoxFuture<'a, Result<bool>>;
    /// Deletes a note; `false` when it did not exist.
    fn delete_note<'a>(&'a self, session_id: &'a str, note_id: i64) -> BoxFuture<'a, Result<bool>>;
    /// Reads a shared-state value (not session scoped).
    fn get_shared_state<'a>(
        &'a self,
        owner: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<serde_json::Value>>>;
    /// Writes a shared-state value.
    fn set_shared_state<'a>(
        &'a self,
        owner: &'a str,
        key: &'a str,
        value: serde_json::Value,
    ) -> BoxFuture<'a, Result<()>>;
    /// Writes a session runtime-state value (e.g. `todo`).
    fn set_runtime_state<'a>(
        &'a self,
        session_id: &'a str,
        key: &'a str,
        value: serde_json::Value,
    ) -> BoxFuture<'a, Result<()>>;
    /// Inserts or updates a background-task row of `session_id`.
    fn upsert_background_task<'a>(
        &'a self,
        session_id: &'a str,
        task: &'a BackgroundTaskUpdate,
    ) -> BoxFuture<'a, Result<()>>;
    /// One background-task row.
    fn get_background_task<'a>(
        &'a self,
        session_id: &'a str,
        task_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<BackgroundTaskRow>>>;
    /// All background-task rows of a session.
    fn list_background_tasks<'a>(
        &'a self,
        session_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<BackgroundTaskRow>>>;
}

#[derive(Default)]
struct MemState {
    notes: HashMap<String, BTreeMap<i64, NoteRow>>,
    shared: HashMap<(String, String), serde_json::Value>,
    runtime: HashMap<(String, String), serde_json::Value>,
    tasks: HashMap<String, BTreeMap<String, BackgroundTaskRow>>,
}

/// An in-process [`ToolStore`] (nothing survives the process).
#[derive(Default, Clone)]
pub struct MemoryToolStore {
    state: Arc<Mutex<MemState>>,
}

impl std::fmt::Debug for MemoryToolStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemoryToolStore")
    }
}

impl MemoryToolStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, MemState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A runtime-state value (for tests and hosts).
    pub fn runtime_state(&self, session_id: &str, key: &str) -> Option<serde_json::Value> {
        self.lock()
            .runtime
            .get(&(session_id.to_owned(), key.to_owned()))
            .cloned()
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A store row built in memory. The store's rows are built only by the store or from their
/// serialized (export) form, which is what this does.
fn row_from_json<T: serde::de::DeserializeOwned>(what: &str, v: serde_json::Value) -> Result<T> {
    serde_json::from_value(v).map_err(|e| {
        Error::internal(format!("building an in-memory {what} row failed: {e}")).with_source(e)
    })
}

fn ready<'a, T: Send + 'a>(v: T) -> BoxFuture<'a, T> {
    Box::pin(std::future::ready(v))
}

impl ToolStore for MemoryToolStore {
    fn list_notes<'a>(&'a self, session_id: &'a str) -> BoxFuture<'a, Result<Vec<NoteRow>>> {
        let st = self.lock();
        ready(Ok(st
            .notes
            .get(session_id)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()))
    }
    fn add_note<'a>(
        &'a self,
        session_id: &'a str,
        content: &'a str,
        pinned: bool,
    ) -> BoxFuture<'a, Result<NoteRow>> {
        let mut st = self.lock();
        let notes = st.notes.entry(session_id.to_owned()).or_default();
        let id = notes.keys().next_back().copied().unwrap_or(0) + 1;
        let now = now_ms();
        let rec: Result<NoteRow> = row_from_json(
            "note",
            json!({"session_id": session_id, "note_id": id, "content": content, "pinned": pinned,
                   "created_at": now, "updated_at": now}),
        );
        if let Ok(r) = &rec {
            notes.insert(id, r.clone());
        }
        ready(rec)
    }
    fn update_note<'a>(
        &'a self,
        session_id: &'a str,
        note_id: i64,
        content: Option<&'a str>,
        pinned: Option<bool>,
    ) -> BoxFuture<'a, Result<bool>> {
        let mut st = self.lock();
        let found = match st
            .notes
            .get_mut(session_id)
            .and_then(|m| m.get_mut(&note_id))
        {
            Some(n) => {
                if let Some(c) = content {
                    n.content = c.to_owned();
                }
                if let Some(p) = pinned {
                    n.pinned = p;
                }
                n.updated_at = now_ms();
                true
            }
            None => false,
        };
        ready(Ok(found))
    }
    fn delete_note<'a>(&'a self, session_id: &'a str, note_id: i64) -> BoxFuture<'a, Result<bool>> {
        let mut st = self.lock();
        let found = st
            .notes
            .get_mut(session_id)
            .and_then(|m| m.remove(&note_id))
            .is_some();
        ready(Ok(found))
    }
    fn get_shared_state<'a>(
        &'a self,
        owner: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<serde_json::Value>>> {
        let st = self.lock();
        ready(Ok(st
            .shared
            .get(&(owner.to_owned(), key.to_owned()))
            .cloned()))
    }
    fn set_shared_state<'a>(
        &'a self,
        owner: &'a str,
        key: &'a str,
        value: serde_json::Value,
    ) -> BoxFuture<'a, Result<()>> {
        self.lock()
            .shared
            .insert((owner.to_owned(), key.to_owned()), value);
        ready(Ok(()))
    }
    fn set_runtime_state<'a>(
        &'a self,
        session_id: &'a str,
        key: &'a str,
        value: serde_json::Value,
    ) -> BoxFuture<'a, Result<()>> {
        self.lock()
            .runtime
            .insert((session_id.to_owned(), key.to_owned()), value);
        ready(Ok(()))
    }
    fn upsert_background_task<'a>(
        &'a self,
        session_id: &'a str,
        task: &'a BackgroundTaskUpdate,
    ) -> BoxFuture<'a, Result<()>> {
        let mut st = self.lock();
        let tasks = st.tasks.entry(session_id.to_owned()).or_default();
        let now = now_ms();
        let created = tasks.get(&task.task_id).map_or(now, |t| t.created_at);
        let row: Result<BackgroundTaskRow> = row_from_json(
            "background task",
            json!({"session_id": session_id, "task_id": task.task_id, "command": task.command,
                   "status": task.status, "return_code": task.return_code,
                   "output_tail": task.output_tail, "output_path": task.output_path,
                   "last_seen_at": 0, "created_at": created, "updated_at": now}),
        );
        ready(row.map(|r| {
            tasks.insert(task.task_id.clone(), r);
        }))
    }
    fn get_background_task<'a>(
        &'a self,
        session_id: &'a str,
        task_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<BackgroundTaskRow>>> {
        let st = self.lock();
        ready(Ok(st
            .tasks
            .get(session_id)
            .and_then(|m| m.get(task_id))
            .cloned()))
    }
    fn list_background_tasks<'a>(
        &'a self,
        session_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<BackgroundTaskRow>>> {
        let st = self.lock();
        ready(Ok(st
            .tasks
            .get(session_id)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()))
    }
}

/// What happens when the notes are full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NotesEviction {
    /// Refuse the new note.
    #[default]
    Reject,
    /// Delete the oldest unpinned note first.
    Fifo,
}

/// Limits of the note tools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotesPolicy {
    /// Maximum notes per session (default 50).
    pub max_notes: usize,
    /// Maximum characters per note (default 1000; longer notes are refused, never cut).
    pub max_note_chars: usize,
    /// What to do when full.
    pub eviction: NotesEviction,
}

impl Default for NotesPolicy {
    fn default() -> Self {
        NotesPolicy {
            max_notes: 50,
            max_note_chars: 1000,
            eviction: NotesEviction::Reject,
        }
    }
}

/// One entry of a tool board (a [`BoardBackend`]); named apart from the store's
/// `power_loop_store::BoardEntry`, whose board keeps timestamps and a required status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoardPost {
    /// Monotonic id (never reused).
    pub id: i64,
    /// The text.
    pub text: String,
    /// Entry kind (e.g. `note`, `task`).
    pub kind: String,
    /// Optional status (e.g. `open`, `doing`, `done`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Who posted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
}

impl BoardPost {
    /// `- #{id} [{kind}·{status}] ({author}) {text}`.
    pub fn render(&self) -> String {
        let tag = match &self.status {
            Some(s) => format!("{}\u{b7}{s}", self.kind),
            None => self.kind.clone(),
        };
        let author = self
            .author
            .as_deref()
            .map(|a| format!(" ({a})"))
            .unwrap_or_default();
        format!("- #{} [{tag}]{author} {}", self.id, self.text)
    }
}

/// A shared board several agents read and write: the seam behind the `board_*` tools.
pub trait BoardBackend: Send + Sync {
    /// All entries.
    fn read<'a>(&'a self, board_id: &'a str) -> BoxFuture<'a, Result<Vec<BoardPost>>>;
    /// Adds an entry.
    fn post<'a>(
        &'a self,
        board_id: &'a str,
        text: &'a str,
        kind: &'a str,
        status: Option<&'a str>,
        author: Option<&'a str>,
    ) -> BoxFuture<'a, Result<BoardPost>>;
    /// Changes text and/or status.
    fn update<'a>(
        &'a self,
        board_id: &'a str,
        entry_id: i64,
        text: Option<&'a str>,
        status: Option<&'a str>,
    ) -> BoxFuture<'a, Result<BoardPost>>;
    /// Removes an entry.
    fn remove<'a>(&'a self, board_id: &'a str, entry_id: i64) -> BoxFuture<'a, Result<()>>;
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct BoardDoc {
    version: u32,
    next_id: i64,
    entries: Vec<BoardPost>,
}

/// A [`BoardBackend`] stored as one JSON document per board in the store's shared state
/// (owner `blackboard:{id}`, key `board`). Mutations are serialized per process.
pub struct SharedStateBoard {
    store: Arc<dyn ToolStore>,
    lock: tokio::sync::Mutex<()>,
    /// Maximum entries per board (default 60).
    pub max_entries: usize,
    /// Maximum characters per entry text (default 2000; longer text is refused).
    pub max_text_len: usize,
}

impl std::fmt::Debug for SharedStateBoard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedStateBoard")
            .field("max_entries", &self.max_entries)
            .finish()
    }
}

fn board_err(msg: impl Into<String>) -> Error {
    Error::new(ErrorCode::BlackboardInvalid, msg)
}

impl SharedStateBoard {
    /// A board over `store` with default limits.
    pub fn new(store: Arc<dyn ToolStore>) -> Self {
        SharedStateBoard {
            store,
            lock: tokio::sync::Mutex::new(()),
            max_entries: 60,
            max_text_len: 2000,
        }
    }

    async fn load(&self, board_id: &str) -> Result<BoardDoc> {
        if board_id.trim().is_empty() {
            return Err(board_err("board_id is required"));
        }
        let owner = format!("blackboard:{board_id}");
        match self.store.get_shared_state(&owner, "board").await? {
            None => Ok(BoardDoc {
                version: 1,
                next_id: 1,
                entries: Vec::new(),
            }),
            Some(v) => serde_json::from_value(v)
                .map_err(|e| board_err(format!("the stored board {board_id} is unreadable: {e}"))),
        }
    }

    async fn save(&self, board_id: &str, doc: &BoardDoc) -> Result<()> {
        let owner = format!("blackboard:{board_id}");
        let v = serde_json::to_value(doc)?;
        self.store.set_shared_state(&owner, "board", v).await
    }

    fn check_text(&self, text: &str) -> Result<String> {
        let t = text.trim();
        if t.is_empty() {
            return Err(board_err("text is required"));
        }
        let n = t.chars().count();
        if n > self.max_text_len {
            return Err(board_err(format!(
                "text too long ({n} chars > {}); post a shorter summary",
                self.max_text_len
            )));
        }
        Ok(t.to_owned())
    }
}

impl BoardBackend for SharedStateBoard {
    fn read<'a>(&'a self, board_id: &'a str) -> BoxFuture<'a, Result<Vec<BoardPost>>> {
        Box::pin(async move { Ok(self.load(board_id).await?.entries) })
    }

    fn post<'a>(
        &'a self,
        board_id: &'a str,
        text: &'a str,
        kind: &'a str,
        status: Option<&'a str>,
        author: Option<&'a str>,
    ) -> BoxFuture<'a, Result<BoardPost>> {
        Box::pin(async move {
            let _g = self.lock.lock().await;
            let text = self.check_text(text)?;
            let mut doc = self.load(board_id).await?;
            if doc.entries.len() >= self.max_entries {
                return Err(board_err(format!(
                    "board is full ({} entries); remove stale entries first",
                    self.max_entries
                )));
            }
            let entry = BoardPost {
                id: doc.next_id.max(1),
                text,
                kind: kind.to_owned(),
                status: status.map(str::to_owned),
                author: author.map(str::to_owned),
            };
            doc.next_id = entry.id + 1;
            doc.entries.push(entry.clone());
            self.save(board_id, &doc).await?;
            Ok(entry)
        })
    }

    fn update<'a>(
        &'a self,
        board_id: &'a str,
        entry_id: i64,
        text: Option<&'a str>,
        status: Option<&'a str>,
    ) -> BoxFuture<'a, Result<BoardPost>> {
        Box::pin(async move {
            let _g = self.lock.lock().await;
            if text.is_none() && status.is_none() {
                return Err(board_err("nothing to update: provide text and/or status"));
            }
            let new_text = match text {
                Some(t) if t.trim().is_empty() => return Err(board_err("text cannot be empty")),
                Some(t) => Some(self.check_text(t)?),
                None => None,
            };
            let mut doc = self.load(board_id).await?;
            let Some(e) = doc.entries.iter_mut().find(|e| e.id == entry_id) else {
                return Err(board_err(format!("no board entry with id #{entry_id}")));
            };
            if let Some(t) = new_text {
                e.text = t;
            }
            if let Some(s) = status {
                e.status = Some(s.to_owned());
            }
            let out = e.clone();
            self.save(board_id, &doc).await?;
            Ok(out)
        })
    }

    fn remove<'a>(&'a self, board_id: &'a str, entry_id: i64) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let _g = self.lock.lock().await;
            let mut doc = self.load(board_id).await?;
            let before = doc.entries.len();
            doc.entries.retain(|e| e.id != entry_id);
            if doc.entries.len() == before {
                return Err(board_err(format!("no board entry with id #{entry_id}")));
            }
            self.save(board_id, &doc).await
        })
    }
}
