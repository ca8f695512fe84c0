//! The `messages` table: appends with gap-free per-session `seq`, the durable turn, the active
//! window and its token (spec §8.4, §11), and the retention of folded-out originals (§8.12).

pub(crate) mod input;
mod ops;
mod retention;
pub(crate) mod row;
pub(crate) mod sql;
