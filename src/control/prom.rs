//! The Prometheus exposition: [`render`] turns a [`model::StatsReport`] into
//! the text format 0.0.4 through prometheus-client, and [`MetricsServer`]
//! serves it over HTTP/1.1 on the control plane's bounded server
//! ([`super::server`]), with request heads parsed by httparse.
//!
//! Invariants of the text: every family is one block (`# HELP`, `# TYPE`,
//! then all its samples), so no family name appears twice; counters end in
//! `_total` and sizes are in bytes. Every drop reason and event in a
//! worker's map is written, zeros included, so `rate()` has a first point
//! from the first scrape. Two VIP reports with the same labels (a retired VIP
//! draining beside a new one of the same name and address) become one series
//! with their counters summed, since a scrape must not carry a series twice.
//! The report is a prometheus-client [`Collector`] of constant metrics: a
//! scrape writes the snapshot the control thread holds, it keeps no metric
//! state of its own.
//!
//! Directions follow the datapath's counters: `in` is client to backend,
//! `out` is backend to client.
//!
//! The server answers one request per connection (`Connection: close`):
//! `GET`/`HEAD` on `/metrics` and `/`, 404 for other paths, 405 for other
//! methods. A request head is read within [`READ_TIMEOUT`] and
//! [`MAX_HEAD_BYTES`] (408 and 431 otherwise; 431 too past [`MAX_HEADERS`]
//! fields); a request that is not HTTP/1.x gets 400 as soon as the parser
//! sees it. At most [`MAX_CONNECTIONS`] connections are served at once, each
//! on its own thread, so one slow client does not hold up a scrape; a
//! connection beyond that gets 503 and is closed at once.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use super::model::{self, BackendReport, VipReport, WorkerReport};
use super::server::{Limits, Server};

/// The exposition's content type.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;
/// Longest request head (request line and headers) the server reads.
pub const MAX_HEAD_BYTES: usize = 8 * 1024;
/// Most header fields in a request head.
pub const MAX_HEADERS: usize = 64;
/// Time a client has to send its whole request head.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Time one write of the response may block.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 8;

/// After the response, how long and how much the server keeps reading what
/// the client still sends, so that closing with unread data (which makes the
/// kernel send a reset) does not destroy the response in flight.
const LINGER_TIME: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 256 * 1024;

// ---------------------------------------------------------------------------
// Exposition

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Counter,
    Gauge,
}

/// A sample value: counters stay exact integers, rates are floats.
#[derive(Clone, Copy, Debug)]
enum Num {
    Int(u64),
    Float(f64),
}

impl From<u64> for Num {
    fn from(v: u64) -> Num {
        Num::Int(v)
    }
}

impl From<u32> for Num {
    fn from(v: u32) -> Num {
        Num::Int(u64::from(v))
    }
}

impl From<f64> for Num {
    fn from(v: f64) -> Num {
        Num::Float(v)
    }
}

impl From<bool> for Num {
    fn from(v: bool) -> Num {
        Num::Int(u64::from(v))
    }
}

type Labels<'a> = [(&'a str, &'a str)];

/// Starts a family. Names are written here as they are exposed; a
/// counter's `_total` comes off because the encoder adds it.
fn family<'e>(
    e: &'e mut DescriptorEncoder<'_>,
    name: &'e str,
    kind: Kind,
    help: &str,
) -> Result<MetricEncoder<'e>, std::fmt::Error> {
    let (name, ty) = match kind {
        Kind::Counter => (
            name.strip_suffix("_total").unwrap_or(name),
            MetricType::Counter,
        ),
        Kind::Gauge => (name, MetricType::Gauge),
    };
    e.encode_descriptor(name, help, None, ty)
}

fn sample(m: &mut MetricEncoder<'_>, kind: Kind, labels: &Labels, v: Num) -> std::fmt::Result {
    let m = m.encode_family(&labels)?;
    match (kind, v) {
        (Kind::Counter, Num::Int(v)) => ConstCounter::new(v).encode(m),
        (Kind::Counter, Num::Float(v)) => ConstCounter::new(v).encode(m),
        (Kind::Gauge, Num::Int(v)) => ConstGauge::new(v).encode(m),
        (Kind::Gauge, Num::Float(v)) => ConstGauge::new(v).encode(m),
    }
}

type WorkerField = fn(&WorkerReport) -> Num;
type VipField = fn(&VipReport) -> Num;
type BackendField = fn(&BackendReport) -> Num;

/// Per-worker families with a `worker` label only.
const WORKER_FAMILIES: &[(&str, Kind, &str, WorkerField)] = &[
    (
        "rampart_rx_packets_total",
        Kind::Counter,
        "Frames the worker received.",
        |w| w.rx_packets.into(),
    ),
    (
        "rampart_tx_packets_total",
        Kind::Counter,
        "Frames the worker transmitted.",
        |w| w.tx_packets.into(),
    ),
    (
        "rampart_rx_bytes_total",
        Kind::Counter,
        "Bytes of the frames the worker received.",
        |w| w.rx_bytes.into(),
    ),
    (
        "rampart_tx_bytes_total",
        Kind::Counter,
        "Bytes of the frames the worker transmitted.",
        |w| w.tx_bytes.into(),
    ),
    (
        "rampart_consumed_packets_total",
        Kind::Counter,
        "Frames the SYN proxy took over (neither sent nor dropped).",
        |w| w.consumed.into(),
    ),
    (
        "rampart_originated_packets_total",
        Kind::Counter,
        "Frames the worker originated (SYN proxy, resets, health probes).",
        |w| w.originated_packets.into(),
    ),
    (
        "rampart_handovers_out_total",
        Kind::Counter,
        "Frames handed to another worker's queue.",
        |w| w.handovers_out.into(),
    ),
    (
        "rampart_handovers_in_total",
        Kind::Counter,
        "Frames received from another worker's queue.",
        |w| w.handovers_in.into(),
    ),
    (
        "rampart_active_connections",
        Kind::Gauge,
        "Connections in the worker's connection table.",
        |w| w.active_conns.into(),
    ),
    (
        "rampart_new_connections_per_second",
        Kind::Gauge,
        "Connections the worker created per second over the last sampling period.",
        |w| w.new_conns_per_sec.into(),
    ),
];

/// Per-VIP families whose only labels are the VIP's.
const VIP_FAMILIES: &[(&str, Kind, &str, VipField)] = &[
    (
        "rampart_vip_connections_total",
        Kind::Counter,
        "Connections the VIP created.",
        |v| v.conns_total.into(),
    ),
    (
        "rampart_vip_active_connections",
        Kind::Gauge,
        "Connections of the VIP not yet closed or expired.",
        |v| v.conns_active.into(),
    ),
    (
        "rampart_vip_new_connections_per_second",
        Kind::Gauge,
        "Connections the VIP created per second over the last sampling period.",
        |v| v.new_conns_per_sec.into(),
    ),
    (
        "rampart_vip_backends_up",
        Kind::Gauge,
        "Backends of the VIP the scheduler may pick.",
        |v| v.backends_up.into(),
    ),
    (
        "rampart_vip_backends",
        Kind::Gauge,
        "Backends configured for the VIP.",
        |v| v.backends_total.into(),
    ),
    (
        "rampart_vip_retired",
        Kind::Gauge,
        "1 when the VIP was removed and its connections are draining.",
        |v| v.retired.into(),
    ),
];

/// Per-backend families whose only label is the backend's.
const BACKEND_FAMILIES: &[(&str, Kind, &str, BackendField)] = &[
    (
        "rampart_backend_connections_total",
        Kind::Counter,
        "Connections scheduled to the backend.",
        |b| b.conns_total.into(),
    ),
    (
        "rampart_backend_active_connections",
        Kind::Gauge,
        "Connections to the backend not yet closed or expired.",
        |b| b.conns_active.into(),
    ),
    (
        "rampart_backend_new_connections_per_second",
        Kind::Gauge,
        "Connections scheduled to the backend per second over the last sampling period.",
        |b| b.new_conns_per_sec.into(),
    ),
    (
        "rampart_backend_up",
        Kind::Gauge,
        "1 when schedulers may pick the backend (state up).",
        |b| (b.state == "up").into(),
    ),
];

/// The states `rampart_backend_state` enumerates.
const BACKEND_STATES: [&str; 3] = ["up", "down", "drain"];
/// The health check results `rampart_backend_health` enumerates.
const HEALTH_STATES: [&str; 3] = ["up", "down", "unchecked"];

/// The exposition of one stats report, text format 0.0.4.
pub fn render(stats: &model::StatsReport) -> String {
    let mut report = stats.clone();
    report.vips = merge_vips(&stats.vips);
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Report(report)));
    let mut out = String::with_capacity(4096);
    // Writing into a String cannot fail, and neither can the collector.
    let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &registry);
    out
}

/// One scrape's snapshot, its VIPs merged.
#[derive(Debug)]
struct Report(model::StatsReport);

impl Collector for Report {
    fn encode(&self, mut e: DescriptorEncoder<'_>) -> std::fmt::Result {
        let s = &self.0;
        encode_process(&mut e, s)?;
        encode_workers(&mut e, &s.workers)?;
        encode_vips(&mut e, &s.vips)?;
        encode_backends(&mut e, &s.backends)
    }
}

fn encode_process(e: &mut DescriptorEncoder<'_>, s: &model::StatsReport) -> std::fmt::Result {
    let families: [(&str, Kind, &str, Num); 4] = [
        (
            "rampart_uptime_seconds",
            Kind::Gauge,
            "Seconds since rampart started.",
            s.uptime_secs.into(),
        ),
        (
            "rampart_config_generation",
            Kind::Gauge,
            "Generation of the published snapshot (bumped by reloads, API changes, health).",
            s.generation.into(),
        ),
        (
            "rampart_reloads_total",
            Kind::Counter,
            "Config reloads that succeeded.",
            s.reloads.into(),
        ),
        (
            "rampart_reload_failures_total",
            Kind::Counter,
            "Config reloads that failed (the running config stayed).",
            s.reload_failures.into(),
        ),
    ];
    for (name, kind, help, v) in families {
        sample(&mut family(e, name, kind, help)?, kind, &[], v)?;
    }
    Ok(())
}

fn encode_workers(e: &mut DescriptorEncoder<'_>, workers: &[WorkerReport]) -> std::fmt::Result {
    let ids: Vec<String> = workers.iter().map(|w| w.worker.to_string()).collect();
    for &(name, kind, help, field) in WORKER_FAMILIES {
        let mut m = family(e, name, kind, help)?;
        for (w, id) in workers.iter().zip(&ids) {
            sample(&mut m, kind, &[("worker", id)], field(w))?;
        }
    }
    let c = Kind::Counter;
    let help = "Frames the worker dropped, by reason.";
    let mut m = family(e, "rampart_drops_total", c, help)?;
    for (w, id) in workers.iter().zip(&ids) {
        for (reason, &n) in &w.drops {
            sample(&mut m, c, &[("worker", id), ("reason", reason)], n.into())?;
        }
    }
    let help = "Datapath events of the worker, by name.";
    let mut m = family(e, "rampart_events_total", c, help)?;
    for (w, id) in workers.iter().zip(&ids) {
        for (event, &n) in &w.events {
            sample(&mut m, c, &[("worker", id), ("event", event)], n.into())?;
        }
    }
    Ok(())
}

fn vip_labels(v: &VipReport) -> [(&'static str, &str); 4] {
    [
        ("vip", &v.name),
        ("address", &v.address),
        ("protocol", &v.protocol),
        ("mode", &v.mode),
    ]
}

/// Families with one sample per direction: (name, help, in, out).
type DirectedFamily<'a, T> = (&'a str, &'a str, fn(&T) -> (u64, u64));

const VIP_DIRECTED: [DirectedFamily<VipReport>; 2] = [
    (
        "rampart_vip_packets_total",
        "Frames forwarded for the VIP: in = client to backend, out = backend to client.",
        |v| (v.packets_in, v.packets_out),
    ),
    (
        "rampart_vip_bytes_total",
        "Bytes of the frames forwarded for the VIP: in = client to backend, out = backend to client.",
        |v| (v.bytes_in, v.bytes_out),
    ),
];

const BACKEND_DIRECTED: [DirectedFamily<BackendReport>; 2] = [
    (
        "rampart_backend_packets_total",
        "Frames forwarded for the backend: in = client to backend, out = backend to client.",
        |b| (b.packets_in, b.packets_out),
    ),
    (
        "rampart_backend_bytes_total",
        "Bytes of the frames forwarded for the backend: in = client to backend, out = backend to client.",
        |b| (b.bytes_in, b.bytes_out),
    ),
];

fn encode_vips(e: &mut DescriptorEncoder<'_>, vips: &[VipReport]) -> std::fmt::Result {
    let c = Kind::Counter;
    for (name, help, field) in VIP_DIRECTED {
        let mut m = family(e, name, c, help)?;
        for v in vips {
            let [a, b, cc, d] = vip_labels(v);
            let (n_in, n_out) = field(v);
            sample(&mut m, c, &[a, b, cc, d, ("direction", "in")], n_in.into())?;
            sample(
                &mut m,
                c,
                &[a, b, cc, d, ("direction", "out")],
                n_out.into(),
            )?;
        }
    }
    for &(name, kind, help, field) in VIP_FAMILIES {
        let mut m = family(e, name, kind, help)?;
        for v in vips {
            sample(&mut m, kind, &vip_labels(v), field(v))?;
        }
    }
    Ok(())
}

/// Families with a sample for each value a backend's field can take, 1 for
/// the current one: (name, help, label, values, field).
type OneOfFamily = (
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
    fn(&BackendReport) -> &str,
);

const BACKEND_ONE_OF: [OneOfFamily; 2] = [
    (
        "rampart_backend_state",
        "What schedulers see of the backend (operator override, else health): 1 for the current state.",
        "state",
        &BACKEND_STATES,
        |b| &b.state,
    ),
    (
        "rampart_backend_health",
        "The backend's health check result: 1 for the current one.",
        "health",
        &HEALTH_STATES,
        |b| &b.health,
    ),
];

fn encode_backends(e: &mut DescriptorEncoder<'_>, backends: &[BackendReport]) -> std::fmt::Result {
    let c = Kind::Counter;
    for (name, help, field) in BACKEND_DIRECTED {
        let mut m = family(e, name, c, help)?;
        for b in backends {
            let l = ("backend", b.address.as_str());
            let (n_in, n_out) = field(b);
            sample(&mut m, c, &[l, ("direction", "in")], n_in.into())?;
            sample(&mut m, c, &[l, ("direction", "out")], n_out.into())?;
        }
    }
    for &(name, kind, help, field) in BACKEND_FAMILIES {
        let mut m = family(e, name, kind, help)?;
        for b in backends {
            sample(&mut m, kind, &[("backend", &b.address)], field(b))?;
        }
    }
    let g = Kind::Gauge;
    for (name, help, label, values, current) in BACKEND_ONE_OF {
        let mut m = family(e, name, g, help)?;
        for b in backends {
            for &value in values {
                let l = [("backend", b.address.as_str()), (label, value)];
                sample(&mut m, g, &l, (current(b) == value).into())?;
            }
        }
    }
    Ok(())
}

/// One report per label set: counters and connection counts of VIPs with
/// equal labels are summed; their backend counts and `retired` are those of
/// the live one (the first if all are retired).
fn merge_vips(vips: &[VipReport]) -> Vec<VipReport> {
    let mut out: Vec<VipReport> = Vec::with_capacity(vips.len());
    for v in vips {
        let same = out.iter_mut().find(|o| vip_labels(o) == vip_labels(v));
        let Some(o) = same else {
            out.push(v.clone());
            continue;
        };
        o.packets_in = o.packets_in.saturating_add(v.packets_in);
        o.packets_out = o.packets_out.saturating_add(v.packets_out);
        o.bytes_in = o.bytes_in.saturating_add(v.bytes_in);
        o.bytes_out = o.bytes_out.saturating_add(v.bytes_out);
        o.conns_total = o.conns_total.saturating_add(v.conns_total);
        o.conns_active = o.conns_active.saturating_add(v.conns_active);
        o.new_conns_per_sec += v.new_conns_per_sec;
        if o.retired && !v.retired {
            o.retired = false;
            o.backends_up = v.backends_up;
            o.backends_total = v.backends_total;
        }
    }
    out
}

// ---------------------------------------------------------------------------

// ---------------------------------------------------------------------------
// HTTP server

/// What `/metrics` serves; called once per scrape.
pub type MetricsSource = Arc<dyn Fn() -> String + Send + Sync>;

/// Why the metrics endpoint did not start.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The address cannot be listened on (in use, not local, no permission).
    #[error(
        "prometheus listen {addr}: {} (hint: set [control].prometheus to another \
         address, or \"\" to turn it off)",
        os_reason(source)
    )]
    Listen { addr: SocketAddr, source: io::Error },
    /// The accept thread did not start.
    #[error("prometheus listen {addr}: cannot start its thread: {source}")]
    Thread { addr: SocketAddr, source: io::Error },
}

/// An OS error's text without the "(os error N)" tail it carries.
fn os_reason(e: &io::Error) -> String {
    let text = e.to_string();
    match text.rfind(" (os error ") {
        Some(i) => text.get(..i).unwrap_or(&text).to_string(),
        None => text,
    }
}

/// The HTTP endpoint Prometheus scrapes. Dropping it stops the accept loop
/// and closes the listener; requests in flight finish on their own threads.
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    server: Server,
}

impl MetricsServer {
    /// Listens on `addr` and answers `GET /metrics` with `source()`
    /// (Content-Type [`CONTENT_TYPE`]), `GET /` with a short page pointing
    /// to `/metrics`; `HEAD` works on both. Other paths get 404, other
    /// methods 405. One request per connection (`Connection: close`).
    pub fn start(addr: SocketAddr, source: MetricsSource) -> Result<MetricsServer, MetricsError> {
        let listen = |source| MetricsError::Listen { addr, source };
        let listener = TcpListener::bind(addr).map_err(listen)?;
        let local = listener.local_addr().map_err(listen)?;
        let limits = Limits {
            max_connections: MAX_CONNECTIONS,
            read_timeout: READ_TIMEOUT,
            write_timeout: WRITE_TIMEOUT,
        };
        let refusal = response(
            503,
            "text/plain; charset=utf-8",
            b"too many connections\n",
            false,
            "Retry-After: 1\r\n",
        );
        let server = Server::start(
            "rampart-metrics",
            listener,
            limits,
            refusal,
            move |stream, _stop: &_| serve(stream, &source),
        )
        .map_err(|source| MetricsError::Thread { addr, source })?;
        Ok(MetricsServer {
            addr: local,
            server,
        })
    }

    /// The bound address (with the port the system chose for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections answered 503 because [`MAX_CONNECTIONS`] were served.
    pub fn refused(&self) -> u64 {
        self.server.refused()
    }
}

/// Why no request could be routed.
#[derive(Debug, PartialEq, Eq)]
enum HeadError {
    /// The client closed or reset before sending anything useful.
    Closed,
    /// Not an HTTP/1.x request head.
    Garbage,
    /// No end of head within [`MAX_HEAD_BYTES`], or more than
    /// [`MAX_HEADERS`] fields.
    TooLarge,
    /// No end of head within [`READ_TIMEOUT`].
    Timeout,
}

/// The request line's parts routing needs.
#[derive(Debug, PartialEq, Eq)]
struct Head {
    method: String,
    /// The target's path, without query or fragment.
    path: String,
}

fn serve(mut stream: TcpStream, source: &MetricsSource) {
    let _ = stream.set_nodelay(true);
    let reply = match read_head(&mut stream, Instant::now() + READ_TIMEOUT) {
        Ok(head) => route(&head, source),
        Err(HeadError::Closed) => return,
        Err(HeadError::Garbage) => plain(400, "bad request\n"),
        Err(HeadError::TooLarge) => plain(431, "request head too large\n"),
        Err(HeadError::Timeout) => plain(408, "request timeout\n"),
    };
    if stream.write_all(&reply).is_err() {
        return;
    }
    let _ = stream.flush();
    linger(&mut stream);
}

/// Reads until the head is complete, whole within `deadline`. The parser
/// sees every read, so a client speaking something else (TLS, a wrong
/// protocol) is answered at once.
fn read_head(stream: &mut TcpStream, deadline: Instant) -> Result<Head, HeadError> {
    let mut buf = [0u8; MAX_HEAD_BYTES];
    let mut len = 0usize;
    loop {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Err(HeadError::Timeout);
        }
        if stream.set_read_timeout(Some(remaining)).is_err() {
            return Err(HeadError::Closed);
        }
        let Some(free) = buf.get_mut(len..).filter(|f| !f.is_empty()) else {
            return Err(HeadError::TooLarge);
        };
        let n = match stream.read(free) {
            Ok(0) if len == 0 => return Err(HeadError::Closed),
            Ok(0) => return Err(HeadError::Garbage),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e)
                if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::TimedOut =>
            {
                return Err(HeadError::Timeout)
            }
            Err(_) => return Err(HeadError::Closed),
        };
        len = len.saturating_add(n).min(MAX_HEAD_BYTES);
        if let Some(head) = parse_head(buf.get(..len).unwrap_or_default())? {
            return Ok(head);
        }
    }
}

/// The head in `bytes` if it is complete, `None` if more is needed.
fn parse_head(bytes: &[u8]) -> Result<Option<Head>, HeadError> {
    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut fields);
    match req.parse(bytes) {
        Ok(httparse::Status::Partial) => return Ok(None),
        Ok(httparse::Status::Complete(_)) => {}
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(_) => return Err(HeadError::Garbage),
    }
    let (Some(method), Some(target)) = (req.method, req.path) else {
        return Err(HeadError::Garbage);
    };
    // httparse admits obs-text (bytes past ASCII) in the target and in
    // field values; this server answers only printable ASCII targets and
    // UTF-8 values.
    let values_ok = req
        .headers
        .iter()
        .all(|h| std::str::from_utf8(h.value).is_ok());
    if !values_ok || !target.bytes().all(|b| (0x21..0x7f).contains(&b)) {
        return Err(HeadError::Garbage);
    }
    let path = origin_path(target).ok_or(HeadError::Garbage)?;
    let path = path.split(['?', '#']).next().unwrap_or(path);
    Ok(Some(Head {
        method: method.to_string(),
        path: path.to_string(),
    }))
}

/// The path of a target in origin form (`/metrics`) or absolute form
/// (`http://host:port/metrics`), RFC 9112 §3.2.
fn origin_path(target: &str) -> Option<&str> {
    if target.starts_with('/') {
        return Some(target);
    }
    let rest = target
        .strip_prefix("http://")
        .or_else(|| target.strip_prefix("https://"))?;
    Some(rest.find('/').map_or("/", |i| rest.get(i..).unwrap_or("/")))
}

/// The response to a complete head.
fn route(head: &Head, source: &MetricsSource) -> Vec<u8> {
    let path = head.path.as_str();
    let head_only = head.method == "HEAD";
    if head.method != "GET" && !head_only {
        return match path {
            "/metrics" | "/" => response(
                405,
                "text/plain; charset=utf-8",
                b"method not allowed\n",
                false,
                "Allow: GET, HEAD\r\n",
            ),
            _ => plain(404, "not found\n"),
        };
    }
    match path {
        "/metrics" => match panic::catch_unwind(AssertUnwindSafe(|| source())) {
            Ok(body) => response(200, CONTENT_TYPE, body.as_bytes(), head_only, ""),
            Err(_) => plain(500, "metrics unavailable\n"),
        },
        "/" => response(
            200,
            "text/html; charset=utf-8",
            INDEX_PAGE.as_bytes(),
            head_only,
            "",
        ),
        _ => plain(404, "not found\n"),
    }
}

const INDEX_PAGE: &str = "<!DOCTYPE html>\n<html><head><title>rampart</title></head>\
<body><h1>rampart</h1><p>Prometheus metrics: <a href=\"/metrics\">/metrics</a></p></body></html>\n";

fn plain(status: u16, body: &str) -> Vec<u8> {
    response(
        status,
        "text/plain; charset=utf-8",
        body.as_bytes(),
        false,
        "",
    )
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}

/// A whole response; `extra` is more header lines, each ending in CRLF.
/// For HEAD the length is the body's, the body is left out.
fn response(status: u16, content_type: &str, body: &[u8], head_only: bool, extra: &str) -> Vec<u8> {
    let mut head = String::with_capacity(160);
    let _ = write!(
        head,
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n{extra}\r\n",
        reason(status),
        body.len()
    );
    let mut out = head.into_bytes();
    if !head_only {
        out.extend_from_slice(body);
    }
    out
}

/// Ends the connection gracefully: no more writes, then read (and discard)
/// what the client still sends, briefly, so the close does not turn into a
/// reset that could overtake the response.
fn linger(stream: &mut TcpStream) {
    if stream.shutdown(Shutdown::Write).is_err() {
        return;
    }
    let deadline = Instant::now() + LINGER_TIME;
    let mut sink = [0u8; 4096];
    let mut total = 0usize;
    while total < LINGER_BYTES {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() || stream.set_read_timeout(Some(remaining)).is_err() {
            return;
        }
        match stream.read(&mut sink) {
            Ok(0) => return,
            Ok(n) => total += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
mod tests {
    use super::*;
    use model::StatsReport;
    use prometheus_parse::{Scrape, Value};
    use std::collections::{BTreeMap, HashMap, HashSet};
    use std::thread;

    const QUOTED: &str = "v6 \"edge\" svc";

    fn worker(id: u16, base: u64) -> WorkerReport {
        let drops = [("malformed", 0), ("no_vip", base + 3), ("no_backend", 0)];
        let events = [("syn_cookies_sent", base + 5), ("rst_sent", 0)];
        WorkerReport {
            worker: id,
            rx_packets: base + 1000,
            tx_packets: base + 990,
            rx_bytes: base + 64_000,
            tx_bytes: base + 63_000,
            consumed: base + 7,
            originated_packets: base + 11,
            handovers_out: base + 2,
            handovers_in: base + 4,
            active_conns: base + 20,
            new_conns_per_sec: 1.5,
            drops: drops.iter().map(|&(k, v)| (k.to_string(), v)).collect(),
            events: events.iter().map(|&(k, v)| (k.to_string(), v)).collect(),
        }
    }

    fn backend(address: &str, state: &str, health: &str, base: u64) -> BackendReport {
        BackendReport {
            address: address.to_string(),
            vips: vec!["web".to_string()],
            state: state.to_string(),
            health: health.to_string(),
            admin: None,
            packets_in: base + 1,
            packets_out: base + 2,
            bytes_in: base + 3,
            bytes_out: base + 4,
            conns_total: base + 5,
            conns_active: base + 6,
            new_conns_per_sec: 0.25,
        }
    }

    fn report() -> StatsReport {
        StatsReport {
            uptime_secs: 12.5,
            generation: 7,
            reloads: 2,
            reload_failures: 1,
            workers: vec![worker(0, 0), worker(1, 100)],
            vips: vec![
                VipReport {
                    name: "web".into(),
                    address: "198.18.0.10:80".into(),
                    protocol: "tcp".into(),
                    mode: "nat".into(),
                    retired: false,
                    packets_in: 500,
                    packets_out: 450,
                    bytes_in: 40_000,
                    bytes_out: 90_000,
                    conns_total: 30,
                    conns_active: 12,
                    new_conns_per_sec: 2.75,
                    backends_up: 1,
                    backends_total: 2,
                },
                VipReport {
                    name: QUOTED.into(),
                    address: "[2001:2::10]:443".into(),
                    protocol: "udp".into(),
                    mode: "fullnat".into(),
                    retired: true,
                    packets_in: 9,
                    packets_out: 8,
                    bytes_in: 900,
                    bytes_out: 800,
                    conns_total: 3,
                    conns_active: 1,
                    new_conns_per_sec: 0.0,
                    backends_up: 0,
                    backends_total: 1,
                },
            ],
            backends: vec![
                backend("198.18.1.1:8080", "up", "up", 0),
                backend("198.18.1.2:8080", "drain", "up", 10),
                backend("[2001:2::1:1]:443", "down", "unchecked", 20),
            ],
        }
    }

    fn scrape(text: &str) -> Scrape {
        Scrape::parse(text.lines().map(|l| Ok(l.to_string()))).unwrap()
    }

    /// prometheus-parse hands label values back as written; undo the
    /// format's escapes.
    fn unescape(v: &str) -> String {
        let mut out = String::new();
        let mut it = v.chars();
        while let Some(c) = it.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match it.next() {
                Some('n') => out.push('\n'),
                Some(c) => out.push(c),
                None => panic!("dangling backslash in {v:?}"),
            }
        }
        out
    }

    fn value(v: &Value) -> f64 {
        match v {
            Value::Counter(x) | Value::Gauge(x) | Value::Untyped(x) => *x,
            other => panic!("unexpected {other:?}"),
        }
    }

    /// The one sample of `metric` whose labels include `labels`.
    fn one<'a>(
        s: &'a Scrape,
        metric: &str,
        labels: &[(&str, &str)],
    ) -> &'a prometheus_parse::Sample {
        let hits: Vec<_> = s
            .samples
            .iter()
            .filter(|x| x.metric == metric)
            .filter(|x| {
                labels
                    .iter()
                    .all(|(k, v)| x.labels.get(k).map(unescape).as_deref() == Some(*v))
            })
            .collect();
        assert_eq!(hits.len(), 1, "{metric} {labels:?}: {hits:?}");
        hits[0]
    }

    fn val(s: &Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
        value(&one(s, metric, labels).value)
    }

    #[test]
    fn parses_with_prometheus_parse() {
        let text = render(&report());
        let s = scrape(&text);

        assert_eq!(val(&s, "rampart_uptime_seconds", &[]), 12.5);
        assert_eq!(val(&s, "rampart_config_generation", &[]), 7.0);
        assert_eq!(val(&s, "rampart_reloads_total", &[]), 2.0);
        assert_eq!(val(&s, "rampart_reload_failures_total", &[]), 1.0);

        assert_eq!(
            val(&s, "rampart_rx_packets_total", &[("worker", "1")]),
            1100.0
        );
        assert_eq!(
            val(&s, "rampart_tx_bytes_total", &[("worker", "0")]),
            63_000.0
        );
        assert_eq!(
            val(&s, "rampart_handovers_in_total", &[("worker", "1")]),
            104.0
        );
        assert_eq!(
            val(&s, "rampart_active_connections", &[("worker", "0")]),
            20.0
        );
        let drop = [("worker", "1"), ("reason", "no_vip")];
        assert_eq!(val(&s, "rampart_drops_total", &drop), 103.0);
        // Zero reasons are present from the start.
        let zero = [("worker", "0"), ("reason", "no_backend")];
        assert_eq!(val(&s, "rampart_drops_total", &zero), 0.0);
        let drops = s
            .samples
            .iter()
            .filter(|x| x.metric == "rampart_drops_total");
        assert_eq!(drops.count(), 6);
        let ev = [("worker", "0"), ("event", "syn_cookies_sent")];
        assert_eq!(val(&s, "rampart_events_total", &ev), 5.0);

        let web_in = [("vip", "web"), ("direction", "in")];
        let sample = one(&s, "rampart_vip_packets_total", &web_in);
        assert_eq!(sample.value, Value::Counter(500.0));
        assert_eq!(sample.labels.get("address"), Some("198.18.0.10:80"));
        assert_eq!(sample.labels.get("protocol"), Some("tcp"));
        assert_eq!(sample.labels.get("mode"), Some("nat"));
        let web_out = [("vip", "web"), ("direction", "out")];
        assert_eq!(val(&s, "rampart_vip_bytes_total", &web_out), 90_000.0);
        let web = [("vip", "web")];
        assert_eq!(
            one(&s, "rampart_vip_new_connections_per_second", &web).value,
            Value::Gauge(2.75)
        );
        assert_eq!(val(&s, "rampart_vip_backends_up", &web), 1.0);
        assert_eq!(val(&s, "rampart_vip_backends", &web), 2.0);
        assert_eq!(val(&s, "rampart_vip_retired", &web), 0.0);

        // The quoted name survives escaping; the IPv6 address keeps its
        // brackets.
        let v6 = [("vip", QUOTED)];
        let sample = one(&s, "rampart_vip_connections_total", &v6);
        assert_eq!(sample.value, Value::Counter(3.0));
        assert_eq!(sample.labels.get("address"), Some("[2001:2::10]:443"));
        assert_eq!(val(&s, "rampart_vip_retired", &v6), 1.0);
        assert!(text.contains(r#"vip="v6 \"edge\" svc""#), "{text}");

        let up = [("backend", "198.18.1.1:8080")];
        let drain = [("backend", "198.18.1.2:8080")];
        let down = [("backend", "[2001:2::1:1]:443")];
        assert_eq!(val(&s, "rampart_backend_up", &up), 1.0);
        assert_eq!(val(&s, "rampart_backend_up", &drain), 0.0);
        assert_eq!(val(&s, "rampart_backend_up", &down), 0.0);
        let b_in = [("backend", "198.18.1.2:8080"), ("direction", "in")];
        assert_eq!(val(&s, "rampart_backend_packets_total", &b_in), 11.0);
        let b_out = [("backend", "[2001:2::1:1]:443"), ("direction", "out")];
        assert_eq!(val(&s, "rampart_backend_bytes_total", &b_out), 24.0);
        assert_eq!(val(&s, "rampart_backend_connections_total", &down), 25.0);
        assert_eq!(val(&s, "rampart_backend_active_connections", &down), 26.0);
        for (b, current) in [
            ("198.18.1.1:8080", "up"),
            ("198.18.1.2:8080", "drain"),
            ("[2001:2::1:1]:443", "down"),
        ] {
            for state in BACKEND_STATES {
                let l = [("backend", b), ("state", state)];
                let want = if state == current { 1.0 } else { 0.0 };
                assert_eq!(val(&s, "rampart_backend_state", &l), want, "{b} {state}");
            }
        }
        let h = [("backend", "[2001:2::1:1]:443"), ("health", "unchecked")];
        assert_eq!(val(&s, "rampart_backend_health", &h), 1.0);

        // Every sample's family has HELP and TYPE (an untyped value means a
        // missing TYPE line).
        for x in &s.samples {
            assert!(s.docs.contains_key(&x.metric), "no HELP for {}", x.metric);
            assert!(
                matches!(x.value, Value::Counter(_) | Value::Gauge(_)),
                "no TYPE for {}",
                x.metric
            );
            let counter = x.metric.ends_with("_total");
            assert_eq!(
                matches!(x.value, Value::Counter(_)),
                counter,
                "{}",
                x.metric
            );
        }
        for name in [
            "rampart_rx_packets_total",
            "rampart_tx_packets_total",
            "rampart_rx_bytes_total",
            "rampart_tx_bytes_total",
            "rampart_consumed_packets_total",
            "rampart_originated_packets_total",
            "rampart_handovers_out_total",
            "rampart_handovers_in_total",
            "rampart_active_connections",
            "rampart_drops_total",
            "rampart_events_total",
            "rampart_vip_packets_total",
            "rampart_vip_bytes_total",
            "rampart_vip_connections_total",
            "rampart_vip_active_connections",
            "rampart_vip_new_connections_per_second",
            "rampart_vip_backends_up",
            "rampart_vip_backends",
            "rampart_vip_retired",
            "rampart_backend_packets_total",
            "rampart_backend_bytes_total",
            "rampart_backend_connections_total",
            "rampart_backend_active_connections",
            "rampart_backend_new_connections_per_second",
            "rampart_backend_up",
            "rampart_backend_state",
            "rampart_uptime_seconds",
            "rampart_config_generation",
            "rampart_reloads_total",
            "rampart_reload_failures_total",
        ] {
            assert!(s.samples.iter().any(|x| x.metric == name), "{name} missing");
        }
        check_strict(&text);
    }

    /// A stricter reading of format 0.0.4 than prometheus-parse's: HELP
    /// then TYPE once per family, its samples right after, names and label
    /// syntax as the format defines them, escapes only `\\ \" \n`, values
    /// as Go parses them, no series twice.
    fn check_strict(text: &str) {
        fn is_name(s: &str, colon: bool) -> bool {
            let mut b = s.bytes();
            let first = b.next();
            first.is_some_and(|c| c.is_ascii_alphabetic() || c == b'_' || (colon && c == b':'))
                && b.all(|c| c.is_ascii_alphanumeric() || c == b'_' || (colon && c == b':'))
        }
        assert!(text.ends_with('\n'));
        let mut seen_families = HashSet::new();
        let mut series = HashSet::new();
        let mut current: Option<(String, bool)> = None; // (family, typed)
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').unwrap();
                assert!(is_name(name, true), "{line}");
                assert!(!help.is_empty() && !help.contains('\n'));
                assert!(
                    seen_families.insert(name.to_string()),
                    "family twice: {line}"
                );
                current = Some((name.to_string(), false));
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                let (family, typed) = current.as_mut().expect("TYPE before HELP");
                assert_eq!(name, family.as_str(), "TYPE of another family: {line}");
                assert!(!*typed, "TYPE twice: {line}");
                assert!(kind == "counter" || kind == "gauge", "{line}");
                *typed = true;
            } else {
                assert!(!line.starts_with('#') && !line.is_empty(), "{line:?}");
                let (family, typed) = current.as_ref().expect("sample before HELP");
                assert!(*typed, "sample before TYPE: {line}");
                let name_end = line.find(['{', ' ']).unwrap();
                let name = &line[..name_end];
                assert_eq!(name, family.as_str(), "sample outside its family: {line}");
                let mut rest = &line[name_end..];
                let mut labels = BTreeMap::new();
                if let Some(l) = rest.strip_prefix('{') {
                    rest = l;
                    loop {
                        let (k, after) = rest.split_once("=\"").unwrap();
                        assert!(is_name(k, false), "label name {k:?} in {line}");
                        let mut value = String::new();
                        let mut chars = after.char_indices();
                        let end = loop {
                            let (i, c) = chars.next().expect("unterminated label value");
                            match c {
                                '"' => break i,
                                '\\' => match chars.next().unwrap().1 {
                                    '\\' => value.push('\\'),
                                    '"' => value.push('"'),
                                    'n' => value.push('\n'),
                                    e => panic!("bad escape \\{e} in {line}"),
                                },
                                c => value.push(c),
                            }
                        };
                        assert!(labels.insert(k.to_string(), value).is_none(), "{line}");
                        rest = &after[end + 1..];
                        if let Some(r) = rest.strip_prefix(',') {
                            rest = r;
                        } else {
                            rest = rest.strip_prefix('}').expect("label set not closed");
                            break;
                        }
                    }
                }
                let v = rest.strip_prefix(' ').expect("no value");
                let ok = matches!(v, "NaN" | "+Inf" | "-Inf") || v.parse::<f64>().is_ok();
                assert!(ok && !v.contains(' '), "value {v:?} in {line}");
                assert!(
                    series.insert((name.to_string(), labels)),
                    "series twice: {line}"
                );
            }
        }
    }

    #[test]
    fn escapes_label_values() {
        let mut r = report();
        r.vips[0].name = "back\\slash \"q\"\nline".into();
        let text = render(&r);
        check_strict(&text);
        assert!(text.contains(r#"vip="back\\slash \"q\"\nline""#), "{text}");
    }

    #[test]
    fn floats_in_go_spelling() {
        let mut r = report();
        r.uptime_secs = f64::INFINITY;
        r.vips[0].new_conns_per_sec = f64::NAN;
        r.backends[0].new_conns_per_sec = f64::NEG_INFINITY;
        r.workers[0].new_conns_per_sec = 0.1;
        let text = render(&r);
        check_strict(&text);
        assert!(text.contains("rampart_uptime_seconds +Inf\n"));
        assert!(text.contains("rampart_new_connections_per_second{worker=\"0\"} 0.1\n"));
        assert!(text.contains("} NaN\n"));
        assert!(text.contains("} -Inf\n"));
    }

    #[test]
    fn empty_report_is_valid() {
        let text = render(&StatsReport::default());
        check_strict(&text);
        let s = scrape(&text);
        assert_eq!(val(&s, "rampart_reloads_total", &[]), 0.0);
        assert!(text.contains("# TYPE rampart_drops_total counter\n"));
    }

    #[test]
    fn vips_with_equal_labels_are_one_series() {
        let mut r = report();
        let mut old = r.vips[0].clone();
        old.retired = true;
        old.packets_in = 1;
        old.conns_active = 4;
        old.backends_up = 9;
        r.vips.insert(0, old);
        let text = render(&r);
        check_strict(&text);
        let s = scrape(&text);
        let web_in = [("vip", "web"), ("direction", "in")];
        assert_eq!(val(&s, "rampart_vip_packets_total", &web_in), 501.0);
        let web = [("vip", "web")];
        assert_eq!(val(&s, "rampart_vip_active_connections", &web), 16.0);
        assert_eq!(val(&s, "rampart_vip_backends_up", &web), 1.0);
        assert_eq!(val(&s, "rampart_vip_retired", &web), 0.0);
    }

    #[test]
    fn promtool_accepts_the_exposition() {
        let Ok(out) = std::process::Command::new("promtool")
            .arg("--version")
            .output()
        else {
            eprintln!("promtool not installed; skipping");
            return;
        };
        assert!(out.status.success());
        let mut child = std::process::Command::new("promtool")
            .args(["check", "metrics"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(render(&report()).as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // --- HTTP ---------------------------------------------------------------

    struct Reply {
        status: u16,
        headers: HashMap<String, String>,
        body: Vec<u8>,
    }

    fn read_reply(mut c: TcpStream) -> Reply {
        let mut raw = Vec::new();
        // A reset after the whole response is fine; what was read counts.
        let _ = c.read_to_end(&mut raw);
        let end = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no head in {:?}", String::from_utf8_lossy(&raw)));
        let head = std::str::from_utf8(&raw[..end]).unwrap();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        let mut parts = status_line.splitn(3, ' ');
        assert_eq!(parts.next(), Some("HTTP/1.1"), "{status_line}");
        let status = parts.next().unwrap().parse().unwrap();
        let headers = lines
            .map(|l| {
                let (k, v) = l.split_once(": ").unwrap();
                (k.to_ascii_lowercase(), v.to_string())
            })
            .collect();
        Reply {
            status,
            headers,
            body: raw[end + 4..].to_vec(),
        }
    }

    fn connect(addr: SocketAddr) -> TcpStream {
        let c = TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
        c
    }

    fn request(addr: SocketAddr, raw: &[u8]) -> Reply {
        let mut c = connect(addr);
        // The server may answer (and stop reading) before all of an
        // oversized request is written.
        let _ = c.write_all(raw);
        let _ = c.shutdown(Shutdown::Write);
        read_reply(c)
    }

    fn get(addr: SocketAddr, path: &str) -> Reply {
        let raw = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: test\r\n\r\n");
        request(addr, raw.as_bytes())
    }

    fn server() -> MetricsServer {
        let source: MetricsSource = Arc::new(|| render(&report()));
        MetricsServer::start("127.0.0.1:0".parse().unwrap(), source).unwrap()
    }

    fn assert_metrics(addr: SocketAddr) {
        let r = get(addr, "/metrics");
        assert_eq!(r.status, 200);
        assert_eq!(r.headers["content-type"], CONTENT_TYPE);
        assert_eq!(r.headers["connection"], "close");
        assert_eq!(r.headers["content-length"], r.body.len().to_string());
        let text = String::from_utf8(r.body).unwrap();
        check_strict(&text);
        let s = scrape(&text);
        let web_in = [("vip", "web"), ("direction", "in")];
        assert_eq!(val(&s, "rampart_vip_packets_total", &web_in), 500.0);
    }

    #[test]
    fn serves_metrics_and_refuses_the_rest() {
        let srv = server();
        let addr = srv.local_addr();
        assert_ne!(addr.port(), 0);
        assert_metrics(addr);

        let r = request(
            addr,
            format!("HEAD /metrics HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes(),
        );
        assert_eq!(r.status, 200);
        assert!(r.body.is_empty());
        assert_eq!(
            r.headers["content-length"],
            render(&report()).len().to_string()
        );

        // Query strings, HTTP/1.0, bare LF line ends and absolute form.
        assert_eq!(get(addr, "/metrics?x=1").status, 200);
        assert_eq!(request(addr, b"GET /metrics HTTP/1.0\n\n").status, 200);
        let abs = format!("GET http://{addr}/metrics HTTP/1.1\r\nHost: {addr}\r\n\r\n");
        assert_eq!(request(addr, abs.as_bytes()).status, 200);

        let r = get(addr, "/");
        assert_eq!(r.status, 200);
        assert!(String::from_utf8(r.body).unwrap().contains("/metrics"));

        assert_eq!(get(addr, "/nope").status, 404);
        assert_eq!(get(addr, "/metrics/extra").status, 404);

        let post = b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
        let r = request(addr, post);
        assert_eq!(r.status, 405);
        assert_eq!(r.headers["allow"], "GET, HEAD");
        assert_eq!(request(addr, b"DELETE / HTTP/1.1\r\n\r\n").status, 405);

        for garbage in [
            &b"hello there\r\n\r\n"[..],
            b"GET /metrics\r\n\r\n",
            b"GET /metrics HTTP/2.0\r\n\r\n",
            b"GET  /metrics HTTP/1.1\r\n\r\n",
            b"GET /metrics HTTP/1.1\r\nno colon here\r\n\r\n",
            b"GET /metrics HTTP/1.1\r\nBad Name: x\r\n\r\n",
            b"GET /metrics HTTP/1.1\r\n folded: x\r\n\r\n",
            b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
            b"GET /m\xc3\xa9trics HTTP/1.1\r\n\r\n",
            b"GET /metrics HTTP/1.1\r\nX: \xff\r\n\r\n",
            b"\r\n\r\n",
        ] {
            let r = request(addr, garbage);
            assert_eq!(r.status, 400, "{:?}", String::from_utf8_lossy(garbage));
        }
        // A client that sends half a request line and closes.
        assert_eq!(request(addr, b"GET /met").status, 400);

        let mut big = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nX-Big: ").into_bytes();
        big.extend(std::iter::repeat_n(b'a', 3 * MAX_HEAD_BYTES));
        big.extend_from_slice(b"\r\n\r\n");
        assert_eq!(request(addr, &big).status, 431);

        // A client that connects and leaves at once.
        drop(connect(addr));

        assert_metrics(addr);
    }

    #[test]
    fn connections_beyond_the_limit_get_503() {
        let srv = server();
        let addr = srv.local_addr();
        let idle: Vec<TcpStream> = (0..MAX_CONNECTIONS).map(|_| connect(addr)).collect();
        // Accepted in order: the idle ones take every slot first.
        let extra = connect(addr);
        let r = read_reply(extra);
        assert_eq!(r.status, 503);
        assert_eq!(r.headers["retry-after"], "1");
        assert_eq!(srv.refused(), 1);
        drop(idle);
        // Their threads see the close and free the slots.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let r = get(addr, "/metrics");
            if r.status == 200 {
                break;
            }
            assert_eq!(r.status, 503);
            assert!(Instant::now() < deadline, "slots never freed");
            thread::sleep(Duration::from_millis(20));
        }
        assert_metrics(addr);
    }

    #[test]
    fn a_slow_client_does_not_block_a_scrape() {
        let srv = server();
        let addr = srv.local_addr();
        let mut slow = connect(addr);
        slow.write_all(b"GET /metrics HTTP/1.1\r\nHo").unwrap();
        assert_metrics(addr);
        slow.write_all(b"st: x\r\n\r\n").unwrap();
        assert_eq!(read_reply(slow).status, 200);
    }

    #[test]
    fn a_silent_client_gets_408() {
        let srv = server();
        let addr = srv.local_addr();
        let mut c = connect(addr);
        c.write_all(b"GET /metrics HTTP/1.1\r\n").unwrap();
        let t = Instant::now();
        assert_eq!(read_reply(c).status, 408);
        let waited = t.elapsed();
        assert!(
            waited >= READ_TIMEOUT - Duration::from_millis(100),
            "{waited:?}"
        );
        assert!(waited < READ_TIMEOUT + Duration::from_secs(3), "{waited:?}");
    }

    #[test]
    fn a_panicking_source_gets_500() {
        let source: MetricsSource = Arc::new(|| panic!("no stats"));
        let srv = MetricsServer::start("127.0.0.1:0".parse().unwrap(), source).unwrap();
        assert_eq!(get(srv.local_addr(), "/metrics").status, 500);
        assert_eq!(get(srv.local_addr(), "/").status, 200);
    }

    #[test]
    fn bind_failure_names_the_address() {
        let srv = server();
        let addr = srv.local_addr();
        let source: MetricsSource = Arc::new(String::new);
        let err = MetricsServer::start(addr, source).unwrap_err();
        assert!(matches!(err, MetricsError::Listen { .. }), "{err:?}");
        let err = err.to_string();
        assert!(
            err.starts_with(&format!("prometheus listen {addr}: ")),
            "{err}"
        );
        assert!(err.contains("in use"), "{err}");
        assert!(!err.contains("os error"), "{err}");
        assert!(err.ends_with("or \"\" to turn it off)"), "{err}");
    }

    #[test]
    fn drop_stops_the_server() {
        let srv = server();
        let addr = srv.local_addr();
        assert_metrics(addr);
        let t = Instant::now();
        drop(srv);
        assert!(t.elapsed() < Duration::from_secs(2));
        assert!(TcpStream::connect(addr).is_err());
    }

    #[test]
    fn head_parsing() {
        let head = |method: &str, path: &str| {
            Ok(Some(Head {
                method: method.into(),
                path: path.into(),
            }))
        };
        assert_eq!(
            parse_head(b"GET /metrics HTTP/1.1\r\n\r\n"),
            head("GET", "/metrics")
        );
        assert_eq!(parse_head(b"HEAD /?a=b#c HTTP/1.0\n\n"), head("HEAD", "/"));
        let abs = b"GET https://h:9/metrics?x HTTP/1.1\r\n\r\n";
        assert_eq!(parse_head(abs), head("GET", "/metrics"));
        assert_eq!(
            parse_head(b"GET http://h HTTP/1.1\r\n\r\n"),
            head("GET", "/")
        );
        assert_eq!(parse_head(b"GET / HTTP/1.1\r\nA: b\r\n"), Ok(None));
        assert_eq!(parse_head(b"GET /met"), Ok(None));
        let e = Err(HeadError::Garbage);
        assert_eq!(parse_head(b"GET * HTTP/1.1\r\n\r\n"), e);
        assert_eq!(parse_head(b"GET h:80 HTTP/1.1\r\n\r\n"), e);
    }

    #[test]
    fn too_many_header_fields_get_431() {
        let srv = server();
        let addr = srv.local_addr();
        let mut raw = format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\n");
        for i in 1..MAX_HEADERS {
            raw.push_str(&format!("X-{i}: y\r\n"));
        }
        assert_eq!(request(addr, format!("{raw}\r\n").as_bytes()).status, 200);
        raw.push_str("X-Last: y\r\n\r\n");
        assert_eq!(request(addr, raw.as_bytes()).status, 431);
    }
}
