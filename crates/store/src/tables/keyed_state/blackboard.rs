//! A shared blackboard stored as one JSON document per board in `shared_state`
//! (owner `blackboard:<board_id>`, key `board`). Every change is an atomic
//! read-modify-write under a row lock, so posts from several processes never get lost
//! (the reference serialized per board in-process only).

use power_loop_contracts::{Error, ErrorCode, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::store::SessionStore;
use power_loop_contracts::clock::{iso8601_utc_ms, now_ms};

/// Default maximum number of entries on a board.
pub const DEFAULT_BOARD_MAX_ENTRIES: usize = 60;
/// Default maximum entry text length (longer text is truncated).
pub const DEFAULT_BOARD_MAX_TEXT_LEN: usize = 2000;

/// One blackboard entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BoardEntry {
    /// Board-local id (1-based, never reused).
    pub id: i64,
    /// Text.
    pub text: String,
    /// Free kind (`note`, `finding`, `question`, …).
    pub kind: String,
    /// Free status (`open`, `done`, …).
    pub status: String,
    /// Who posted it.
    #[serde(default)]
    pub author: Option<String>,
    /// UTC ISO-8601 creation time.
    pub created_at: String,
    /// UTC ISO-8601 last change.
    pub updated_at: String,
}

/// The stored board document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BoardDocument {
    /// Document version (1).
    pub version: i64,
    /// Next entry id.
    pub next_id: i64,
    /// Entries in posting order.
    pub entries: Vec<BoardEntry>,
}

impl Default for BoardDocument {
    fn default() -> Self {
        BoardDocument {
            version: 1,
            next_id: 1,
            entries: Vec::new(),
        }
    }
}

impl BoardDocument {
    fn from_json(v: Option<Json>) -> Self {
        v.and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default()
    }
}

fn board_error(msg: String) -> Error {
    Error::new(ErrorCode::BlackboardInvalid, msg)
}

/// A handle on one board.
#[derive(Debug, Clone)]
pub struct Blackboard {
    store: SessionStore,
    owner: String,
    max_entries: usize,
    max_text_len: usize,
}

impl Blackboard {
    /// A handle on board `board_id` (non-empty, else `blackboard.invalid`).
    pub fn new(store: SessionStore, board_id: &str) -> Result<Self> {
        if board_id.trim().is_empty() {
            return Err(board_error("a blackboard id must not be empty".into()));
        }
        Ok(Blackboard {
            store,
            owner: format!("blackboard:{board_id}"),
            max_entries: DEFAULT_BOARD_MAX_ENTRIES,
            max_text_len: DEFAULT_BOARD_MAX_TEXT_LEN,
        })
    }

    /// Sets the entry and text limits.
    pub fn with_limits(mut self, max_entries: usize, max_text_len: usize) -> Self {
        self.max_entries = max_entries.max(1);
        self.max_text_len = max_text_len.max(1);
        self
    }

    /// The current document (empty if missing or unreadable).
    pub async fn read(&self) -> Result<BoardDocument> {
        Ok(BoardDocument::from_json(
            self.store.get_shared_state(&self.owner, "board").await?,
        ))
    }

    /// Posts an entry (text stripped and truncated; empty text or a full board is an error).
    pub async fn post(
        &self,
        text: &str,
        kind: Option<&str>,
        author: Option<&str>,
    ) -> Result<BoardEntry> {
        let text: String = text.trim().chars().take(self.max_text_len).collect();
        if text.is_empty() {
            return Err(board_error(
                "a blackboard entry needs non-empty text".into(),
            ));
        }
        let kind = kind.unwrap_or("note").to_owned();
        let author = author.map(str::to_owned);
        let max = self.max_entries;
        self.store
            .try_update_shared_state(&self.owner, "board", move |cur| {
                let mut doc = BoardDocument::from_json(cur);
                if doc.entries.len() >= max {
                    return Err(board_error(format!(
                        "the blackboard is full ({max} entries); remove entries first"
                    )));
                }
                let ts = iso8601_utc_ms(now_ms());
                let entry = BoardEntry {
                    id: doc.next_id,
                    text,
                    kind,
                    status: "open".into(),
                    author,
                    created_at: ts.clone(),
                    updated_at: ts,
                };
                doc.next_id += 1;
                doc.entries.push(entry.clone());
                Ok((Some(serde_json::to_value(&doc)?), entry))
            })
            .await
    }

    /// Changes an entry's text and/or status (neither, or an unknown id, is an error).
    pub async fn update(
        &self,
        id: i64,
        text: Option<&str>,
        status: Option<&str>,
    ) -> Result<BoardEntry> {
        if text.is_none() && status.is_none() {
            return Err(board_error(
                "a blackboard update needs a new text or status".into(),
            ));
        }
        let text: Option<String> = text.map(|t| t.trim().chars().take(self.max_text_len).collect());
        if text.as_deref() == Some("") {
            return Err(board_error(
                "a blackboard entry needs non-empty text".into(),
            ));
        }
        let status = status.map(str::to_owned);
        self.store
            .try_update_shared_state(&self.owner, "board", move |cur| {
                let mut doc = BoardDocument::from_json(cur);
                let Some(entry) = doc.entries.iter_mut().find(|e| e.id == id) else {
                    return Err(board_error(format!("no blackboard entry #{id}")));
                };
                if let Some(t) = text {
                    entry.text = t;
                }
                if let Some(s) = status {
                    entry.status = s;
                }
                entry.updated_at = iso8601_utc_ms(now_ms());
                let out = entry.clone();
                Ok((Some(serde_json::to_value(&doc)?), out))
            })
            .await
    }

    /// Removes an entry (unknown id is an error); returns it.
    pub async fn remove(&self, id: i64) -> Result<BoardEntry> {
        self.store
            .try_update_shared_state(&self.owner, "board", move |cur| {
                let mut doc = BoardDocument::from_json(cur);
                let Some(pos) = doc.entries.iter().position(|e| e.id == id) else {
                    return Err(board_error(format!("no blackboard entry #{id}")));
                };
                let out = doc.entries.remove(pos);
                Ok((Some(serde_json::to_value(&doc)?), out))
            })
            .await
    }
}
