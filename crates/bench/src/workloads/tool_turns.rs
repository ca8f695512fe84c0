//! W2 (tool turns): one session, N sequential sends; in each the scripted model first calls the
//! trivial `echo` tool, then answers with 20 words (2 LLM calls + 1 tool call per send).
//!
//! Options: `--sends N` (default 200).

use std::sync::Arc;
use std::time::Instant;

use power_loop::NewSessionOptions;
use power_loop::Role;
use power_loop::{ScriptedLlm, ScriptedStep};
use serde_json::json;

use super::common::{
    ANSWER, Target, close, echo_registry, err, expect_completed, peak_rss_mb, round1, runtime,
};
use crate::args::Args;

/// `--workload W2`.
pub(crate) fn run(args: &Args) -> Result<serde_json::Value, String> {
    let name = "W2";
    let sends = args.usize_or("sends", 200)?.max(1);
    let target = Target::from_args(args, name)?;
    let rt = runtime()?;
    // After a tool result answer in text; otherwise call the tool.
    let llm = ScriptedLlm::from_fn(|req| match req.messages.last() {
        Some(m) if m.role == Role::Tool => ScriptedStep::text(ANSWER),
        _ => ScriptedStep::tool_call("echo", json!({"text": "ping"})),
    })
    .record_requests(false);
    let lp = target.agent_loop(Arc::new(llm), Some(echo_registry()?))?;
    let (sid, elapsed, tool_calls) = rt.block_on(async {
        let sid = lp
            .new_session(NewSessionOptions::default())
            .await
            .map_err(err)?;
        let mut tool_calls = 0u64;
        let t = Instant::now();
        for i in 0..sends {
            let r = lp
                .send(&sid, format!("message {i}: echo ping, then summarise."))
                .await;
            let r = expect_completed(name, r)?;
            if r.tool_calls != 1 || r.rounds != 2 {
                return Err(format!(
                    "{name}: send {i} ran {} tool call(s) in {} round(s), expected 1 in 2",
                    r.tool_calls, r.rounds
                ));
            }
            tool_calls += u64::from(r.tool_calls);
        }
        let elapsed = t.elapsed();
        close(&lp).await?;
        Ok::<_, String>((sid, elapsed, tool_calls))
    })?;
    let rss = peak_rss_mb();
    // user, assistant (tool call), tool result, assistant (answer)
    let checked = rt.block_on(target.check_messages(name, &[(sid, sends * 4)]))?;
    Ok(json!({
        "workload": name,
        "sends_per_s": (sends as f64 / elapsed.as_secs_f64()).round(),
        "peak_rss_mb": rss,
        "messages_checked": checked,
        "sends": sends,
        "tool_calls": tool_calls,
        "mean_send_us": round1(elapsed.as_secs_f64() * 1e6 / sends as f64),
        "backend": target.backend,
        "lease": target.lease,
    }))
}
