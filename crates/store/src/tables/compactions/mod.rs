//! The `compactions` table: the fold journal (spec §8.5).

mod ops;
pub(crate) mod row;
