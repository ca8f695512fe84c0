//! The `session_state` table: per-session counters and the pending-tool-call record, and the row
//! lock that orders every session write.

pub(crate) mod ops;
pub mod pending;
pub(crate) mod row;
pub(crate) mod sql;
