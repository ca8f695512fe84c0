//! The wake-up timer tools: `schedule_wakeup`, `list_wakeups`,
//! `cancel_wakeup` and `current_time`. They reach the session's store through the
//! [`StatefulAgentLoop`] the loop puts into every tool context.

use std::sync::Arc;

use power_loop_contracts::{Error, ErrorCode, Result, ToolDefinition, ToolOutput};
use power_loop_store::{now_ms, timer_status};
use power_loop_tools::{FnTool, Tool, ToolContext, ToolRegistry, tool_fn};
use serde_json::{Value, json};

use super::{MAX_ARMED_WAKEUPS, MAX_WAKEUP_SECONDS, MIN_WAKEUP_SECONDS, TimerDue};
use crate::StatefulAgentLoop;

const NO_SESSION: &str = "wakeup tools need an active session (StatefulAgentLoop)";

fn session_loop(ctx: &ToolContext) -> Result<(Arc<StatefulAgentLoop>, String)> {
    match ctx.extension::<StatefulAgentLoop>() {
        Some(lp) if !ctx.session_id.is_empty() => Ok((lp, ctx.session_id.clone())),
        _ => Err(Error::new(ErrorCode::ToolFailed, NO_SESSION)),
    }
}

/// An integer argument (JSON integers, or floats truncated); `None` when absent or not a number.
fn int_arg(args: &Value, key: &str) -> Option<i64> {
    let v = args.get(key)?;
    #[allow(clippy::cast_possible_truncation)]
    v.as_i64().or_else(|| v.as_f64().map(|f| f as i64))
}

fn in_range(v: i64) -> bool {
    (MIN_WAKEUP_SECONDS..=MAX_WAKEUP_SECONDS).contains(&v)
}

/// `schedule_wakeup {delay_seconds, note, every_seconds?}`: arms a one-shot or recurring timer.
pub fn schedule_wakeup_tool() -> FnTool {
    let def = ToolDefinition::new(
        "schedule_wakeup",
        "Schedule a wake-up: after delay_seconds you receive your note as a new message in this \
         session (with every_seconds, again every period until you cancel it). Use it to check \
         back on long-running work or to follow up later.",
        json!({"type": "object", "properties": {
            "delay_seconds": {"type": "integer", "description":
                "Seconds until the (first) wake-up, 5 … 2592000 (30 days)"},
            "note": {"type": "string", "description":
                "What future-you should do when woken up"},
            "every_seconds": {"type": "integer", "description":
                "Repeat period in seconds (5 … 2592000); omit for a one-shot wake-up"}
        }, "required": ["delay_seconds", "note"]}),
    );
    tool_fn(def, |ctx, args| async move {
        let (lp, sid) = session_loop(&ctx)?;
        let delay = int_arg(&args, "delay_seconds").unwrap_or(0);
        if !in_range(delay) {
            return Err(Error::new(
                ErrorCode::TimerInvalid,
                format!(
                    "delay_seconds must be between {MIN_WAKEUP_SECONDS} and {MAX_WAKEUP_SECONDS}"
                ),
            ));
        }
        let every = int_arg(&args, "every_seconds").filter(|v| *v != 0);
        if let Some(e) = every
            && !in_range(e)
        {
            return Err(Error::new(
                ErrorCode::TimerInvalid,
                format!(
                    "every_seconds must be between {MIN_WAKEUP_SECONDS} and {MAX_WAKEUP_SECONDS}"
                ),
            ));
        }
        let note = args.get("note").and_then(Value::as_str).unwrap_or_default();
        if note.trim().is_empty() {
            return Err(Error::new(
                ErrorCode::TimerInvalid,
                "note is required — write what future-you should do",
            ));
        }
        let store = lp.store().await?;
        let armed = store.list_timers(&sid, &[timer_status::ARMED]).await?.len();
        if armed >= MAX_ARMED_WAKEUPS {
            return Ok(ToolOutput::ok(format!(
                "Budget exceeded: {armed} wake-ups already scheduled. Cancel or merge some first \
                 (list_wakeups / cancel_wakeup)."
            )));
        }
        let t = lp
            .schedule_timer(&sid, TimerDue::InSeconds(delay), note, every)
            .await?;
        Ok(ToolOutput::ok(match every {
            Some(i) => format!(
                "Recurring wake-up #{} scheduled: first in {delay}s, then every {i}s until you \
                 cancel it.",
                t.timer_id
            ),
            None => format!(
                "Wake-up #{} scheduled in {delay}s. You'll receive your note.",
                t.timer_id
            ),
        }))
    })
}

/// `list_wakeups {}`: the session's live timers, one line each.
pub fn list_wakeups_tool() -> FnTool {
    let def = ToolDefinition::new(
        "list_wakeups",
        "List your scheduled wake-ups (id, time left, period, status, note).",
        json!({"type": "object", "properties": {}}),
    );
    tool_fn(def, |ctx, _args| async move {
        let (lp, sid) = session_loop(&ctx)?;
        let timers = lp.list_timers(&sid).await?;
        if timers.is_empty() {
            return Ok(ToolOutput::ok("No wake-ups scheduled."));
        }
        let now = now_ms();
        let lines: Vec<String> = timers
            .iter()
            .map(|t| {
                let secs = ((t.due_at - now) / 1000).max(0);
                let every = t
                    .interval_s
                    .map(|i| format!(" (every {i}s, fired {}x)", t.fire_count))
                    .unwrap_or_default();
                format!(
                    "#{} in {secs}s{every} ({}): {}",
                    t.timer_id, t.status, t.note
                )
            })
            .collect();
        Ok(ToolOutput::ok(lines.join("\n")))
    })
    .concurrent(true)
}

/// `cancel_wakeup {timer_id}`: cancels an armed timer.
pub fn cancel_wakeup_tool() -> FnTool {
    let def = ToolDefinition::new(
        "cancel_wakeup",
        "Cancel a scheduled wake-up by its id (see list_wakeups).",
        json!({"type": "object", "properties": {
            "timer_id": {"type": "integer", "description": "The wake-up id (#N)"}
        }, "required": ["timer_id"]}),
    );
    tool_fn(def, |ctx, args| async move {
        let (lp, sid) = session_loop(&ctx)?;
        let Some(id) = int_arg(&args, "timer_id") else {
            return Err(Error::new(
                ErrorCode::TimerInvalid,
                "timer_id is required (an integer, see list_wakeups)",
            ));
        };
        Ok(ToolOutput::ok(if lp.cancel_timer(&sid, id).await? {
            format!("Wake-up #{id} cancelled.")
        } else {
            format!("Wake-up #{id} not found or already fired.")
        }))
    })
}

/// `current_time {}`: local time as `YYYY-MM-DD HH:MM:SS TZ (Weekday)`.
pub fn current_time_tool() -> FnTool {
    let def = ToolDefinition::new(
        "current_time",
        "The current local date and time (with time zone and weekday).",
        json!({"type": "object", "properties": {}}),
    );
    tool_fn(def, |_ctx, _args| async move {
        Ok(ToolOutput::ok(super::format_current_time(
            now_ms().div_euclid(1000),
        )))
    })
    .concurrent(true)
}

/// The four timer tools, in preset order (for `ToolSelection::external`).
pub fn timer_tools() -> Vec<Arc<dyn Tool>> {
    vec![
        Arc::new(schedule_wakeup_tool()),
        Arc::new(list_wakeups_tool()),
        Arc::new(cancel_wakeup_tool()),
        Arc::new(current_time_tool()),
    ]
}

/// Registers `schedule_wakeup`, `list_wakeups`, `cancel_wakeup` and `current_time`.
pub fn register_timer_tools(registry: &mut ToolRegistry) -> Result<()> {
    for t in timer_tools() {
        registry.register_arc(t, false)?;
    }
    Ok(())
}
