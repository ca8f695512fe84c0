//! Measures what one `write_file` call costs (temp file, fsync, rename, directory fsync).
//!
//! `cargo run --release -p power-loop-tools --example write_cost -- [DIR] [WRITES]` writes
//! WRITES (default 500) files of 4 KiB through the tool registry into a fresh directory under
//! DIR (default: the system temp directory; pass a directory on the disk you care about) and
//! prints the mean and median microseconds per call. Not a test: nothing is asserted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Instant;

use power_loop_tools::{RuntimeEnv, ToolContext, ToolSelection, default_registry};
use serde_json::json;

fn main() {
    let mut args = std::env::args().skip(1);
    let parent = args
        .next()
        .map_or_else(std::env::temp_dir, std::path::PathBuf::from);
    let writes: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(500);
    let dir = tempfile::tempdir_in(&parent).unwrap();
    let env = Arc::new(RuntimeEnv::new().with_workspace(dir.path()).unwrap());
    let reg = default_registry(&env, &ToolSelection::default()).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let content = "x".repeat(4096);
    let mut micros: Vec<f64> = Vec::with_capacity(writes);
    rt.block_on(async {
        for i in 0..writes {
            let ctx = ToolContext::new(env.clone()).with_session("bench");
            let args = json!({"path": format!("d{}/f{i}.txt", i % 10), "content": content});
            let started = Instant::now();
            let o = reg.invoke_args(ctx, "write_file", args).await;
            micros.push(started.elapsed().as_secs_f64() * 1e6);
            assert!(o.output.ok, "{}", o.output.content);
        }
    });
    micros.sort_by(f64::total_cmp);
    let mean = micros.iter().sum::<f64>() / micros.len() as f64;
    println!(
        "{{\"writes\": {writes}, \"bytes\": 4096, \"dir\": {:?}, \"mean_us\": {mean:.1}, \"median_us\": {:.1}, \"p90_us\": {:.1}}}",
        parent.display().to_string(),
        micros[micros.len() / 2],
        micros[micros.len() * 9 / 10]
    );
}
