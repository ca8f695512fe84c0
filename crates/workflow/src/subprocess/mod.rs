//! Leaves in worker processes: the worker protocol, the
//! [`SubprocessExecutor`], the worker entry point [`serve_worker`], the launchers that wrap a
//! worker in a sandbox, and housekeeping of leaf directories. See docs/sandboxing.md.

mod config;
mod executor;
mod housekeeping;
mod launcher;
mod protocol;
mod supervise;
mod worker;

pub use config::{DEFAULT_ENV_ALLOW, KeepLeafDirs, LeafStoreMode, SpawnObserver};
pub use executor::{SubprocessExecutor, SubprocessExecutorBuilder};
pub use housekeeping::{cleanup_run, reap_runs};
pub use launcher::{
    BubblewrapLauncher, FirejailLauncher, HOST_TOOLS, LaunchPlan, LauncherChoice, PlainLauncher,
    WorkerLauncher,
};
pub use protocol::{
    LeafStore, PROTOCOL_VERSION, ParentFrame, ToolSetup, WorkerFrame, WorkerJob, WorkerLimits,
    WorkerReport, decode_frame, encode_frame,
};
pub use worker::{StoreOpener, WorkerHost, serve_worker};
