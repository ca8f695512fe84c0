//! The `notes` table: agent-authored notes.

mod ops;
pub(crate) mod row;
