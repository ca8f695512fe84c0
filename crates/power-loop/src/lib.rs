//! power-loop: an embeddable, durable agent execution kernel.
//!
//! # Owns
//! Nothing of its own: it re-exports the stable API of the power-loop crates item by item and wires
//! the backends, providers and sinks chosen by cargo features.
//!
//! # Stability
//! Everything re-exported here is listed in the committed baseline under `api/` and guarded by
//! `cargo xtask api-check`.

pub use power_loop_contracts as contracts;
