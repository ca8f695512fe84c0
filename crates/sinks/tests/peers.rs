#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg_attr(
    not(all(feature = "prometheus", feature = "statsd", feature = "otel")),
    allow(dead_code, unused_imports)
)]
//! Proof against real third-party peers (installed by `scripts/peers.sh up`): `promtool` and a
//! Prometheus server read our exposition, the npm `statsd` daemon receives our counters and
//! timers, and the `oteltap` OTLP receiver gets the span tree of a send with tools.
//!
//! A missing peer skips its test with a printed reason, unless `POWER_LOOP_REQUIRE_PEERS=1`
//! (CI), which turns the skip into a failure. Daemons run on ephemeral loopback ports and are
//! killed (by their own pid) when the test ends.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use power_loop_contracts::event::*;
use power_loop_contracts::{AgentEvent, EventPayload};

fn required() -> bool {
    std::env::var("POWER_LOOP_REQUIRE_PEERS").as_deref() == Ok("1")
}

/// Skips (returns `None`) with a printed reason, or fails when peers are required.
fn skip<T>(reason: &str) -> Option<T> {
    assert!(
        !required(),
        "peer missing with POWER_LOOP_REQUIRE_PEERS=1: {reason}"
    );
    eprintln!("SKIPPED: {reason} (run scripts/peers.sh up)");
    None
}

fn cache() -> PathBuf {
    match std::env::var_os("POWER_LOOP_PEERS_CACHE") {
        Some(p) => PathBuf::from(p),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
            .join(".cache/power-loop-peers"),
    }
}

fn which(bin: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(bin))
            .find(|p| p.is_file())
    })
}

fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A daemon we started; killed by its own pid on drop.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

fn poll<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn e(p: EventPayload) -> AgentEvent {
    AgentEvent::new(p).with_session("peer-session")
}

/// The events of one send: a failed and a successful LLM attempt, one good and one failed tool.
fn send_with_tools() -> Vec<AgentEvent> {
    let llm_start = |attempt| {
        e(EventPayload::LlmCallStarted(LlmCallStartedPayload {
            call_id: "r0.a".into(),
            round_index: 0,
            attempt,
            model: "gpt-peer".into(),
        }))
        .with_round(0)
    };
    let llm_done = |attempt, ok: bool| {
        e(EventPayload::LlmCallCompleted(LlmCallCompletedPayload {
            call_id: "r0.a".into(),
            round_index: 0,
            attempt,
            model: "gpt-peer".into(),
            duration_ms: 42.0,
            success: ok,
            error_type: if ok {
                String::new()
            } else {
                "llm.server".into()
            },
            prompt_tokens: Some(120),
            completion_tokens: Some(30),
            total_tokens: Some(150),
        }))
        .with_round(0)
    };
    let tool = |id: &str, name: &str, failed: bool| {
        let mut v = vec![
            e(EventPayload::ToolCallStarted(ToolCallStartedPayload {
                name: name.into(),
                tool_input: serde_json::json!({"path": "a.txt"}),
                tool_call_id: id.into(),
            }))
            .with_round(0),
        ];
        if failed {
            v.push(
                e(EventPayload::ToolCallFailed(ToolCallFailedPayload {
                    name: name.into(),
                    tool_call_id: id.into(),
                    ..Default::default()
                }))
                .with_round(0),
            );
        }
        v.push(
            e(EventPayload::ToolCallCompleted(ToolCallCompletedPayload {
                name: name.into(),
                tool_call_id: id.into(),
                failed,
                ..Default::default()
            }))
            .with_round(0),
        );
        v
    };
    let mut out = vec![
        e(EventPayload::SessionStarted(SessionStartedPayload {
            scope: "main".into(),
        })),
        e(EventPayload::RoundStarted(RoundStartedPayload {
            round_index: 0,
        }))
        .with_round(0),
        llm_start(1),
        llm_done(1, false),
        e(EventPayload::LlmRetryAttempted(
            LlmRetryAttemptedPayload::default(),
        ))
        .with_round(0),
        llm_start(2),
        llm_done(2, true),
        e(EventPayload::UsageUpdated(UsageUpdatedPayload {
            usage: serde_json::from_value(serde_json::json!({"total_tokens": 150})).unwrap(),
        })),
    ];
    out.extend(tool("t1", "read_file", false));
    out.extend(tool("t2", "bash", true));
    out.push(e(EventPayload::RoundCompleted(RoundCompletedPayload {
        round_index: 0,
        has_tools: true,
        used_todo: false,
    })));
    out.push(e(EventPayload::AgentError(AgentErrorPayload {
        error_type: "llm.timeout".into(),
        ..Default::default()
    })));
    out.push(e(EventPayload::SessionEnded(SessionEndedPayload {
        reason: "completed".into(),
    })));
    out
}

#[cfg(feature = "prometheus")]
fn exposition() -> (
    std::sync::Arc<power_loop_sinks::metrics::PrometheusBackend>,
    String,
) {
    use power_loop_contracts::EventSink;
    use power_loop_sinks::MetricsBackend;
    let prom = std::sync::Arc::new(power_loop_sinks::metrics::PrometheusBackend::new());
    let sink = power_loop_sinks::MetricsSink::new(prom.clone());
    for ev in send_with_tools() {
        sink.handle(&ev).unwrap();
    }
    prom.incr("power_loop_sink_dropped", 1, &[("sink", "jsonl")])
        .unwrap();
    let text = prom.encode_text().unwrap();
    (prom, text)
}

#[cfg(feature = "prometheus")]
#[test]
fn promtool_accepts_the_exposition() {
    let Some(promtool) =
        which("promtool").or_else(|| skip("promtool (Debian prometheus) not installed"))
    else {
        return;
    };
    let (_, text) = exposition();
    for name in [
        "power_loop_llm_calls_total",
        "power_loop_llm_call_duration_ms_bucket",
        "power_loop_llm_retries_total",
        "power_loop_tool_calls_total",
        "power_loop_rounds_total",
        "power_loop_errors_total",
        "power_loop_usage_total_tokens_count",
        "power_loop_sink_dropped_total",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The spec names the duration histogram `<prefix>_llm_call_duration_ms`; promtool's lint
    // prefers unabbreviated units. That one finding is the spec's choice; nothing else may be
    // reported (parse errors, missing help, wrong counter suffixes, …).
    let problems: Vec<&str> = report
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| {
            *l != "power_loop_llm_call_duration_ms metric names should not contain abbreviated units"
        })
        .collect();
    assert!(
        problems.is_empty(),
        "promtool check metrics reported:\n{report}\n--- exposition ---\n{text}"
    );
}

#[cfg(feature = "prometheus")]
#[test]
fn a_real_prometheus_scrapes_the_exposition() {
    let Some(prometheus) =
        which("prometheus").or_else(|| skip("prometheus (Debian prometheus) not installed"))
    else {
        return;
    };
    let (prom, _) = exposition();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let body = prom.encode().unwrap_or_default();
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Type: application/openmetrics-text; version=1.0.0; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("prometheus.yml");
    std::fs::write(
        &conf,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: power_loop\n    static_configs:\n      - targets: ['{target}']\n"
        ),
    )
    .unwrap();
    let port = free_tcp_port();
    let _daemon = Daemon(
        Command::new(prometheus)
            .arg(format!("--config.file={}", conf.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let got = poll(Duration::from_secs(40), || {
        let body = http_get(port, "/api/v1/query?query=power_loop_tool_calls_total")?;
        body.contains("\"tool\":\"bash\"").then_some(body)
    });
    let body = got.expect("Prometheus did not scrape power_loop_tool_calls_total in time");
    assert!(body.contains("\"success\":\"false\""), "{body}");
    let body = http_get(port, "/api/v1/query?query=power_loop_llm_calls_total").unwrap();
    assert!(body.contains("\"model\":\"gpt-peer\""), "{body}");
}

#[cfg(feature = "statsd")]
#[test]
fn a_real_statsd_daemon_receives_counters_and_timers() {
    use power_loop_contracts::EventSink;
    let stats_js = cache().join("statsd/node_modules/statsd/stats.js");
    let node = which("node");
    let (Some(node), true) = (node, stats_js.is_file()) else {
        skip::<()>("node or the npm statsd daemon not installed");
        return;
    };
    let (udp, mgmt) = (free_udp_port(), free_tcp_port());
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("statsd.js");
    std::fs::write(
        &conf,
        format!(
            "{{ port: {udp}, address: \"127.0.0.1\", mgmt_address: \"127.0.0.1\", mgmt_port: {mgmt}, flushInterval: 3600000, backends: [] }}"
        ),
    )
    .unwrap();
    let _daemon = Daemon(
        Command::new(node)
            .arg(&stats_js)
            .arg(&conf)
            .current_dir(stats_js.parent().unwrap())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mgmt_cmd = |cmd: &str| -> Option<String> {
        let mut s = TcpStream::connect(("127.0.0.1", mgmt)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        writeln!(s, "{cmd}").ok()?;
        let mut out = String::new();
        let mut buf = [0u8; 8192];
        while !out.contains("END") && !out.contains("health:") {
            let n = s.read(&mut buf).ok()?;
            if n == 0 {
                break;
            }
            out.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        Some(out)
    };
    poll(Duration::from_secs(15), || mgmt_cmd("health")).expect("statsd did not start");
    let backend = std::sync::Arc::new(
        power_loop_sinks::metrics::StatsdBackend::new(&format!("127.0.0.1:{udp}")).unwrap(),
    );
    let sink = power_loop_sinks::MetricsSink::new(backend.clone());
    for ev in send_with_tools() {
        sink.handle(&ev).unwrap();
    }
    let counters = poll(Duration::from_secs(10), || {
        let c = mgmt_cmd("counters")?;
        c.contains("power_loop_errors").then_some(c)
    })
    .expect("statsd never counted power_loop_errors");
    for key in [
        "'power_loop_llm_calls;model=gpt-peer;success=false': 1",
        "'power_loop_llm_calls;model=gpt-peer;success=true': 1",
        "power_loop_llm_retries: 1",
        "'power_loop_tool_calls;tool=read_file;success=true': 1",
        "'power_loop_tool_calls;tool=bash;success=false': 1",
        "power_loop_rounds: 1",
        "'power_loop_errors;error_type=llm.timeout': 1",
    ] {
        assert!(counters.contains(key), "{key} not in:\n{counters}");
    }
    let timers = mgmt_cmd("timers").unwrap();
    assert!(
        timers.contains("'power_loop_llm_call_duration_ms;model=gpt-peer;success=true': [ 42 ]"),
        "{timers}"
    );
    assert!(
        timers.contains("power_loop_usage_total_tokens: [ 150 ]"),
        "{timers}"
    );
    assert_eq!(backend.dropped(), 0);
}

#[cfg(feature = "otel")]
#[test]
fn an_otlp_receiver_gets_the_span_tree_of_a_send_with_tools() {
    use std::io::BufRead;
    use std::sync::{Arc, Mutex};

    use power_loop_contracts::EventSink;
    use power_loop_sinks::otlp::{OtlpOptions, OtlpPipeline};
    use power_loop_sinks::{TraceOptions, TracingSink};
    use tracing_subscriber::prelude::*;

    let oteltap = cache().join("oteltap-venv/bin/oteltap");
    if !oteltap.is_file() {
        skip::<()>("the oteltap OTLP receiver (PyPI) is not installed");
        return;
    }
    let port = free_tcp_port();
    let mut child = Command::new(&oteltap)
        .args(["--port", &port.to_string()])
        .env("PYTHONUNBUFFERED", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let _daemon = Daemon(child);
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let sink_lines = Arc::clone(&lines);
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            sink_lines.lock().unwrap().push(line);
        }
    });
    poll(Duration::from_secs(20), || {
        TcpStream::connect(("127.0.0.1", port)).ok()
    })
    .expect("oteltap did not start listening");

    let pipeline = OtlpPipeline::new(
        OtlpOptions::default()
            .endpoint(format!("http://127.0.0.1:{port}/v1/traces"))
            .service_name("power-loop-peer-test"),
    )
    .unwrap();
    let subscriber = tracing_subscriber::registry().with(pipeline.layer());
    tracing::subscriber::with_default(subscriber, || {
        let sink = TracingSink::new(TraceOptions::default().provider_name("openai"));
        for ev in send_with_tools() {
            sink.handle(&ev).unwrap();
        }
        sink.flush().unwrap();
    });
    pipeline.force_flush().unwrap();

    // Eight spans: session, send, round, two chat attempts, two tools.
    let spans: Vec<serde_json::Value> = poll(Duration::from_secs(20), || {
        let got: Vec<serde_json::Value> = lines
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v.get("spanId").is_some() || v.get("span_id").is_some())
            .collect();
        (got.len() >= 7).then_some(got)
    })
    .unwrap_or_else(|| {
        panic!(
            "spans not received; oteltap printed:\n{}",
            lines.lock().unwrap().join("\n")
        )
    });
    pipeline.shutdown().unwrap();

    let field = |v: &serde_json::Value, a: &str, b: &str| -> String {
        v.get(a)
            .or_else(|| v.get(b))
            .and_then(|x| x.as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let attr = |v: &serde_json::Value, key: &str| -> Option<String> {
        v.get("attributes")?
            .as_array()?
            .iter()
            .find(|a| a["key"] == key)
            .map(|a| {
                let val = &a["value"];
                val.get("stringValue")
                    .and_then(|s| s.as_str().map(str::to_owned))
                    .or_else(|| {
                        val.get("intValue")
                            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                    })
                    .unwrap_or_else(|| val.to_string())
            })
    };
    let named =
        |n: &str| -> Vec<&serde_json::Value> { spans.iter().filter(|s| s["name"] == n).collect() };
    let session = named("power_loop.session");
    let send = named("invoke_agent power_loop");
    let round = named("power_loop.round");
    let chats = named("chat gpt-peer");
    let read = named("execute_tool read_file");
    let bash = named("execute_tool bash");
    let all = || format!("{spans:#?}");
    assert_eq!(
        (
            session.len(),
            send.len(),
            round.len(),
            chats.len(),
            read.len(),
            bash.len()
        ),
        (1, 1, 1, 2, 1, 1),
        "{}",
        all()
    );
    let id = |v: &serde_json::Value| field(v, "spanId", "span_id");
    let parent = |v: &serde_json::Value| field(v, "parentSpanId", "parent_span_id");
    assert_eq!(parent(send[0]), id(session[0]), "{}", all());
    assert_eq!(parent(round[0]), id(send[0]));
    for child in chats.iter().chain(&read).chain(&bash) {
        assert_eq!(parent(child), id(round[0]), "{}", all());
    }
    let trace_id = field(session[0], "traceId", "trace_id");
    assert!(
        spans
            .iter()
            .all(|s| field(s, "traceId", "trace_id") == trace_id)
    );
    for c in &chats {
        // OTLP SpanKind: 3 = CLIENT (numeric in oteltap's NDJSON, named in protobuf JSON).
        let kind = &c["kind"];
        assert!(kind == 3 || kind == "SPAN_KIND_CLIENT", "{}", all());
        assert_eq!(attr(c, "gen_ai.operation.name").as_deref(), Some("chat"));
        assert_eq!(attr(c, "gen_ai.request.model").as_deref(), Some("gpt-peer"));
        assert_eq!(attr(c, "gen_ai.provider.name").as_deref(), Some("openai"));
        assert_eq!(attr(c, "gen_ai.usage.input_tokens").as_deref(), Some("120"));
        assert_eq!(
            attr(c, "gen_ai.conversation.id").as_deref(),
            Some("peer-session")
        );
    }
    assert_eq!(
        attr(send[0], "gen_ai.operation.name").as_deref(),
        Some("invoke_agent")
    );
    assert_eq!(
        attr(read[0], "gen_ai.tool.name").as_deref(),
        Some("read_file")
    );
    assert_eq!(attr(read[0], "gen_ai.tool.call.id").as_deref(), Some("t1"));
    assert_eq!(attr(bash[0], "error.type").as_deref(), Some("tool_error"));
    assert_eq!(
        attr(read[0], "gen_ai.tool.call.arguments"),
        None,
        "content stays out by default"
    );
}
