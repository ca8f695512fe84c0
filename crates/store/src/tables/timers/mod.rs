//! The `timers` table: durable timers with fleet claiming (spec §8.6).

pub(crate) mod ops;
pub(crate) mod row;
