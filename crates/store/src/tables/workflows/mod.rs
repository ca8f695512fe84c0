//! The `workflow_runs` and `workflow_steps` tables, the workflow journal: one row per run and one row per settled step (including each foreach
//! item), with atomic conditional writes — beyond the reference, which keeps a run as one JSON
//! blob rewritten without compare-and-set.
//!
//! ```text
//! create ──► running(attempt 1) ──record_step*──► finish ──► completed|failed|cancelled|budget_exceeded
//!                 ▲                                                       │
//!                 └────────── begin_attempt (CAS on attempts, +1) ◄───────┘ (or from a crashed `running`)
//! ```
//! Every write of an attempt names the attempt: once a resumer has bumped `attempts`, the old
//! attempt's journal writes, heartbeats and finish are refused (`false`), so a zombie writer can
//! never overwrite the new attempt. A finish may arm the parent session's wake timer in the same
//! transaction, so a crash can never leave a finished run without its wake (or with two), and
//! [`SessionStore::mark_workflow_woke`](crate::SessionStore::mark_workflow_woke) lets exactly one timer delivery through per attempt.
//!
//! Version 4 adds `workflow_leaves` ([`leaves`]): the leaves a run publishes for a fleet of
//! workers and their claims.
//!
//! Deleting a session (`close_session`) deletes the runs it parents and their steps in the same
//! transaction, so no running run is left pointing at a missing parent.

pub(crate) mod inputs;
pub(crate) mod leaf_rows;
pub(crate) mod leaves;
pub(crate) mod ops;
pub(crate) mod rows;
