//! A StatsD backend on `cadence`: a queuing sink (a bounded queue drained by cadence's worker
//! thread) over UDP, labels as DogStatsD tags, the socket bound to loopback unless configured.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cadence::prelude::*;
use cadence::{QueuingMetricSink, StatsdClient, UdpMetricSink};
use power_loop_contracts::{Error, ErrorCode, Result};

use super::MetricsBackend;

/// How labels reach the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum StatsdLabels {
    /// DogStatsD tags: `name:1|c|#k:v,…` (default; understood by the statsd daemon ≥ 0.9,
    /// Datadog, Telegraf, …).
    #[default]
    Tags,
    /// Folded into the name as the Python reference does: `name.k1_v1.k2_v2` (sorted by key).
    Name,
}

/// Options of a [`StatsdBackend`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StatsdOptions {
    /// The daemon, `host:port` (default `127.0.0.1:8125`).
    pub addr: String,
    /// Local address the UDP socket binds to. `None`: the loopback address of the daemon's
    /// family, port 0 (which only reaches a daemon on loopback; set an interface address, or
    /// an unspecified one deliberately, for a remote daemon).
    pub bind: Option<SocketAddr>,
    /// Metrics held while the socket is busy (default 10 000); beyond that they are dropped and
    /// counted.
    pub queue_capacity: usize,
    /// How labels are sent.
    pub labels: StatsdLabels,
}

impl Default for StatsdOptions {
    fn default() -> Self {
        StatsdOptions {
            addr: "127.0.0.1:8125".to_owned(),
            bind: None,
            queue_capacity: 10_000,
            labels: StatsdLabels::Tags,
        }
    }
}

impl StatsdOptions {
    /// Options for the daemon at `addr`.
    pub fn new(addr: impl Into<String>) -> Self {
        StatsdOptions {
            addr: addr.into(),
            ..Self::default()
        }
    }
    /// Sets the local bind address.
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.bind = Some(addr);
        self
    }
    /// Sets the queue capacity (at least 1).
    pub fn queue_capacity(mut self, n: usize) -> Self {
        self.queue_capacity = n.max(1);
        self
    }
    /// Sets how labels are sent.
    pub fn labels(mut self, l: StatsdLabels) -> Self {
        self.labels = l;
        self
    }
}

/// Sends counters (`|c`), timers (`|ms`, whole milliseconds) and gauges (`|g`) to a StatsD
/// daemon without ever blocking the caller: metrics go through cadence's bounded queue; a full
/// queue or a send error drops the metric and counts it ([`dropped`](Self::dropped)).
pub struct StatsdBackend {
    client: StatsdClient,
    labels: StatsdLabels,
    dropped: Arc<AtomicU64>,
    local: SocketAddr,
}

impl std::fmt::Debug for StatsdBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StatsdBackend")
            .field("local", &self.local)
            .field("labels", &self.labels)
            .field("dropped", &self.dropped())
            .finish_non_exhaustive()
    }
}

fn config_err(addr: &str, what: &str) -> Error {
    Error::new(
        ErrorCode::ConfigInvalid,
        format!("StatsD daemon `{addr}`: {what}"),
    )
}

impl StatsdBackend {
    /// A backend for the daemon at `addr` (`host:port`) with default options.
    pub fn new(addr: &str) -> Result<Self> {
        Self::with_options(StatsdOptions::new(addr))
    }

    /// A backend with explicit options.
    pub fn with_options(opts: StatsdOptions) -> Result<Self> {
        let addr = opts.addr.as_str();
        let target = addr
            .to_socket_addrs()
            .map_err(|e| config_err(addr, &format!("cannot resolve the address: {e}")))?
            .next()
            .ok_or_else(|| config_err(addr, "the address resolves to nothing"))?;
        let bind = match opts.bind {
            Some(b) => b,
            None if target.ip().is_loopback() => match target {
                SocketAddr::V4(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
                SocketAddr::V6(_) => SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 0),
            },
            None => {
                return Err(config_err(
                    addr,
                    "is not on loopback; set `StatsdOptions::bind` to the local address to send from",
                ));
            }
        };
        let socket = UdpSocket::bind(bind)
            .map_err(|e| config_err(addr, &format!("cannot bind a UDP socket to {bind}: {e}")))?;
        socket
            .set_nonblocking(true)
            .map_err(|e| config_err(addr, &format!("cannot make the socket non-blocking: {e}")))?;
        let local = socket
            .local_addr()
            .map_err(|e| config_err(addr, &format!("cannot read the socket address: {e}")))?;
        let udp = UdpMetricSink::from(target, socket)
            .map_err(|e| config_err(addr, &format!("cannot open the UDP sink: {e}")))?;
        let dropped = Arc::new(AtomicU64::new(0));
        let d = Arc::clone(&dropped);
        let queue = QueuingMetricSink::builder()
            .with_capacity(opts.queue_capacity.max(1))
            .with_error_handler(move |_e| {
                d.fetch_add(1, Ordering::Relaxed);
            })
            .build(udp);
        let client = StatsdClient::builder("", queue).build();
        Ok(StatsdBackend {
            client,
            labels: opts.labels,
            dropped,
            local,
        })
    }

    /// Metrics dropped so far (queue full or send failed).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The local address the socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The metric name with labels folded in (the [`StatsdLabels::Name`] form).
    pub fn metric_name(name: &str, labels: &[(&str, &str)]) -> String {
        if labels.is_empty() {
            return name.to_owned();
        }
        let mut sorted: Vec<_> = labels.to_vec();
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        let parts: Vec<String> = sorted.iter().map(|(k, v)| format!("{k}_{v}")).collect();
        format!("{name}.{}", parts.join("."))
    }

    fn sent<E>(&self, r: std::result::Result<(), E>) -> Result<()> {
        if r.is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

impl MetricsBackend for StatsdBackend {
    fn incr(&self, name: &str, value: u64, labels: &[(&str, &str)]) -> Result<()> {
        let r = match self.labels {
            StatsdLabels::Tags => labels
                .iter()
                .fold(self.client.count_with_tags(name, value), |b, (k, v)| {
                    b.with_tag(k, v)
                })
                .try_send()
                .map(|_| ()),
            StatsdLabels::Name => self
                .client
                .count(&Self::metric_name(name, labels), value)
                .map(|_| ()),
        };
        self.sent(r)
    }

    fn observe(&self, name: &str, value: f64, labels: &[(&str, &str)]) -> Result<()> {
        let ms = if value.is_finite() && value > 0.0 {
            value.round() as u64
        } else {
            0
        };
        let r = match self.labels {
            StatsdLabels::Tags => labels
                .iter()
                .fold(self.client.time_with_tags(name, ms), |b, (k, v)| {
                    b.with_tag(k, v)
                })
                .try_send()
                .map(|_| ()),
            StatsdLabels::Name => self
                .client
                .time(&Self::metric_name(name, labels), ms)
                .map(|_| ()),
        };
        self.sent(r)
    }

    fn gauge(&self, name: &str, value: f64, labels: &[(&str, &str)]) -> Result<()> {
        let r = match self.labels {
            StatsdLabels::Tags => labels
                .iter()
                .fold(self.client.gauge_with_tags(name, value), |b, (k, v)| {
                    b.with_tag(k, v)
                })
                .try_send()
                .map(|_| ()),
            StatsdLabels::Name => self
                .client
                .gauge(&Self::metric_name(name, labels), value)
                .map(|_| ()),
        };
        self.sent(r)
    }
}
