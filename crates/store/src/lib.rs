//! Backend-neutral durable session store of power-loop.
//!
//! # Owns
//! The [`db::Database`]/[`db::Dialect`] port, the schema and its migration ladder, `SchemaPolicy`,
//! the one backend-neutral `Store` (sessions, messages with per-session gap-free seq, pending
//! state, compaction journal, sub-agent tree, timers, notes, usage, runtime and shared state,
//! background tasks, export/import, prune, vacuum, checkpoint), DSN parsing and the backend
//! registry (`open_store`), and the conformance suite (feature `conformance`).
//!
//! # Must not import
//! Anything above the store: agents, LLM providers, tools. It depends only on
//! `power-loop-contracts`.
//!
//! # Stability
//! Internal crate: reach it through the `power-loop` façade, whose API is frozen in `api/`.

pub mod backend;
pub mod db;
