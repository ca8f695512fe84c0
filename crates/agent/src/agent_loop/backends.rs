//! The store backends compiled into this build: what `AgentLoopBuilder::dsn` opens a DSN on
//! when the caller names none. The `sqlite`, `postgres` and `mysql` features of this crate
//! (turned on by the matching features of the `power-loop` façade) pull in one backend crate
//! each; the loop itself only sees the store's `Database` port.

use power_loop_store::BackendDescriptor;

/// The backends compiled in (by this crate's `sqlite` / `postgres` / `mysql` features).
pub const COMPILED_BACKENDS: &[BackendDescriptor] = &[
    #[cfg(feature = "sqlite")]
    power_loop_store_sqlite::BACKEND,
    #[cfg(feature = "postgres")]
    power_loop_store_postgres::BACKEND,
    #[cfg(feature = "mysql")]
    power_loop_store_mysql::BACKEND,
];
