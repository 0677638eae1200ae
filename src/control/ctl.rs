//! `rampart ctl`: the command-line client of the control API.
//!
//! Each invocation sends one [`Request`] (or, for `stats --watch`, one per
//! refresh) over the control socket and prints the answer as aligned tables
//! in the manner of `ipvsadm -Ln`, or, with `--json`, the raw result. All
//! formatting lives in pure `format_*` functions over the report types of
//! [`super::model`], so the tables are tested without a socket.
//!
//! Counters are printed as exact integers (no human units), rates with one
//! decimal; numbers are right-aligned, text left-aligned.

use std::fmt;
use std::io::{self, BufRead, BufReader, IsTerminal, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::builder::PossibleValuesParser;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::model::{
    ApiError, ConnsReport, ReloadReport, Request, StatsReport, StatusReport, VipEntry,
    MAX_CONNS_LIMIT,
};
use crate::config::{Mode, Protocol, SchedKind};

/// Where `rampart run` listens unless `[control].socket` says otherwise.
pub const DEFAULT_SOCKET: &str = "/run/rampart/rampart.sock";

/// `stats --watch` without `--count` stops after this many refreshes.
pub const WATCH_MAX_REFRESHES: u64 = 3600;

/// How long to wait for an answer (a reload parses the config file and
/// rebuilds every lookup table).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(120);

/// The longest answer read (a `conns` listing at [`MAX_CONNS_LIMIT`] is
/// well below this).
const MAX_ANSWER_BYTES: u64 = 256 << 20;

/// `rampart ctl`: query and change a running `rampart run`.
#[derive(clap::Args, Debug)]
pub struct CtlArgs {
    /// Control socket (default: /run/rampart/rampart.sock).
    #[arg(long, short, global = true, value_name = "PATH")]
    pub socket: Option<PathBuf>,
    /// Print the raw JSON result instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub cmd: CtlCmd,
}

#[derive(clap::Subcommand, Debug, Clone, PartialEq)]
pub enum CtlCmd {
    /// Version, uptime, config generation and totals.
    Status,
    /// List, add or remove VIPs.
    Vip {
        #[command(subcommand)]
        cmd: VipCmd,
    },
    /// Add, remove, reweight or override backends.
    Backend {
        #[command(subcommand)]
        cmd: BackendCmd,
    },
    /// Tracked connections.
    Conns {
        /// Only connections of this VIP.
        #[arg(long, value_name = "NAME")]
        vip: Option<String>,
        /// Show at most N connections (default 100).
        #[arg(long, value_name = "N",
              value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_CONNS_LIMIT)))]
        limit: Option<u32>,
    },
    /// Counters and rates: totals, per worker, per VIP, per backend, drops.
    Stats {
        /// Refresh until stopped (Ctrl-C, --count, or 3600 refreshes).
        #[arg(long)]
        watch: bool,
        /// Seconds between refreshes.
        #[arg(long, value_name = "SECS", default_value = "1", requires = "watch",
              value_parser = parse_interval)]
        interval: f64,
        /// Stop after N refreshes (0: after 3600).
        #[arg(long, value_name = "N", default_value_t = 0, requires = "watch")]
        count: u64,
    },
    /// Re-read the config file.
    Reload,
}

#[derive(clap::Subcommand, Debug, Clone, PartialEq)]
pub enum VipCmd {
    /// Every VIP with its backends.
    List,
    /// Add a VIP (as a `[[vip]]` table of the config file would).
    Add(VipAddArgs),
    /// Remove a VIP; its connections drain (or are reset under `[control] removed_vip = "reset"`).
    Del { name: String },
}

#[derive(clap::Args, Debug, Clone, PartialEq)]
pub struct VipAddArgs {
    /// Name of the new VIP.
    pub name: String,
    // Help set as a string: rustdoc would read the brackets as a link.
    #[arg(
        value_name = "ADDR:PORT",
        help = "Address and port: ADDR:PORT, or [ADDR]:PORT for IPv6"
    )]
    pub address: Endpoint,
    /// Transport protocol.
    #[arg(long, default_value = "tcp",
          value_parser = PossibleValuesParser::new(Protocol::NAMES.iter().copied()))]
    pub protocol: String,
    /// Forwarding mode.
    #[arg(long, default_value = "nat",
          value_parser = PossibleValuesParser::new(Mode::NAMES.iter().copied()))]
    pub mode: String,
    /// Backend scheduler.
    #[arg(long, value_name = "NAME", default_value = "maglev",
          value_parser = PossibleValuesParser::new(SchedKind::NAMES.iter().copied()))]
    pub scheduler: String,
    /// Maglev lookup table size (a prime).
    #[arg(long, value_name = "N")]
    pub table_size: Option<u32>,
    /// FullNAT local address towards the backends (repeatable).
    #[arg(long = "local", value_name = "ADDR")]
    pub local: Vec<IpAddr>,
    /// Answer SYNs with SYN cookies before choosing a backend.
    #[arg(long)]
    pub synproxy: bool,
    /// Tunnel mode: how the client's packet is wrapped.
    #[arg(long, value_parser = PossibleValuesParser::new(["ipip", "gue"]))]
    pub encap: Option<String>,
    /// Tunnel mode with GUE: the outer UDP destination port.
    #[arg(long, value_name = "PORT")]
    pub gue_port: Option<u16>,
    /// A backend (repeatable).
    #[arg(long = "backend", value_name = "ADDR:PORT[@WEIGHT]")]
    pub backends: Vec<BackendSpec>,
}

#[derive(clap::Subcommand, Debug, Clone, PartialEq)]
pub enum BackendCmd {
    /// Add BACKEND (ADDR:PORT, or ADDR for the VIP's port) to VIP.
    Add {
        vip: String,
        backend: String,
        #[arg(long, value_name = "W")]
        weight: Option<u32>,
    },
    /// Remove BACKEND from VIP.
    Del { vip: String, backend: String },
    /// Set BACKEND's weight on VIP.
    Weight {
        vip: String,
        backend: String,
        weight: u32,
    },
    /// Stop new connections to BACKEND on every VIP; existing ones continue.
    Drain { backend: String },
    /// Force BACKEND up on every VIP, whatever health checks say.
    Up { backend: String },
    /// Force BACKEND down on every VIP.
    Down { backend: String },
    /// Drop the override: health checks decide again.
    Clear { backend: String },
}

/// An address and port, `ADDR:PORT` or `[V6ADDR]:PORT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub addr: IpAddr,
    pub port: u16,
}

impl FromStr for Endpoint {
    type Err = String;

    fn from_str(s: &str) -> Result<Endpoint, String> {
        let (addr, port) = if let Some(rest) = s.strip_prefix('[') {
            let (addr, after) = rest
                .split_once(']')
                .ok_or_else(|| format!("{s:?}: missing ']' after the IPv6 address"))?;
            let port = after
                .strip_prefix(':')
                .ok_or_else(|| format!("{s:?}: missing \":PORT\" after ']'"))?;
            let addr = Ipv6Addr::from_str(addr)
                .map_err(|_| format!("{s:?}: {addr:?} is not an IPv6 address"))?;
            (IpAddr::V6(addr), port)
        } else {
            let (addr, port) = s
                .rsplit_once(':')
                .ok_or_else(|| format!("{s:?}: expected ADDR:PORT"))?;
            if addr.contains(':') {
                return Err(format!(
                    "{s:?}: write an IPv6 address in brackets: [ADDR]:PORT"
                ));
            }
            let addr = Ipv4Addr::from_str(addr)
                .map_err(|_| format!("{s:?}: {addr:?} is not an IPv4 address"))?;
            (IpAddr::V4(addr), port)
        };
        let port = match port.parse::<u16>() {
            Ok(p) if p != 0 => p,
            _ => return Err(format!("{s:?}: port must be 1-65535, not {port:?}")),
        };
        Ok(Endpoint { addr, port })
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.addr {
            IpAddr::V4(a) => write!(f, "{a}:{}", self.port),
            IpAddr::V6(a) => write!(f, "[{a}]:{}", self.port),
        }
    }
}

/// `--backend ADDR:PORT[@WEIGHT]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackendSpec {
    pub endpoint: Endpoint,
    pub weight: Option<u32>,
}

impl FromStr for BackendSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<BackendSpec, String> {
        let (ep, weight) = match s.split_once('@') {
            Some((ep, w)) => {
                let w = w
                    .parse::<u32>()
                    .map_err(|_| format!("{s:?}: weight {w:?} is not a non-negative integer"))?;
                (ep, Some(w))
            }
            None => (s, None),
        };
        Ok(BackendSpec {
            endpoint: ep.parse()?,
            weight,
        })
    }
}

fn parse_interval(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.1..=86400.0).contains(&v) => Ok(v),
        _ => Err(format!("{s:?}: expected seconds between 0.1 and 86400")),
    }
}

/// Why a request got no result.
#[derive(Debug)]
pub enum CtlError {
    /// The socket is not there or nobody listens; the message names the
    /// path.
    Connect(String),
    /// The connection broke or the answer was not the protocol.
    Io(String),
    /// rampart answered with an error.
    Api(ApiError),
}

impl fmt::Display for CtlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CtlError::Connect(m) | CtlError::Io(m) => f.write_str(m),
            CtlError::Api(e) => write!(f, "{}: {}", e.code, e.message),
        }
    }
}

impl std::error::Error for CtlError {}

/// One request, one answer (used by `run`, and by tests).
pub fn request(socket: &Path, req: &Request) -> Result<Value, CtlError> {
    let shown = socket.display();
    let io_err = |what: &str, e: io::Error| CtlError::Io(format!("{shown}: {what}: {e}"));
    let mut stream = UnixStream::connect(socket).map_err(|e| {
        CtlError::Connect(format!(
            "cannot connect to {shown}: {e} (is `rampart run` running? see [control].socket)"
        ))
    })?;
    stream
        .set_read_timeout(Some(ANSWER_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(ANSWER_TIMEOUT)))
        .map_err(|e| io_err("setting timeouts", e))?;
    let mut line = serde_json::to_vec(req).map_err(|e| CtlError::Io(format!("encoding: {e}")))?;
    line.push(b'\n');
    stream.write_all(&line).map_err(|e| io_err("sending", e))?;

    let mut answer = Vec::new();
    BufReader::new(&stream)
        .take(MAX_ANSWER_BYTES)
        .read_until(b'\n', &mut answer)
        .map_err(|e| io_err("reading the answer", e))?;
    if answer.last() != Some(&b'\n') {
        return Err(CtlError::Io(format!(
            "{shown}: connection closed before a complete answer"
        )));
    }
    parse_answer(&answer).map_err(|e| CtlError::Io(format!("{shown}: malformed answer: {e}")))?
}

/// Splits `{"ok":...}` into the result or the API error; the outer error
/// is a protocol violation.
fn parse_answer(line: &[u8]) -> Result<Result<Value, CtlError>, String> {
    let mut v: Value = serde_json::from_slice(line).map_err(|e| e.to_string())?;
    match v.get("ok") {
        Some(Value::Bool(true)) => Ok(Ok(v
            .get_mut("result")
            .map(Value::take)
            .unwrap_or(Value::Null))),
        Some(Value::Bool(false)) => {
            let err = v.get_mut("error").map(Value::take).unwrap_or(Value::Null);
            let err: ApiError = serde_json::from_value(err).map_err(|e| format!("error: {e}"))?;
            Ok(Err(CtlError::Api(err)))
        }
        _ => Err("no boolean \"ok\"".into()),
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
#[derive(Debug)]
enum Failure {
    Ctl(CtlError),
    /// The result did not have the shape of the command's report.
    Answer(String),
    Output(io::Error),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Ctl(e) => write!(f, "{e}"),
            Failure::Answer(m) => f.write_str(m),
            Failure::Output(e) => write!(f, "writing the output: {e}"),
        }
    }
}

impl From<CtlError> for Failure {
    fn from(e: CtlError) -> Failure {
        Failure::Ctl(e)
    }
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Failure {
        Failure::Output(e)
    }
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

/// What a mutation did, in words.
fn describe_change(cmd: &CtlCmd) -> String {
    match cmd {
        CtlCmd::Reload => "reloaded".into(),
        CtlCmd::Vip {
            cmd: VipCmd::Add(a),
        } => format!("added vip {} ({})", a.name, a.address),
        CtlCmd::Vip {
            cmd: VipCmd::Del { name },
        } => format!("removed vip {name}"),
        CtlCmd::Backend { cmd } => match cmd {
            BackendCmd::Add { vip, backend, .. } => format!("added backend {backend} to {vip}"),
            BackendCmd::Del { vip, backend } => format!("removed backend {backend} from {vip}"),
            BackendCmd::Weight {
                vip,
                backend,
                weight,
            } => format!("set weight of {backend} on {vip} to {weight}"),
            BackendCmd::Drain { backend } => format!("draining backend {backend}"),
            BackendCmd::Up { backend } => format!("forced backend {backend} up"),
            BackendCmd::Down { backend } => format!("forced backend {backend} down"),
            BackendCmd::Clear { backend } => {
                format!("cleared the override of backend {backend}")
            }
        },
        other => format!("{other:?}"),
    }
}

/// One-line confirmation of a change: `reloaded: generation 4, added web2,
/// removed -, changed -`.
pub fn format_change(action: &str, result: &Value) -> String {
    if result.is_null() {
        return format!("{action}\n");
    }
    match serde_json::from_value::<ReloadReport>(result.clone()) {
        Ok(r) => format!(
            "{action}: generation {}, added {}, removed {}, changed {}\n",
            r.generation,
            name_list(&r.vips_added),
            name_list(&r.vips_removed),
            name_list(&r.vips_changed),
        ),
        Err(_) => format!("{action}: {result}\n"),
    }
}

fn name_list(names: &[String]) -> String {
    if names.is_empty() {
        "-".into()
    } else {
        names.join(",")
    }
}

/// `status`: one "key  value" line each.
pub fn format_status(s: &StatusReport) -> String {
    let mut pairs = vec![
        ("version", s.version.clone()),
        ("uptime", format_uptime(s.uptime_secs)),
        ("config", s.config.clone()),
        ("generation", s.generation.to_string()),
        (
            "reloads",
            format!("{} ({} failed)", s.reloads, s.reload_failures),
        ),
    ];
    if let Some(e) = &s.last_reload_error {
        pairs.push(("last reload error", e.clone()));
    }
    pairs.extend([
        ("workers", s.workers.to_string()),
        ("vips", s.vips.to_string()),
        (
            "backends up",
            format!("{} of {}", s.backends_up, s.backends_total),
        ),
        ("active conns", s.active_conns.to_string()),
        ("rx packets", s.rx_packets.to_string()),
        ("tx packets", s.tx_packets.to_string()),
        ("dropped", s.dropped.to_string()),
    ]);
    key_values(&pairs, "", Align::Left)
}

/// `vip list`: a row per VIP, its backends indented under it.
pub fn format_vips(vips: &[VipEntry]) -> String {
    if vips.is_empty() {
        return "no VIPs\n".into();
    }
    let mut table = Table::new(&[
        ("NAME", Align::Left),
        ("ADDRESS", Align::Left),
        ("PROTO", Align::Left),
        ("MODE", Align::Left),
        ("SCHED", Align::Left),
        ("SYNPROXY", Align::Left),
        ("STATE", Align::Left),
    ]);
    for v in vips {
        table.row(vec![
            v.name.clone(),
            v.address.clone(),
            v.protocol.clone(),
            v.mode.clone(),
            v.scheduler.clone(),
            yes_no(v.synproxy).into(),
            if v.retired { "retired" } else { "active" }.into(),
        ]);
    }
    let backends = vips.iter().flat_map(|v| &v.backends);
    let addr_w = backends
        .clone()
        .map(|b| width(&b.address))
        .max()
        .unwrap_or(0);
    let weight_w = backends
        .map(|b| width(&b.weight.to_string()))
        .max()
        .unwrap_or(0);

    let mut lines = table.lines().into_iter();
    let mut out = String::new();
    push_line(&mut out, lines.next().unwrap_or_default());
    for (v, line) in vips.iter().zip(lines) {
        push_line(&mut out, line);
        if v.backends.is_empty() {
            push_line(&mut out, "  -> (no backends)".into());
        }
        for b in &v.backends {
            push_line(
                &mut out,
                format!(
                    "  -> {:<addr_w$}  weight {:>weight_w$}  state {}",
                    b.address, b.weight, b.state
                ),
            );
        }
    }
    out
}

/// `conns`: a row per connection, then how many of how many.
pub fn format_conns(c: &ConnsReport) -> String {
    let mut out = String::new();
    if !c.conns.is_empty() {
        let mut table = Table::new(&[
            ("VIP", Align::Left),
            ("PROTO", Align::Left),
            ("CLIENT", Align::Left),
            ("BACKEND", Align::Left),
            ("LOCAL", Align::Left),
            ("STATE", Align::Left),
            ("EXPIRES", Align::Right),
            ("WORKER", Align::Right),
        ]);
        for e in &c.conns {
            table.row(vec![
                e.vip.clone(),
                e.protocol.clone(),
                e.client.clone(),
                e.backend.clone(),
                e.local.clone().unwrap_or_else(|| "-".into()),
                e.state.clone(),
                e.expires_in.to_string(),
                e.worker.to_string(),
            ]);
        }
        out.push_str(&table.render());
    }
    out.push_str(&format!("{} of {} connections\n", c.conns.len(), c.total));
    out
}

/// `stats`: totals, then per worker, per VIP, per backend, and the drop
/// reasons that counted anything.
pub fn format_stats(s: &StatsReport) -> String {
    let dropped = |w: &super::model::WorkerReport| w.drops.values().sum::<u64>();
    let sum = |f: &dyn Fn(&super::model::WorkerReport) -> u64| s.workers.iter().map(f).sum::<u64>();
    let mut out = format!(
        "uptime {}, generation {}, reloads {} ({} failed)\n\n",
        format_uptime(s.uptime_secs),
        s.generation,
        s.reloads,
        s.reload_failures
    );
    out.push_str("totals\n");
    out.push_str(&key_values(
        &[
            ("rx packets", sum(&|w| w.rx_packets).to_string()),
            ("rx bytes", sum(&|w| w.rx_bytes).to_string()),
            ("tx packets", sum(&|w| w.tx_packets).to_string()),
            ("tx bytes", sum(&|w| w.tx_bytes).to_string()),
            ("dropped", sum(&dropped).to_string()),
            ("active conns", sum(&|w| w.active_conns).to_string()),
            (
                "new conns/s",
                rate(s.workers.iter().map(|w| w.new_conns_per_sec).sum()),
            ),
        ],
        "  ",
        Align::Right,
    ));

    if !s.workers.is_empty() {
        let mut t = Table::new(&[
            ("WORKER", Align::Right),
            ("RX_PKTS", Align::Right),
            ("TX_PKTS", Align::Right),
            ("RX_BYTES", Align::Right),
            ("TX_BYTES", Align::Right),
            ("DROPPED", Align::Right),
            ("ACTIVE", Align::Right),
            ("NEW/S", Align::Right),
        ]);
        for w in &s.workers {
            t.row(vec![
                w.worker.to_string(),
                w.rx_packets.to_string(),
                w.tx_packets.to_string(),
                w.rx_bytes.to_string(),
                w.tx_bytes.to_string(),
                dropped(w).to_string(),
                w.active_conns.to_string(),
                rate(w.new_conns_per_sec),
            ]);
        }
        out.push('\n');
        out.push_str(&t.render());
    }

    if !s.vips.is_empty() {
        let mut t = Table::new(&[
            ("NAME", Align::Left),
            ("PKTS_IN", Align::Right),
            ("PKTS_OUT", Align::Right),
            ("BYTES_IN", Align::Right),
            ("BYTES_OUT", Align::Right),
            ("CONNS", Align::Right),
            ("ACTIVE", Align::Right),
            ("NEW/S", Align::Right),
            ("UP/TOTAL", Align::Right),
        ]);
        for v in &s.vips {
            let name = if v.retired {
                format!("{} (retired)", v.name)
            } else {
                v.name.clone()
            };
            t.row(vec![
                name,
                v.packets_in.to_string(),
                v.packets_out.to_string(),
                v.bytes_in.to_string(),
                v.bytes_out.to_string(),
                v.conns_total.to_string(),
                v.conns_active.to_string(),
                rate(v.new_conns_per_sec),
                format!("{}/{}", v.backends_up, v.backends_total),
            ]);
        }
        out.push('\n');
        out.push_str(&t.render());
    }

    if !s.backends.is_empty() {
        let mut t = Table::new(&[
            ("ADDRESS", Align::Left),
            ("STATE", Align::Left),
            ("HEALTH", Align::Left),
            ("ADMIN", Align::Left),
            ("PKTS_IN", Align::Right),
            ("PKTS_OUT", Align::Right),
            ("CONNS", Align::Right),
            ("ACTIVE", Align::Right),
            ("NEW/S", Align::Right),
        ]);
        for b in &s.backends {
            t.row(vec![
                b.address.clone(),
                b.state.clone(),
                b.health.clone(),
                b.admin.clone().unwrap_or_else(|| "-".into()),
                b.packets_in.to_string(),
                b.packets_out.to_string(),
                b.conns_total.to_string(),
                b.conns_active.to_string(),
                rate(b.new_conns_per_sec),
            ]);
        }
        out.push('\n');
        out.push_str(&t.render());
    }

    let mut drops = std::collections::BTreeMap::<&str, u64>::new();
    for w in &s.workers {
        for (reason, n) in &w.drops {
            *drops.entry(reason).or_default() += n;
        }
    }
    let mut drops: Vec<(&str, u64)> = drops.into_iter().filter(|&(_, n)| n > 0).collect();
    out.push('\n');
    if drops.is_empty() {
        out.push_str("no drops\n");
    } else {
        // Largest first; ties by name (the sort is stable over BTreeMap order).
        drops.sort_by_key(|&(_, n)| std::cmp::Reverse(n));
        let mut t = Table::new(&[("DROP_REASON", Align::Left), ("PACKETS", Align::Right)]);
        for (reason, n) in drops {
            t.row(vec![reason.into(), n.to_string()]);
        }
        out.push_str(&t.render());
    }
    out
}

/// "3d 04:05:06", or "04:05:06" under a day.
pub fn format_uptime(secs: f64) -> String {
    // `as` saturates: negative or NaN is 0.
    let total = secs as u64;
    let (d, h, m, s) = (
        total / 86400,
        total / 3600 % 24,
        total / 60 % 60,
        total % 60,
    );
    if d > 0 {
        format!("{d}d {h:02}:{m:02}:{s:02}")
    } else {
        format!("{h:02}:{m:02}:{s:02}")
    }
}

/// "YYYY-MM-DD HH:MM:SS UTC" for seconds since the Unix epoch (proleptic
/// Gregorian calendar, H. Hinnant's `civil_from_days`).
pub fn utc_timestamp(unix_secs: u64) -> String {
    let days = (unix_secs / 86400) as i64;
    let rem = unix_secs % 86400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

fn rate(r: f64) -> String {
    format!("{r:.1}")
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Align {
    Left,
    Right,
}

/// Display width of a cell (no wide characters expected in names and
/// addresses).
fn width(s: &str) -> usize {
    s.chars().count()
}

fn push_line(out: &mut String, line: String) {
    out.push_str(&line);
    out.push('\n');
}

/// "key  value" lines, keys padded to the widest.
fn key_values(pairs: &[(&str, String)], indent: &str, values: Align) -> String {
    let kw = pairs.iter().map(|(k, _)| width(k)).max().unwrap_or(0);
    let vw = pairs.iter().map(|(_, v)| width(v)).max().unwrap_or(0);
    let mut out = String::new();
    for (k, v) in pairs {
        let line = match values {
            Align::Left => format!("{indent}{k:<kw$}  {v}"),
            Align::Right => format!("{indent}{k:<kw$}  {v:>vw$}"),
        };
        push_line(&mut out, line.trim_end().to_string());
    }
    out
}

/// A header row and rows, columns two spaces apart.
struct Table {
    columns: Vec<(&'static str, Align)>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn new(columns: &[(&'static str, Align)]) -> Table {
        Table {
            columns: columns.to_vec(),
            rows: Vec::new(),
        }
    }

    fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.columns.len());
        self.rows.push(cells);
    }

    /// The header line, then one line per row; no trailing blanks.
    fn lines(&self) -> Vec<String> {
        let widths: Vec<usize> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, (h, _))| {
                self.rows
                    .iter()
                    .filter_map(|r| r.get(i))
                    .map(|c| width(c))
                    .chain([width(h)])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let header: Vec<String> = self.columns.iter().map(|(h, _)| h.to_string()).collect();
        std::iter::once(&header)
            .chain(&self.rows)
            .map(|cells| {
                let mut line = String::new();
                for (i, ((_, align), w)) in self.columns.iter().zip(&widths).enumerate() {
                    let cell = cells.get(i).map_or("", String::as_str);
                    if i > 0 {
                        line.push_str("  ");
                    }
                    let pad = w.saturating_sub(width(cell));
                    match align {
                        Align::Left => {
                            line.push_str(cell);
                            line.extend(std::iter::repeat_n(' ', pad));
                        }
                        Align::Right => {
                            line.extend(std::iter::repeat_n(' ', pad));
                            line.push_str(cell);
                        }
                    }
                }
                line.trim_end().to_string()
            })
            .collect()
    }

    fn render(&self) -> String {
        let mut out = String::new();
        for line in self.lines() {
            push_line(&mut out, line);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use clap::Parser;
    use serde_json::json;

    use super::*;
    use crate::control::api::{ApiServer, Handler};
    use crate::control::model::{
        code, BackendReport, ConnEntryReport, VipBackend, VipReport, WorkerReport,
    };

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        ctl: CtlArgs,
    }

    fn parse(args: &[&str]) -> Result<CtlArgs, String> {
        Cli::try_parse_from(std::iter::once("ctl").chain(args.iter().copied()))
            .map(|c| c.ctl)
            .map_err(|e| e.to_string())
    }

    fn ep(s: &str) -> Endpoint {
        s.parse().unwrap()
    }

    #[test]
    fn endpoint_parsing() {
        assert_eq!(
            ep("198.18.0.10:80"),
            Endpoint {
                addr: "198.18.0.10".parse().unwrap(),
                port: 80
            }
        );
        assert_eq!(
            ep("[2001:2::10]:443"),
            Endpoint {
                addr: "2001:2::10".parse().unwrap(),
                port: 443
            }
        );
        assert_eq!(ep("[2001:2::10]:443").to_string(), "[2001:2::10]:443");
        assert_eq!(ep("198.18.0.10:65535").to_string(), "198.18.0.10:65535");

        let cases = [
            ("198.18.0.10", "expected ADDR:PORT"),
            ("198.18.0.10:", "port must be 1-65535"),
            ("198.18.0.10:0", "port must be 1-65535"),
            ("198.18.0.10:65536", "port must be 1-65535"),
            ("198.18.0.10:http", "port must be 1-65535"),
            ("198.18.0.300:80", "is not an IPv4 address"),
            ("web:80", "is not an IPv4 address"),
            ("2001:2::10:80", "in brackets"),
            ("[2001:2::10]", "missing \":PORT\""),
            ("[2001:2::10:80", "missing ']'"),
            ("[198.18.0.10]:80", "is not an IPv6 address"),
            ("", "expected ADDR:PORT"),
        ];
        for (input, want) in cases {
            let err = input.parse::<Endpoint>().unwrap_err();
            assert!(err.contains(want), "{input:?}: {err:?} lacks {want:?}");
            assert!(
                err.contains(&format!("{input:?}")),
                "{err:?} does not quote the input"
            );
        }

        let b: BackendSpec = "[2001:2::11]:8080@3".parse().unwrap();
        assert_eq!((b.endpoint, b.weight), (ep("[2001:2::11]:8080"), Some(3)));
        let b: BackendSpec = "198.18.1.11:8080".parse().unwrap();
        assert_eq!(b.weight, None);
        let err = "198.18.1.11:8080@heavy".parse::<BackendSpec>().unwrap_err();
        assert!(err.contains("weight \"heavy\""), "{err}");
    }

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

    #[test]
    fn status_lines() {
        let s = StatusReport {
            version: "0.1.0".into(),
            uptime_secs: 93784.9,
            config: "/etc/rampart/rampart.toml".into(),
            generation: 4,
            reloads: 3,
            reload_failures: 1,
            last_reload_error: Some("vip web: no backend".into()),
            workers: 2,
            vips: 3,
            backends_up: 5,
            backends_total: 6,
            active_conns: 1234,
            rx_packets: 1000,
            tx_packets: 990,
            dropped: 10,
        };
        let want = "\
version            0.1.0
uptime             1d 02:03:04
config             /etc/rampart/rampart.toml
generation         4
reloads            3 (1 failed)
last reload error  vip web: no backend
workers            2
vips               3
backends up        5 of 6
active conns       1234
rx packets         1000
tx packets         990
dropped            10
";
        assert_eq!(format_status(&s), want);
    }

    #[test]
    fn vip_list_table() {
        let vips = vec![
            VipEntry {
                name: "web".into(),
                address: "198.18.100.10:80".into(),
                protocol: "tcp".into(),
                mode: "nat".into(),
                scheduler: "maglev".into(),
                synproxy: true,
                retired: false,
                backends: vec![
                    VipBackend {
                        address: "198.18.1.11:8080".into(),
                        weight: 1,
                        state: "up".into(),
                    },
                    VipBackend {
                        address: "198.18.1.12:8080".into(),
                        weight: 10,
                        state: "drain".into(),
                    },
                ],
            },
            VipEntry {
                name: "dns6".into(),
                address: "[2001:2::53]:53".into(),
                protocol: "udp".into(),
                mode: "dr".into(),
                scheduler: "rr".into(),
                synproxy: false,
                retired: true,
                backends: vec![],
            },
        ];
        let want = "\
NAME  ADDRESS           PROTO  MODE  SCHED   SYNPROXY  STATE
web   198.18.100.10:80  tcp    nat   maglev  yes       active
  -> 198.18.1.11:8080  weight  1  state up
  -> 198.18.1.12:8080  weight 10  state drain
dns6  [2001:2::53]:53   udp    dr    rr      no        retired
  -> (no backends)
";
        assert_eq!(format_vips(&vips), want);
        assert_eq!(format_vips(&[]), "no VIPs\n");
    }

    #[test]
    fn conns_table() {
        let c = ConnsReport {
            total: 7,
            conns: vec![
                ConnEntryReport {
                    worker: 0,
                    vip: "web".into(),
                    protocol: "tcp".into(),
                    client: "198.19.0.1:40000".into(),
                    backend: "198.18.1.11:8080".into(),
                    local: None,
                    state: "established".into(),
                    expires_in: 899,
                },
                ConnEntryReport {
                    worker: 11,
                    vip: "api".into(),
                    protocol: "tcp".into(),
                    client: "198.19.0.2:5".into(),
                    backend: "198.18.1.21:8443".into(),
                    local: Some("198.18.200.1:1025".into()),
                    state: "syn_sent".into(),
                    expires_in: 5,
                },
            ],
        };
        let want = "\
VIP  PROTO  CLIENT            BACKEND           LOCAL              STATE        EXPIRES  WORKER
web  tcp    198.19.0.1:40000  198.18.1.11:8080  -                  established      899       0
api  tcp    198.19.0.2:5      198.18.1.21:8443  198.18.200.1:1025  syn_sent           5      11
2 of 7 connections
";
        assert_eq!(format_conns(&c), want);
        assert_eq!(
            format_conns(&ConnsReport::default()),
            "0 of 0 connections\n"
        );
    }

    fn small_stats() -> StatsReport {
        StatsReport {
            uptime_secs: 61.0,
            generation: 2,
            reloads: 1,
            reload_failures: 0,
            workers: vec![
                WorkerReport {
                    worker: 0,
                    rx_packets: 100,
                    tx_packets: 90,
                    rx_bytes: 15000,
                    tx_bytes: 9000,
                    active_conns: 3,
                    new_conns_per_sec: 1.75,
                    drops: BTreeMap::from([
                        ("no_vip".to_string(), 7),
                        ("malformed".to_string(), 0),
                        ("no_conn".to_string(), 2),
                    ]),
                    ..WorkerReport::default()
                },
                WorkerReport {
                    worker: 1,
                    rx_packets: 5,
                    tx_packets: 5,
                    rx_bytes: 500,
                    tx_bytes: 500,
                    active_conns: 0,
                    new_conns_per_sec: 0.0,
                    drops: BTreeMap::from([("no_vip".to_string(), 1)]),
                    ..WorkerReport::default()
                },
            ],
            vips: vec![VipReport {
                name: "web".into(),
                address: "198.18.100.10:80".into(),
                protocol: "tcp".into(),
                mode: "nat".into(),
                retired: false,
                packets_in: 95,
                packets_out: 90,
                bytes_in: 14000,
                bytes_out: 9000,
                conns_total: 12,
                conns_active: 3,
                new_conns_per_sec: 1.75,
                backends_up: 1,
                backends_total: 2,
            }],
            backends: vec![BackendReport {
                address: "198.18.1.11:8080".into(),
                vips: vec!["web".into()],
                state: "up".into(),
                health: "unchecked".into(),
                admin: None,
                packets_in: 50,
                packets_out: 45,
                bytes_in: 7000,
                bytes_out: 4500,
                conns_total: 6,
                conns_active: 2,
                new_conns_per_sec: 0.5,
            }],
        }
    }

    #[test]
    fn stats_tables() {
        let want = "\
uptime 00:01:01, generation 2, reloads 1 (0 failed)

totals
  rx packets      105
  rx bytes      15500
  tx packets       95
  tx bytes       9500
  dropped          10
  active conns      3
  new conns/s     1.8

WORKER  RX_PKTS  TX_PKTS  RX_BYTES  TX_BYTES  DROPPED  ACTIVE  NEW/S
     0      100       90     15000      9000        9       3    1.8
     1        5        5       500       500        1       0    0.0

NAME  PKTS_IN  PKTS_OUT  BYTES_IN  BYTES_OUT  CONNS  ACTIVE  NEW/S  UP/TOTAL
web        95        90     14000       9000     12       3    1.8       1/2

ADDRESS           STATE  HEALTH     ADMIN  PKTS_IN  PKTS_OUT  CONNS  ACTIVE  NEW/S
198.18.1.11:8080  up     unchecked  -           50        45      6       2    0.5

DROP_REASON  PACKETS
no_vip             8
no_conn            2
";
        assert_eq!(format_stats(&small_stats()), want);

        let empty = format_stats(&StatsReport::default());
        assert!(empty.ends_with("\nno drops\n"), "{empty}");
        assert!(!empty.contains("WORKER"), "{empty}");
    }

    #[test]
    fn change_confirmations() {
        let r = json!({"generation": 4, "vips_added": ["web2"], "vips_removed": [],
                       "vips_changed": ["web", "dns"]});
        assert_eq!(
            format_change("reloaded", &r),
            "reloaded: generation 4, added web2, removed -, changed web,dns\n"
        );
        assert_eq!(
            format_change("removed vip web", &Value::Null),
            "removed vip web\n"
        );
        assert_eq!(
            format_change("draining backend 198.18.1.11:8080", &json!({"vips": 2})),
            "draining backend 198.18.1.11:8080: {\"vips\":2}\n"
        );
    }

    #[test]
    fn time_formats() {
        assert_eq!(utc_timestamp(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_timestamp(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc_timestamp(1_700_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(utc_timestamp(4_107_542_399), "2100-02-28 23:59:59 UTC");
        assert_eq!(format_uptime(0.0), "00:00:00");
        assert_eq!(format_uptime(-5.0), "00:00:00");
        assert_eq!(format_uptime(86399.99), "23:59:59");
        assert_eq!(format_uptime(86400.0 * 12.0 + 3661.0), "12d 01:01:01");
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
        let srv = ApiServer::start(&dir.path().join("r.sock"), Arc::new(Mock)).unwrap();
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
        let srv = ApiServer::start(&dir.path().join("r.sock"), Arc::new(Mock)).unwrap();
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
