//! The `Database` / `Transaction` port: what a SQL backend implements.
//!
//! The store is written once above this port. SQL given to the port always uses `?` placeholders
//! and never contains a literal `?` or `%`; backends translate placeholders with their [`Dialect`].
//!
//! Transaction bodies are **synchronous closures** ([`TxBody`]) run where the backend wants:
//! the SQLite backend runs them directly on its connection thread (no channel round trip per
//! statement, which keeps a durable turn close to raw rusqlite speed); server backends run them on a
//! blocking thread that drives the async driver statement by statement. A body that returns `Err`
//! (or panics) rolls the transaction back; `Ok` commits it. [`run_tx`] runs a body and returns its
//! value: every store operation goes through it. [`insert_sql`] and [`upsert_columns`] are the SQL
//! text the store's inserts and the dialects' upserts share.

mod port;
mod run;
mod sql;

pub use port::{
    BoxFuture, Database, Dialect, Lease, Maintenance, Row, Transaction, TxBody, TxMode, Value,
};
pub use run::{run_tx, run_tx_exclusive};
pub use sql::{insert_sql, placeholders, upsert_columns};
