//! The `compactions` table: the fold journal.

mod ops;
pub(crate) mod row;
