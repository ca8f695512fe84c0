//! Durable JSON-lines event file with size-based rotation; [`replay`] reads it back.
//!
//! Rotation: before a line would push the live file past `max_bytes`, the live file becomes
//! `path.1` (older backups shift up to `path.N`, N = `backup_count`; the file past N is the one
//! retention drops). `backup_count = 0` means **never rotate**: the live file keeps growing and
//! no line is ever lost. A failed rename never truncates anything: the sink logs the failure
//! and keeps appending to the live file.

mod replay;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use power_loop_contracts::{AgentEvent, Error, ErrorCode, EventSink, EventType, Result};
use serde_json::{Map, Value};

use crate::redact::Redactor;

pub use replay::{BadLine, BadLineKind, Replay, replay, replay_report};

/// Options of a [`JsonlSink`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JsonlOptions {
    /// Rotate before a line would push the file past this size (0 = never rotate).
    pub max_bytes: u64,
    /// Rotated files kept (`path.1` … `path.N`); 0 = never rotate (the live file keeps all).
    pub backup_count: u32,
    /// Longest payload string kept, in characters.
    pub max_field_len: usize,
    /// Only these event types are written (`None` = all).
    pub events: Option<Vec<EventType>>,
    /// `fsync` after every line (slower; survives power loss, not only process crashes).
    pub fsync: bool,
    /// Redaction rules for payloads (content is left out unless the redactor opts in).
    pub redactor: Redactor,
}

impl Default for JsonlOptions {
    fn default() -> Self {
        JsonlOptions {
            max_bytes: 10 * 1024 * 1024,
            backup_count: 5,
            max_field_len: 2000,
            events: None,
            fsync: false,
            redactor: Redactor::new(2000),
        }
    }
}

impl JsonlOptions {
    /// Sets the rotation size.
    pub fn max_bytes(mut self, n: u64) -> Self {
        self.max_bytes = n;
        self
    }
    /// Sets how many rotated files are kept (0 = never rotate).
    pub fn backup_count(mut self, n: u32) -> Self {
        self.backup_count = n;
        self
    }
    /// Restricts the event types written.
    pub fn events(mut self, types: Vec<EventType>) -> Self {
        self.events = Some(types);
        self
    }
    /// Sets the payload string limit (keeps the redactor's other rules).
    pub fn max_field_len(mut self, n: usize) -> Self {
        self.max_field_len = n;
        self.redactor = self.redactor.with_max_field_len(n);
        self
    }
    /// Sets the redaction rules.
    pub fn redactor(mut self, r: Redactor) -> Self {
        self.redactor = r;
        self
    }
    /// Opts in to writing prompt and tool content (off by default; secrets are still redacted).
    pub fn include_content(mut self, yes: bool) -> Self {
        self.redactor = self.redactor.include_content(yes);
        self
    }
    /// Enables an fsync per line.
    pub fn fsync(mut self, yes: bool) -> Self {
        self.fsync = yes;
        self
    }
}

struct State {
    file: Option<File>,
    pos: u64,
    closed: bool,
}

/// Writes each event as one JSON line, flushed to the OS immediately (so a process crash loses
/// nothing already handled), rotating by size.
pub struct JsonlSink {
    path: PathBuf,
    opts: JsonlOptions,
    state: Mutex<State>,
}

impl std::fmt::Debug for JsonlSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonlSink")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

pub(crate) fn io_err(path: &Path, what: &str, e: std::io::Error) -> Error {
    Error::new(
        ErrorCode::Io,
        format!("cannot {what} event log `{}`: {e}", path.display()),
    )
    .with_source(e)
}

/// `path.i` (the i-th rotated file).
pub(crate) fn rotated_path(path: &Path, i: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{i}"));
    PathBuf::from(s)
}

/// The line written for an event: envelope keys in contract order, payload sanitized.
pub(crate) fn event_line(ev: &AgentEvent, redactor: &Redactor) -> Result<String> {
    let full = serde_json::to_value(ev)?;
    let mut out = Map::new();
    out.insert(
        "type".into(),
        Value::String(ev.event_type().as_str().to_owned()),
    );
    for key in [
        "session_id",
        "round_index",
        "stream_id",
        "source",
        "ts",
        "seq",
        "mono",
    ] {
        out.insert(key.into(), full.get(key).cloned().unwrap_or(Value::Null));
    }
    let payload = full
        .get("payload")
        .cloned()
        .unwrap_or(Value::Object(Map::new()));
    out.insert(
        "payload".into(),
        redactor.sanitize_payload(ev.event_type(), &payload),
    );
    Ok(serde_json::to_string(&Value::Object(out))?)
}

fn open_append(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| io_err(path, "open", e))
}

impl JsonlSink {
    /// Opens (appending) or creates `path`, creating parent directories.
    pub fn open(path: impl Into<PathBuf>, opts: JsonlOptions) -> Result<Self> {
        let path = path.into();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| io_err(&path, "create the directory of", e))?;
        }
        let file = open_append(&path)?;
        let pos = file
            .metadata()
            .map_err(|e| io_err(&path, "inspect", e))?
            .len();
        Ok(JsonlSink {
            path,
            opts,
            state: Mutex::new(State {
                file: Some(file),
                pos,
                closed: false,
            }),
        })
    }

    /// The live file path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes the file; later events are ignored.
    pub fn close(&self) {
        if let Ok(mut st) = self.state.lock() {
            if let Some(f) = st.file.as_mut() {
                let _ = f.flush();
            }
            st.file = None;
            st.closed = true;
        }
    }

    /// Shifts `path.{i}` → `path.{i+1}` (dropping what falls past `backup_count`), then the live
    /// file → `path.1`, then opens a fresh live file. On any failure the live file stays open
    /// and untouched (nothing is truncated), and the error is returned for logging.
    fn rotate(&self, st: &mut State) -> Result<()> {
        let n = self.opts.backup_count;
        for i in (1..n).rev() {
            let from = rotated_path(&self.path, i);
            if from.exists() {
                std::fs::rename(&from, rotated_path(&self.path, i + 1))
                    .map_err(|e| io_err(&from, "rotate", e))?;
            }
        }
        if let Some(f) = st.file.as_mut() {
            f.flush().map_err(|e| io_err(&self.path, "flush", e))?;
        }
        std::fs::rename(&self.path, rotated_path(&self.path, 1))
            .map_err(|e| io_err(&self.path, "rotate", e))?;
        // The live name is free now: the new file is created empty; the old handle (now
        // `path.1`) is dropped only once the new one is open.
        let fresh = open_append(&self.path)?;
        st.file = Some(fresh);
        st.pos = 0;
        Ok(())
    }

    /// Writes one raw line (a newline is appended).
    pub fn write_line(&self, line: &str) -> Result<()> {
        let mut st = self
            .state
            .lock()
            .map_err(|_| Error::internal("event log lock poisoned"))?;
        if st.closed || st.file.is_none() {
            return Ok(());
        }
        let len = line.len() as u64 + 1;
        let rotating = self.opts.backup_count > 0 && self.opts.max_bytes > 0;
        if rotating
            && st.pos > 0
            && st.pos + len > self.opts.max_bytes
            && let Err(e) = self.rotate(&mut st)
        {
            tracing::error!(target: "power_loop::events", path = %self.path.display(), error = %e, "event log rotation failed; appending to the live file instead");
        }
        let fsync = self.opts.fsync;
        let path = &self.path;
        if let Some(file) = st.file.as_mut() {
            let mut buf = Vec::with_capacity(line.len() + 1);
            buf.extend_from_slice(line.as_bytes());
            buf.push(b'\n');
            file.write_all(&buf).map_err(|e| io_err(path, "write", e))?;
            if fsync {
                file.sync_data().map_err(|e| io_err(path, "sync", e))?;
            }
        }
        st.pos += len;
        Ok(())
    }
}

impl EventSink for JsonlSink {
    fn handle(&self, event: &AgentEvent) -> Result<()> {
        if !crate::wanted(&self.opts.events, event) {
            return Ok(());
        }
        let line = event_line(event, &self.opts.redactor)?;
        self.write_line(&line)
    }

    fn flush(&self) -> Result<()> {
        let mut st = self
            .state
            .lock()
            .map_err(|_| Error::internal("event log lock poisoned"))?;
        let path = self.path.clone();
        if let Some(f) = st.file.as_mut() {
            f.flush().map_err(|e| io_err(&path, "flush", e))?;
        }
        Ok(())
    }
}
