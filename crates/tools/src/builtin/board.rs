//! The blackboard tools `board_read`, `board_post`, `board_update`, `board_remove`.

use std::sync::Arc;

use power_loop_contracts::{Error, ErrorCode, Result, ToolDefinition, ToolOutput};

use super::schema::{choice_prop, integer_prop, params, string_prop};
use crate::backend::{BoardBackend, BoardPost};
use crate::pyrepr::repr_list;
use crate::text::str_arg;
use crate::tool::{FnTool, ToolContext, tool_fn};

/// Allowed kinds and statuses of board entries.
#[derive(Debug, Clone)]
pub(crate) struct BoardConfig {
    pub(crate) kinds: Vec<String>,
    pub(crate) statuses: Vec<String>,
    pub(crate) default_kind: String,
}

fn board(ctx: &ToolContext) -> Result<(Arc<dyn BoardBackend>, String)> {
    match (&ctx.blackboard, &ctx.env.board_id) {
        (Some(b), Some(id)) => Ok((b.clone(), id.clone())),
        _ => Err(Error::new(
            ErrorCode::BlackboardInvalid,
            "no shared board is configured for this agent.",
        )),
    }
}

fn snapshot(header: &str, entries: &[BoardPost]) -> String {
    if entries.is_empty() {
        return format!("{header}\n(the board is empty)");
    }
    let lines: Vec<String> = entries.iter().map(BoardPost::render).collect();
    format!("{header}\n{}", lines.join("\n"))
}

fn check_in(value: &str, allowed: &[String], what: &str) -> Result<()> {
    if allowed.iter().any(|a| a == value) {
        return Ok(());
    }
    let list: Vec<&str> = allowed.iter().map(String::as_str).collect();
    Err(Error::new(
        ErrorCode::ToolInvalidArgs,
        format!("{what} must be one of {}.", repr_list(&list)),
    ))
}

fn entry_id(args: &serde_json::Value) -> Result<i64> {
    args.get("entry_id")
        .and_then(|v| v.as_i64())
        .ok_or_else(|| {
            Error::new(
                ErrorCode::ToolInvalidArgs,
                "'entry_id' (integer) is required.",
            )
        })
}

pub(crate) fn board_tools(cfg: &BoardConfig) -> Vec<FnTool> {
    let read = tool_fn(
        ToolDefinition::new(
            "board_read",
            "Read the shared board (notes and tasks shared with other agents).",
            params(&[], &[]),
        ),
        |ctx, _args| async move {
            let (b, id) = board(&ctx)?;
            let entries = b.read(&id).await?;
            Ok(ToolOutput::ok(snapshot("Shared board:", &entries)))
        },
    )
    .concurrent(true);

    let c = cfg.clone();
    let post = tool_fn(
        ToolDefinition::new(
            "board_post",
            "Post an entry to the shared board.",
            params(
                &[
                    ("text", string_prop("Entry text.")),
                    ("kind", choice_prop(&cfg.kinds, "Entry kind.")),
                    ("status", choice_prop(&cfg.statuses, "Entry status.")),
                ],
                &["text"],
            ),
        ),
        move |ctx, args| {
            let c = c.clone();
            async move {
                let (b, id) = board(&ctx)?;
                let text = str_arg(&args, "text").trim().to_owned();
                if text.is_empty() {
                    return Err(Error::new(
                        ErrorCode::ToolInvalidArgs,
                        "'text' is required.",
                    ));
                }
                let kind = match str_arg(&args, "kind").trim() {
                    "" => c.default_kind.clone(),
                    k => k.to_owned(),
                };
                check_in(&kind, &c.kinds, "kind")?;
                let status = args
                    .get("status")
                    .and_then(|v| v.as_str())
                    .map(str::to_owned);
                if let Some(s) = &status {
                    check_in(s, &c.statuses, "status")?;
                }
                let author = ctx
                    .agent_name
                    .clone()
                    .or_else(|| (!ctx.session_id.is_empty()).then(|| ctx.session_id.clone()));
                b.post(&id, &text, &kind, status.as_deref(), author.as_deref())
                    .await?;
                let entries = b.read(&id).await?;
                Ok(ToolOutput::ok(snapshot("Posted. Shared board:", &entries)))
            }
        },
    );

    let c = cfg.clone();
    let update = tool_fn(
        ToolDefinition::new(
            "board_update",
            "Change the text and/or status of a board entry.",
            params(
                &[
                    ("entry_id", integer_prop("Entry id.")),
                    ("text", string_prop("New text.")),
                    ("status", choice_prop(&cfg.statuses, "New status.")),
                ],
                &["entry_id"],
            ),
        ),
        move |ctx, args| {
            let c = c.clone();
            async move {
                let (b, id) = board(&ctx)?;
                let eid = entry_id(&args)?;
                let status = args.get("status").and_then(|v| v.as_str());
                if let Some(s) = status {
                    check_in(s, &c.statuses, "status")?;
                }
                let text = args.get("text").and_then(|v| v.as_str());
                b.update(&id, eid, text, status).await?;
                let entries = b.read(&id).await?;
                Ok(ToolOutput::ok(snapshot("Updated. Shared board:", &entries)))
            }
        },
    );

    let remove = tool_fn(
        ToolDefinition::new(
            "board_remove",
            "Remove an entry from the shared board.",
            params(&[("entry_id", integer_prop("Entry id."))], &["entry_id"]),
        ),
        |ctx, args| async move {
            let (b, id) = board(&ctx)?;
            let eid = entry_id(&args)?;
            b.remove(&id, eid).await?;
            let entries = b.read(&id).await?;
            Ok(ToolOutput::ok(snapshot("Removed. Shared board:", &entries)))
        },
    );
    vec![read, post, update, remove]
}
