//! The `usage_rounds` and `session_stats` tables: per-round usage and cumulative stats.

mod ops;
pub(crate) mod row;
pub(crate) mod sql;
