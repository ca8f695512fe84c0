//! The `background_tasks` table: records of background commands.

mod ops;
pub(crate) mod row;
