//! The `lease_fences` table (schema version 3): fencing tokens of session leases and timer
//! claims, and the fenced store handles that check them in every write transaction.

pub(crate) mod ops;
pub(crate) mod row;
