//! The `usage_rounds` and `session_stats` tables: token usage per round and cumulative
//! accounting per session — the rows, the inputs of `record_usage` and `bump_session_stats`,
//! and the tables' definitions.

use serde::{Deserialize, Serialize};

use crate::codec::stored_row;
use crate::ddl::model::{ColumnType, Table, col};

use ColumnType::{Int, Key};

stored_row! {
    /// One round's token usage (table `usage_rounds`).
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[non_exhaustive]
    pub struct UsageRoundRow {
        /// Session id.
        pub session_id: String => text,
        /// Round index (restarts at 0 every send).
        pub round_index: i64 => i64,
        /// Prompt tokens the provider reported for this round (`None`: not reported).
        pub prompt_tokens: Option<i64> => opt_i64,
        /// Completion tokens the provider reported for this round (`None`: not reported).
        pub completion_tokens: Option<i64> => opt_i64,
        /// Total tokens the provider reported for this round (`None`: not reported).
        pub total_tokens: Option<i64> => opt_i64,
        /// The model that answered the round, when known.
        pub model: Option<String> => opt_text,
        /// Write time, epoch ms.
        pub created_at: i64 => i64,
    }
}

/// Usage of one round (`record_usage`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct UsageRecord {
    /// Round index (the key with the session id).
    pub round_index: i64,
    /// Prompt tokens the provider reported for this round (`None`: not reported).
    pub prompt_tokens: Option<i64>,
    /// Completion tokens the provider reported for this round (`None`: not reported).
    pub completion_tokens: Option<i64>,
    /// Total tokens the provider reported for this round (`None`: not reported).
    pub total_tokens: Option<i64>,
    /// The model that answered the round, when known.
    pub model: Option<String>,
}

impl UsageRecord {
    /// Usage for `round_index`.
    pub fn new(
        round_index: i64,
        prompt_tokens: Option<i64>,
        completion_tokens: Option<i64>,
        total_tokens: Option<i64>,
    ) -> Self {
        UsageRecord {
            round_index,
            prompt_tokens,
            completion_tokens,
            total_tokens,
            model: None,
        }
    }
    /// Sets the model.
    pub fn with_model(mut self, m: impl Into<String>) -> Self {
        self.model = Some(m.into());
        self
    }
}

stored_row! {
    /// Cumulative accounting of a session (table `session_stats`).
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    #[non_exhaustive]
    pub struct SessionStatsRow {
        /// Session id.
        pub session_id: String => text,
        /// Finished sends.
        pub sends: i64 => i64,
        /// Rounds over every send.
        pub rounds: i64 => i64,
        /// LLM calls over every send.
        pub llm_calls: i64 => i64,
        /// Tool calls over every send.
        pub tool_calls: i64 => i64,
        /// Prompt tokens summed over every send.
        pub prompt_tokens: i64 => i64,
        /// Completion tokens summed over every send.
        pub completion_tokens: i64 => i64,
        /// Total tokens summed over every send.
        pub total_tokens: i64 => i64,
        /// First send time, epoch ms.
        pub first_send_at: Option<i64> => opt_i64,
        /// Last send time, epoch ms.
        pub last_send_at: Option<i64> => opt_i64,
        /// Last update, epoch ms.
        pub updated_at: i64 => i64,
    }
}

/// Counters added by `bump_session_stats` (one finished send).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StatsDelta {
    /// Rounds of the send.
    pub rounds: i64,
    /// LLM calls.
    pub llm_calls: i64,
    /// Tool calls.
    pub tool_calls: i64,
    /// Prompt tokens.
    pub prompt_tokens: i64,
    /// Completion tokens.
    pub completion_tokens: i64,
    /// Total tokens.
    pub total_tokens: i64,
}

impl StatsDelta {
    /// A delta with every counter set.
    pub fn new(
        rounds: i64,
        llm_calls: i64,
        tool_calls: i64,
        prompt_tokens: i64,
        completion_tokens: i64,
        total_tokens: i64,
    ) -> Self {
        StatsDelta {
            rounds,
            llm_calls,
            tool_calls,
            prompt_tokens,
            completion_tokens,
            total_tokens,
        }
    }
}

/// The `usage_rounds` table.
pub(crate) const USAGE_ROUNDS_TABLE: Table = Table::new(
    "usage_rounds",
    &[
        col("session_id", Key),
        col("round_index", Int),
        col("prompt_tokens", Int).null(),
        col("completion_tokens", Int).null(),
        col("total_tokens", Int).null(),
        col("model", Key).null(),
        col("created_at", Int),
    ],
    &["session_id", "round_index"],
);

/// The `session_stats` table.
pub(crate) const SESSION_STATS_TABLE: Table = Table::new(
    "session_stats",
    &[
        col("session_id", Key),
        col("sends", Int).default_int(0),
        col("rounds", Int).default_int(0),
        col("llm_calls", Int).default_int(0),
        col("tool_calls", Int).default_int(0),
        col("prompt_tokens", Int).default_int(0),
        col("completion_tokens", Int).default_int(0),
        col("total_tokens", Int).default_int(0),
        col("first_send_at", Int).null(),
        col("last_send_at", Int).null(),
        col("updated_at", Int),
    ],
    &["session_id"],
);
