//! W3 (cold resume): a session with `--turns` turns (default 5,000 = 10,000 messages) is
//! prepared; then a NEW process (this binary re-executed with the hidden `W3-cold` workload)
//! builds a loop on that store and sends once: `cold_send_ms` runs from loop construction to the
//! end of that send (store open, session and window load, model call, commit). A second send in
//! the same process gives `warm_send_ms`. `--runs N` (default 5) child processes run one after
//! another; the report gives the median and every value.

use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use power_loop::{NewMessage, open_store};
use power_loop::{NewSessionOptions, StatefulAgentLoop};
use power_loop::{ScriptedLlm, ScriptedStep};
use serde_json::json;

use super::common::{ANSWER, Target, close, err, expect_completed, peak_rss_mb, round2, runtime};
use crate::args::Args;

/// `--workload W3`.
pub(crate) fn run(args: &Args) -> Result<serde_json::Value, String> {
    let name = "W3";
    let turns = args.usize_or("turns", 5000)?.max(1);
    let runs = args.usize_or("runs", 5)?.max(1);
    let target = Target::from_args(args, name)?;
    let rt = runtime()?;
    let prep = Instant::now();
    let sid = rt.block_on(prepare(&target, turns))?;
    let prepare_ms = prep.elapsed().as_secs_f64() * 1e3;

    let exe = std::env::current_exe().map_err(|e| format!("{name}: locating this binary: {e}"))?;
    let (mut cold, mut warm, mut wall, mut child_rss) = (vec![], vec![], vec![], vec![]);
    for _ in 0..runs {
        let t = Instant::now();
        let out = Command::new(&exe)
            .args(["--workload", "W3-cold", "--dsn", &target.dsn])
            .args(["--table-prefix", &target.prefix, "--session", &sid])
            .arg(if target.lease {
                "--lease=on"
            } else {
                "--lease=off"
            })
            .output()
            .map_err(|e| format!("{name}: starting the cold-resume child: {e}"))?;
        wall.push(t.elapsed().as_secs_f64() * 1e3);
        if !out.status.success() {
            return Err(format!(
                "{name}: the cold-resume child failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let line = String::from_utf8_lossy(&out.stdout);
        let v: serde_json::Value = serde_json::from_str(line.trim())
            .map_err(|e| format!("{name}: the child printed `{}`: {e}", line.trim()))?;
        let num = |k: &str| {
            v.get(k)
                .and_then(serde_json::Value::as_f64)
                .ok_or_else(|| format!("{name}: the child's report lacks `{k}`: {v}"))
        };
        cold.push(num("cold_send_ms")?);
        warm.push(num("warm_send_ms")?);
        child_rss.push(num("peak_rss_mb")?);
    }
    let expected = turns * 2 + runs * 4;
    let checked = rt.block_on(target.check_messages(name, &[(sid, expected)]))?;
    Ok(json!({
        "workload": name,
        "cold_send_ms": round2(median(&cold)),
        "warm_send_ms": round2(median(&warm)),
        "peak_rss_mb": child_rss.iter().copied().fold(0.0, f64::max),
        "messages_checked": checked,
        "history_messages": turns * 2,
        "runs": runs,
        "cold_send_ms_all": cold.iter().map(|x| round2(*x)).collect::<Vec<_>>(),
        "warm_send_ms_all": warm.iter().map(|x| round2(*x)).collect::<Vec<_>>(),
        "child_process_wall_ms": round2(median(&wall)),
        "prepare_ms": prepare_ms.round(),
        "backend": target.backend,
        "lease": target.lease,
    }))
}

/// Creates the session through a loop, then appends the history through the store in batches.
async fn prepare(target: &Target, turns: usize) -> Result<String, String> {
    let lp = target.agent_loop(Arc::new(ScriptedLlm::new()), None)?;
    let sid = lp
        .new_session(NewSessionOptions::default())
        .await
        .map_err(err)?;
    close(&lp).await?;
    let store = open_store(&target.dsn, target.options.clone())
        .await
        .map_err(err)?;
    let mut i = 0;
    while i < turns {
        let end = (i + 500).min(turns);
        let mut batch = Vec::with_capacity((end - i) * 2);
        for k in i..end {
            let round = i64::try_from(k).unwrap_or(i64::MAX);
            batch.push(
                NewMessage::user(format!("message {k}: what changed this quarter?"))
                    .with_round_index(round),
            );
            batch.push(NewMessage::assistant(ANSWER).with_round_index(round));
        }
        store.append_messages(&sid, batch).await.map_err(err)?;
        i = end;
    }
    store.close().await.map_err(err)?;
    Ok(sid)
}

/// The hidden `--workload W3-cold` child: cold send then warm send on an existing session.
pub(crate) fn run_child(args: &Args) -> Result<serde_json::Value, String> {
    let name = "W3-cold";
    let sid = args
        .get("session")
        .ok_or("W3-cold needs --session")?
        .to_owned();
    if args.get("dsn").is_none() {
        return Err("W3-cold needs --dsn".into());
    }
    let target = Target::from_args(args, name)?;
    let rt = runtime()?;
    let llm = ScriptedLlm::from_fn(|_req| ScriptedStep::text(ANSWER)).record_requests(false);
    let (cold, warm) = rt.block_on(async {
        let t = Instant::now();
        let lp: StatefulAgentLoop = target.agent_loop(Arc::new(llm), None)?;
        expect_completed(
            name,
            lp.send(&sid, "cold: what changed this quarter?").await,
        )?;
        let cold = t.elapsed();
        let t = Instant::now();
        expect_completed(name, lp.send(&sid, "warm: and the risks?").await)?;
        let warm = t.elapsed();
        close(&lp).await?;
        Ok::<_, String>((cold, warm))
    })?;
    Ok(json!({
        "workload": name,
        "cold_send_ms": cold.as_secs_f64() * 1e3,
        "warm_send_ms": warm.as_secs_f64() * 1e3,
        "peak_rss_mb": peak_rss_mb(),
    }))
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => 0.0,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}
