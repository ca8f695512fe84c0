//! `store vacuum|checkpoint|stats`: maintenance of the store behind `--dsn`.

use clap::Subcommand;
use power_loop::{CHECKPOINT_MODES, DsnTarget, Result, parse_dsn};

use crate::open::{Access, open_store};
use crate::{Cli, exit, output};

/// The `store` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum StoreCommand {
    /// Reclaim free space (SQLite: VACUUM, or incremental; a no-op on servers).
    #[command(after_help = "Example:\n  power-loop store vacuum --incremental")]
    Vacuum {
        /// Only release free pages (fast) instead of rewriting the file.
        #[arg(long)]
        incremental: bool,
    },
    /// Checkpoint the SQLite WAL into the database file (a no-op on servers).
    #[command(after_help = "Example:\n  power-loop store checkpoint --mode truncate")]
    Checkpoint {
        /// PASSIVE, FULL, RESTART or TRUNCATE.
        #[arg(long, default_value = "PASSIVE")]
        mode: String,
    },
    /// Rows per table, schema version, backend and (SQLite) file sizes.
    #[command(after_help = "Example:\n  power-loop --dsn postgres://app@db/app store stats --json")]
    Stats {
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a `store` subcommand.
pub(crate) async fn run(cli: &Cli, cmd: &StoreCommand) -> Result<()> {
    if let StoreCommand::Checkpoint { mode } = cmd
        && !CHECKPOINT_MODES.contains(&mode.to_ascii_uppercase().as_str())
    {
        return Err(exit::usage(format!(
            "--mode `{mode}` is not one of PASSIVE, FULL, RESTART, TRUNCATE"
        )));
    }
    let access = match cmd {
        StoreCommand::Stats { .. } => Access::ReadOnly,
        _ => Access::Existing,
    };
    let store = open_store(cli, access).await?;
    let r = async {
        match cmd {
            StoreCommand::Vacuum { incremental } => {
                let did = store.vacuum(*incremental).await?;
                eprintln!(
                    "{}",
                    if did {
                        "vacuum done"
                    } else {
                        "vacuum: nothing to do on this backend"
                    }
                );
                Ok(())
            }
            StoreCommand::Checkpoint { mode } => {
                let did = store.checkpoint(mode).await?;
                eprintln!(
                    "{}",
                    if did {
                        "checkpoint done"
                    } else {
                        "checkpoint: nothing to do on this backend"
                    }
                );
                Ok(())
            }
            StoreCommand::Stats { json } => stats(cli, &store, *json).await,
        }
    }
    .await;
    let closed = store.close().await;
    r?;
    closed
}

/// The SQLite file sizes (database, WAL) of the DSN, if it names a file.
fn file_sizes(dsn: &str) -> Option<(u64, u64)> {
    let parsed = parse_dsn(dsn).ok()?;
    let DsnTarget::SqliteFile(path) = parsed.target else {
        return None;
    };
    let db = std::fs::metadata(&path).ok()?.len();
    let mut wal = path.into_os_string();
    wal.push("-wal");
    let wal = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    Some((db, wal))
}

async fn stats(cli: &Cli, store: &power_loop::SessionStore, json: bool) -> Result<()> {
    let s = store.stats().await?;
    let sizes = file_sizes(&cli.dsn);
    if json {
        let mut v = serde_json::to_value(&s)?;
        v["tables"] = s
            .tables
            .iter()
            .map(|(t, n)| serde_json::json!({"table": t, "rows": n}))
            .collect();
        if let Some((db, wal)) = sizes {
            v["file_bytes"] = db.into();
            v["wal_bytes"] = wal.into();
        }
        return output::json(&v);
    }
    let mut head = format!(
        "backend {}, schema version {}, table prefix `{}`",
        s.backend, s.schema_version, s.table_prefix
    );
    if let Some((db, wal)) = sizes {
        head.push_str(&format!(", file {db} bytes, WAL {wal} bytes"));
    }
    output::line(head)?;
    let mut t = output::table(["TABLE", "ROWS"]);
    for (table, rows) in &s.tables {
        t.add_row([table.clone(), rows.to_string()]);
    }
    output::print_table(&t, "no tables")
}
