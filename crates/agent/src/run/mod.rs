//! One run of the round pipeline, in the order of a round:
//! - [`state`]: the run, its grouped state and its durable writes (append, deferred user message);
//! - [`round`]: session start, then each round's hooks, follow-ups and what the answer leads to;
//! - [`compaction`]: the compaction slot before the model call, and [`summary_llm`] the evented
//!   model it hands the compactor;
//! - [`model_call`]: the streamed, evented model call and its usage;
//! - [`runtime`]: the projectors' transient messages and the todo event;
//! - [`dispatch`]: the tool calls of a round;
//! - [`outcome`]: terminal outcomes (finish, cancel, degraded, round limit);
//! - [`context`]: what a run reads from its loop.
//!
//! The loop's entry points build a [`RunSetup`] and drive it with [`Run::run_to_end`]; nothing
//! here knows the loop handle.

mod compaction;
mod context;
mod dispatch;
mod model_call;
mod outcome;
mod round;
mod runtime;
mod state;
mod summary_llm;

pub(crate) use context::{FollowUps, LoopContext};
pub(crate) use state::{Run, RunSetup};
