//! The `timers` table: durable timers with fleet claiming.

pub(crate) mod ops;
pub(crate) mod row;
