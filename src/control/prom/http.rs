//! The metrics listener: one request per connection on the control
//! plane's bounded server, request heads through httparse, within the
//! limits below (see the module above for the answers it gives).

use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::CONTENT_TYPE;
use crate::control::server::{
    timed_out, write_within, Limits, ListenerStats, Refusal, RefusalCounter, Server,
};

/// Longest request head (request line and headers) the server reads.
pub const MAX_HEAD_BYTES: usize = 8 * 1024;
/// Most header fields in a request head.
pub const MAX_HEADERS: usize = 64;
/// Time a client has to send its whole request head.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Time the whole response may take to send.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 8;

/// After the response, how long and how much the server keeps reading what
/// the client still sends, so that closing with unread data (which makes the
/// kernel send a reset) does not destroy the response in flight.
const LINGER_TIME: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 256 * 1024;

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
    stats: Arc<ListenerStats>,
}

impl MetricsServer {
    /// Listens on `addr` and answers `GET /metrics` with `source()`
    /// (Content-Type [`CONTENT_TYPE`]), `GET /` with a short page pointing
    /// to `/metrics`; `HEAD` works on both. Other paths get 404, other
    /// methods 405. One request per connection (`Connection: close`).
    /// Refusals are counted in `stats`. An address other than loopback is
    /// served as configured, with a warning in the log
    /// ([`exposure_warning`]).
    pub fn start(
        addr: SocketAddr,
        source: MetricsSource,
        stats: Arc<ListenerStats>,
    ) -> Result<MetricsServer, MetricsError> {
        let listen = |source| MetricsError::Listen { addr, source };
        let listener = TcpListener::bind(addr).map_err(listen)?;
        let local = listener.local_addr().map_err(listen)?;
        if let Some(w) = exposure_warning(local) {
            log::warn!("{w}");
        }
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
        let busy = RefusalCounter {
            stats: Arc::clone(&stats),
            refusal: Refusal::MetricsBusy,
        };
        let counters = Arc::clone(&stats);
        let server = Server::start(
            "rampart-metrics",
            listener,
            limits,
            refusal,
            busy,
            move |stream, _stop: &_| serve(stream, &source, &stats),
        )
        .map_err(|source| MetricsError::Thread { addr, source })?;
        Ok(MetricsServer {
            addr: local,
            server,
            stats: counters,
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

    /// Clients turned away for `r` since the start.
    pub fn refusals(&self, r: Refusal) -> u64 {
        self.stats.get(r)
    }
}

/// Why no request could be routed.
#[derive(Debug, PartialEq, Eq)]
pub enum HeadError {
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
pub struct Head {
    pub method: String,
    /// The target's path, without query or fragment.
    pub path: String,
}

/// The warning an address that is not loopback deserves: whoever reaches
/// it reads every VIP, backend and counter.
pub fn exposure_warning(addr: SocketAddr) -> Option<String> {
    if addr.ip().to_canonical().is_loopback() {
        return None;
    }
    Some(format!(
        "prometheus listens on {addr}, which is not a loopback address: the metrics \
         (VIPs, backends, counters) are open to every host that reaches it \
         ([control].prometheus; firewall it or use 127.0.0.1)"
    ))
}

fn serve(mut stream: TcpStream, source: &MetricsSource, stats: &ListenerStats) {
    let _ = stream.set_nodelay(true);
    let reply = match read_head(&mut stream, Instant::now() + READ_TIMEOUT) {
        Ok(head) => route(&head, source),
        Err(HeadError::Closed) => return,
        Err(HeadError::Garbage) => plain(400, "bad request\n"),
        Err(HeadError::TooLarge) => {
            stats.count(Refusal::MetricsTooLarge);
            plain(431, "request head too large\n")
        }
        Err(HeadError::Timeout) => {
            stats.count(Refusal::MetricsTimeout);
            plain(408, "request timeout\n")
        }
    };
    if let Err(e) = write_within(&mut stream, &reply, WRITE_TIMEOUT) {
        if timed_out(&e) {
            stats.count(Refusal::MetricsWriteTimeout);
        }
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

/// The head in `bytes` (everything read from the client so far) if it is
/// complete, `None` if more is needed. Public for the fuzz target
/// `http_request`, which feeds it the reads a client's bytes make.
pub fn parse_head(bytes: &[u8]) -> Result<Option<Head>, HeadError> {
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

/// The response to a complete head, with the body `source` gives for
/// `/metrics`.
pub fn route(head: &Head, source: &MetricsSource) -> Vec<u8> {
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
