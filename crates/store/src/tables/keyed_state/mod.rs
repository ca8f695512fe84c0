//! The `session_runtime_state` and `shared_state` tables: keyed JSON per session
//! and per free owner with atomic read-modify-write, and the [`blackboard`] built on
//! shared state.

pub mod blackboard;
mod ops;
pub(crate) mod row;
