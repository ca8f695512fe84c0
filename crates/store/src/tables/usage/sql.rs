//! The hot statements of the `usage_rounds` and `session_stats` tables: the upserts a durable
//! turn runs. Rendered once per store.

use power_loop_contracts::Result;

use super::row::{StatsDelta, UsageRecord};
use crate::db::{Dialect, Transaction, Value};
use crate::schema::TableNames;

/// Statements on `usage_rounds` and `session_stats`.
pub(crate) struct UsageSql {
    upsert_usage: String,
    upsert_stats: String,
}

impl UsageSql {
    /// Renders the statements for the store's table names and dialect.
    pub(crate) fn new(t: &TableNames, d: &dyn Dialect) -> Self {
        UsageSql {
            upsert_stats: d.upsert(
                &t.session_stats,
                &["session_id"],
                &["last_send_at", "updated_at"],
                &[
                    "sends",
                    "rounds",
                    "llm_calls",
                    "tool_calls",
                    "prompt_tokens",
                    "completion_tokens",
                    "total_tokens",
                ],
                &["first_send_at"],
            ),
            upsert_usage: d.upsert(
                &t.usage_rounds,
                &["session_id", "round_index"],
                &[
                    "prompt_tokens",
                    "completion_tokens",
                    "total_tokens",
                    "model",
                    "created_at",
                ],
                &[],
                &[],
            ),
        }
    }

    /// Upserts one round's usage (every non-key column overwritten; a deferred write).
    pub(crate) fn upsert_usage(
        &self,
        tx: &mut dyn Transaction,
        session_id: &str,
        u: &UsageRecord,
        now: i64,
    ) -> Result<()> {
        tx.execute_deferred(
            &self.upsert_usage,
            &[
                Value::from(session_id),
                Value::Int(u.round_index),
                Value::from(u.prompt_tokens),
                Value::from(u.completion_tokens),
                Value::from(u.total_tokens),
                Value::from(u.model.clone()),
                Value::Int(now),
            ],
        )
    }

    /// Adds one finished send to the cumulative stats (a deferred write).
    pub(crate) fn bump_stats(
        &self,
        tx: &mut dyn Transaction,
        session_id: &str,
        d: &StatsDelta,
        now: i64,
    ) -> Result<()> {
        tx.execute_deferred(
            &self.upsert_stats,
            &[
                Value::from(session_id),
                Value::Int(now),
                Value::Int(now),
                Value::Int(1),
                Value::Int(d.rounds),
                Value::Int(d.llm_calls),
                Value::Int(d.tool_calls),
                Value::Int(d.prompt_tokens),
                Value::Int(d.completion_tokens),
                Value::Int(d.total_tokens),
                Value::Int(now),
            ],
        )
    }
}
