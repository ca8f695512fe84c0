//! Shared support for the workspace-level tests of power-loop.
