//! The `background_tasks` table: records of background commands (spec §8.11).

mod ops;
pub(crate) mod row;
