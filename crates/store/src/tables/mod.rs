//! The store grouped by table. Each module holds what one table (or a pair that works as one)
//! needs: its row type (`row`), the inputs of its writes, its definition in the DDL model
//! (listed in order by [`crate::ddl::TABLES`]), its hot statements (`sql`, rendered once per
//! store) and its operations (`ops`, `impl SessionStore` blocks run through
//! [`crate::db::run_tx`]).

pub(crate) mod background_tasks;
pub(crate) mod compactions;
pub(crate) mod fences;
pub(crate) mod keyed_state;
pub(crate) mod messages;
pub(crate) mod notes;
pub(crate) mod session_state;
pub(crate) mod sessions;
pub(crate) mod timers;
pub(crate) mod usage;
pub(crate) mod workflows;
