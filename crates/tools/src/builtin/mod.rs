//! The built-in tools. Each module exposes constructors returning [`crate::FnTool`]s.

pub(crate) mod background;
pub(crate) mod bash;
pub(crate) mod board;
pub(crate) mod diff;
pub(crate) mod edit;
pub(crate) mod files;
pub(crate) mod human;
pub(crate) mod notes;
pub(crate) mod schema;
pub(crate) mod search;
pub(crate) mod skills;
pub(crate) mod todo;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use power_loop_contracts::{Error, ErrorCode, Result, ToolDefinition, ToolOutput};

use crate::confined::blocking::run_blocking;
use crate::paths::{Located, locate};
use crate::text::str_arg;
use crate::tool::{FnTool, ToolContext, tool_fn};

/// State shared by the built-in tools of one registry.
#[derive(Default)]
pub(crate) struct Shared {
    pub(crate) stamps: ReadStamps,
    pub(crate) bash: bash::BashSessions,
    pub(crate) background: background::BackgroundManager,
    pub(crate) todos: Mutex<HashMap<String, serde_json::Value>>,
}

pub(crate) type SharedRef = Arc<Shared>;

/// One call of a file tool: the registry's shared state, the call's context and arguments, and
/// its `path` argument located in the workspace.
pub(crate) struct FileCall<'a> {
    pub(crate) shared: &'a SharedRef,
    pub(crate) ctx: &'a ToolContext,
    pub(crate) args: &'a serde_json::Value,
    pub(crate) loc: Located,
}

/// A file tool whose body `run` runs on the blocking pool under the file timeout (named after
/// the tool in timeout errors), on the file its `path` argument names.
pub(crate) fn blocking_file_tool(
    def: ToolDefinition,
    shared: SharedRef,
    run: fn(FileCall<'_>) -> Result<ToolOutput>,
) -> FnTool {
    let name = def.name.clone();
    tool_fn(def, move |ctx, args| {
        let (shared, name) = (shared.clone(), name.clone());
        async move {
            let (timeout, cancel) = (ctx.env.file_timeout(), ctx.cancel.clone());
            run_blocking(&name, timeout, &cancel, move || {
                let loc = locate(&ctx.env, str_arg(&args, "path"))?;
                run(FileCall {
                    shared: &shared,
                    ctx: &ctx,
                    args: &args,
                    loc,
                })
            })
            .await
        }
    })
}

pub(crate) use crate::confined::Stamp;

const MAX_STAMPS: usize = 4096;

/// (LRU clock, (session, path) → (last use, stamp)).
type StampMap = (u64, HashMap<(String, PathBuf), (u64, Stamp)>);

/// Read stamps, scoped per session (a stamp from one agent does not authorize another's
/// overwrite), bounded to 4096 entries (oldest evicted).
#[derive(Default)]
pub(crate) struct ReadStamps {
    inner: Mutex<StampMap>,
}

impl ReadStamps {
    /// Records `stamp` (taken from the open handle) as what `session` last saw at `path`.
    pub(crate) fn record(&self, session: &str, path: &std::path::Path, stamp: Stamp) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.0 += 1;
        let tick = g.0;
        g.1.insert((session.to_owned(), path.to_path_buf()), (tick, stamp));
        if g.1.len() > MAX_STAMPS
            && let Some(oldest) =
                g.1.iter()
                    .min_by_key(|(_, (t, _))| *t)
                    .map(|(k, _)| k.clone())
        {
            g.1.remove(&oldest);
        }
    }

    pub(crate) fn get(&self, session: &str, path: &std::path::Path) -> Option<Stamp> {
        let g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.1.get(&(session.to_owned(), path.to_path_buf()))
            .map(|(_, s)| *s)
    }

    /// Errors unless the file was read by this session and is unchanged since (`current` is
    /// its stamp now, taken from the open handle).
    pub(crate) fn check(
        &self,
        session: &str,
        path: &std::path::Path,
        current: Stamp,
        display: &str,
        verb: &str,
    ) -> power_loop_contracts::Result<()> {
        match self.get(session, path) {
            None => Err(Error::new(
                ErrorCode::ToolFailed,
                format!("File has not been read yet. Use read_file first before {verb}: {display}"),
            )),
            Some(s) if s != current => Err(Error::new(
                ErrorCode::ToolFailed,
                format!("File changed since last read. Re-read it before {verb}: {display}"),
            )),
            Some(_) => Ok(()),
        }
    }
}

/// A `tool.failed` error.
pub(crate) fn failed(msg: impl Into<String>) -> Error {
    Error::new(ErrorCode::ToolFailed, msg)
}

/// A `tool.invalid_args` error.
pub(crate) fn invalid(msg: impl Into<String>) -> Error {
    Error::new(ErrorCode::ToolInvalidArgs, msg)
}

/// Whether bytes look binary: a NUL byte, or fewer than 70% text-like bytes in the first 4 KiB.
pub(crate) fn looks_binary(bytes: &[u8]) -> bool {
    if bytes.contains(&0) {
        return true;
    }
    let sample = &bytes[..bytes.len().min(4096)];
    if sample.is_empty() {
        return false;
    }
    // Count UTF-8 multi-byte text as text (the reference counts only ASCII).
    let valid = match std::str::from_utf8(sample) {
        Ok(s) => Some(s),
        Err(e) if e.error_len().is_none() => std::str::from_utf8(&sample[..e.valid_up_to()]).ok(),
        Err(_) => None,
    };
    let text = match valid {
        Some(s) => s
            .chars()
            .filter(|c| !c.is_control() || matches!(c, '\n' | '\r' | '\t' | '\u{8}' | '\u{c}'))
            .map(char::len_utf8)
            .sum::<usize>(),
        None => sample
            .iter()
            .filter(|&&b| matches!(b, b'\n' | b'\r' | b'\t' | 8 | 12) || (32..=126).contains(&b))
            .count(),
    };
    (text as f64) < 0.7 * sample.len() as f64
}
