//! The one bounded server behind the control plane's two listeners: the
//! Unix control socket ([`super::api`]) and the Prometheus endpoint
//! ([`super::prom`]). It owns what a listener open to clients that may be
//! slow, hostile or many needs, so the protocols above it own only their
//! framing:
//!
//! - accepting on a non-blocking listener that waits in `poll(2)` at most
//!   [`POLL_INTERVAL`] at a time, so a connection is taken at once and the
//!   stop flag set by dropping the [`Server`] is seen within that interval;
//! - at most [`Limits::max_connections`] connections served at once, each on
//!   its own thread, so one slow client holds up no other; a connection
//!   beyond that is sent the protocol's refusal, closed, and counted
//!   ([`Server::refused`], and its [`Refusal`] in the [`ListenerStats`]
//!   the exposition writes);
//! - every connection starts blocking with the read and write timeouts of
//!   its [`Limits`], so no read or write waits on a client forever. Deadlines
//!   that span reads (a whole request within so long) are the protocol's.
//!
//! Invariant: the connection count is raised only by the accept thread and
//! lowered when a connection's thread ends however it ends (or never
//! starts), so it never exceeds the bound and never leaks a slot.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// The longest the accept loop waits before it looks at the stop flag.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// A listening socket the server can accept from.
pub trait Listener: AsRawFd + Send + 'static {
    type Stream: Stream;
    fn accept_stream(&self) -> io::Result<Self::Stream>;
    fn set_nonblocking(&self, on: bool) -> io::Result<()>;
}

/// An accepted connection.
pub trait Stream: Read + Write + Send + 'static {
    fn set_nonblocking(&self, on: bool) -> io::Result<()>;
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()>;
    fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()>;
}

macro_rules! socket_impls {
    ($listener:ty, $stream:ty) => {
        impl Listener for $listener {
            type Stream = $stream;
            fn accept_stream(&self) -> io::Result<$stream> {
                self.accept().map(|(s, _)| s)
            }
            fn set_nonblocking(&self, on: bool) -> io::Result<()> {
                <$listener>::set_nonblocking(self, on)
            }
        }

        impl Stream for $stream {
            fn set_nonblocking(&self, on: bool) -> io::Result<()> {
                <$stream>::set_nonblocking(self, on)
            }
            fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
                <$stream>::set_read_timeout(self, t)
            }
            fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
                <$stream>::set_write_timeout(self, t)
            }
        }
    };
}

socket_impls!(TcpListener, TcpStream);
socket_impls!(UnixListener, UnixStream);

/// Why a listener turned a client away: one counter each in
/// [`ListenerStats`], exposed as `rampart_listener_refusals_total` with
/// the labels [`Refusal::listener`] and [`Refusal::reason`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Control socket: its client limit was reached.
    ControlBusy,
    /// Control socket: the peer's uid is neither root nor rampart's own.
    ControlNotPermitted,
    /// Control socket: a request line over its length limit.
    ControlTooLong,
    /// Control socket: no complete request line within the idle timeout.
    ControlIdle,
    /// Control socket: a client that did not read its answer within the
    /// write timeout.
    ControlWriteTimeout,
    /// Metrics endpoint: its connection limit was reached (503).
    MetricsBusy,
    /// Metrics endpoint: a request head over its size or field limit (431).
    MetricsTooLarge,
    /// Metrics endpoint: no complete request head in time (408).
    MetricsTimeout,
    /// Metrics endpoint: a client that did not read the response within
    /// the write timeout.
    MetricsWriteTimeout,
}

impl Refusal {
    pub const ALL: [Refusal; 9] = [
        Refusal::ControlBusy,
        Refusal::ControlNotPermitted,
        Refusal::ControlTooLong,
        Refusal::ControlIdle,
        Refusal::ControlWriteTimeout,
        Refusal::MetricsBusy,
        Refusal::MetricsTooLarge,
        Refusal::MetricsTimeout,
        Refusal::MetricsWriteTimeout,
    ];

    /// The `listener` label: `control` or `metrics`.
    pub fn listener(self) -> &'static str {
        match self {
            Refusal::ControlBusy
            | Refusal::ControlNotPermitted
            | Refusal::ControlTooLong
            | Refusal::ControlIdle
            | Refusal::ControlWriteTimeout => "control",
            Refusal::MetricsBusy
            | Refusal::MetricsTooLarge
            | Refusal::MetricsTimeout
            | Refusal::MetricsWriteTimeout => "metrics",
        }
    }

    /// The `reason` label.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::ControlBusy => "too_many_clients",
            Refusal::ControlNotPermitted => "not_permitted",
            Refusal::ControlTooLong => "too_long",
            Refusal::ControlIdle => "idle",
            Refusal::ControlWriteTimeout | Refusal::MetricsWriteTimeout => "write_timeout",
            Refusal::MetricsBusy => "too_many_connections",
            Refusal::MetricsTooLarge => "too_large",
            Refusal::MetricsTimeout => "timeout",
        }
    }
}

/// The refusal counters of the control plane's listeners, shared by the
/// servers that count and the stats report that shows them.
#[derive(Debug, Default)]
pub struct ListenerStats {
    counts: [AtomicU64; Refusal::ALL.len()],
}

impl ListenerStats {
    pub fn new() -> Arc<ListenerStats> {
        Arc::new(ListenerStats::default())
    }

    /// Counts one refusal.
    pub fn count(&self, r: Refusal) {
        if let Some(c) = self.counts.get(r as usize) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Refusals of kind `r` since the start.
    pub fn get(&self, r: Refusal) -> u64 {
        self.counts
            .get(r as usize)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }
}

/// Whether a failed write ran out of its time (a client that does not
/// read, or reads too slowly) rather than into a closed connection.
pub fn timed_out(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Bytes written at a time by [`write_within`].
const WRITE_CHUNK: usize = 64 * 1024;

/// Writes all of `bytes` within `limit` in total, however slowly the client
/// reads: a socket's write timeout bounds each write call only, and a
/// client taking a few bytes now and then would keep every call short.
/// Fails with `TimedOut` once the time is up. Leaves the stream's write
/// timeout at what was left of `limit`.
pub fn write_within<S: Stream>(stream: &mut S, bytes: &[u8], limit: Duration) -> io::Result<()> {
    let deadline = std::time::Instant::now() + limit;
    let mut rest = bytes;
    while !rest.is_empty() {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        stream.set_write_timeout(Some(left))?;
        let chunk = rest.get(..WRITE_CHUNK).unwrap_or(rest);
        match stream.write(chunk) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => rest = rest.get(n..).unwrap_or_default(),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Where a server counts the connections it refuses at its limit.
#[derive(Clone, Debug)]
pub struct RefusalCounter {
    pub stats: Arc<ListenerStats>,
    pub refusal: Refusal,
}

impl RefusalCounter {
    fn count(&self) {
        self.stats.count(self.refusal);
    }

    fn get(&self) -> u64 {
        self.stats.get(self.refusal)
    }
}

/// What one server allows.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Connections served at once.
    pub max_connections: usize,
    /// The read timeout each connection starts with.
    pub read_timeout: Duration,
    /// The write timeout each connection starts with.
    pub write_timeout: Duration,
}

/// Serves one connection on its thread; the flag is set when the server is
/// dropped, for protocols that keep a connection open between requests.
pub trait ConnHandler<S>: Fn(S, &AtomicBool) + Send + Sync + 'static {}
impl<S, F: Fn(S, &AtomicBool) + Send + Sync + 'static> ConnHandler<S> for F {}

/// A running server: an accept thread and a thread per connection.
/// Dropping it stops the accept loop and closes the listener; connections in
/// flight finish on their own threads, told by the stop flag.
pub struct Server {
    stop: Arc<AtomicBool>,
    refused: RefusalCounter,
    accept: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("refused", &self.refused())
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Serves `listener` on a thread named `name` (connections on
    /// `name-conn`), handing each admitted connection to `handler` and
    /// writing `refusal` to each one beyond the limit, counted in `refused`.
    pub fn start<L, H>(
        name: &str,
        listener: L,
        limits: Limits,
        refusal: Vec<u8>,
        refused: RefusalCounter,
        handler: H,
    ) -> io::Result<Server>
    where
        L: Listener,
        H: ConnHandler<L::Stream>,
    {
        listener.set_nonblocking(true)?;
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = Acceptor {
            conn_name: format!("{name}-conn"),
            limits,
            refusal,
            handler: Arc::new(handler),
            stop: Arc::clone(&stop),
            refused: refused.clone(),
            active: Arc::new(AtomicUsize::new(0)),
        };
        let accept = thread::Builder::new()
            .name(name.to_string())
            .spawn(move || acceptor.run(&listener))?;
        Ok(Server {
            stop,
            refused,
            accept: Some(accept),
        })
    }

    /// Connections refused because the limit was reached, since the start.
    pub fn refused(&self) -> u64 {
        self.refused.get()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

/// What the accept thread owns.
struct Acceptor<H> {
    conn_name: String,
    limits: Limits,
    refusal: Vec<u8>,
    handler: Arc<H>,
    stop: Arc<AtomicBool>,
    refused: RefusalCounter,
    active: Arc<AtomicUsize>,
}

/// Gives a connection's place back when its thread ends, or never starts.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl<H> Acceptor<H> {
    fn run<L: Listener>(&self, listener: &L)
    where
        H: ConnHandler<L::Stream>,
    {
        while !self.stop.load(Ordering::Relaxed) {
            match listener.accept_stream() {
                Ok(stream) => self.admit(stream),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => wait_readable(listener),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // Out of descriptors and the like: back off rather than spin.
                    log::debug!("{}: accept: {e}", self.conn_name);
                    thread::sleep(POLL_INTERVAL);
                }
            }
        }
    }

    fn admit<S: Stream>(&self, mut stream: S)
    where
        H: ConnHandler<S>,
    {
        // Only this thread raises the count, so check-then-add does not race.
        if self.active.load(Ordering::Relaxed) >= self.limits.max_connections {
            self.refused.count();
            log::debug!(
                "{}: refusing a connection, {} already served",
                self.conn_name,
                self.limits.max_connections
            );
            // Best effort and never blocking: the accept loop must not wait
            // on a client. A fresh socket's buffer takes a short refusal.
            let _ = stream.set_nonblocking(true);
            let _ = stream.write_all(&self.refusal);
            return;
        }
        self.active.fetch_add(1, Ordering::Relaxed);
        let slot = Slot(Arc::clone(&self.active));
        let handler = Arc::clone(&self.handler);
        let stop = Arc::clone(&self.stop);
        let limits = self.limits;
        let spawned = thread::Builder::new()
            .name(self.conn_name.clone())
            .spawn(move || {
                let _slot = slot;
                // Accepted sockets do not inherit the listener's O_NONBLOCK
                // on Linux, but other systems differ.
                let ready = stream.set_nonblocking(false).is_ok()
                    && stream.set_read_timeout(Some(limits.read_timeout)).is_ok()
                    && stream.set_write_timeout(Some(limits.write_timeout)).is_ok();
                if ready {
                    handler(stream, &stop);
                }
            });
        // On failure the closure, and with it the slot and the stream, is
        // dropped.
        if let Err(e) = spawned {
            log::debug!("{}: cannot start a connection thread: {e}", self.conn_name);
        }
    }
}

/// Returns when a connection is waiting on `listener`, or after
/// [`POLL_INTERVAL`].
fn wait_readable<L: AsRawFd>(listener: &L) {
    let mut pfd = libc::pollfd {
        fd: listener.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = libc::c_int::try_from(POLL_INTERVAL.as_millis()).unwrap_or(50);
    // SAFETY: `pfd` is one live, initialised pollfd and the count passed is
    // 1; the descriptor stays open since `listener` is borrowed.
    let n = unsafe { libc::poll(&mut pfd, 1, ms) };
    if n < 0 {
        // Interrupted or worse: never spin.
        thread::sleep(POLL_INTERVAL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Instant;

    const LIMITS: Limits = Limits {
        max_connections: 2,
        read_timeout: Duration::from_millis(200),
        write_timeout: Duration::from_millis(300),
    };

    /// A server on a fresh Unix socket whose handler reports each
    /// connection's timeouts, then echoes one line and holds the
    /// connection until the client closes or the server stops.
    fn echo(
        dir: &tempfile::TempDir,
    ) -> (Server, std::path::PathBuf, mpsc::Receiver<[Duration; 2]>) {
        let path = dir.path().join("s");
        let listener = UnixListener::bind(&path).unwrap();
        let (tx, rx) = mpsc::channel();
        let tx = std::sync::Mutex::new(tx);
        let srv = Server::start(
            "test",
            listener,
            LIMITS,
            b"busy\n".to_vec(),
            RefusalCounter {
                stats: ListenerStats::new(),
                refusal: Refusal::ControlBusy,
            },
            move |mut s: UnixStream, stop: &AtomicBool| {
                let timeouts = [
                    s.read_timeout().unwrap().unwrap(),
                    s.write_timeout().unwrap().unwrap(),
                ];
                let _ = tx.lock().unwrap().send(timeouts);
                let mut buf = [0u8; 64];
                while !stop.load(Ordering::Relaxed) {
                    match s.read(&mut buf) {
                        Ok(0) => return,
                        Ok(n) => {
                            let _ = s.write_all(&buf[..n]);
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(_) => return,
                    }
                }
            },
        )
        .unwrap();
        (srv, path, rx)
    }

    fn connect(path: &std::path::Path) -> UnixStream {
        let c = UnixStream::connect(path).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        c
    }

    fn roundtrip(c: &mut UnixStream) -> Vec<u8> {
        c.write_all(b"hi\n").unwrap();
        let mut buf = [0u8; 16];
        let n = c.read(&mut buf).unwrap();
        buf[..n].to_vec()
    }

    #[test]
    fn bounds_connections_counts_refusals_and_frees_slots() {
        let dir = tempfile::tempdir().unwrap();
        let (srv, path, timeouts) = echo(&dir);
        let mut held: Vec<UnixStream> = (0..LIMITS.max_connections)
            .map(|_| connect(&path))
            .collect();
        for c in &mut held {
            assert_eq!(roundtrip(c), b"hi\n");
        }
        let mut extra = connect(&path);
        let mut got = Vec::new();
        extra.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"busy\n");
        assert_eq!(srv.refused(), 1);

        drop(held);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let mut c = connect(&path);
            // Refused, the connection may be closed before the write.
            let _ = c.write_all(b"hi\n");
            let mut buf = [0u8; 16];
            if c.read(&mut buf).ok() == Some(3) && &buf[..3] == b"hi\n" {
                break;
            }
            assert!(Instant::now() < deadline, "slots never freed");
            thread::sleep(Duration::from_millis(20));
        }
        // Every admitted connection started with the limits' timeouts.
        let seen: Vec<_> = timeouts.try_iter().collect();
        assert!(seen.len() >= 3, "{seen:?}");
        for t in seen {
            assert_eq!(t, [LIMITS.read_timeout, LIMITS.write_timeout]);
        }
    }

    #[test]
    fn drop_stops_accepting_and_tells_connections() {
        let dir = tempfile::tempdir().unwrap();
        let (srv, path, _timeouts) = echo(&dir);
        let mut c = connect(&path);
        assert_eq!(roundtrip(&mut c), b"hi\n");
        let t = Instant::now();
        drop(srv);
        assert!(t.elapsed() < Duration::from_secs(2));
        // The held connection's handler sees the flag within its read
        // timeout and ends, closing it.
        let mut buf = [0u8; 4];
        assert_eq!(c.read(&mut buf).unwrap(), 0);
        // The listener is closed: nothing accepts any more.
        assert!(UnixStream::connect(&path).is_err());
    }
}
