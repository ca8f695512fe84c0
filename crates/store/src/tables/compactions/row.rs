//! The `compactions` table: the journal of folds — the row, the input of
//! `record_compaction` and the table's definition.

use serde::{Deserialize, Serialize};

use crate::codec::{JsonMap, stored_row};
use crate::ddl::model::{ColumnType, Table, col};

use ColumnType::{Int, Key};

stored_row! {
    /// One row of the compaction journal (table `compactions`).
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[non_exhaustive]
    pub struct CompactionRow {
        /// Session id.
        pub session_id: String => text,
        /// Per-session 1-based fold counter.
        pub compact_seq: i64 => i64,
        /// Seq of the `compact_note` message.
        pub note_seq: i64 => i64,
        /// Lowest folded seq.
        pub from_seq: i64 => i64,
        /// Highest folded seq.
        pub to_seq: i64 => i64,
        /// Tokens before the fold.
        pub before_tokens: Option<i64> => opt_i64,
        /// Tokens after the fold.
        pub after_tokens: Option<i64> => opt_i64,
        /// Round of the fold.
        pub round_index: Option<i64> => opt_i64,
        /// Creation time, epoch ms.
        pub created_at: i64 => i64,
    }
}

/// A fold to record.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct CompactionRequest {
    /// Lowest folded seq (range mode, and the span when `fold_seqs` is empty).
    pub from_seq: i64,
    /// Highest folded seq.
    pub to_seq: i64,
    /// Summary text of the note.
    pub note_content: String,
    /// Tokens before.
    pub before_tokens: Option<i64>,
    /// Tokens after.
    pub after_tokens: Option<i64>,
    /// Round.
    pub round_index: Option<i64>,
    /// Extra note metadata (the fold keys overwrite it).
    pub note_meta: Option<JsonMap>,
    /// Exact seqs to fold (`None` = legacy inclusive range mode).
    pub fold_seqs: Option<Vec<i64>>,
    /// Logical position of the note (`None` = span start).
    pub order_key: Option<i64>,
}

impl CompactionRequest {
    /// Folds exactly `seqs` (span = min/max) into a note with `content`.
    pub fn fold(seqs: Vec<i64>, content: impl Into<String>) -> Self {
        let from = seqs.iter().copied().min().unwrap_or(0);
        let to = seqs.iter().copied().max().unwrap_or(0);
        CompactionRequest {
            from_seq: from,
            to_seq: to,
            note_content: content.into(),
            fold_seqs: Some(seqs),
            ..Default::default()
        }
    }
    /// Folds the inclusive seq range (legacy mode).
    pub fn range(from_seq: i64, to_seq: i64, content: impl Into<String>) -> Self {
        CompactionRequest {
            from_seq,
            to_seq,
            note_content: content.into(),
            ..Default::default()
        }
    }
    /// Sets before/after token counts.
    pub fn with_tokens(mut self, before: Option<i64>, after: Option<i64>) -> Self {
        self.before_tokens = before;
        self.after_tokens = after;
        self
    }
    /// Sets the round.
    pub fn with_round_index(mut self, r: i64) -> Self {
        self.round_index = Some(r);
        self
    }
    /// Sets the note metadata.
    pub fn with_note_meta(mut self, m: JsonMap) -> Self {
        self.note_meta = Some(m);
        self
    }
    /// Sets the logical order key.
    pub fn with_order_key(mut self, k: i64) -> Self {
        self.order_key = Some(k);
        self
    }
}

/// The `compactions` table.
pub(crate) const TABLE: Table = Table::new(
    "compactions",
    &[
        col("session_id", Key),
        col("compact_seq", Int),
        col("note_seq", Int),
        col("from_seq", Int),
        col("to_seq", Int),
        col("before_tokens", Int).null(),
        col("after_tokens", Int).null(),
        col("round_index", Int).null(),
        col("created_at", Int),
    ],
    &["session_id", "compact_seq"],
);
