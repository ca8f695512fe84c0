//! `bash`: a persistent shell per (session, execution target).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use power_loop_contracts::{Error, ErrorCode, Result, ToolDefinition, ToolOutput};

use super::schema::{boolean_prop, integer_prop, params, string_prop};
use super::{SharedRef, invalid};
use crate::policy::{PolicyContext, PolicyDecision};
use crate::shell::session::BashSession;
use crate::text::{bool_arg, int_arg, str_arg, truncate_chars};
use crate::tool::{FnTool, ToolContext, tool_fn};

const MAX_SESSIONS: usize = 64;

type SessionRef = Arc<tokio::sync::Mutex<BashSession>>;
/// (LRU clock, key → (last use, shell)).
type SessionMap = (u64, HashMap<String, (u64, SessionRef)>);

/// Persistent shells keyed by session id + backend target, LRU-bounded (evicted shells are
/// killed).
#[derive(Default)]
pub(crate) struct BashSessions {
    inner: Mutex<SessionMap>,
}

impl BashSessions {
    fn get(&self, ctx: &ToolContext, ws: &std::path::Path) -> SessionRef {
        let backend = ctx.env.shell_backend.clone();
        let key = format!("{}\u{0}{}", ctx.session_id, backend.session_key(ws));
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.0 += 1;
        let tick = g.0;
        if let Some(entry) = g.1.get_mut(&key) {
            entry.0 = tick;
            return entry.1.clone();
        }
        let s: SessionRef = Arc::new(tokio::sync::Mutex::new(BashSession::new(backend, ws)));
        g.1.insert(key, (tick, s.clone()));
        if g.1.len() > MAX_SESSIONS
            && let Some(old) =
                g.1.iter()
                    .min_by_key(|(_, (t, _))| *t)
                    .map(|(k, _)| k.clone())
        {
            g.1.remove(&old);
        }
        s
    }
}

/// The policy's view of where commands run: the workspace, the user's home and the agent home
/// with its allowlist (`.cache`, `logs`, skills dir).
fn policy_context(ctx: &ToolContext) -> PolicyContext {
    let env = &ctx.env;
    let mut pc = PolicyContext::new();
    if let Some(ws) = &env.workspace_dir {
        pc = pc.with_workspace(ws.clone());
    }
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        pc = pc.with_user_home(home);
    }
    if let Some(h) = &env.home_dir {
        pc = pc.with_agent_home(h.clone(), env.home_allowlist());
    }
    pc
}

/// Refuses commands the policy denies (agent-home scope and the command rules).
pub(crate) fn check_policy(ctx: &ToolContext, command: &str) -> Result<()> {
    match ctx
        .env
        .command_policy
        .check_in(command, &policy_context(ctx))
    {
        PolicyDecision::Allow => Ok(()),
        PolicyDecision::Deny { rule, reason, .. } if rule.starts_with("agent_home") => {
            Err(Error::new(ErrorCode::ToolDenied, reason).with_detail("rule", rule))
        }
        PolicyDecision::Deny {
            rule,
            reason,
            command: offending,
        } => Err(Error::new(
            ErrorCode::ToolDenied,
            format!(
                "Dangerous command blocked ({reason}; rule `{rule}`, in `{offending}`). It was not run. Run it manually if you really intend it."
            ),
        )
        .with_detail("rule", rule)),
    }
}

/// `bash`.
pub(crate) fn bash_tool(shared: SharedRef) -> FnTool {
    let def = ToolDefinition::new(
        "bash",
        "Run a shell command in a persistent bash session in the workspace (cwd and variables persist between calls). stdout and stderr are merged; blank lines are dropped.",
        params(
            &[
                ("command", string_prop("The command to run.")),
                (
                    "restart",
                    boolean_prop("Restart the shell instead of running a command."),
                ),
                (
                    "timeout",
                    integer_prop("Seconds before the command is killed (default 120, 1-600)."),
                ),
            ],
            &["command"],
        ),
    );
    tool_fn(def, move |ctx, args| {
        let shared = shared.clone();
        async move { bash(&shared, &ctx, &args).await }
    })
}

async fn bash(
    shared: &SharedRef,
    ctx: &ToolContext,
    args: &serde_json::Value,
) -> Result<ToolOutput> {
    let ws = ctx.env.require_workspace()?.to_path_buf();
    let session = shared.bash.get(ctx, &ws);
    if bool_arg(args, "restart", false) {
        session.lock().await.restart().await?;
        return Ok(ToolOutput::ok("Bash session restarted."));
    }
    let command = str_arg(args, "command");
    if command.trim().is_empty() {
        return Err(invalid("command is required (or set restart=true)."));
    }
    let timeout = int_arg(args, "timeout", 120, 1, 600);
    check_policy(ctx, command)?;
    let secs = u64::try_from(timeout).unwrap_or(120);
    let mut guard = session.lock().await;
    let r = guard
        .exec(command, Duration::from_secs(secs), &ctx.cancel)
        .await?;
    drop(guard);
    if r.cancelled {
        return Err(Error::cancelled(
            "the bash command was cancelled; its process group was killed and the shell restarts on the next call",
        ));
    }
    let code = r
        .exit_code
        .map_or_else(|| "?".to_owned(), |c| c.to_string());
    let note = if r.timed_out {
        format!(" (timed out after {secs}s; bash session was restarted)")
    } else if r.shell_exited {
        " (the shell exited; a fresh bash session starts with the next command)".to_owned()
    } else {
        String::new()
    };
    let text = truncate_chars(&format!("exit_code={code}{note}\n{}", r.lines.render()));
    if r.timed_out {
        return Ok(
            ToolOutput::failed(text).with_data("error_code", ErrorCode::ToolTimeout.as_str())
        );
    }
    Ok(ToolOutput::ok(text).with_data("exit_code", r.exit_code))
}
