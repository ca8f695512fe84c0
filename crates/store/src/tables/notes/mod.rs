//! The `notes` table: agent-authored notes (spec §8.7).

mod ops;
pub(crate) mod row;
