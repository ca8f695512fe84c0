//! A fleet of workflow workers over a shared server store (beyond the reference, which
//! runs every leaf inside the process that started the run).
//!
//! The process holding a run (its starter, a `resume_run`, or a fleet worker that took an
//! orphaned run over) walks the spec and, through [`FleetExecutor`], publishes each leaf that
//! becomes ready as a row of the store's `workflow_leaves` table. Fleet workers
//! ([`serve_fleet`], `power-loop worker --fleet`) claim ready rows with `FOR UPDATE SKIP
//! LOCKED` under an expiring lease, run them on the shared store, and record each result with
//! the claim's token in the same transaction that checks it — a worker that lost its claim
//! cannot record, so every leaf's result is recorded exactly once. A worker that dies is
//! detected when its lease runs out (the leaf is claimable again and the claim counted); a
//! run holder that dies is detected by its stale heartbeat and taken over by a fleet worker.
//! See docs/workflows.md, "A fleet of workers".

mod executor;
mod host;
mod job;
mod serve;
mod takeover;

pub use executor::FleetExecutor;
pub use host::{FleetHost, FleetOptions, FleetReport};
pub use job::{FLEET_JOB_VERSION, FleetJob, FleetResult};
pub use serve::serve_fleet;
