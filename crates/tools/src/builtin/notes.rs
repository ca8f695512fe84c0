//! `note_add`, `note_update`, `note_delete`.

use std::sync::Arc;

use power_loop_contracts::{Error, ErrorCode, Result, ToolDefinition, ToolOutput};

use super::schema::{boolean_prop, integer_prop, params, string_prop};
use super::{failed, invalid};
use crate::backend::{NotesEviction, ToolStore};
use crate::text::str_arg;
use crate::tool::{FnTool, ToolContext, tool_fn};

fn store(ctx: &ToolContext) -> Result<Arc<dyn ToolStore>> {
    match &ctx.store {
        Some(s) if !ctx.session_id.is_empty() => Ok(s.clone()),
        _ => Err(failed(
            "note tools need an active session with a store (run them inside a stateful agent loop)",
        )),
    }
}

fn note_id(args: &serde_json::Value) -> i64 {
    args.get("note_id").and_then(|v| v.as_i64()).unwrap_or(0)
}

/// `note_add`.
pub(crate) fn note_add_tool() -> FnTool {
    let def = ToolDefinition::new(
        "note_add",
        "Save a short note that stays visible in your context across rounds (facts, decisions, progress).",
        params(
            &[
                ("content", string_prop("The note (short).")),
                (
                    "pinned",
                    boolean_prop("Pinned notes are never evicted (default false)."),
                ),
            ],
            &["content"],
        ),
    );
    tool_fn(def, |ctx, args| async move {
        let store = store(&ctx)?;
        let policy = &ctx.env.notes_policy;
        let content = str_arg(&args, "content").trim().to_owned();
        if content.is_empty() {
            return Err(invalid("note content is empty"));
        }
        let n = content.chars().count();
        if n > policy.max_note_chars {
            return Err(invalid(format!(
                "note too long ({n} chars > {}); keep notes short — store details in a file instead",
                policy.max_note_chars
            )));
        }
        let pinned = args
            .get("pinned")
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        let notes = store.list_notes(&ctx.session_id).await?;
        if notes.len() >= policy.max_notes {
            match policy.eviction {
                NotesEviction::Reject => {
                    return Err(Error::new(
                        ErrorCode::NotesFull,
                        format!(
                            "notes are full ({}); delete stale notes with note_delete or merge related ones with note_update first",
                            policy.max_notes
                        ),
                    ));
                }
                NotesEviction::Fifo => {
                    let Some(victim) = notes.iter().find(|n| !n.pinned) else {
                        return Err(Error::new(
                            ErrorCode::NotesFull,
                            format!(
                                "notes are full ({}) and all are pinned; unpin or delete (note_delete) before adding",
                                policy.max_notes
                            ),
                        ));
                    };
                    store.delete_note(&ctx.session_id, victim.note_id).await?;
                }
            }
        }
        let rec = store.add_note(&ctx.session_id, &content, pinned).await?;
        let count = store.list_notes(&ctx.session_id).await?.len();
        Ok(ToolOutput::ok(format!(
            "noted as #{} ({count}/{} notes used)",
            rec.note_id, policy.max_notes
        ))
        .with_data("note_id", rec.note_id))
    })
}

/// `note_update`.
pub(crate) fn note_update_tool() -> FnTool {
    let def = ToolDefinition::new(
        "note_update",
        "Change the text and/or pinned flag of one of your notes.",
        params(
            &[
                ("note_id", integer_prop("Id of the note.")),
                ("content", string_prop("New text.")),
                ("pinned", boolean_prop("New pinned flag.")),
            ],
            &["note_id"],
        ),
    );
    tool_fn(def, |ctx, args| async move {
        let store = store(&ctx)?;
        let policy = &ctx.env.notes_policy;
        let id = note_id(&args);
        let content = match args.get("content").and_then(|v| v.as_str()) {
            Some(c) => {
                let c = c.trim();
                if c.is_empty() {
                    return Err(invalid(
                        "note content is empty; use note_delete to remove a note",
                    ));
                }
                let n = c.chars().count();
                if n > policy.max_note_chars {
                    return Err(invalid(format!(
                        "note too long ({n} chars > {})",
                        policy.max_note_chars
                    )));
                }
                Some(c.to_owned())
            }
            None => None,
        };
        let pinned = args.get("pinned").and_then(|v| v.as_bool());
        if content.is_none() && pinned.is_none() {
            return Err(invalid("nothing to update — pass content and/or pinned"));
        }
        if !store
            .update_note(&ctx.session_id, id, content.as_deref(), pinned)
            .await?
        {
            return Err(failed(format!("note #{id} does not exist")));
        }
        Ok(ToolOutput::ok(format!("note #{id} updated")))
    })
}

/// `note_delete`.
pub(crate) fn note_delete_tool() -> FnTool {
    let def = ToolDefinition::new(
        "note_delete",
        "Delete one of your notes.",
        params(
            &[("note_id", integer_prop("Id of the note."))],
            &["note_id"],
        ),
    );
    tool_fn(def, |ctx, args| async move {
        let store = store(&ctx)?;
        let id = note_id(&args);
        if !store.delete_note(&ctx.session_id, id).await? {
            return Err(failed(format!("note #{id} does not exist")));
        }
        let remaining = store.list_notes(&ctx.session_id).await?.len();
        Ok(ToolOutput::ok(format!(
            "note #{id} deleted ({remaining} remaining)"
        )))
    })
}
