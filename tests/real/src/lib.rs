//! Support for `tests/real`: the kernel against a real model.
//!
//! The suite talks to llama.cpp's `llama-server` serving SmolLM2-135M-Instruct, brought up by
//! `scripts/real-model.sh up` (which prints the URLs). It speaks both wire formats the kernel
//! has: the OpenAI-compatible chat API (`{base}/v1/chat/completions`) and the native Anthropic
//! Messages API (`{base}/v1/messages`).
//!
//! - [`server`]: finds the server (`POWER_LOOP_REAL_BASE_URL`, default the script's port) and
//!   decides between skipping with a printed reason and failing (`POWER_LOOP_REQUIRE_REAL=1`).
//! - [`wire`]: the two wire formats as provider configurations, agent loops over a SQLite file.
//! - [`proxy`]: a recording HTTP proxy in front of the server, so a test can check what really
//!   went over the wire (request bodies, and the raw streamed answers).
//! - [`cli`]: the `power-loop` binary of the workspace, driven as a user would.
//!
//! The 135M model's answers are nonsense-ish: tests assert on structure (protocol, order,
//! lengths, token counts), never on wisdom. Tool-calling rounds stay on the byte-exact fakes of
//! `crates/llm` and `crates/agent`: the model does not emit tool calls reliably.
//!
//! Must not depend on anything but the `power-loop` façade (it tests the published surface).
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod cli;
pub mod proxy;
pub mod server;
pub mod wire;

pub use proxy::{Exchange, Proxy};
pub use server::{RealServer, real_server};
pub use wire::Wire;

/// The model alias `scripts/real-model.sh` gives the server (`--alias`).
pub const MODEL: &str = "smollm2";

/// Generous per-request timeout (seconds): 2 loaded cores shared with other test binaries.
pub const TIMEOUT_S: f64 = 120.0;

/// Declares one test per wire format: `real_test!(name, |wire, server| async { … })` makes
/// `name::openai` and `name::anthropic`, each skipping (or failing under
/// `POWER_LOOP_REQUIRE_REAL=1`) when no server is reachable.
#[macro_export]
macro_rules! real_test {
    ($name:ident, $body:path) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn openai() {
                if let Some(server) = $crate::real_server() {
                    $body($crate::Wire::OpenAi, server).await;
                }
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn anthropic() {
                if let Some(server) = $crate::real_server() {
                    $body($crate::Wire::Anthropic, server).await;
                }
            }
        }
    };
}
