//! What the integration tests share: the repository root, the frames of a
//! capture and writing one, running the `rampart` binary (a replay, a
//! command that must succeed or fail) and reading what it wrote, and one
//! HTTP request to the metrics listener.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use rampart::io::{PcapReader, PcapWriter};

/// The repository's root (configs/, pcap-fixtures/, tests/ are below it).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// Every frame of the capture at `p`, in order; panics with the reader's
/// message on a bad file.
pub fn frames(p: &Path) -> Vec<Vec<u8>> {
    match PcapReader::open(p) {
        Ok(r) => r
            .map(|f| match f {
                Ok(f) => f.data,
                Err(e) => panic!("{e}"),
            })
            .collect(),
        Err(e) => panic!("{e}"),
    }
}

/// Writes a capture at `p` of `frames`, each with its capture time in
/// nanoseconds; panics with the writer's message on failure.
pub fn write_pcap<F: AsRef<[u8]>>(p: &Path, frames: impl IntoIterator<Item = (u64, F)>) {
    let written = PcapWriter::create(p).and_then(|mut w| {
        for (ts, f) in frames {
            w.write(f.as_ref(), ts)?;
        }
        w.finish()
    });
    if let Err(e) = written {
        panic!("{e}")
    }
}

/// A `Command` for the `rampart` binary of the package under test; expands
/// in the calling test, where cargo names the binary's path.
#[macro_export]
macro_rules! rampart_bin {
    () => {
        std::process::Command::new(env!("CARGO_BIN_EXE_rampart"))
    };
}

/// `out` of a command that must have succeeded; otherwise the test fails
/// naming `what`, the exit status and the command's stderr.
#[track_caller]
pub fn succeeded(out: Output, what: &str) -> Output {
    assert!(
        out.status.success(),
        "{what} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The stderr of a command that must have failed; the test fails, naming
/// `what`, if it succeeded.
#[track_caller]
pub fn failed(out: Output, what: &str) -> String {
    assert!(
        !out.status.success(),
        "{what} succeeded: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs `cmd` to its end; the test fails if it cannot start.
#[track_caller]
pub fn output(cmd: &mut Command) -> Output {
    match cmd.output() {
        Ok(o) => o,
        Err(e) => panic!("{cmd:?}: {e}"),
    }
}

/// The JSON document at `p` (a `--stats-json` file).
#[track_caller]
pub fn read_json(p: &Path) -> serde_json::Value {
    let text = match std::fs::read_to_string(p) {
        Ok(t) => t,
        Err(e) => panic!("{}: {e}", p.display()),
    };
    match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => panic!("{}: {e}", p.display()),
    }
}

/// One `rampart replay`: `input` through `config`, the frames sent written
/// to `out` and the counters to `stats`; `args` go before the input
/// (`--no-progress`, `--workers N`, `--reload ...`).
pub struct Replay<'a> {
    pub config: &'a Path,
    pub input: &'a Path,
    pub out: &'a Path,
    pub stats: &'a Path,
    pub args: &'a [&'a str],
}

/// What a replay printed and the counters it wrote.
pub struct Replayed {
    pub stdout: String,
    pub stats: serde_json::Value,
}

impl Replay<'_> {
    /// The replay's command line on `bin` (from [`rampart_bin!`], which
    /// names the binary of the package under test).
    pub fn command(&self, mut bin: Command) -> Command {
        bin.arg("replay")
            .arg("--config")
            .arg(self.config)
            .args(self.args)
            .arg("--out")
            .arg(self.out)
            .arg("--stats-json")
            .arg(self.stats)
            .arg(self.input);
        bin
    }

    /// Runs it on `bin`; the test fails, naming `what`, if the replay
    /// fails.
    #[track_caller]
    pub fn run(&self, bin: Command, what: &str) -> Replayed {
        let out = succeeded(output(&mut self.command(bin)), what);
        Replayed {
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stats: read_json(self.stats),
        }
    }
}

/// `GET path` over one plain TCP connection (`Connection: close`, so the
/// body ends where the stream does; every step bounded by a timeout):
/// (status line, header lines, body).
#[track_caller]
pub fn http_get(addr: SocketAddr, path: &str) -> (String, String, String) {
    let wait = Duration::from_secs(10);
    let mut s = match TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
        Ok(s) => s,
        Err(e) => panic!("connect {addr}: {e}"),
    };
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    let mut raw = Vec::new();
    let done = s
        .set_read_timeout(Some(wait))
        .and_then(|()| s.set_write_timeout(Some(wait)))
        .and_then(|()| s.write_all(request.as_bytes()))
        .and_then(|()| s.read_to_end(&mut raw));
    if let Err(e) = done {
        panic!("GET {path} from {addr}: {e}");
    }
    let text = String::from_utf8_lossy(&raw);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        panic!("GET {path} from {addr}: no HTTP answer: {text:?}");
    };
    let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    (status.to_string(), headers.to_string(), body.to_string())
}
