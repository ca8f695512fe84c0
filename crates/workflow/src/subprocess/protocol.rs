//! The worker protocol: framed, versioned JSON over the worker's stdin and stdout.
//!
//! A frame is one line: a JSON object with `"v"` (the protocol version, [`PROTOCOL_VERSION`])
//! and `"t"` (the frame type), ended by `\n`. Every line a worker writes to stdout must be a
//! frame: anything else (a stray `println!`, a truncated line, a line longer than the frame
//! limit, another version) is a protocol violation and the leaf fails with the reason. The
//! worker writes its diagnostics to stderr, which the parent keeps a bounded tail of.
//!
//! ```text
//! parent ──job──────────────────────────────► worker      (first frame on stdin)
//! parent ◄─hello · heartbeat* · llm_request*─ worker
//! parent ──llm_chunk* · llm_done|llm_error──► worker      (answers to each llm_request)
//! parent ──cancel───────────────────────────► worker      (optional)
//! parent ◄─result | failure────────────────── worker      (last frame; then the worker exits 0/1)
//! ```

use power_loop_agent::AgentSpec;
use power_loop_contracts::{Error, ErrorCode, LlmRequest, Result, StreamChunk};
use power_loop_store::SessionArchive;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::executor::LeafReport;

/// The protocol version this build speaks. A frame of another version is refused.
pub const PROTOCOL_VERSION: u32 = 1;

/// Where the worker keeps the leaf's session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum LeafStore {
    /// A SQLite file in the leaf's directory; the worker sends the session back in its result
    /// and the parent imports it under the run's driver session.
    Sqlite {
        /// The database file.
        path: String,
    },
    /// The parent's server store (PostgreSQL or MySQL): the leaf's session is written there
    /// directly, as a linked child of the driver session. Only for unsandboxed workers (a
    /// sandbox has no network).
    Dsn {
        /// The DSN.
        dsn: String,
        /// The table prefix of the parent's store.
        table_prefix: String,
    },
}

/// The tools a worker builds for its leaf (before the leaf's whitelist filters them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ToolSetup {
    /// A default-tool preset (`core`, `explore`, `full`).
    pub preset: String,
    /// The workspace the file and shell tools are confined to.
    pub workspace_dir: String,
}

/// Limits the worker applies to itself before it does anything else.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WorkerLimits {
    /// Address-space rlimit in bytes (`RLIMIT_AS`), inherited by the leaf's tool processes.
    pub memory_bytes: Option<u64>,
}

/// One leaf's job: the first frame on the worker's stdin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WorkerJob {
    /// The effective sub-agent spec (rendered prompt, run metadata).
    pub spec: AgentSpec,
    /// The rendered user input.
    pub input: String,
    /// The journal key of the leaf.
    pub step_key: String,
    /// Where the leaf's session lives.
    pub store: LeafStore,
    /// With a [`LeafStore::Dsn`] store: the driver session the leaf becomes a linked child of.
    #[serde(default)]
    pub parent_session_id: Option<String>,
    /// The tools, when the leaf has any.
    #[serde(default)]
    pub tools: Option<ToolSetup>,
    /// How often the worker sends a heartbeat, in milliseconds.
    pub heartbeat_ms: u64,
    /// Self-applied limits.
    #[serde(default)]
    pub limits: WorkerLimits,
}

/// What the worker reports when the leaf ran.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct WorkerReport {
    /// The leaf's session id, sub-agent status (`completed`, `failed`, `cancelled`,
    /// `hit_round_limit`, …), final text, rounds, usage and structured answer.
    #[serde(flatten)]
    pub leaf: LeafReport,
    /// The leaf's session, exported from the worker's own store (a [`LeafStore::Sqlite`]
    /// leaf); the parent imports it.
    #[serde(default)]
    pub archive: Option<SessionArchive>,
    /// The sessions the leaf spawned in the worker's own store (sub-agents, theirs, …), parents
    /// before children; the parent imports them under their own parents.
    #[serde(default)]
    pub descendants: Vec<SessionArchive>,
}

/// A frame from the worker (stdout).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
#[non_exhaustive]
pub enum WorkerFrame {
    /// The worker is up (first frame).
    Hello {
        /// The worker's process id (inside a pid namespace: its pid there).
        pid: u32,
    },
    /// The worker is alive.
    Heartbeat,
    /// The leaf's model call, made by the parent.
    LlmRequest {
        /// Call id, echoed by the parent's answer frames.
        id: u64,
        /// The request.
        request: Box<LlmRequest>,
    },
    /// The leaf ran (whatever its status).
    Result {
        /// The report.
        report: Box<WorkerReport>,
    },
    /// The worker could not run the leaf.
    Failure {
        /// Stable error code.
        code: String,
        /// Message.
        error: String,
    },
}

/// A frame from the parent (stdin).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ParentFrame {
    /// The job (first frame).
    Job {
        /// The job.
        job: Box<WorkerJob>,
    },
    /// One chunk of a model answer.
    LlmChunk {
        /// The call id.
        id: u64,
        /// The chunk.
        chunk: Box<StreamChunk>,
    },
    /// The model answer ended (after its final chunk).
    LlmDone {
        /// The call id.
        id: u64,
    },
    /// The model call failed.
    LlmError {
        /// The call id.
        id: u64,
        /// Stable error code.
        code: String,
        /// Message.
        message: String,
    },
    /// Stop the leaf at its next checkpoint and report.
    Cancel {
        /// Why.
        reason: String,
    },
}

#[derive(Serialize)]
struct Out<'a, T> {
    v: u32,
    #[serde(flatten)]
    frame: &'a T,
}

#[derive(Deserialize)]
struct In<T> {
    v: u32,
    #[serde(flatten)]
    frame: T,
}

fn protocol_error(msg: impl Into<String>) -> Error {
    Error::new(ErrorCode::WorkerProtocol, msg)
}

/// Encodes a frame as one line (with its `\n`).
pub fn encode_frame<T: Serialize>(frame: &T) -> Result<Vec<u8>> {
    let mut line = serde_json::to_vec(&Out {
        v: PROTOCOL_VERSION,
        frame,
    })
    .map_err(|e| {
        Error::new(
            ErrorCode::Serialization,
            format!("cannot encode a frame: {e}"),
        )
    })?;
    line.push(b'\n');
    Ok(line)
}

/// Decodes one line (without its `\n`). A non-JSON line, another version or an unknown frame
/// type is `workflow.worker_protocol` with a short excerpt of the line.
pub fn decode_frame<T: for<'de> Deserialize<'de>>(line: &[u8]) -> Result<T> {
    let excerpt = || {
        let s = String::from_utf8_lossy(line);
        let mut e: String = s.chars().take(120).collect();
        if s.chars().count() > 120 {
            e.push('…');
        }
        e
    };
    let v: Value = serde_json::from_slice(line)
        .map_err(|e| protocol_error(format!("not a frame ({e}): {:?}", excerpt())))?;
    match v.get("v").and_then(Value::as_u64) {
        Some(n) if n == u64::from(PROTOCOL_VERSION) => {}
        Some(n) => {
            return Err(protocol_error(format!(
                "protocol version {n} (this build speaks {PROTOCOL_VERSION})"
            )));
        }
        None => {
            return Err(protocol_error(format!(
                "a frame without a protocol version: {:?}",
                excerpt()
            )));
        }
    }
    let f: In<T> = serde_json::from_value(v)
        .map_err(|e| protocol_error(format!("malformed frame ({e}): {:?}", excerpt())))?;
    debug_assert_eq!(f.v, PROTOCOL_VERSION);
    Ok(f.frame)
}

/// Reads frames from a byte stream, one line each, refusing lines over `max_frame` bytes and
/// more than `max_total` bytes in all.
pub(crate) struct FrameReader<R> {
    inner: R,
    buf: Vec<u8>,
    max_frame: usize,
    max_total: u64,
    total: u64,
}

impl<R: tokio::io::AsyncBufRead + Unpin> FrameReader<R> {
    pub(crate) fn new(inner: R, max_frame: usize, max_total: u64) -> Self {
        FrameReader {
            inner,
            buf: Vec::new(),
            max_frame,
            max_total,
            total: 0,
        }
    }

    /// The next frame; `Ok(None)` at a clean end of stream (no partial line pending).
    pub(crate) async fn next<T: for<'de> Deserialize<'de>>(&mut self) -> Result<Option<T>> {
        use tokio::io::AsyncBufReadExt;
        // cancel-safe: a partial line stays in `buf` until its newline arrives
        loop {
            let chunk = self
                .inner
                .fill_buf()
                .await
                .map_err(|e| Error::new(ErrorCode::Io, format!("reading the pipe: {e}")))?;
            if chunk.is_empty() {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                return Err(protocol_error(format!(
                    "the stream ended inside a frame ({} bytes without a newline)",
                    self.buf.len()
                )));
            }
            let (take, done) = match chunk.iter().position(|b| *b == b'\n') {
                Some(i) => (i + 1, true),
                None => (chunk.len(), false),
            };
            self.buf.extend_from_slice(&chunk[..take]);
            self.inner.consume(take);
            self.total += take as u64;
            if self.total > self.max_total {
                return Err(protocol_error(format!(
                    "output limit exceeded: more than {} bytes",
                    self.max_total
                )));
            }
            if self.buf.len() > self.max_frame + 1 {
                return Err(protocol_error(format!(
                    "a frame longer than the {} byte limit",
                    self.max_frame
                )));
            }
            if done {
                let mut line = std::mem::take(&mut self.buf);
                line.pop();
                return decode_frame(&line).map(Some);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_with_their_version() {
        let line = encode_frame(&WorkerFrame::Heartbeat).unwrap();
        assert_eq!(line, b"{\"v\":1,\"t\":\"heartbeat\"}\n");
        let f: WorkerFrame = decode_frame(&line[..line.len() - 1]).unwrap();
        assert!(matches!(f, WorkerFrame::Heartbeat));
    }

    #[test]
    fn a_report_keeps_the_leaf_fields_at_its_top_level() {
        let report = WorkerReport {
            leaf: LeafReport {
                session_id: Some("s1".into()),
                status: "completed".into(),
                final_text: "done".into(),
                rounds: 2,
                usage: power_loop_agent::RunUsage {
                    calls: 1,
                    total_tokens: 7,
                    ..Default::default()
                },
                payload: Some(serde_json::json!({"b": 1, "a": 2.5})),
            },
            archive: None,
            descendants: Vec::new(),
        };
        let line = encode_frame(&WorkerFrame::Result {
            report: Box::new(report.clone()),
        })
        .unwrap();
        let usage = serde_json::to_string(&report.leaf.usage).unwrap();
        let expected = format!(
            "{{\"v\":1,\"t\":\"result\",\"report\":{{\"session_id\":\"s1\",\"status\":\"completed\",\
             \"final_text\":\"done\",\"rounds\":2,\"usage\":{usage},\"payload\":{{\"b\":1,\"a\":2.5}},\
             \"archive\":null,\"descendants\":[]}}}}\n"
        );
        assert_eq!(String::from_utf8(line.clone()).unwrap(), expected);
        let Ok(WorkerFrame::Result { report: back }) = decode_frame(&line[..line.len() - 1]) else {
            panic!("not a result frame");
        };
        assert_eq!(*back, report);

        // the optional fields may be left out
        let bare = format!(
            "{{\"v\":1,\"t\":\"result\",\"report\":{{\"session_id\":null,\"status\":\"failed\",\
             \"final_text\":\"x\",\"rounds\":0,\"usage\":{usage}}}}}"
        );
        let Ok(WorkerFrame::Result { report: back }) = decode_frame(bare.as_bytes()) else {
            panic!("not a result frame");
        };
        assert_eq!(
            (back.leaf.status.as_str(), back.leaf.payload),
            ("failed", None)
        );
        assert!(back.archive.is_none() && back.descendants.is_empty());
    }

    #[test]
    fn garbage_and_other_versions_are_protocol_errors() {
        for bad in [
            &b"hello world"[..],
            b"{\"t\":\"heartbeat\"}",
            b"{\"v\":2,\"t\":\"heartbeat\"}",
            b"{\"v\":1,\"t\":\"nope\"}",
        ] {
            let e = decode_frame::<WorkerFrame>(bad).unwrap_err();
            assert_eq!(e.code(), ErrorCode::WorkerProtocol, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn reader_refuses_partial_and_oversized_frames() {
        let data = b"{\"v\":1,\"t\":\"heartbeat\"}\n{\"v\":1,\"t\":\"hea".to_vec();
        let mut r = FrameReader::new(&data[..], 1000, 10_000);
        assert!(matches!(
            r.next::<WorkerFrame>().await.unwrap(),
            Some(WorkerFrame::Heartbeat)
        ));
        let e = r.next::<WorkerFrame>().await.unwrap_err();
        assert!(e.message().contains("ended inside a frame"), "{e}");

        let big = format!("{}\n", "x".repeat(5000));
        let mut r = FrameReader::new(big.as_bytes(), 100, 1_000_000);
        let e = r.next::<WorkerFrame>().await.unwrap_err();
        assert!(e.message().contains("byte limit"), "{e}");

        let many = "{\"v\":1,\"t\":\"heartbeat\"}\n".repeat(100);
        let mut r = FrameReader::new(many.as_bytes(), 100, 500);
        let mut n = 0;
        let e = loop {
            match r.next::<WorkerFrame>().await {
                Ok(Some(_)) => n += 1,
                Ok(None) => panic!("no limit"),
                Err(e) => break e,
            }
        };
        assert!(n < 30 && e.message().contains("output limit"), "{n} {e}");
    }
}
