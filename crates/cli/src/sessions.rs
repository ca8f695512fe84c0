//! `sessions list|show|export|import|prune|delete`.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use power_loop::{Error, ErrorCode, Result, SessionArchive, SessionRow, SessionStore};

use crate::open::{Access, open_store};
use crate::{Cli, exit, output};

/// The `sessions` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum SessionsCommand {
    /// List the most recent sessions (newest update first).
    #[command(
        after_help = "Example:\n  power-loop sessions list --limit 10\n  power-loop sessions list --json | jq -r '.[].session_id'"
    )]
    List {
        /// How many.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// Print one JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Print a session's messages.
    #[command(after_help = "Example:\n  power-loop sessions show sess_0123 --all")]
    Show {
        /// Session id.
        id: String,
        /// Include compacted-out messages.
        #[arg(long)]
        all: bool,
        /// Print one JSON object (the session and its messages).
        #[arg(long)]
        json: bool,
    },
    /// Export a session to a JSON archive (stdout or `--out`), or every session (`--all`) into
    /// a directory, one `<id>.json` per session.
    #[command(
        after_help = "Examples:\n  power-loop sessions export sess_0123 --out s.json\n  power-loop sessions export --all --out backup/"
    )]
    Export {
        /// Session id (omit with --all).
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<String>,
        /// Export every session into the directory given by --out.
        #[arg(long, requires = "out")]
        all: bool,
        /// Output file (a directory with --all).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Import JSON archives; prints each new session id.
    #[command(
        after_help = "Examples:\n  power-loop --dsn copy.db sessions import s.json\n  power-loop sessions import backup/*.json"
    )]
    Import {
        /// Archive files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Id for the imported session (one file only; default: the archived id).
        #[arg(long, conflicts_with = "new_ids")]
        id: Option<String>,
        /// Give every imported session a fresh generated id (copies next to the originals).
        #[arg(long)]
        new_ids: bool,
    },
    /// Delete root sessions (with their sub-agents, messages, timers, runs) not updated for a
    /// while.
    #[command(
        after_help = "Examples:\n  power-loop sessions prune --older-than 30d --dry-run\n  power-loop sessions prune --older-than 12h"
    )]
    Prune {
        /// Age of the last update: `30d`, `12h`, `45m`, `90s` (a bare number is days).
        #[arg(long, value_name = "AGE")]
        older_than: String,
        /// Only list what would be deleted.
        #[arg(long)]
        dry_run: bool,
        /// Print one JSON object (`deleted`: the ids).
        #[arg(long)]
        json: bool,
    },
    /// Delete sessions (with their sub-agents, messages, timers and workflow runs).
    #[command(after_help = "Example:\n  power-loop sessions delete sess_0123 sess_0456")]
    Delete {
        /// Session ids.
        #[arg(required = true)]
        ids: Vec<String>,
    },
}

/// Runs a `sessions` subcommand.
pub(crate) async fn run(cli: &Cli, cmd: &SessionsCommand) -> Result<()> {
    let access = match cmd {
        SessionsCommand::List { .. }
        | SessionsCommand::Show { .. }
        | SessionsCommand::Export { .. } => Access::ReadOnly,
        SessionsCommand::Prune { older_than, .. } => {
            output::parse_duration_ms(older_than)?;
            Access::Existing
        }
        SessionsCommand::Delete { .. } => Access::Existing,
        SessionsCommand::Import { id, files, .. } => {
            if id.is_some() && files.len() > 1 {
                return Err(exit::usage("--id needs exactly one archive file"));
            }
            Access::Create
        }
    };
    let store = open_store(cli, access).await?;
    let r = dispatch(&store, cmd).await;
    let closed = store.close().await;
    r?;
    closed
}

async fn dispatch(store: &SessionStore, cmd: &SessionsCommand) -> Result<()> {
    match cmd {
        SessionsCommand::List { limit, json } => list(store, *limit, *json).await,
        SessionsCommand::Show { id, all, json } => show(store, id, *all, *json).await,
        SessionsCommand::Export { id, all, out } => match (id, all) {
            (Some(id), _) => export_one(store, id, out.as_deref()).await,
            (None, _) => match out {
                Some(dir) => export_all(store, dir).await,
                None => Err(exit::usage("--all needs --out DIR")),
            },
        },
        SessionsCommand::Import { files, id, new_ids } => {
            import(store, files, id.as_deref(), *new_ids).await
        }
        SessionsCommand::Prune {
            older_than,
            dry_run,
            json,
        } => prune(store, older_than, *dry_run, *json).await,
        SessionsCommand::Delete { ids } => delete(store, ids).await,
    }
}

fn session_value(s: &SessionRow) -> serde_json::Value {
    serde_json::json!({
        "session_id": s.session_id,
        "kind": s.kind.as_str(),
        "status": s.status.as_str(),
        "parent_session_id": s.parent_session_id,
        "model": s.model,
        "created_at_ms": s.created_at,
        "updated_at_ms": s.updated_at,
    })
}

async fn list(store: &SessionStore, limit: usize, json: bool) -> Result<()> {
    let rows = store.list_sessions(limit).await?;
    if json {
        return output::json(&rows.iter().map(session_value).collect());
    }
    let mut t = output::table(["SESSION", "KIND", "STATUS", "UPDATED", "AGE", "CREATED"]);
    for s in &rows {
        t.add_row([
            s.session_id.clone(),
            s.kind.as_str().to_owned(),
            s.status.as_str().to_owned(),
            output::time(s.updated_at),
            output::age(s.updated_at),
            output::time(s.created_at),
        ]);
    }
    output::print_table(&t, "no sessions")
}

async fn show(store: &SessionStore, id: &str, all: bool, json: bool) -> Result<()> {
    let Some(session) = store.get_session(id).await? else {
        return Err(Error::session_not_found(id));
    };
    let rows = if all {
        store.load_all_messages(id).await?
    } else {
        store.load_active_messages(id, None).await?
    };
    if json {
        let messages: Vec<serde_json::Value> = rows
            .iter()
            .map(|m| {
                serde_json::json!({
                    "seq": m.seq,
                    "role": m.role,
                    "content": m.content,
                    "tool_calls": m.tool_calls,
                    "tool_call_id": m.tool_call_id,
                    "created_at_ms": m.created_at,
                })
            })
            .collect();
        let mut v = session_value(&session);
        v["messages"] = messages.into();
        return output::json(&v);
    }
    let mut text = String::new();
    for m in rows {
        let calls = m.tool_calls.as_ref().map_or(0, Vec::len);
        let suffix = if calls > 0 {
            format!(" [{calls} tool call(s)]")
        } else {
            String::new()
        };
        text.push_str(&format!(
            "#{} {} {}: {}{suffix}\n",
            m.seq,
            output::time(m.created_at),
            m.role,
            m.content.unwrap_or_default()
        ));
    }
    output::out(&text)
}

async fn export_one(store: &SessionStore, id: &str, out: Option<&Path>) -> Result<()> {
    let archive = store.export_session(id).await?;
    let text = serde_json::to_string_pretty(&archive)?;
    match out {
        Some(path) => write_file(path, &text),
        None => output::line(text),
    }
}

fn write_file(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| {
        Error::new(
            ErrorCode::Io,
            format!("cannot write `{}`: {e}", path.display()),
        )
    })
}

async fn export_all(store: &SessionStore, dir: &Path) -> Result<()> {
    let rows = store.list_sessions(i64::MAX as usize).await?;
    std::fs::create_dir_all(dir).map_err(|e| {
        Error::new(
            ErrorCode::Io,
            format!("cannot create `{}`: {e}", dir.display()),
        )
    })?;
    let bar = output::progress(rows.len() as u64, "exporting");
    let mut n = 0usize;
    for s in rows.iter().filter(|s| s.parent_session_id.is_none()) {
        let archive = store.export_session(&s.session_id).await?;
        let file = dir.join(format!("{}.json", s.session_id.replace(':', "_")));
        write_file(&file, &serde_json::to_string_pretty(&archive)?)?;
        n += 1;
        bar.inc(1);
    }
    bar.finish_and_clear();
    eprintln!("exported {n} session(s) to {}", dir.display());
    Ok(())
}

async fn import(
    store: &SessionStore,
    files: &[PathBuf],
    id: Option<&str>,
    new_ids: bool,
) -> Result<()> {
    let bar = output::progress(files.len() as u64, "importing");
    let mut ids = String::new();
    for file in files {
        let text = std::fs::read_to_string(file).map_err(|e| {
            Error::new(
                ErrorCode::Io,
                format!("cannot read `{}`: {e}", file.display()),
            )
        })?;
        let archive: SessionArchive = serde_json::from_str(&text).map_err(|e| {
            Error::new(
                ErrorCode::StoreArchiveInvalid,
                format!("`{}` is not a session archive: {e}", file.display()),
            )
        })?;
        let target = match id {
            Some(id) => Some(id.to_owned()),
            None if new_ids => None,
            None => Some(archive.session_id.clone()),
        };
        let new_id = store.import_session(&archive, target.as_deref()).await?;
        ids.push_str(&new_id);
        ids.push('\n');
        bar.inc(1);
    }
    bar.finish_and_clear();
    output::out(&ids)
}

async fn prune(store: &SessionStore, older_than: &str, dry_run: bool, json: bool) -> Result<()> {
    let age = output::parse_duration_ms(older_than)?;
    let cutoff = output::power_loop_now_ms().saturating_sub(age);
    let rows = store
        .list_sessions_updated_before(cutoff, i64::MAX as usize)
        .await?;
    let mut deleted = Vec::new();
    if dry_run {
        deleted = rows.iter().map(|r| r.session_id.clone()).collect();
    } else {
        let bar = output::progress(rows.len() as u64, "pruning");
        for r in &rows {
            match store.delete_session(&r.session_id).await {
                Ok(ids) => deleted.extend(ids),
                // Deleted meanwhile (another operator, a cascade): nothing left to do.
                Err(e) if e.code() == ErrorCode::SessionNotFound => {}
                Err(e) => return Err(e),
            }
            bar.inc(1);
        }
        bar.finish_and_clear();
    }
    if json {
        return output::json(&serde_json::json!({
            "dry_run": dry_run,
            "cutoff_ms": cutoff,
            "deleted": deleted,
        }));
    }
    let verb = if dry_run { "would delete" } else { "deleted" };
    eprintln!(
        "{verb} {} session(s) not updated since {}",
        deleted.len(),
        output::time(cutoff)
    );
    output::out(&deleted.iter().map(|s| format!("{s}\n")).collect::<String>())
}

async fn delete(store: &SessionStore, ids: &[String]) -> Result<()> {
    // Check them all first: a typo deletes nothing.
    for id in ids {
        if !store.session_exists(id).await? {
            return Err(Error::session_not_found(id));
        }
    }
    let mut total = 0;
    for id in ids {
        match store.delete_session(id).await {
            Ok(gone) => total += gone.len(),
            Err(e) if e.code() == ErrorCode::SessionNotFound => {}
            Err(e) => return Err(e),
        }
    }
    eprintln!("deleted {total} session(s) (sub-agents included)");
    Ok(())
}
