//! `workflow status RUN_ID` and `workflow list`: introspection of journaled runs.

pub(crate) use crate::output::time as human_time;
use power_loop::{
    Error, ErrorCode, Result, RunSummary, SessionStore, get_workflow_run as get_run,
    list_workflow_runs as list_runs,
};

use crate::ListArgs;

/// Prints one run: a readable block, or one JSON line (the full status document).
pub(crate) async fn status(store: &SessionStore, run_id: &str, json: bool) -> Result<()> {
    let Some(v) = get_run(store, run_id).await? else {
        return Err(Error::new(
            ErrorCode::WorkflowFailed,
            format!("no workflow run '{run_id}' in this store"),
        )
        .with_detail("run_id", run_id));
    };
    if json {
        crate::output::line(serde_json::to_string(&v.to_value())?)?;
        return Ok(());
    }
    let r = &v.summary;
    let mut out = vec![
        format!("run:       {}", r.run_id),
        format!("workflow:  {}", r.workflow),
        format!(
            "status:    {} (attempt {}{})",
            r.status.as_str(),
            r.attempts,
            if r.detached { ", detached" } else { "" }
        ),
        format!(
            "progress:  {} steps finished, {} completed ({} nodes in the spec)",
            v.finished_steps, v.completed_steps, v.total_nodes
        ),
        format!(
            "parent:    {}",
            r.parent_session_id.as_deref().unwrap_or("-")
        ),
        format!(
            "driver:    {}",
            v.driver_session_id.as_deref().unwrap_or("-")
        ),
        format!("created:   {}", human_time(r.created_at_ms)),
    ];
    match r.finished_at_ms {
        Some(f) => out.push(format!(
            "finished:  {} ({})",
            human_time(f),
            human_duration(f - r.created_at_ms)
        )),
        None => out.push(format!(
            "heartbeat: {}",
            v.heartbeat_at_ms.map_or_else(|| "-".to_owned(), human_time)
        )),
    }
    if !v.steps.is_empty() {
        out.push("steps:".into());
        let width = v.steps.iter().map(|s| s.step_key.len()).max().unwrap_or(0);
        for s in &v.steps {
            let mut line = format!(
                "  [{}] {:<width$}  attempt {}",
                s.result.status, s.step_key, s.attempt
            );
            if let Some(e) = &s.result.error {
                line.push_str(&format!("  error: {}", one_line(e)));
            }
            out.push(line);
        }
    }
    if !v.errors.is_empty() {
        out.push("errors:".into());
        out.extend(v.errors.iter().map(|e| format!("  - {}", one_line(e))));
    } else if let Some(e) = &v.error {
        out.push(format!("error:     {}", one_line(e)));
    }
    crate::output::line(out.join("\n"))?;
    Ok(())
}

/// Prints the runs: a table with a header, or one JSON line (an array).
pub(crate) async fn list(store: &SessionStore, args: &ListArgs) -> Result<()> {
    let runs = list_runs(store, args.session.as_deref(), args.limit).await?;
    if args.json {
        let rows: Vec<serde_json::Value> = runs.iter().map(RunSummary::to_value).collect();
        crate::output::line(serde_json::to_string(&rows)?)?;
        return Ok(());
    }
    if runs.is_empty() {
        crate::output::line("no workflow runs")?;
        return Ok(());
    }
    let header = [
        "RUN_ID", "WORKFLOW", "STATUS", "ATTEMPTS", "MODE", "PARENT", "CREATED", "FINISHED",
    ];
    let rows: Vec<[String; 8]> = runs
        .iter()
        .map(|r| {
            [
                r.run_id.clone(),
                r.workflow.clone(),
                r.status.as_str().to_owned(),
                r.attempts.to_string(),
                if r.detached { "detached" } else { "foreground" }.to_owned(),
                r.parent_session_id.clone().unwrap_or_else(|| "-".into()),
                human_time(r.created_at_ms),
                r.finished_at_ms.map_or_else(|| "-".into(), human_time),
            ]
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let fmt = |cells: Vec<&str>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    crate::output::line(fmt(header.to_vec()))?;
    for row in &rows {
        crate::output::line(fmt(row.iter().map(String::as_str).collect()))?;
    }
    Ok(())
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `850 ms`, `12.3 s`, `4 min 05 s`, `2 h 03 min`.
pub(crate) fn human_duration(ms: i64) -> String {
    let ms = ms.max(0);
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{} min {:02} s", ms / 60_000, ms % 60_000 / 1000),
        _ => format!("{} h {:02} min", ms / 3_600_000, ms % 3_600_000 / 60_000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_human() {
        assert_eq!(human_time(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(human_time(1_796_591_369_000), "2026-12-06 21:09:29 UTC");
        assert_eq!(human_time(951_782_400_000), "2000-02-29 00:00:00 UTC");
        assert_eq!(human_duration(850), "850 ms");
        assert_eq!(human_duration(12_340), "12.3 s");
        assert_eq!(human_duration(245_000), "4 min 05 s");
        assert_eq!(human_duration(7_380_000), "2 h 03 min");
    }
}
