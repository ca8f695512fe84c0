//! The `messages` table: appends with gap-free per-session `seq`, the durable turn, the active
//! window and its token, and the retention of folded-out originals.

pub(crate) mod input;
mod ops;
mod retention;
pub(crate) mod row;
pub(crate) mod sql;
