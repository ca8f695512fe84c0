//! A StatsD backend over UDP (plain text protocol; labels folded into the metric name).

use std::net::UdpSocket;

use power_loop_contracts::{Error, ErrorCode, Result};

use super::MetricsBackend;

/// Sends `name:value|c`, `name:value|ms` and `name:value|g` datagrams; labels become
/// `name.k1_v1.k2_v2` (sorted by key). Sends are non-blocking: a full socket buffer drops the
/// datagram rather than stalling the agent.
#[derive(Debug)]
pub struct StatsdBackend {
    socket: UdpSocket,
}

impl StatsdBackend {
    /// Connects a UDP socket to `host:port` (e.g. `127.0.0.1:8125`).
    pub fn new(addr: &str) -> Result<Self> {
        let err = |e: std::io::Error| {
            Error::new(
                ErrorCode::ConfigInvalid,
                format!("cannot open a StatsD socket to `{addr}`: {e}"),
            )
            .with_source(e)
        };
        let socket = UdpSocket::bind("0.0.0.0:0").map_err(err)?;
        socket.connect(addr).map_err(err)?;
        socket.set_nonblocking(true).map_err(err)?;
        Ok(StatsdBackend { socket })
    }

    /// The metric name with labels folded in.
    pub fn metric_name(name: &str, labels: &[(&str, &str)]) -> String {
        if labels.is_empty() {
            return name.to_owned();
        }
        let mut sorted: Vec<_> = labels.to_vec();
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        let parts: Vec<String> = sorted.iter().map(|(k, v)| format!("{k}_{v}")).collect();
        format!("{name}.{}", parts.join("."))
    }

    fn send(&self, line: &str) -> Result<()> {
        match self.socket.send(line.as_bytes()) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => Ok(()),
            // A closed port on loopback reports ConnectionRefused on a later send; metrics are
            // best effort, so that is not an agent failure.
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Ok(()),
            Err(e) => {
                Err(Error::new(ErrorCode::Io, format!("StatsD send failed: {e}")).with_source(e))
            }
        }
    }
}

impl MetricsBackend for StatsdBackend {
    fn incr(&self, name: &str, value: u64, labels: &[(&str, &str)]) -> Result<()> {
        self.send(&format!("{}:{value}|c", Self::metric_name(name, labels)))
    }
    fn observe(&self, name: &str, value: f64, labels: &[(&str, &str)]) -> Result<()> {
        self.send(&format!(
            "{}:{value:.6}|ms",
            Self::metric_name(name, labels)
        ))
    }
    fn gauge(&self, name: &str, value: f64, labels: &[(&str, &str)]) -> Result<()> {
        self.send(&format!("{}:{value}|g", Self::metric_name(name, labels)))
    }
}
