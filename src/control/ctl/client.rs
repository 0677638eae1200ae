//! The client side of the control socket: one JSON line out, one JSON
//! line back ([`request`]), the request each command sends
//! ([`to_request`]), and [`run`], which sends it (repeatedly for
//! `stats --watch`) and prints the answer through [`super::render`].

use std::io::{self, BufRead, BufReader, IsTerminal, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::args::{BackendCmd, CtlArgs, CtlCmd, VipAddArgs, VipCmd};
use super::render::{
    describe_change, format_change, format_conns, format_stats, format_status, format_vips,
    utc_timestamp,
};
use super::{DEFAULT_SOCKET, WATCH_MAX_REFRESHES};
use crate::control::model::{ApiError, Request, VipEntry};

/// How long to wait for an answer (a reload parses the config file and
/// rebuilds every lookup table).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(120);

/// The longest answer read (a `conns` listing at
/// [`MAX_CONNS_LIMIT`](crate::control::model::MAX_CONNS_LIMIT) is
/// well below this).
const MAX_ANSWER_BYTES: u64 = 256 << 20;

/// Why a request got no result.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    /// The socket is not there or nobody listens; the message names the
    /// path.
    #[error("{0}")]
    Connect(String),
    /// The connection broke or the answer was not the protocol.
    #[error("{0}")]
    Io(String),
    /// rampart answered with an error.
    #[error("{}: {}", .0.code, .0.message)]
    Api(ApiError),
}

/// One request, one answer (used by `run`, and by tests).
pub fn request(socket: &Path, req: &Request) -> Result<Value, CtlError> {
    let shown = socket.display();
    let io_err = |what: &str, e: io::Error| CtlError::Io(format!("{shown}: {what}: {e}"));
    let mut stream = UnixStream::connect(socket).map_err(|e| {
        let hint = if e.kind() == io::ErrorKind::PermissionDenied {
            "only root and the user rampart runs as may use the control socket"
        } else {
            "is `rampart run` running? see [control].socket"
        };
        CtlError::Connect(format!("cannot connect to {shown}: {e} ({hint})"))
    })?;
    stream
        .set_read_timeout(Some(ANSWER_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(ANSWER_TIMEOUT)))
        .map_err(|e| io_err("setting timeouts", e))?;
    let mut line = serde_json::to_vec(req).map_err(|e| CtlError::Io(format!("encoding: {e}")))?;
    line.push(b'\n');
    // A server that refuses the connection (a client limit, a uid it does
    // not serve) answers and closes at once: its answer is read even when
    // the request could not be sent.
    let sent = stream.write_all(&line);

    let mut answer = Vec::new();
    BufReader::new(&stream)
        .take(MAX_ANSWER_BYTES)
        .read_until(b'\n', &mut answer)
        .map_err(|e| io_err("reading the answer", e))?;
    if answer.last() != Some(&b'\n') {
        sent.map_err(|e| io_err("sending", e))?;
        return Err(CtlError::Io(format!(
            "{shown}: connection closed before a complete answer"
        )));
    }
    parse_answer(&answer).map_err(|e| CtlError::Io(format!("{shown}: malformed answer: {e}")))?
}

/// Why an answer line is not the protocol.
#[derive(Debug, thiserror::Error)]
enum Malformed {
    #[error("{0}")]
    Json(serde_json::Error),
    #[error("error: {0}")]
    Error(serde_json::Error),
    #[error("no boolean \"ok\"")]
    NoOk,
}

/// Splits `{"ok":...}` into the result or the API error; the outer error
/// is a protocol violation.
fn parse_answer(line: &[u8]) -> Result<Result<Value, CtlError>, Malformed> {
    let mut v: Value = serde_json::from_slice(line).map_err(Malformed::Json)?;
    match v.get("ok") {
        Some(Value::Bool(true)) => Ok(Ok(v
            .get_mut("result")
            .map(Value::take)
            .unwrap_or(Value::Null))),
        Some(Value::Bool(false)) => {
            let err = v.get_mut("error").map(Value::take).unwrap_or(Value::Null);
            let err: ApiError = serde_json::from_value(err).map_err(Malformed::Error)?;
            Ok(Err(CtlError::Api(err)))
        }
        _ => Err(Malformed::NoOk),
    }
}

/// The request a command sends (`stats --watch` sends it repeatedly).
pub fn to_request(cmd: &CtlCmd) -> Request {
    match cmd {
        CtlCmd::Status => Request::Status,
        CtlCmd::Vip { cmd } => match cmd {
            VipCmd::List => Request::VipList,
            VipCmd::Add(a) => Request::VipAdd {
                vip: vip_add_table(a),
            },
            VipCmd::Del { name } => Request::VipDel { name: name.clone() },
            VipCmd::Drain { name } => Request::VipDrain {
                name: name.clone(),
                drain: true,
            },
            VipCmd::Undrain { name } => Request::VipDrain {
                name: name.clone(),
                drain: false,
            },
        },
        CtlCmd::Backend { cmd } => match cmd {
            BackendCmd::Add {
                vip,
                backend,
                weight,
            } => Request::BackendAdd {
                vip: vip.clone(),
                backend: backend.clone(),
                weight: *weight,
            },
            BackendCmd::Del { vip, backend } => Request::BackendDel {
                vip: vip.clone(),
                backend: backend.clone(),
            },
            BackendCmd::Weight {
                vip,
                backend,
                weight,
            } => Request::BackendWeight {
                vip: vip.clone(),
                backend: backend.clone(),
                weight: *weight,
            },
            BackendCmd::Drain { backend } => backend_state(backend, "drain"),
            BackendCmd::Up { backend } => backend_state(backend, "up"),
            BackendCmd::Down { backend } => backend_state(backend, "down"),
            BackendCmd::Clear { backend } => backend_state(backend, "clear"),
        },
        CtlCmd::Conns { vip, limit } => Request::Conns {
            vip: vip.clone(),
            limit: *limit,
        },
        CtlCmd::Stats { .. } => Request::Stats,
        CtlCmd::Reload => Request::Reload,
    }
}

fn backend_state(backend: &str, state: &str) -> Request {
    Request::BackendState {
        backend: backend.into(),
        state: state.into(),
    }
}

/// `vip add` as the `[[vip]]` table the config file would hold: keys
/// that were given, plus name, address and port.
pub fn vip_add_table(a: &VipAddArgs) -> toml::Table {
    use toml::Value as T;
    let mut t = toml::Table::new();
    t.insert("name".into(), T::String(a.name.clone()));
    t.insert("address".into(), T::String(a.address.addr.to_string()));
    t.insert("port".into(), T::Integer(a.address.port.into()));
    t.insert("protocol".into(), T::String(a.protocol.clone()));
    t.insert("mode".into(), T::String(a.mode.clone()));
    t.insert("scheduler".into(), T::String(a.scheduler.clone()));
    if let Some(n) = a.table_size {
        t.insert("table_size".into(), T::Integer(n.into()));
    }
    if !a.local.is_empty() {
        let locals = a.local.iter().map(|l| T::String(l.to_string())).collect();
        t.insert("local_addresses".into(), T::Array(locals));
    }
    if a.synproxy {
        t.insert("synproxy".into(), T::Boolean(true));
    }
    if let Some(e) = &a.encap {
        t.insert("encap".into(), T::String(e.clone()));
    }
    if let Some(p) = a.gue_port {
        t.insert("gue_port".into(), T::Integer(p.into()));
    }
    if !a.backends.is_empty() {
        let backends = a
            .backends
            .iter()
            .map(|b| {
                let mut bt = toml::Table::new();
                bt.insert("address".into(), T::String(b.endpoint.addr.to_string()));
                bt.insert("port".into(), T::Integer(b.endpoint.port.into()));
                if let Some(w) = b.weight {
                    bt.insert("weight".into(), T::Integer(w.into()));
                }
                T::Table(bt)
            })
            .collect();
        t.insert("backend".into(), T::Array(backends));
    }
    t
}

/// Runs one `rampart ctl` command, printing to stdout. `Err` is the
/// message for `rampart: MSG`.
pub fn run(args: CtlArgs) -> Result<(), String> {
    let socket = args.socket.unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET));
    let stdout = io::stdout();
    let tty = stdout.is_terminal();
    let mut out = stdout.lock();
    match execute(&socket, args.json, &args.cmd, tty, &mut out) {
        Ok(()) => Ok(()),
        // `rampart ctl stats --watch | head`: the reader is gone, we are done.
        Err(Failure::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

/// Why [`execute`] stopped.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    Ctl(#[from] CtlError),
    /// The result did not have the shape of the command's report.
    #[error("{0}")]
    Answer(String),
    #[error("writing the output: {0}")]
    Output(#[from] io::Error),
}

fn execute(
    socket: &Path,
    json: bool,
    cmd: &CtlCmd,
    tty: bool,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    if let CtlCmd::Stats {
        watch: true,
        interval,
        count,
    } = *cmd
    {
        let refreshes = if count == 0 {
            WATCH_MAX_REFRESHES
        } else {
            count
        };
        for i in 0..refreshes {
            if i > 0 {
                std::thread::sleep(Duration::from_secs_f64(interval));
            }
            // A broken socket ends the watch with its error.
            let result = request(socket, &Request::Stats)?;
            if !json {
                if tty {
                    write!(out, "\x1b[2J\x1b[H")?;
                }
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                writeln!(out, "--- {} ---", utc_timestamp(now))?;
            }
            out.write_all(render(cmd, json, result)?.as_bytes())?;
            out.flush()?;
        }
        return Ok(());
    }
    let result = request(socket, &to_request(cmd))?;
    out.write_all(render(cmd, json, result)?.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// The text printed for a command's result.
fn render(cmd: &CtlCmd, json: bool, result: Value) -> Result<String, Failure> {
    if json {
        let text = serde_json::to_string_pretty(&result)
            .map_err(|e| Failure::Answer(format!("encoding the result: {e}")))?;
        return Ok(text + "\n");
    }
    Ok(match cmd {
        CtlCmd::Status => format_status(&report("status", result)?),
        CtlCmd::Vip { cmd: VipCmd::List } => {
            // A bare array, or an object holding it under "vips".
            let list = match result {
                Value::Object(mut m) if m.contains_key("vips") => {
                    m.remove("vips").unwrap_or_default()
                }
                other => other,
            };
            format_vips(&report::<Vec<VipEntry>>("vip list", list)?)
        }
        CtlCmd::Conns { .. } => format_conns(&report("conns", result)?),
        CtlCmd::Stats { .. } => format_stats(&report("stats", result)?),
        other => format_change(&describe_change(other), &result),
    })
}

fn report<T: DeserializeOwned>(what: &str, v: Value) -> Result<T, Failure> {
    serde_json::from_value(v)
        .map_err(|e| Failure::Answer(format!("unexpected answer to {what}: {e}")))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::super::fixtures::{parse, small_stats};
    use super::*;
    use crate::control::api::{ApiServer, Handler};
    use crate::control::model::{code, StatusReport};

    #[test]
    fn vip_add_maps_to_a_vip_table() {
        let args = parse(&[
            "vip",
            "add",
            "api",
            "198.18.100.20:443",
            "--mode",
            "fullnat",
            "--local",
            "198.18.200.1",
            "--local",
            "198.18.200.2",
            "--table-size",
            "251",
            "--synproxy",
            "--backend",
            "198.18.1.21:8443@2",
            "--backend",
            "198.18.1.22:8443",
        ])
        .unwrap();
        let Request::VipAdd { vip } = to_request(&args.cmd) else {
            panic!("{:?}", args.cmd)
        };
        let want: toml::Table = toml::from_str(
            r#"
            name = "api"
            address = "198.18.100.20"
            port = 443
            protocol = "tcp"
            mode = "fullnat"
            scheduler = "maglev"
            table_size = 251
            local_addresses = ["198.18.200.1", "198.18.200.2"]
            synproxy = true
            [[backend]]
            address = "198.18.1.21"
            port = 8443
            weight = 2
            [[backend]]
            address = "198.18.1.22"
            port = 8443
            "#,
        )
        .unwrap();
        assert_eq!(vip, want);

        // Only what was given, plus the defaults the config requires.
        let args = parse(&["vip", "add", "dns6", "[2001:2::53]:53", "--protocol", "udp"]).unwrap();
        let Request::VipAdd { vip } = to_request(&args.cmd) else {
            panic!()
        };
        let want: toml::Table = toml::from_str(
            r#"
            name = "dns6"
            address = "2001:2::53"
            port = 53
            protocol = "udp"
            mode = "nat"
            scheduler = "maglev"
            "#,
        )
        .unwrap();
        assert_eq!(vip, want);

        for bad in [
            &["vip", "add", "x", "198.18.0.1"][..],
            &["vip", "add", "x", "198.18.0.1:80", "--mode", "bridge"],
            &["vip", "add", "x", "198.18.0.1:80", "--encap", "gre"],
            &["vip", "add", "x", "198.18.0.1:80", "--scheduler", "random"],
            &["vip", "add", "x", "198.18.0.1:80", "--local", "nowhere"],
            &[
                "vip",
                "add",
                "x",
                "198.18.0.1:80",
                "--backend",
                "198.18.1.1",
            ],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn commands_map_to_requests() {
        let cases: Vec<(&[&str], Request)> = vec![
            (&["status"], Request::Status),
            (&["vip", "list"], Request::VipList),
            (
                &["vip", "del", "web"],
                Request::VipDel { name: "web".into() },
            ),
            (
                &["backend", "add", "web", "198.18.1.14:8080", "--weight", "2"],
                Request::BackendAdd {
                    vip: "web".into(),
                    backend: "198.18.1.14:8080".into(),
                    weight: Some(2),
                },
            ),
            (
                &["backend", "del", "web", "198.18.1.14:8080"],
                Request::BackendDel {
                    vip: "web".into(),
                    backend: "198.18.1.14:8080".into(),
                },
            ),
            (
                &["backend", "weight", "web", "198.18.1.14:8080", "5"],
                Request::BackendWeight {
                    vip: "web".into(),
                    backend: "198.18.1.14:8080".into(),
                    weight: 5,
                },
            ),
            (
                &["backend", "drain", "198.18.1.14:8080"],
                backend_state("198.18.1.14:8080", "drain"),
            ),
            (
                &["backend", "up", "198.18.1.14:8080"],
                backend_state("198.18.1.14:8080", "up"),
            ),
            (
                &["backend", "down", "198.18.1.14:8080"],
                backend_state("198.18.1.14:8080", "down"),
            ),
            (
                &["backend", "clear", "198.18.1.14:8080"],
                backend_state("198.18.1.14:8080", "clear"),
            ),
            (
                &["conns", "--vip", "web", "--limit", "10"],
                Request::Conns {
                    vip: Some("web".into()),
                    limit: Some(10),
                },
            ),
            (
                &["conns"],
                Request::Conns {
                    vip: None,
                    limit: None,
                },
            ),
            (&["stats", "--json"], Request::Stats),
            (&["reload", "-s", "/tmp/x.sock"], Request::Reload),
        ];
        for (args, want) in cases {
            assert_eq!(to_request(&parse(args).unwrap().cmd), want, "{args:?}");
        }
        let a = parse(&[
            "--json",
            "--socket",
            "/tmp/r.sock",
            "stats",
            "--watch",
            "--count",
            "3",
        ])
        .unwrap();
        assert!(a.json);
        assert_eq!(a.socket, Some(PathBuf::from("/tmp/r.sock")));
        assert_eq!(
            a.cmd,
            CtlCmd::Stats {
                watch: true,
                interval: 1.0,
                count: 3
            }
        );
        assert!(parse(&["stats", "--count", "3"]).is_err());
        assert!(parse(&["stats", "--watch", "--interval", "0"]).is_err());
        assert!(parse(&["conns", "--limit", "0"]).is_err());
        assert!(parse(&["conns", "--limit", "100001"]).is_err());
    }

    struct Mock;

    impl Handler for Mock {
        fn handle(&self, req: Request) -> Result<Value, ApiError> {
            match req {
                Request::Status => Ok(serde_json::to_value(StatusReport {
                    version: "0.1.0".into(),
                    generation: 9,
                    ..StatusReport::default()
                })
                .unwrap()),
                Request::Stats => Ok(serde_json::to_value(small_stats()).unwrap()),
                Request::Reload => Ok(json!({"generation": 10, "vips_added": [],
                    "vips_removed": ["old"], "vips_changed": []})),
                Request::VipList => Ok(json!({"vips": []})),
                Request::VipDel { name } => Err(ApiError {
                    code: code::NOT_FOUND.into(),
                    message: format!("no VIP named {name}"),
                }),
                other => Ok(json!(format!("{other:?}"))),
            }
        }
    }

    #[test]
    fn request_over_a_socket() {
        let dir = tempfile::tempdir().unwrap();
        let srv = ApiServer::start(
            &dir.path().join("r.sock"),
            Arc::new(Mock),
            crate::control::server::ListenerStats::new(),
        )
        .unwrap();
        let v = request(srv.path(), &Request::Status).unwrap();
        assert_eq!(v["generation"], 9);
        match request(srv.path(), &Request::VipDel { name: "web".into() }) {
            Err(CtlError::Api(e)) => {
                assert_eq!(e.code, "not_found");
                assert_eq!(CtlError::Api(e).to_string(), "not_found: no VIP named web");
            }
            other => panic!("{other:?}"),
        }

        let missing = dir.path().join("nobody.sock");
        let err = request(&missing, &Request::Status).unwrap_err();
        assert!(matches!(err, CtlError::Connect(_)), "{err:?}");
        let msg = err.to_string();
        assert!(msg.contains(&missing.display().to_string()), "{msg}");
        assert!(
            msg.contains("rampart run") && msg.contains("[control].socket"),
            "{msg}"
        );
    }

    fn execute_to_string(socket: &Path, args: &[&str]) -> Result<String, String> {
        let a = parse(args).unwrap();
        let mut out = Vec::new();
        execute(socket, a.json, &a.cmd, false, &mut out).map_err(|e| e.to_string())?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn execute_prints_tables_json_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let srv = ApiServer::start(
            &dir.path().join("r.sock"),
            Arc::new(Mock),
            crate::control::server::ListenerStats::new(),
        )
        .unwrap();
        let sock = &srv.path().to_path_buf();

        let out = execute_to_string(sock, &["reload"]).unwrap();
        assert_eq!(
            out,
            "reloaded: generation 10, added -, removed old, changed -\n"
        );
        assert_eq!(
            execute_to_string(sock, &["vip", "list"]).unwrap(),
            "no VIPs\n"
        );
        let out = execute_to_string(sock, &["status", "--json"]).unwrap();
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["generation"], 9);
        assert!(
            out.contains("\n  \"generation\": 9,\n"),
            "not pretty: {out}"
        );

        let err = execute_to_string(sock, &["vip", "del", "web"]).unwrap_err();
        assert_eq!(err, "not_found: no VIP named web");
        let err = execute_to_string(sock, &["conns"]).unwrap_err();
        assert!(err.starts_with("unexpected answer to conns:"), "{err}");

        let stats = format_stats(&small_stats());
        let out = execute_to_string(
            sock,
            &["stats", "--watch", "--count", "2", "--interval", "0.1"],
        )
        .unwrap();
        let blocks: Vec<&str> = out.split("--- ").skip(1).collect();
        assert_eq!(blocks.len(), 2, "{out}");
        for b in blocks {
            let (stamp, rest) = b.split_once(" ---\n").unwrap();
            assert!(stamp.ends_with(" UTC"), "{stamp}");
            assert_eq!(rest, stats);
        }

        // The socket going away ends a watch with the connect error.
        drop(srv);
        let err = execute_to_string(sock, &["stats", "--watch"]).unwrap_err();
        assert!(err.contains("cannot connect"), "{err}");
    }
}
