//! The control API socket: newline-delimited JSON over a Unix stream socket
//! (protocol in [`super::model`]).
//!
//! [`ApiServer`] owns the socket file and runs it on the control plane's
//! bounded server ([`super::server`]): each client gets its own thread, at
//! most [`MAX_CLIENTS`] at a time, one more is answered "too many clients"
//! and closed. This module owns framing and error answers only: every
//! well-formed [`Request`] goes to a [`Handler`], which the control thread
//! implements.
//!
//! Invariants:
//! - The socket is never reachable with a mode wider than 0600: it is bound
//!   inside a fresh 0700 directory next to its final path, chmod-ed, then
//!   renamed into place.
//! - Only root and the uid rampart runs as are served, whatever the file's
//!   mode or owner becomes: the peer's credentials (`SO_PEERCRED`) are read
//!   on accept, and any other uid is answered `not_permitted`, logged,
//!   counted ([`Refusal::ControlNotPermitted`]) and closed before anything
//!   it sends is read.
//! - Every request that changes state ([`Request::is_edit`]) is logged at
//!   info with the peer's uid, gid and pid and its outcome, e.g.
//!   `ctl: uid 0 gid 0 pid 1234: vip_drain drain=true name="web": ok`.
//! - Memory per client is bounded: a line longer than
//!   [`MAX_REQUEST_BYTES`] is answered `too_long` and the connection closed,
//!   without reading the rest of it.
//! - Nothing a client sends or does (garbage, a half line, hanging up
//!   mid-answer, staying silent) stops the server or disturbs other clients;
//!   a panicking handler is answered `failed`.

use std::fs::{self, DirBuilder};
use std::io::{self, ErrorKind, Read};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::model::{code, ApiError, Request, MAX_REQUEST_BYTES};
use super::server::{
    timed_out, write_within, Limits, ListenerStats, Refusal, RefusalCounter, Server,
};

/// Clients served at the same time; one more is answered "too many clients"
/// and closed.
pub const MAX_CLIENTS: usize = 32;

/// A client that does not complete a request line this long after
/// connecting or after its last answer is disconnected.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// How long sending one answer may take, in all, to a client that does
/// not read or reads too slowly.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// The read timeout of a client's socket: how often a client's thread looks
/// at the stop flag and its idle clock.
const POLL: Duration = Duration::from_millis(50);

/// Bytes read from a client at a time.
const READ_CHUNK: usize = 4096;

/// Executes one request; implemented by the control thread.
pub trait Handler: Send + Sync + 'static {
    fn handle(&self, req: Request) -> Result<Value, ApiError>;
}

/// The credentials of a connected client, as the kernel recorded them at
/// `connect(2)` (`SO_PEERCRED`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "uid {} gid {} pid {}", self.uid, self.gid, self.pid)
    }
}

impl Peer {
    /// The peer of a connected Unix stream socket.
    pub fn of(stream: &UnixStream) -> io::Result<Peer> {
        use std::os::fd::AsRawFd;
        let mut cred = libc::ucred {
            pid: 0,
            uid: 0,
            gid: 0,
        };
        let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
        // SAFETY: `cred` is a live ucred and `len` its size, as SO_PEERCRED
        // expects; the descriptor stays open since `stream` is borrowed.
        let rc = unsafe {
            libc::getsockopt(
                stream.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PEERCRED,
                std::ptr::addr_of_mut!(cred).cast::<libc::c_void>(),
                &mut len,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Peer {
            pid: cred.pid,
            uid: cred.uid,
            gid: cred.gid,
        })
    }
}

/// Who may use the control socket: root, and the uid rampart runs as (a
/// rampart started by a service user is driven by that user).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Access {
    uids: Vec<u32>,
}

impl Access {
    fn root_and_self() -> Access {
        // SAFETY: geteuid has no preconditions and cannot fail.
        let own = unsafe { libc::geteuid() };
        let mut uids = vec![0, own];
        uids.dedup();
        Access { uids }
    }

    fn permits(&self, uid: u32) -> bool {
        self.uids.contains(&uid)
    }

    /// "uid 0", "uids 0 and 990".
    fn describe(&self) -> String {
        let list: Vec<String> = self.uids.iter().map(u32::to_string).collect();
        match list.as_slice() {
            [one] => format!("uid {one}"),
            _ => format!("uids {}", list.join(" and ")),
        }
    }
}

/// How long a client may take: to send a request line, to take an answer.
#[derive(Clone, Copy, Debug)]
struct Timeouts {
    idle: Duration,
    write: Duration,
}

/// Why the control socket did not start.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("control socket {}: not a file path", .path.display())]
    NotAFilePath { path: PathBuf },
    #[error("control socket {}: exists and is not a socket; not replacing it", .path.display())]
    NotASocket { path: PathBuf },
    #[error("control socket {}: in use by a running process (another rampart?)", .path.display())]
    InUse { path: PathBuf },
    #[error("control socket {}: no free temporary directory name in {}", .path.display(), .dir.display())]
    NoTempName { path: PathBuf, dir: PathBuf },
    #[error("control socket {}: {step}: {source}", .path.display())]
    Io {
        path: PathBuf,
        step: Step,
        source: io::Error,
    },
}

/// What starting the control socket was doing when an I/O error ended it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Step {
    #[error("creating {}", .0.display())]
    CreateParent(PathBuf),
    #[error("inspecting the path")]
    Inspect,
    #[error("probing the existing socket")]
    Probe,
    #[error("creating a directory in {}", .0.display())]
    CreateTempDir(PathBuf),
    #[error("binding")]
    Bind,
    #[error("chmod 0600")]
    Chmod,
    #[error("moving into place")]
    Rename,
    #[error("starting the accept thread")]
    Start,
}

impl SocketError {
    fn io(path: &Path, step: Step) -> impl FnOnce(io::Error) -> SocketError + '_ {
        move |source| SocketError::Io {
            path: path.to_path_buf(),
            step,
            source,
        }
    }
}

/// A listening control socket. Dropping it stops accepting, ends idle
/// clients and removes the socket file.
#[derive(Debug)]
pub struct ApiServer {
    // Dropped in this order: no more clients, then no more socket file.
    server: Server,
    file: SocketFile,
    stats: Arc<ListenerStats>,
}

/// The socket file this process created; removed on drop unless someone
/// else's file has taken its place since.
#[derive(Debug)]
struct SocketFile {
    path: PathBuf,
    /// (device, inode) of the socket file we created.
    ident: (u64, u64),
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        if let Ok(meta) = fs::symlink_metadata(&self.path) {
            if (meta.dev(), meta.ino()) == self.ident {
                let _ = fs::remove_file(&self.path);
            }
        }
    }
}

impl ApiServer {
    /// Binds `path` (mode 0600; a stale socket file from a dead process is
    /// replaced, a live one — something answers connect() — is an error
    /// naming the path) and serves in background threads, root and the uid
    /// rampart runs as only. Refusals are counted in `stats`.
    pub fn start(
        path: &Path,
        handler: Arc<dyn Handler>,
        stats: Arc<ListenerStats>,
    ) -> Result<ApiServer, SocketError> {
        let timeouts = Timeouts {
            idle: IDLE_TIMEOUT,
            write: WRITE_TIMEOUT,
        };
        ApiServer::start_with(path, handler, stats, timeouts, Access::root_and_self())
    }

    fn start_with(
        path: &Path,
        handler: Arc<dyn Handler>,
        stats: Arc<ListenerStats>,
        timeouts: Timeouts,
        access: Access,
    ) -> Result<ApiServer, SocketError> {
        let idle = timeouts.idle;
        if path.file_name().is_none() {
            return Err(SocketError::NotAFilePath {
                path: path.to_path_buf(),
            });
        }
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent)
            .map_err(SocketError::io(path, Step::CreateParent(parent.into())))?;
        check_replaceable(path)?;

        let listener = bind_private(parent, path)?;
        let meta = fs::symlink_metadata(path).map_err(SocketError::io(path, Step::Inspect))?;
        let file = SocketFile {
            path: path.to_path_buf(),
            ident: (meta.dev(), meta.ino()),
        };
        let limits = Limits {
            max_connections: MAX_CLIENTS,
            read_timeout: POLL,
            write_timeout: timeouts.write,
        };
        let refusal = error_line(code::FAILED, "too many clients");
        let busy = RefusalCounter {
            stats: Arc::clone(&stats),
            refusal: Refusal::ControlBusy,
        };
        let counters = Arc::clone(&stats);
        let server = Server::start(
            "rampart-api",
            listener,
            limits,
            refusal,
            busy,
            move |stream, stop: &AtomicBool| {
                let client = Client {
                    handler: &*handler,
                    stats: &stats,
                    access: &access,
                    idle,
                    write: timeouts.write,
                };
                if let Err(e) = client.serve(stream, stop) {
                    log::debug!("control API client: {e}");
                }
            },
        )
        .map_err(SocketError::io(path, Step::Start))?;
        log::debug!("control API listening on {}", path.display());
        Ok(ApiServer {
            server,
            file,
            stats: counters,
        })
    }

    /// Where the socket is.
    pub fn path(&self) -> &Path {
        &self.file.path
    }

    /// Clients answered "too many clients" since the start.
    pub fn refused(&self) -> u64 {
        self.server.refused()
    }

    /// Clients turned away for `r` since the start.
    pub fn refusals(&self, r: Refusal) -> u64 {
        self.stats.get(r)
    }
}

/// Refuses to take over `path` when it is something other than a socket,
/// or a socket a live process still listens on.
fn check_replaceable(path: &Path) -> Result<(), SocketError> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(SocketError::io(path, Step::Inspect)(e)),
    };
    if !meta.file_type().is_socket() {
        return Err(SocketError::NotASocket {
            path: path.to_path_buf(),
        });
    }
    match UnixStream::connect(path) {
        Ok(_) => Err(SocketError::InUse {
            path: path.to_path_buf(),
        }),
        // Nobody listens: a leftover of a process that died without cleaning up.
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => Ok(()),
        Err(e) => Err(SocketError::io(path, Step::Probe)(e)),
    }
}

/// Binds the socket inside a fresh 0700 directory in `parent`, sets mode
/// 0600, and renames it to `path`: no other user can ever connect to it, and
/// a stale socket at `path` is replaced atomically.
fn bind_private(parent: &Path, path: &Path) -> Result<UnixListener, SocketError> {
    // Short names: a Unix socket path has to fit in sun_path (108 bytes).
    let pid = std::process::id();
    let mut dir = None;
    for n in 0..100u32 {
        let candidate = parent.join(format!(".rampart-{pid:x}-{n}"));
        match DirBuilder::new().mode(0o700).create(&candidate) {
            Ok(()) => {
                dir = Some(candidate);
                break;
            }
            Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(SocketError::io(path, Step::CreateTempDir(parent.into()))(e)),
        }
    }
    let dir = dir.ok_or_else(|| SocketError::NoTempName {
        path: path.to_path_buf(),
        dir: parent.to_path_buf(),
    })?;
    let tmp = dir.join("s");
    let result = (|| {
        let listener = UnixListener::bind(&tmp).map_err(SocketError::io(path, Step::Bind))?;
        fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600))
            .map_err(SocketError::io(path, Step::Chmod))?;
        fs::rename(&tmp, path).map_err(SocketError::io(path, Step::Rename))?;
        Ok(listener)
    })();
    let _ = fs::remove_file(&tmp);
    let _ = fs::remove_dir(&dir);
    result
}

/// Why a client's connection ended early (logged at debug).
#[derive(Debug, thiserror::Error)]
enum ClientEnd {
    #[error(transparent)]
    Io(#[from] io::Error),
    #[error("request longer than {MAX_REQUEST_BYTES} bytes")]
    TooLong,
    #[error("no complete request in {0:?}")]
    Idle(Duration),
    #[error("hung up after {0} bytes of a request")]
    HalfLine(usize),
    #[error("peer not permitted")]
    NotPermitted,
}

/// What [`LineReader::next_line`] found.
enum Next {
    /// One line, without its `\n`.
    Line(Vec<u8>),
    /// The client hung up between lines.
    Eof,
    /// The server is stopping.
    Stopped,
}

/// Splits a stream into lines of at most [`MAX_REQUEST_BYTES`] bytes,
/// holding at most that plus one read chunk in memory.
struct LineReader {
    pending: Vec<u8>,
    /// `pending[..scanned]` holds no `\n`.
    scanned: usize,
}

impl LineReader {
    fn new() -> LineReader {
        LineReader {
            pending: Vec::new(),
            scanned: 0,
        }
    }

    /// Reads until a full line is buffered. The line has to be complete
    /// within `idle`, so neither a silent client nor one trickling a byte
    /// at a time holds its thread for long. The stream must have a read
    /// timeout of about [`POLL`]: each timeout checks `stop` and the clock.
    fn next_line<R: Read>(
        &mut self,
        r: &mut R,
        stop: &AtomicBool,
        idle: Duration,
    ) -> Result<Next, ClientEnd> {
        let started = Instant::now();
        let mut chunk = [0u8; READ_CHUNK];
        loop {
            if let Some(i) = self.pending[self.scanned..]
                .iter()
                .position(|&b| b == b'\n')
            {
                let end = self.scanned + i;
                if end > MAX_REQUEST_BYTES {
                    return Err(ClientEnd::TooLong);
                }
                let mut line: Vec<u8> = self.pending.drain(..=end).collect();
                line.pop();
                self.scanned = 0;
                return Ok(Next::Line(line));
            }
            self.scanned = self.pending.len();
            if self.pending.len() > MAX_REQUEST_BYTES {
                return Err(ClientEnd::TooLong);
            }
            match r.read(&mut chunk) {
                Ok(0) if self.pending.is_empty() => return Ok(Next::Eof),
                Ok(0) => return Err(ClientEnd::HalfLine(self.pending.len())),
                Ok(n) => self.pending.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if stop.load(Ordering::Relaxed) {
                        return Ok(Next::Stopped);
                    }
                    if started.elapsed() >= idle {
                        return Err(ClientEnd::Idle(idle));
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}

/// What serving one client needs.
struct Client<'a> {
    handler: &'a dyn Handler,
    stats: &'a ListenerStats,
    access: &'a Access,
    idle: Duration,
    /// The time one answer may take to send.
    write: Duration,
}

impl Client<'_> {
    /// Serves one client until it hangs up, misbehaves, idles out, or the
    /// server stops; a peer [`Access`] does not permit is answered
    /// `not_permitted` at once and closed. The stream's read timeout is
    /// [`POLL`], its write timeout [`WRITE_TIMEOUT`] (set by the server).
    fn serve(&self, mut stream: UnixStream, stop: &AtomicBool) -> Result<(), ClientEnd> {
        let peer = match Peer::of(&stream) {
            Ok(p) if self.access.permits(p.uid) => p,
            refused => {
                let who = match &refused {
                    Ok(p) => p.to_string(),
                    Err(e) => format!("unknown peer ({e})"),
                };
                self.stats.count(Refusal::ControlNotPermitted);
                let msg = format!(
                    "{who} may not use the control socket (only {} may)",
                    self.access.describe()
                );
                log::warn!("ctl: {msg}; refused");
                let _ = write_within(
                    &mut stream,
                    &error_line(code::NOT_PERMITTED, &msg),
                    self.write,
                );
                return Err(ClientEnd::NotPermitted);
            }
        };
        let mut reader = LineReader::new();
        loop {
            let line = match reader.next_line(&mut stream, stop, self.idle) {
                Ok(Next::Line(line)) => line,
                Ok(Next::Eof | Next::Stopped) => return Ok(()),
                Err(ClientEnd::TooLong) => {
                    self.stats.count(Refusal::ControlTooLong);
                    let msg = format!("request line longer than {MAX_REQUEST_BYTES} bytes");
                    let _ =
                        write_within(&mut stream, &error_line(code::TOO_LONG, &msg), self.write);
                    return Err(ClientEnd::TooLong);
                }
                Err(e) => {
                    if matches!(e, ClientEnd::Idle(_)) {
                        self.stats.count(Refusal::ControlIdle);
                    }
                    return Err(e);
                }
            };
            let Some(answer) = answer(self.handler, &line, &peer) else {
                continue;
            };
            if let Err(e) = write_within(&mut stream, &answer, self.write) {
                if timed_out(&e) {
                    self.stats.count(Refusal::ControlWriteTimeout);
                }
                return Err(e.into());
            }
        }
    }
}

/// The answer line (newline included) to one request line (without its
/// newline), as the socket sends it; `None` for a blank line, which gets
/// no answer. An edit is logged with `peer`, who asked. This is all a
/// client's bytes reach once framed into lines: the fuzz target
/// `control_request` drives it with a real control state.
pub fn answer(handler: &dyn Handler, line: &[u8], peer: &dyn std::fmt::Display) -> Option<Vec<u8>> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    let answer = match parse_request(line) {
        Ok(req) if req.is_edit() => {
            let what = req.describe();
            let answer = call(handler, req);
            match &answer {
                Ok(_) => log::info!("ctl: {peer}: {what}: ok"),
                Err(e) => log::info!("ctl: {peer}: {what}: refused: {}", e.code),
            }
            answer
        }
        Ok(req) => call(handler, req),
        Err(bad) => Err(ApiError {
            code: code::BAD_REQUEST.into(),
            message: bad.to_string(),
        }),
    };
    Some(answer_line(answer))
}

/// What is wrong with a request line; its text is the `bad_request`
/// answer's message.
#[derive(Debug, thiserror::Error)]
enum BadRequest {
    #[error("request is not UTF-8: {0}")]
    NotUtf8(#[from] std::str::Utf8Error),
    #[error("request is not JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    #[error("request must be a JSON object like {{\"cmd\": \"status\"}}, not {0}")]
    NotAnObject(&'static str),
    #[error("{0}")]
    NotARequest(#[source] serde_json::Error),
    #[error("unknown field `{field}` for `{cmd}`")]
    UnknownField { field: String, cmd: String },
}

/// Turns one line into a request, or says what is wrong with it.
fn parse_request(line: &[u8]) -> Result<Request, BadRequest> {
    let text = std::str::from_utf8(line)?;
    let value: Value = serde_json::from_str(text).map_err(BadRequest::NotJson)?;
    if !value.is_object() {
        return Err(BadRequest::NotAnObject(json_kind(&value)));
    }
    let given: Vec<String> = value
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let req: Request = serde_json::from_value(value).map_err(BadRequest::NotARequest)?;
    // serde does not apply `deny_unknown_fields` to the argument-less
    // commands (`status`, `vip_list`, `stats`, `reload`) of an internally
    // tagged enum: check every key against the request's own fields.
    if let Ok(Value::Object(known)) = serde_json::to_value(&req) {
        if let Some(k) = given.iter().find(|k| !known.contains_key(k.as_str())) {
            return Err(BadRequest::UnknownField {
                field: k.clone(),
                cmd: cmd_name(&known).to_string(),
            });
        }
    }
    Ok(req)
}

fn cmd_name(fields: &serde_json::Map<String, Value>) -> &str {
    fields.get("cmd").and_then(Value::as_str).unwrap_or("?")
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Runs the handler; a panic in it is an answer, not the end of the server.
fn call(handler: &dyn Handler, req: Request) -> Result<Value, ApiError> {
    let what = format!("{req:?}");
    match panic::catch_unwind(AssertUnwindSafe(|| handler.handle(req))) {
        Ok(answer) => answer,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("(no message)");
            log::error!("control API: handler panicked on {what}: {msg}");
            Err(ApiError {
                code: code::FAILED.into(),
                message: format!("internal error while executing the request: {msg}"),
            })
        }
    }
}

fn answer_line(answer: Result<Value, ApiError>) -> Vec<u8> {
    let v = match answer {
        Ok(result) => json!({"ok": true, "result": result}),
        Err(e) => json!({"ok": false, "error": {"code": e.code, "message": e.message}}),
    };
    let mut line = v.to_string().into_bytes();
    line.push(b'\n');
    line
}

fn error_line(code: &str, message: &str) -> Vec<u8> {
    answer_line(Err(ApiError {
        code: code.into(),
        message: message.into(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::sync::Mutex;
    use std::thread;

    struct Mock;

    impl Handler for Mock {
        fn handle(&self, req: Request) -> Result<Value, ApiError> {
            match req {
                Request::Status => Ok(json!({"version": "test"})),
                Request::VipDel { name } if name == "boom" => panic!("mock handler exploded"),
                // An answer larger than what the socket buffers hold.
                Request::VipDel { name } if name == "huge" => Ok(json!("x".repeat(8 << 20))),
                Request::VipDel { name } => Err(ApiError {
                    code: code::NOT_FOUND.into(),
                    message: format!("no VIP named {name}"),
                }),
                other => Ok(json!(format!("{other:?}"))),
            }
        }
    }

    fn server(dir: &tempfile::TempDir) -> ApiServer {
        ApiServer::start(
            &dir.path().join("run/rampart.sock"),
            Arc::new(Mock),
            ListenerStats::new(),
        )
        .unwrap()
    }

    struct Client {
        reader: BufReader<UnixStream>,
        writer: UnixStream,
    }

    impl Client {
        fn connect(path: &Path) -> Client {
            let s = UnixStream::connect(path).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            Client {
                writer: s.try_clone().unwrap(),
                reader: BufReader::new(s),
            }
        }

        fn send(&mut self, bytes: &[u8]) {
            self.writer.write_all(bytes).unwrap();
        }

        fn answer(&mut self) -> Value {
            let mut line = String::new();
            self.reader.read_line(&mut line).unwrap();
            assert!(line.ends_with('\n'), "no full answer line: {line:?}");
            serde_json::from_str(&line).unwrap()
        }

        fn ask(&mut self, bytes: &[u8]) -> Value {
            self.send(bytes);
            self.answer()
        }

        /// True when the server has closed the connection.
        fn closed(&mut self) -> bool {
            let mut buf = [0u8; 16];
            matches!(self.reader.read(&mut buf), Ok(0) | Err(_))
        }
    }

    fn error_code(v: &Value) -> &str {
        assert_eq!(v["ok"], false, "{v}");
        v["error"]["code"].as_str().unwrap()
    }

    fn assert_status_ok(v: &Value) {
        assert_eq!(v, &json!({"ok": true, "result": {"version": "test"}}));
    }

    #[test]
    fn answers_requests_in_order_on_one_connection() {
        let dir = tempfile::tempdir().unwrap();
        let srv = server(&dir);
        let mut c = Client::connect(srv.path());
        c.send(b"{\"cmd\":\"status\"}\n\n  \n{\"cmd\":\"vip_del\",\"name\":\"web\"}\n");
        assert_status_ok(&c.answer());
        let v = c.answer();
        assert_eq!(error_code(&v), "not_found");
        assert_eq!(v["error"]["message"], "no VIP named web");
        assert_status_ok(&c.ask(b"{\"cmd\":\"status\"}\r\n"));
    }

    #[test]
    fn socket_is_mode_0600_and_parent_is_created() {
        let dir = tempfile::tempdir().unwrap();
        let srv = server(&dir);
        let meta = fs::symlink_metadata(srv.path()).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        // Nothing of the private bind directory is left behind.
        let names: Vec<_> = fs::read_dir(dir.path().join("run"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("rampart.sock")]);
    }

    #[test]
    fn bad_requests_are_answered_and_the_connection_stays_usable() {
        let dir = tempfile::tempdir().unwrap();
        let srv = server(&dir);
        let mut c = Client::connect(srv.path());
        let cases: [(&[u8], &str); 9] = [
            (b"\x00\x01garbage}\n", "not JSON"),
            (b"\"\xff\xfe\"\n", "not UTF-8"),
            (b"[]\n", "must be a JSON object"),
            (b"{\"cmd\":\"nope\"}\n", "unknown variant `nope`"),
            (b"{\"cmd\":\"vip_del\"}\n", "missing field `name`"),
            (b"{\"name\":\"web\"}\n", "missing field `cmd`"),
            (
                b"{\"cmd\":\"vip_del\",\"name\":\"web\",\"x\":1}\n",
                "unknown field `x`",
            ),
            (b"{\"cmd\":\"status\",\"x\":1}\n", "unknown field `x`"),
            (
                b"{\"cmd\":\"reload\",\"force\":true}\n",
                "unknown field `force` for `reload`",
            ),
        ];
        for (line, want) in cases {
            let v = c.ask(line);
            assert_eq!(error_code(&v), "bad_request", "{line:?}");
            let msg = v["error"]["message"].as_str().unwrap();
            assert!(msg.contains(want), "{line:?}: {msg:?} lacks {want:?}");
            assert_status_ok(&c.ask(b"{\"cmd\":\"status\"}\n"));
        }
    }

    #[test]
    fn oversized_line_is_refused_and_closed() {
        let dir = tempfile::tempdir().unwrap();
        let srv = server(&dir);
        let mut c = Client::connect(srv.path());
        c.send(&vec![b' '; MAX_REQUEST_BYTES + 1]);
        assert_eq!(error_code(&c.answer()), "too_long");
        assert!(c.closed());
        assert_eq!(srv.refusals(Refusal::ControlTooLong), 1);
        // A line of exactly the limit is fine.
        let mut c = Client::connect(srv.path());
        let mut line = b"{\"cmd\":\"status\"}".to_vec();
        line.resize(MAX_REQUEST_BYTES, b' ');
        line.push(b'\n');
        assert_status_ok(&c.ask(&line));
    }

    #[test]
    fn half_line_then_hang_up_does_not_disturb_the_server() {
        let dir = tempfile::tempdir().unwrap();
        let srv = server(&dir);
        let mut c = Client::connect(srv.path());
        c.send(b"{\"cmd\":\"sta");
        drop(c);
        // Hanging up before reading the answers.
        let mut c = Client::connect(srv.path());
        for _ in 0..100 {
            c.send(b"{\"cmd\":\"status\"}\n");
        }
        drop(c);
        let mut c = Client::connect(srv.path());
        assert_status_ok(&c.ask(b"{\"cmd\":\"status\"}\n"));
    }

    #[test]
    fn too_many_clients_are_refused_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let srv = server(&dir);
        let mut clients: Vec<Client> = (0..40).map(|_| Client::connect(srv.path())).collect();
        let (mut served, mut refused) = (0, 0);
        for c in &mut clients {
            // A refused client may already be closed: the write may fail.
            let _ = c.writer.write_all(b"{\"cmd\":\"status\"}\n");
            let v = c.answer();
            if v["ok"] == true {
                served += 1;
            } else {
                assert_eq!(
                    v,
                    json!({"ok": false, "error": {"code": "failed", "message": "too many clients"}})
                );
                refused += 1;
            }
        }
        assert_eq!((served, refused), (MAX_CLIENTS, 40 - MAX_CLIENTS));
        assert_eq!(srv.refused(), (40 - MAX_CLIENTS) as u64);
        assert_eq!(
            srv.refusals(Refusal::ControlBusy),
            (40 - MAX_CLIENTS) as u64
        );
        drop(clients);
        // Slots free up as the served clients' threads see them hang up.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let mut c = Client::connect(srv.path());
            // Refused, the connection may be closed before the write.
            let _ = c.writer.write_all(b"{\"cmd\":\"status\"}\n");
            let v = c.answer();
            if v["ok"] == true {
                break;
            }
            assert!(Instant::now() < deadline, "slots never freed: {v}");
            thread::sleep(Duration::from_millis(20));
        }
        let mut many: Vec<Client> = (0..MAX_CLIENTS)
            .map(|_| Client::connect(srv.path()))
            .collect();
        for c in &mut many {
            assert_status_ok(&c.ask(b"{\"cmd\":\"status\"}\n"));
        }
    }

    #[test]
    fn silent_or_trickling_clients_are_disconnected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rampart.sock");
        let idle = Duration::from_millis(300);
        let timeouts = Timeouts {
            idle,
            write: WRITE_TIMEOUT,
        };
        let srv = ApiServer::start_with(
            &path,
            Arc::new(Mock),
            ListenerStats::new(),
            timeouts,
            Access::root_and_self(),
        )
        .unwrap();
        let mut silent = Client::connect(srv.path());
        let t0 = Instant::now();
        assert!(silent.closed());
        assert!(t0.elapsed() >= idle, "{:?}", t0.elapsed());
        assert_eq!(srv.refusals(Refusal::ControlIdle), 1);

        // The clock restarts with each answer, not with each byte.
        let mut slow = Client::connect(srv.path());
        assert_status_ok(&slow.ask(b"{\"cmd\":\"status\"}\n"));
        let t0 = Instant::now();
        for b in b"{\"cmd\":" {
            if slow.writer.write_all(&[*b]).is_err() {
                break;
            }
            thread::sleep(Duration::from_millis(50));
        }
        assert!(slow.closed());
        // The server's clock may start a moment before `t0`.
        assert!(t0.elapsed() >= idle / 2, "{:?}", t0.elapsed());
        assert_status_ok(&Client::connect(srv.path()).ask(b"{\"cmd\":\"status\"}\n"));
    }

    #[test]
    fn a_client_that_does_not_read_its_answer_is_dropped_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rampart.sock");
        let write = Duration::from_millis(300);
        let timeouts = Timeouts {
            idle: IDLE_TIMEOUT,
            write,
        };
        let srv = ApiServer::start_with(
            &path,
            Arc::new(Mock),
            ListenerStats::new(),
            timeouts,
            Access::root_and_self(),
        )
        .unwrap();
        let mut c = Client::connect(srv.path());
        c.send(b"{\"cmd\":\"vip_del\",\"name\":\"huge\"}\n");
        let deadline = Instant::now() + Duration::from_secs(10);
        while srv.refusals(Refusal::ControlWriteTimeout) == 0 {
            assert!(Instant::now() < deadline, "the write never timed out");
            thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(srv.refusals(Refusal::ControlWriteTimeout), 1);
        // Only part of the answer was sent before the server gave up.
        let mut got = Vec::new();
        let _ = c.reader.read_to_end(&mut got);
        assert!(!got.is_empty() && got.len() < 8 << 20, "{}", got.len());
        assert_status_ok(&Client::connect(srv.path()).ask(b"{\"cmd\":\"status\"}\n"));
    }

    #[test]
    fn handler_panic_is_answered_failed() {
        let dir = tempfile::tempdir().unwrap();
        let srv = server(&dir);
        let mut c = Client::connect(srv.path());
        let v = c.ask(b"{\"cmd\":\"vip_del\",\"name\":\"boom\"}\n");
        assert_eq!(error_code(&v), "failed");
        assert!(v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("mock handler exploded"));
        assert_status_ok(&c.ask(b"{\"cmd\":\"status\"}\n"));
        assert_status_ok(&Client::connect(srv.path()).ask(b"{\"cmd\":\"status\"}\n"));
    }

    #[test]
    fn drop_removes_the_socket_and_ends_clients() {
        let dir = tempfile::tempdir().unwrap();
        let srv = server(&dir);
        let path = srv.path().to_path_buf();
        let mut c = Client::connect(&path);
        assert_status_ok(&c.ask(b"{\"cmd\":\"status\"}\n"));
        drop(srv);
        assert!(!path.exists());
        assert!(c.closed());
        assert!(UnixStream::connect(&path).is_err());
    }

    #[test]
    fn stale_socket_is_replaced_live_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rampart.sock");
        // A socket file nobody listens on, as a killed process leaves it.
        drop(UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let srv = ApiServer::start(&path, Arc::new(Mock), ListenerStats::new()).unwrap();
        assert_status_ok(&Client::connect(&path).ask(b"{\"cmd\":\"status\"}\n"));

        let err = ApiServer::start(&path, Arc::new(Mock), ListenerStats::new())
            .err()
            .unwrap();
        assert!(matches!(err, SocketError::InUse { .. }), "{err:?}");
        let err = err.to_string();
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(err.contains("in use"), "{err}");
        // The first server is untouched.
        assert_status_ok(&Client::connect(&path).ask(b"{\"cmd\":\"status\"}\n"));
        drop(srv);

        fs::write(&path, b"not a socket").unwrap();
        let err = ApiServer::start(&path, Arc::new(Mock), ListenerStats::new())
            .err()
            .unwrap();
        assert!(matches!(err, SocketError::NotASocket { .. }), "{err:?}");
        let err = err.to_string();
        assert!(err.contains("not a socket"), "{err}");
        assert_eq!(fs::read(&path).unwrap(), b"not a socket");
    }

    /// Log records of the whole test binary, from the first test that asks.
    fn captured_log() -> &'static Mutex<Vec<String>> {
        struct Capture;
        static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());
        impl log::Log for Capture {
            fn enabled(&self, m: &log::Metadata<'_>) -> bool {
                m.level() <= log::Level::Info
            }
            fn log(&self, r: &log::Record<'_>) {
                if self.enabled(r.metadata()) {
                    let line = format!("{} {}", r.level(), r.args());
                    LINES.lock().unwrap_or_else(|p| p.into_inner()).push(line);
                }
            }
            fn flush(&self) {}
        }
        static INSTALL: std::sync::Once = std::sync::Once::new();
        INSTALL.call_once(|| {
            log::set_logger(&Capture).unwrap();
            log::set_max_level(log::LevelFilter::Info);
        });
        &LINES
    }

    fn log_lines_with(needle: &str) -> Vec<String> {
        let lines = captured_log().lock().unwrap_or_else(|p| p.into_inner());
        lines
            .iter()
            .filter(|l| l.contains(needle))
            .cloned()
            .collect()
    }

    #[test]
    fn peer_credentials_are_those_of_the_connecting_process() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let listener = UnixListener::bind(&path).unwrap();
        let _c = UnixStream::connect(&path).unwrap();
        let (s, _) = listener.accept().unwrap();
        // SAFETY: no preconditions.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        let want = Peer {
            pid: std::process::id() as i32,
            uid,
            gid,
        };
        assert_eq!(Peer::of(&s).unwrap(), want);
        assert_eq!(
            want.to_string(),
            format!("uid {uid} gid {gid} pid {}", std::process::id())
        );
    }

    #[test]
    fn a_peer_not_permitted_is_refused_logged_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rampart.sock");
        // SAFETY: no preconditions.
        let own = unsafe { libc::geteuid() };
        // A policy that leaves this process out, as a non-root client is
        // left out of the real one.
        let others = Access {
            uids: vec![own.wrapping_add(1), own.wrapping_add(2)],
        };
        let timeouts = Timeouts {
            idle: IDLE_TIMEOUT,
            write: WRITE_TIMEOUT,
        };
        let srv = ApiServer::start_with(
            &path,
            Arc::new(Mock),
            ListenerStats::new(),
            timeouts,
            others.clone(),
        )
        .unwrap();
        let mut c = Client::connect(srv.path());
        let v = c.answer();
        assert_eq!(error_code(&v), "not_permitted");
        let msg = v["error"]["message"].as_str().unwrap();
        let who = format!("uid {own} gid ");
        assert!(msg.starts_with(&who), "{msg}");
        assert!(
            msg.ends_with(&format!(
                "may not use the control socket (only uids {} and {} may)",
                others.uids[0], others.uids[1]
            )),
            "{msg}"
        );
        assert!(c.closed());
        assert_eq!(srv.refusals(Refusal::ControlNotPermitted), 1);
        assert_eq!(srv.refusals(Refusal::ControlBusy), 0);
        let pid = format!("pid {}: ", std::process::id());
        let _ = captured_log();
        // The refusal is logged with the peer's credentials (the logger may
        // have been installed just now: this line was logged before).
        let mut c = Client::connect(srv.path());
        assert_eq!(error_code(&c.answer()), "not_permitted");
        let lines = log_lines_with("may not use the control socket");
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("WARN ctl: {who}")) && l.ends_with("; refused")),
            "{lines:?}"
        );
        assert!(
            lines.iter().any(|l| l.contains(&pid.replace(": ", " "))),
            "{lines:?}"
        );

        // The real policy admits this process: root, or the uid it runs as.
        let own_policy = Access::root_and_self();
        assert!(own_policy.permits(0) && own_policy.permits(own));
    }

    #[test]
    fn edits_are_logged_with_the_peer_and_reads_are_not() {
        let _ = captured_log();
        let dir = tempfile::tempdir().unwrap();
        let srv = server(&dir);
        let mut c = Client::connect(srv.path());
        // SAFETY: no preconditions.
        let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        let who = format!("ctl: uid {uid} gid {gid} pid {}: ", std::process::id());
        assert_eq!(
            error_code(&c.ask(b"{\"cmd\":\"vip_del\",\"name\":\"audit-gone\"}\n")),
            "not_found"
        );
        let v = c.ask(b"{\"cmd\":\"vip_drain\",\"name\":\"audit-web\",\"drain\":true}\n");
        assert_eq!(v["ok"], true);
        let v = c.ask(b"{\"cmd\":\"backend_weight\",\"vip\":\"audit-web\",\"backend\":\"198.18.1.11:80\",\"weight\":3}\n");
        assert_eq!(v["ok"], true);
        assert_status_ok(&c.ask(b"{\"cmd\":\"status\"}\n"));
        let want = [
            format!("INFO {who}vip_del name=\"audit-gone\": refused: not_found"),
            format!("INFO {who}vip_drain drain=true name=\"audit-web\": ok"),
            format!(
                "INFO {who}backend_weight backend=\"198.18.1.11:80\" vip=\"audit-web\" weight=3: ok"
            ),
        ];
        let got = log_lines_with("audit-");
        assert_eq!(got, want);
        // Reads are not edits: nothing of them is logged.
        assert!(log_lines_with(": status").is_empty());
    }

    #[test]
    fn requests_that_change_state_are_edits() {
        let reads = [
            Request::Status,
            Request::VipList,
            Request::Stats,
            Request::Conns {
                vip: None,
                limit: None,
            },
        ];
        assert!(reads.iter().all(|r| !r.is_edit()));
        let mut vip = toml::Table::new();
        vip.insert("name".into(), "web\nINFO forged".into());
        let add = Request::VipAdd { vip };
        assert!(add.is_edit() && Request::Reload.is_edit());
        // A newline in an argument cannot forge a log line.
        assert_eq!(add.describe(), "vip_add vip.name=\"web\\nINFO forged\"");
        assert_eq!(Request::Reload.describe(), "reload");
    }
}
