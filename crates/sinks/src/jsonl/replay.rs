//! Reading a JSONL event log back: rotated files oldest first, bad lines reported, seq order.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use power_loop_contracts::{AgentEvent, EventType, Result};
use serde_json::Value;

use super::io_err;

/// Why a line of an event log could not be read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BadLineKind {
    /// Not valid JSON (e.g. a line torn by a crash) or not valid UTF-8.
    NotJson,
    /// JSON without a string `type`.
    MissingType,
    /// A `type` that is not an event type of this version.
    UnknownType,
    /// A known type whose envelope or payload does not have the contract shape.
    InvalidEvent,
}

impl BadLineKind {
    /// Stable snake_case name (`not_json`, `missing_type`, `unknown_type`, `invalid_event`).
    pub fn as_str(self) -> &'static str {
        match self {
            BadLineKind::NotJson => "not_json",
            BadLineKind::MissingType => "missing_type",
            BadLineKind::UnknownType => "unknown_type",
            BadLineKind::InvalidEvent => "invalid_event",
        }
    }
}

/// A line that [`replay_report`] skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BadLine {
    /// The file it is in.
    pub file: PathBuf,
    /// 1-based line number in that file.
    pub line: usize,
    /// What is wrong with it.
    pub kind: BadLineKind,
    /// The parser's explanation.
    pub message: String,
}

/// What [`replay_report`] read: the events in stream order and the lines it skipped.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Replay {
    /// The files read, oldest first (`path.N` … `path.1`, then `path`).
    pub files: Vec<PathBuf>,
    /// The events in stream order (see [`replay_report`]).
    pub events: Vec<AgentEvent>,
    /// Lines that were not events, in file order.
    pub bad_lines: Vec<BadLine>,
}

/// The rotated files of `path` (`path.<k>` for any positive k, gaps allowed), oldest first.
fn rotated_files(path: &Path) -> Result<Vec<PathBuf>> {
    let dir = match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(d) => d.to_path_buf(),
        None => PathBuf::from("."),
    };
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return Ok(Vec::new());
    };
    let prefix = format!("{name}.");
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(&dir, "list the directory of", e)),
    };
    let mut found: Vec<(u64, PathBuf)> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io_err(&dir, "list the directory of", e))?;
        let fname = entry.file_name();
        let Some(fname) = fname.to_str() else {
            continue;
        };
        if let Some(k) = fname
            .strip_prefix(&prefix)
            .and_then(|rest| rest.parse::<u64>().ok())
            .filter(|k| *k > 0)
        {
            found.push((k, entry.path()));
        }
    }
    found.sort_by_key(|f| std::cmp::Reverse(f.0));
    Ok(found.into_iter().map(|(_, p)| p).collect())
}

fn classify(line: &str) -> (BadLineKind, String) {
    let v: Value = match serde_json::from_str(line) {
        Ok(v) => v,
        Err(e) => return (BadLineKind::NotJson, e.to_string()),
    };
    match v.get("type").and_then(Value::as_str) {
        None => (
            BadLineKind::MissingType,
            "the object has no string `type`".to_owned(),
        ),
        Some(t) if EventType::parse(t).is_none() => (
            BadLineKind::UnknownType,
            format!("unknown event type `{t}`"),
        ),
        Some(_) => match serde_json::from_value::<AgentEvent>(v) {
            Ok(_) => (BadLineKind::InvalidEvent, "unreadable event".to_owned()),
            Err(e) => (BadLineKind::InvalidEvent, e.to_string()),
        },
    }
}

/// Puts events into stream order: by `seq` within each process run. `seq` restarts at 1 in a
/// new process, so a run boundary is where `seq` goes back while the wall clock does not.
fn stream_order(events: Vec<AgentEvent>) -> Vec<AgentEvent> {
    let mut keyed: Vec<(usize, u64, usize, AgentEvent)> = Vec::with_capacity(events.len());
    let (mut run, mut max_seq, mut max_ts) = (0usize, 0u64, f64::MIN);
    for (i, ev) in events.into_iter().enumerate() {
        if i > 0 && ev.seq < max_seq && ev.ts >= max_ts {
            run += 1;
            max_seq = 0;
        }
        max_seq = max_seq.max(ev.seq);
        max_ts = max_ts.max(ev.ts);
        keyed.push((run, ev.seq, i, ev));
    }
    keyed.sort_by_key(|(run, seq, i, _)| (*run, *seq, *i));
    keyed.into_iter().map(|(_, _, _, ev)| ev).collect()
}

/// Reads a JSONL event log back with a report: `path.N` … `path.1` (any rotated index present,
/// gaps allowed), then `path`. Blank lines are ignored; every other line that is not an event is
/// reported as a [`BadLine`] with its file, 1-based line number and [`BadLineKind`]. The events
/// come back in stream order (by `seq`, per process run) with their `seq`, `ts` and `mono`
/// exactly as written. Fails when neither `path` nor a rotated file of it exists, or when a
/// file cannot be read.
pub fn replay_report(path: impl AsRef<Path>) -> Result<Replay> {
    let path = path.as_ref();
    let mut files = rotated_files(path)?;
    if path.exists() {
        files.push(path.to_path_buf());
    }
    if files.is_empty() {
        // A mistyped path is an error, not an empty log.
        return Err(io_err(
            path,
            "find",
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no such file (nor rotated files next to it)",
            ),
        ));
    }
    let mut out = Replay {
        files: files.clone(),
        ..Replay::default()
    };
    let mut events = Vec::new();
    for f in files {
        let file = File::open(&f).map_err(|e| io_err(&f, "read", e))?;
        let mut reader = BufReader::new(file);
        let mut buf = Vec::new();
        let mut line_no = 0usize;
        loop {
            buf.clear();
            let n = reader
                .read_until(b'\n', &mut buf)
                .map_err(|e| io_err(&f, "read", e))?;
            if n == 0 {
                break;
            }
            line_no += 1;
            let Ok(text) = std::str::from_utf8(&buf) else {
                out.bad_lines.push(BadLine {
                    file: f.clone(),
                    line: line_no,
                    kind: BadLineKind::NotJson,
                    message: "the line is not valid UTF-8".to_owned(),
                });
                continue;
            };
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            match serde_json::from_str::<AgentEvent>(text) {
                Ok(ev) => events.push(ev),
                Err(_) => {
                    let (kind, message) = classify(text);
                    out.bad_lines.push(BadLine {
                        file: f.clone(),
                        line: line_no,
                        kind,
                        message,
                    });
                }
            }
        }
    }
    out.events = stream_order(events);
    Ok(out)
}

/// The events of a JSONL log in stream order (see [`replay_report`], which also reports the
/// lines it skipped). Fails when the log does not exist or a file cannot be read.
pub fn replay(path: impl AsRef<Path>) -> Result<impl Iterator<Item = AgentEvent>> {
    Ok(replay_report(path)?.events.into_iter())
}
