//! The `sessions` table: sessions and the sub-agent tree.

pub(crate) mod admin;
pub(crate) mod id;
pub(crate) mod ops;
pub(crate) mod row;
pub(crate) mod sql;
