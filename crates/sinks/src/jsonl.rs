//! Durable JSON-lines event file with size-based rotation, and [`replay`].

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use power_loop_contracts::{AgentEvent, Error, ErrorCode, EventSink, EventType, Result};
use serde_json::{Map, Value};

use crate::redact::Redactor;

/// Options of a [`JsonlSink`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JsonlOptions {
    /// Rotate before a line would push the file past this size (0 = never rotate).
    pub max_bytes: u64,
    /// Rotated files kept (`path.1` … `path.N`); 0 truncates the live file instead.
    pub backup_count: u32,
    /// Longest payload string kept, in characters.
    pub max_field_len: usize,
    /// Only these event types are written (`None` = all).
    pub events: Option<Vec<EventType>>,
    /// `fsync` after every line (slower; survives power loss, not only process crashes).
    pub fsync: bool,
    /// Redaction rules for payloads.
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
    /// Sets how many rotated files are kept.
    pub fn backup_count(mut self, n: u32) -> Self {
        self.backup_count = n;
        self
    }
    /// Restricts the event types written.
    pub fn events(mut self, types: Vec<EventType>) -> Self {
        self.events = Some(types);
        self
    }
    /// Sets the payload string limit.
    pub fn max_field_len(mut self, n: usize) -> Self {
        self.max_field_len = n;
        self.redactor = Redactor::new(n);
        self
    }
    /// Sets the redaction rules.
    pub fn redactor(mut self, r: Redactor) -> Self {
        self.redactor = r;
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

fn io_err(path: &Path, what: &str, e: std::io::Error) -> Error {
    Error::new(
        ErrorCode::Io,
        format!("cannot {what} event log `{}`: {e}", path.display()),
    )
    .with_source(e)
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
    out.insert("payload".into(), redactor.sanitize(&payload));
    Ok(serde_json::to_string(&Value::Object(out))?)
}

impl JsonlSink {
    /// Opens (appending) or creates `path`, creating parent directories.
    pub fn open(path: impl Into<PathBuf>, opts: JsonlOptions) -> Result<Self> {
        let path = path.into();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|e| io_err(&path, "create the directory of", e))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| io_err(&path, "open", e))?;
        let pos = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(JsonlSink {
            path,
            opts,
            state: Mutex::new(State {
                file: Some(file),
                pos,
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
            st.file = None;
        }
    }

    fn rotated(&self, i: u32) -> PathBuf {
        let mut s = self.path.clone().into_os_string();
        s.push(format!(".{i}"));
        PathBuf::from(s)
    }

    fn rotate(&self, st: &mut State) -> Result<()> {
        st.file = None;
        if self.opts.backup_count > 0 {
            for i in (1..self.opts.backup_count).rev() {
                let from = self.rotated(i);
                if from.exists() {
                    std::fs::rename(&from, self.rotated(i + 1))
                        .map_err(|e| io_err(&from, "rotate", e))?;
                }
            }
            std::fs::rename(&self.path, self.rotated(1))
                .map_err(|e| io_err(&self.path, "rotate", e))?;
        }
        let file = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .open(&self.path)
            .map_err(|e| io_err(&self.path, "reopen", e))?;
        st.file = Some(file);
        st.pos = 0;
        Ok(())
    }

    /// Writes one raw line (a newline is appended).
    pub fn write_line(&self, line: &str) -> Result<()> {
        let mut st = self
            .state
            .lock()
            .map_err(|_| Error::internal("event log lock poisoned"))?;
        if st.file.is_none() {
            return Ok(());
        }
        let len = line.len() as u64 + 1;
        if self.opts.max_bytes > 0 && st.pos > 0 && st.pos + len > self.opts.max_bytes {
            self.rotate(&mut st)?;
        }
        let fsync = self.opts.fsync;
        let path = self.path.clone();
        if let Some(file) = st.file.as_mut() {
            let mut buf = Vec::with_capacity(line.len() + 1);
            buf.extend_from_slice(line.as_bytes());
            buf.push(b'\n');
            file.write_all(&buf)
                .map_err(|e| io_err(&path, "write", e))?;
            if fsync {
                file.sync_data().map_err(|e| io_err(&path, "sync", e))?;
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

/// Reads the events of a JSONL log back, oldest first: `path.N` … `path.1`, then `path`.
///
/// Blank lines, non-JSON lines and lines of unknown event types are skipped (a crash can leave a
/// torn last line). Original `seq`, `ts` and `mono` are preserved. Fails only when a file that
/// exists cannot be read.
pub fn replay(path: impl AsRef<Path>) -> Result<impl Iterator<Item = AgentEvent>> {
    let path = path.as_ref();
    let mut files = Vec::new();
    let mut i = 1;
    loop {
        let mut s = path.as_os_str().to_owned();
        s.push(format!(".{i}"));
        let p = PathBuf::from(s);
        if !p.exists() {
            break;
        }
        files.push(p);
        i += 1;
    }
    files.reverse();
    if path.exists() {
        files.push(path.to_path_buf());
    }
    let mut readers = Vec::with_capacity(files.len());
    for f in files {
        let file = File::open(&f).map_err(|e| io_err(&f, "read", e))?;
        readers.push(BufReader::new(file));
    }
    Ok(readers
        .into_iter()
        .flat_map(|r| r.lines().map_while(std::result::Result::ok))
        .filter_map(|line| {
            let line = line.trim();
            if line.is_empty() {
                return None;
            }
            serde_json::from_str::<AgentEvent>(line).ok()
        }))
}
