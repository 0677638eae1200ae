//! The control API end to end: a live `Control` behind the Unix-socket
//! server, two worker threads running real frames through the datapath and
//! answering the control thread between bursts, a control thread ticking,
//! and `rampart ctl` (the binary) talking to it — tables, `--json`,
//! mutations, reloads of the config file on disk, malformed input on a raw
//! socket, and the Prometheus endpoint.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam::channel::{self, Receiver, Sender};
use serde_json::{json, Value};

use rampart::config;
use rampart::control::api::ApiServer;
use rampart::control::link::{SnapshotStore, WorkerLink};
use rampart::control::model::MAX_REQUEST_BYTES;
use rampart::control::prom::{self, MetricsServer};
use rampart::control::state::{Control, Shared};
use rampart::datapath::{self, WorkerState};
use rampart::flow::{proto, tcp_flags, Addr, FlowKey, Mac};
use rampart::gen::{self, Eth, TcpSeg};
use rampart_testkit::common::http_get;

const WORKERS: u16 = 2;
const NODE_MAC: Mac = Mac([2, 0, 0, 0, 0, 1]);
const CLIENT_MAC: Mac = Mac([2, 0, 0, 0, 0, 0xfe]);
/// VIP `web` of the reference config.
const WEB: (Addr, u16) = (Addr::from_v4([198, 18, 100, 10]), 80);
/// `web`'s backends in the reference config.
const WEB_BACKENDS: [&str; 3] = ["198.18.1.11:8080", "198.18.1.12:8080", "198.18.1.13:8080"];
/// VIPs in the reference config.
const REFERENCE_VIPS: usize = 13;

/// Upper bound of a worker or control thread's life, whatever the test does.
const THREAD_LIFETIME: Duration = Duration::from_secs(60);
/// How long a `rampart ctl` run may take.
const CTL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to wait for the workers' counters to show what was sent.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(10);

// ---- frames -------------------------------------------------------------

fn client(net: u8, i: u16) -> (Addr, u16) {
    (
        Addr::from_v4([198, 18, net, (i % 250 + 1) as u8]),
        40000 + i,
    )
}

fn tcp_to(vip: (Addr, u16), (c, sport): (Addr, u16), seq: u32, ack: u32, flags: u8) -> Vec<u8> {
    gen::tcp(
        &Eth {
            src: CLIENT_MAC,
            dst: NODE_MAC,
            vlan: None,
        },
        c,
        vip.0,
        64,
        1,
        &TcpSeg {
            sport,
            dport: vip.1,
            seq,
            ack,
            flags,
            window: 65535,
            ..TcpSeg::default()
        },
    )
}

fn syn(vip: (Addr, u16), c: (Addr, u16)) -> Vec<u8> {
    tcp_to(vip, c, 1000, 0, tcp_flags::SYN)
}

/// The client's ACK completing the handshake (the datapath follows the
/// client's flags: SYN then ACK is an established connection).
fn ack(vip: (Addr, u16), c: (Addr, u16)) -> Vec<u8> {
    tcp_to(vip, c, 1001, 5001, tcp_flags::ACK)
}

fn endpoint((a, p): (Addr, u16)) -> String {
    SocketAddr::new(a.to_ip(), p).to_string()
}

// ---- bounded waiting ----------------------------------------------------

/// Polls `f` every 10 ms until it holds; at most `timeout` and a bounded
/// number of rounds. Panics with `what` and the last value seen otherwise.
fn wait_for<T: std::fmt::Debug>(
    what: &str,
    timeout: Duration,
    mut f: impl FnMut() -> (bool, T),
) -> T {
    let step = Duration::from_millis(10);
    let rounds = timeout.as_millis() / step.as_millis() + 1;
    let deadline = Instant::now() + timeout;
    let mut last = None;
    for _ in 0..rounds {
        let (ok, v) = f();
        if ok {
            return v;
        }
        last = Some(v);
        if Instant::now() >= deadline {
            break;
        }
        thread::sleep(step);
    }
    panic!("timed out after {timeout:?} waiting for {what}; last: {last:?}");
}

// ---- the harness --------------------------------------------------------

/// What one `rampart ctl` run printed.
#[derive(Debug)]
struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Out {
    #[track_caller]
    fn success(self) -> String {
        assert!(self.ok, "ctl failed: {self:#?}");
        self.stdout
    }

    #[track_caller]
    fn failure(self) -> String {
        assert!(!self.ok, "ctl should have failed: {self:#?}");
        self.stderr
    }
}

/// A running control plane: the config file in a tempdir, `Control` behind
/// the API socket, worker threads, a ticking control thread. Dropping it
/// stops and joins every thread, also when a test fails.
struct Harness {
    /// Holds the config file and the socket; removed after the threads stop.
    dir: tempfile::TempDir,
    config_path: PathBuf,
    sock: PathBuf,
    shared: Shared,
    server: Option<ApiServer>,
    stop: Arc<AtomicBool>,
    frames: Vec<Sender<Vec<u8>>>,
    threads: Vec<JoinHandle<()>>,
    /// Frames handed to the workers so far.
    sent: u64,
}

impl Harness {
    fn start() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("rampart.toml");
        let text = rampart_testkit::fixtures::CONFIG_TEXT;
        std::fs::write(&config_path, text).unwrap();
        let cfg = config::parse(text, &config_path.display().to_string()).unwrap();
        let (control, links) =
            Control::new(cfg, text, Some(config_path.clone()), WORKERS, [7u8; 16], 0).unwrap();
        assert_eq!(links.len(), usize::from(WORKERS));
        let store = control.store();
        let shared = Shared(Arc::new(Mutex::new(control)));
        let sock = dir.path().join("ctl.sock");
        let stats = shared.lock().listener_stats();
        let server = ApiServer::start(&sock, Arc::new(shared.clone()), stats).unwrap();

        let stop = Arc::new(AtomicBool::new(false));
        let mut h = Harness {
            dir,
            config_path,
            sock,
            shared: shared.clone(),
            server: Some(server),
            stop: Arc::clone(&stop),
            frames: Vec::new(),
            threads: Vec::new(),
            sent: 0,
        };
        for (id, link) in links.into_iter().enumerate() {
            let (tx, rx) = channel::unbounded();
            h.frames.push(tx);
            let store = Arc::clone(&store);
            let stop = Arc::clone(&stop);
            let t = thread::Builder::new()
                .name(format!("test-worker-{id}"))
                .spawn(move || worker_loop(id as u16, store, link, rx, &stop))
                .unwrap();
            h.threads.push(t);
        }
        let t = thread::Builder::new()
            .name("test-control".into())
            .spawn(move || control_loop(&shared, &stop))
            .unwrap();
        h.threads.push(t);
        h
    }

    /// Hands `frames` to worker `w`.
    fn send(&mut self, w: usize, frames: Vec<Vec<u8>>) {
        for f in frames {
            self.frames[w].send(f).unwrap();
            self.sent += 1;
        }
    }

    /// SYNs from `n` clients of 198.18.`net`.0/24 to `vip`, to worker `w`.
    fn syns(&mut self, w: usize, vip: (Addr, u16), net: u8, n: u16) {
        let frames = (0..n).map(|i| syn(vip, client(net, i))).collect();
        self.send(w, frames);
    }

    /// Waits until the workers have published counters covering every
    /// frame sent so far.
    fn settle(&self) {
        let want = self.sent;
        wait_for("the workers' published rx counters", SETTLE_TIMEOUT, || {
            let rx = self.shared.lock().status().rx_packets;
            (rx == want, (rx, want))
        });
    }

    /// `rampart ctl --socket SOCK ARGS...`, bounded by [`CTL_TIMEOUT`].
    fn ctl(&self, args: &[&str]) -> Out {
        run_bin(&[&["ctl", "--socket", self.sock.to_str().unwrap()][..], args].concat())
    }

    /// `rampart ctl --json ARGS...`, which must succeed; its parsed output.
    fn ctl_json(&self, args: &[&str]) -> Value {
        let out = self.ctl(&[&["--json"][..], args].concat()).success();
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
    }

    fn vip(&self, name: &str) -> Value {
        let list = self.ctl_json(&["vip", "list"]);
        list.as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name && v["retired"] == false)
            .unwrap_or_else(|| panic!("no active VIP {name}: {list:#}"))
            .clone()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        // The server first: no request can reach Control any more.
        drop(self.server.take());
        self.stop.store(true, Ordering::Relaxed);
        let mut panicked = Vec::new();
        for t in self.threads.drain(..) {
            let name = t.thread().name().unwrap_or("?").to_string();
            if t.join().is_err() {
                panicked.push(name);
            }
        }
        if !panicked.is_empty() && !thread::panicking() {
            panic!("harness threads panicked: {panicked:?}");
        }
    }
}

/// A worker: takes up the current snapshot, runs what the test sent through
/// the datapath, ages, and services the control link, as the runtime's
/// poll loop does; bounded by the stop flag and [`THREAD_LIFETIME`].
fn worker_loop(
    id: u16,
    store: SnapshotStore,
    mut link: WorkerLink,
    rx: Receiver<Vec<u8>>,
    stop: &AtomicBool,
) {
    let started = Instant::now();
    let mut ws = WorkerState::new(&store.load(), id, WORKERS, 0x5eed_0000 + u64::from(id));
    while !stop.load(Ordering::Relaxed) && started.elapsed() < THREAD_LIFETIME {
        let snap = store.load();
        ws.adopt(&snap);
        // Real time, as on a live box: a SYN-only connection lives 30 s
        // (tcp_syn_sent), far longer than any of these tests.
        ws.set_clock_ns(started.elapsed().as_nanos() as u64);
        let mut n = 0;
        while n < 32 {
            let Ok(mut frame) = rx.try_recv() else { break };
            let _ = datapath::process(&mut frame, &mut ws, &snap);
            n += 1;
        }
        ws.age(&snap);
        // Nothing transmits here: what the worker originated is discarded.
        ws.outbox.clear();
        drop(snap);
        link.service(&mut ws, n);
        if n == 0 {
            thread::sleep(Duration::from_millis(1));
        }
    }
    link.publish_final(&ws);
}

/// The control thread: a tick every 10 ms, as the runtime's control loop.
fn control_loop(shared: &Shared, stop: &AtomicBool) {
    let started = Instant::now();
    while !stop.load(Ordering::Relaxed) && started.elapsed() < THREAD_LIFETIME {
        let now_ns = started.elapsed().as_nanos() as u64;
        shared.lock().tick(now_ns);
        thread::sleep(Duration::from_millis(10));
    }
}

/// Runs the rampart binary, killing it after [`CTL_TIMEOUT`].
fn run_bin(args: &[&str]) -> Out {
    let mut cmd = rampart_testkit::rampart_bin!();
    cmd.args(args);
    run_cmd(cmd)
}

/// Runs `cmd`, killing it after [`CTL_TIMEOUT`].
fn run_cmd(mut cmd: std::process::Command) -> Out {
    let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
    let mut child = cmd
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut so = child.stdout.take().unwrap();
    let mut se = child.stderr.take().unwrap();
    let ro = thread::spawn(move || {
        let mut s = String::new();
        let _ = so.read_to_string(&mut s);
        s
    });
    let re = thread::spawn(move || {
        let mut s = String::new();
        let _ = se.read_to_string(&mut s);
        s
    });
    let mut status = None;
    let deadline = Instant::now() + CTL_TIMEOUT;
    for _ in 0..CTL_TIMEOUT.as_millis() / 5 + 1 {
        if let Some(s) = child.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        if Instant::now() >= deadline {
            break;
        }
        thread::sleep(Duration::from_millis(5));
    }
    let Some(status) = status else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("{args:?} did not finish within {CTL_TIMEOUT:?}");
    };
    Out {
        ok: status.success(),
        stdout: ro.join().unwrap(),
        stderr: re.join().unwrap(),
    }
}

// ---- table helpers ------------------------------------------------------

/// The whitespace-separated cells of every line.
fn rows(text: &str) -> Vec<Vec<&str>> {
    text.lines()
        .map(|l| l.split_whitespace().collect())
        .collect()
}

/// The value of a `key  value` line of `ctl status`.
fn status_value<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| {
            let rest = l.strip_prefix(key)?;
            rest.starts_with("  ").then(|| rest.trim())
        })
        .unwrap_or_else(|| panic!("no `{key}` line in:\n{text}"))
}

/// The `stats --json` backend named `addr`.
fn backend<'a>(stats: &'a Value, addr: &str) -> &'a Value {
    stats["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["address"] == addr)
        .unwrap_or_else(|| panic!("no backend {addr} in {stats:#}"))
}

fn stats_vip<'a>(stats: &'a Value, name: &str) -> &'a Value {
    stats["vips"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name && v["retired"] == false)
        .unwrap_or_else(|| panic!("no VIP {name} in {stats:#}"))
}

fn vip_backend<'a>(vip: &'a Value, addr: &str) -> &'a Value {
    vip["backends"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["address"] == addr)
        .unwrap_or_else(|| panic!("no backend {addr} in {vip:#}"))
}

// ---- 1. queries ---------------------------------------------------------

#[test]
fn ctl_tables_and_json_show_the_live_state() {
    let mut h = Harness::start();
    h.syns(0, WEB, 50, 20);
    h.syns(1, WEB, 51, 10);
    h.settle();
    let path = h.config_path.display().to_string();

    // status
    let out = h.ctl(&["status"]).success();
    assert_eq!(status_value(&out, "version"), env!("CARGO_PKG_VERSION"));
    assert_eq!(status_value(&out, "config"), path);
    assert_eq!(status_value(&out, "generation"), "0");
    assert_eq!(status_value(&out, "reloads"), "0 (0 failed)");
    assert_eq!(status_value(&out, "workers"), "2");
    assert_eq!(status_value(&out, "vips"), REFERENCE_VIPS.to_string());
    assert_eq!(status_value(&out, "active conns"), "30");
    assert_eq!(status_value(&out, "rx packets"), "30");
    assert_eq!(status_value(&out, "tx packets"), "30");
    assert_eq!(status_value(&out, "dropped"), "0");
    assert!(!out.contains("last reload error"), "{out}");

    let s = h.ctl_json(&["status"]);
    assert_eq!(s["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(s["config"], path);
    assert_eq!(s["workers"], 2);
    assert_eq!(s["vips"], REFERENCE_VIPS);
    assert_eq!(s["reloads"], 0);
    assert_eq!(s["reload_failures"], 0);
    assert_eq!(s["last_reload_error"], Value::Null);
    assert_eq!(s["active_conns"], 30);
    assert_eq!(s["rx_packets"], 30);
    assert_eq!(s["dropped"], 0);
    assert_eq!(s["backends_up"], s["backends_total"]);

    // vip list
    let out = h.ctl(&["vip", "list"]).success();
    let r = rows(&out);
    assert_eq!(
        r[0],
        ["NAME", "ADDRESS", "PROTO", "MODE", "SCHED", "SYNPROXY", "STATE"],
        "{out}"
    );
    assert!(
        r.contains(&vec![
            "web",
            "198.18.100.10:80",
            "tcp",
            "nat",
            "maglev",
            "no",
            "active"
        ]),
        "{out}"
    );
    assert!(
        r.contains(&vec![
            "shield",
            "198.18.100.40:443",
            "tcp",
            "nat",
            "maglev",
            "yes",
            "active"
        ]),
        "{out}"
    );
    let web_row = r.iter().position(|x| x.first() == Some(&"web")).unwrap();
    for (i, (b, w)) in WEB_BACKENDS.iter().zip(["1", "1", "2"]).enumerate() {
        assert_eq!(
            r[web_row + 1 + i],
            ["->", b, "weight", w, "state", "up"],
            "{out}"
        );
    }
    let vips = r.iter().filter(|x| x.first() != Some(&"->")).count() - 1;
    assert_eq!(vips, REFERENCE_VIPS, "{out}");

    let list = h.ctl_json(&["vip", "list"]);
    assert_eq!(list.as_array().unwrap().len(), REFERENCE_VIPS);
    let web = h.vip("web");
    assert_eq!(web["address"], "198.18.100.10:80");
    assert_eq!(web["protocol"], "tcp");
    assert_eq!(web["mode"], "nat");
    assert_eq!(web["scheduler"], "maglev");
    assert_eq!(web["synproxy"], false);
    assert_eq!(
        web["backends"],
        json!([
            {"address": "198.18.1.11:8080", "weight": 1, "state": "up"},
            {"address": "198.18.1.12:8080", "weight": 1, "state": "up"},
            {"address": "198.18.1.13:8080", "weight": 2, "state": "up"},
        ])
    );
    assert_eq!(h.vip("web6")["address"], "[2001:2:0:100::10]:80");

    // stats
    let out = h.ctl(&["stats"]).success();
    assert!(out.starts_with("uptime "), "{out}");
    assert!(
        out.contains(", generation 0, reloads 0 (0 failed)\n"),
        "{out}"
    );
    let r = rows(&out);
    let line = |first: &[&str]| -> Vec<&str> {
        r.iter()
            .find(|x| x.starts_with(first))
            .unwrap_or_else(|| panic!("no line starting {first:?} in:\n{out}"))
            .clone()
    };
    assert_eq!(line(&["rx", "packets"])[2], "30");
    assert_eq!(line(&["active", "conns"])[2], "30");
    assert_eq!(
        line(&["WORKER"]),
        ["WORKER", "RX_PKTS", "TX_PKTS", "RX_BYTES", "TX_BYTES", "DROPPED", "ACTIVE", "NEW/S"]
    );
    let worker0 = r.iter().find(|x| x.len() == 8 && x[0] == "0").unwrap();
    assert_eq!((worker0[1], worker0[6]), ("20", "20"), "{out}");
    let worker1 = r.iter().find(|x| x.len() == 8 && x[0] == "1").unwrap();
    assert_eq!((worker1[1], worker1[6]), ("10", "10"), "{out}");
    assert_eq!(
        line(&["NAME"]),
        [
            "NAME",
            "PKTS_IN",
            "PKTS_OUT",
            "BYTES_IN",
            "BYTES_OUT",
            "CONNS",
            "ACTIVE",
            "NEW/S",
            "UP/TOTAL"
        ]
    );
    let web = line(&["web"]);
    assert_eq!(web[1], "30", "{out}");
    assert_eq!((web[5], web[6], web[8]), ("30", "30", "3/3"), "{out}");
    assert_eq!(
        line(&["ADDRESS"]),
        [
            "ADDRESS", "STATE", "HEALTH", "ADMIN", "PKTS_IN", "PKTS_OUT", "CONNS", "ACTIVE",
            "NEW/S"
        ]
    );
    let mut web_conns = 0;
    for b in WEB_BACKENDS {
        let row = line(&[b]);
        assert_eq!(&row[1..4], ["up", "unchecked", "-"], "{out}");
        web_conns += row[6].parse::<u64>().unwrap();
    }
    assert_eq!(web_conns, 30, "{out}");
    assert!(out.ends_with("\nno drops\n"), "{out}");

    let st = h.ctl_json(&["stats"]);
    assert_eq!(st["workers"].as_array().unwrap().len(), 2);
    assert_eq!(st["workers"][0]["rx_packets"], 20);
    assert_eq!(st["workers"][1]["rx_packets"], 10);
    assert_eq!(st["workers"][0]["active_conns"], 20);
    let web = stats_vip(&st, "web");
    assert_eq!(web["conns_total"], 30);
    assert_eq!(web["conns_active"], 30);
    assert_eq!(web["packets_in"], 30);
    assert_eq!(web["backends_up"], 3);
    assert_eq!(web["backends_total"], 3);
    assert_eq!(stats_vip(&st, "dns")["conns_total"], 0);
    let per_backend: u64 = WEB_BACKENDS
        .iter()
        .map(|b| {
            let b = backend(&st, b);
            assert_eq!(b["vips"], json!(["web"]));
            assert_eq!(b["state"], "up");
            assert_eq!(b["health"], "unchecked");
            assert_eq!(b["admin"], Value::Null);
            b["conns_total"].as_u64().unwrap()
        })
        .sum();
    assert_eq!(per_backend, 30);

    // conns
    let out = h.ctl(&["conns", "--vip", "web", "--limit", "5"]).success();
    let r = rows(&out);
    assert_eq!(
        r[0],
        ["VIP", "PROTO", "CLIENT", "BACKEND", "LOCAL", "STATE", "EXPIRES", "WORKER"],
        "{out}"
    );
    assert_eq!(r.len(), 7, "{out}");
    for row in &r[1..6] {
        assert_eq!(row[..2], ["web", "tcp"], "{out}");
        assert!(row[2].starts_with("198.18.5"), "{out}");
        assert!(WEB_BACKENDS.contains(&row[3]), "{out}");
        assert_eq!(row[4..6], ["-", "syn_sent"], "{out}");
        let expires: u32 = row[6].parse().unwrap();
        assert!((1..=30).contains(&expires), "{out}");
    }
    assert_eq!(out.lines().last(), Some("5 of 30 connections"), "{out}");

    let c = h.ctl_json(&["conns", "--vip", "web", "--limit", "5"]);
    assert_eq!(c["total"], 30);
    assert_eq!(c["conns"].as_array().unwrap().len(), 5);
    let c = h.ctl_json(&["conns", "--vip", "web"]);
    assert_eq!(c["total"], 30);
    let conns = c["conns"].as_array().unwrap();
    assert_eq!(conns.len(), 30);
    let mut clients: Vec<String> = conns
        .iter()
        .map(|e| e["client"].as_str().unwrap().to_string())
        .collect();
    clients.sort();
    let mut want: Vec<String> = (0..20)
        .map(|i| endpoint(client(50, i)))
        .chain((0..10).map(|i| endpoint(client(51, i))))
        .collect();
    want.sort();
    assert_eq!(clients, want);
    for e in conns {
        let from = if e["client"].as_str().unwrap().starts_with("198.18.50.") {
            0
        } else {
            1
        };
        assert_eq!(e["worker"], from, "{e}");
        assert_eq!(e["local"], Value::Null);
    }
    assert_eq!(h.ctl_json(&["conns"])["total"], 30);
    assert_eq!(h.ctl_json(&["conns", "--vip", "dns"])["total"], 0);
    let out = h.ctl(&["conns", "--vip", "dns"]).success();
    assert_eq!(out, "0 of 0 connections\n");
}

// ---- 2. mutations -------------------------------------------------------

#[test]
fn ctl_mutations_change_the_running_config() {
    let mut h = Harness::start();
    h.syns(0, WEB, 50, 20);
    h.settle();

    // vip add
    let out = h
        .ctl(&[
            "vip",
            "add",
            "web2",
            "198.18.100.50:8080",
            "--backend",
            "198.18.1.21:80@2",
        ])
        .success();
    assert_eq!(
        out,
        "added vip web2 (198.18.100.50:8080): generation 1, added web2, removed -, changed -\n"
    );
    let web2 = h.vip("web2");
    assert_eq!(web2["address"], "198.18.100.50:8080");
    assert_eq!(
        (web2["mode"].as_str(), web2["scheduler"].as_str()),
        (Some("nat"), Some("maglev"))
    );
    assert_eq!(
        web2["backends"],
        json!([{"address": "198.18.1.21:80", "weight": 2, "state": "up"}])
    );
    assert_eq!(h.ctl_json(&["status"])["vips"], REFERENCE_VIPS + 1);
    // The new VIP takes traffic.
    let web2_addr = (Addr::from_v4([198, 18, 100, 50]), 8080);
    h.syns(1, web2_addr, 52, 4);
    h.settle();
    let st = h.ctl_json(&["stats"]);
    assert_eq!(stats_vip(&st, "web2")["conns_total"], 4);
    assert_eq!(backend(&st, "198.18.1.21:80")["conns_total"], 4);

    // backend add / weight
    let out = h
        .ctl(&["backend", "add", "web", "198.18.1.14:8080", "--weight", "2"])
        .success();
    assert!(
        out.starts_with("added backend 198.18.1.14:8080 to web: generation 2,"),
        "{out}"
    );
    assert!(out.ends_with("changed web\n"), "{out}");
    let web = h.vip("web");
    assert_eq!(web["backends"].as_array().unwrap().len(), 4);
    assert_eq!(
        vip_backend(&web, "198.18.1.14:8080"),
        &json!({"address": "198.18.1.14:8080", "weight": 2, "state": "up"})
    );
    let out = h
        .ctl(&["backend", "weight", "web", "198.18.1.14:8080", "5"])
        .success();
    assert!(
        out.starts_with("set weight of 198.18.1.14:8080 on web to 5: generation 3,"),
        "{out}"
    );
    let web = h.vip("web");
    assert_eq!(vip_backend(&web, "198.18.1.14:8080")["weight"], 5);
    assert_eq!(vip_backend(&web, "198.18.1.13:8080")["weight"], 2);

    // drain: listed as drain, the override shows as admin, and new
    // connections go elsewhere while the existing ones stay.
    let before = h.ctl_json(&["stats"]);
    let on12 = backend(&before, "198.18.1.12:8080")["conns_total"].clone();
    // Without the drain, some of the clients sent below would land on it.
    let undrained = h.shared.lock().snapshot();
    let would = (0..40)
        .filter(|i| {
            let (src, sport) = client(53, *i);
            let key = FlowKey {
                src,
                dst: WEB.0,
                sport,
                dport: WEB.1,
                proto: proto::TCP,
            };
            let b = undrained.which_backend(&key).unwrap();
            endpoint((b.key.addr, b.key.port)) == "198.18.1.12:8080"
        })
        .count();
    assert!(would > 0, "the drain check would prove nothing");
    let out = h.ctl(&["backend", "drain", "198.18.1.12:8080"]).success();
    assert!(
        out.starts_with("draining backend 198.18.1.12:8080: "),
        "{out}"
    );
    let answer: Value = serde_json::from_str(out.trim().split_once(": ").unwrap().1).unwrap();
    assert_eq!(answer["backend"], "198.18.1.12:8080");
    assert_eq!(answer["state"], "drain");
    assert_eq!(
        vip_backend(&h.vip("web"), "198.18.1.12:8080")["state"],
        "drain"
    );
    let st = h.ctl_json(&["stats"]);
    let b = backend(&st, "198.18.1.12:8080");
    assert_eq!(
        (b["state"].as_str(), b["admin"].as_str()),
        (Some("drain"), Some("drain"))
    );
    assert_eq!(stats_vip(&st, "web")["backends_up"], 3);
    let out = h.ctl(&["stats"]).success();
    let row = rows(&out)
        .into_iter()
        .find(|r| r.first() == Some(&"198.18.1.12:8080"))
        .unwrap();
    assert_eq!(row[1..4], ["drain", "unchecked", "drain"], "{out}");
    h.syns(0, WEB, 53, 40);
    h.settle();
    let st = h.ctl_json(&["stats"]);
    assert_eq!(stats_vip(&st, "web")["conns_total"], 60);
    assert_eq!(
        backend(&st, "198.18.1.12:8080")["conns_total"],
        on12,
        "a drained backend got new connections"
    );
    assert_eq!(h.ctl_json(&["conns", "--vip", "web"])["total"], 60);

    // clear hands it back to health checks (none here: up).
    let out = h.ctl(&["backend", "clear", "198.18.1.12:8080"]).success();
    assert!(
        out.starts_with("cleared the override of backend 198.18.1.12:8080: "),
        "{out}"
    );
    assert_eq!(
        vip_backend(&h.vip("web"), "198.18.1.12:8080")["state"],
        "up"
    );
    let st = h.ctl_json(&["stats"]);
    assert_eq!(backend(&st, "198.18.1.12:8080")["admin"], Value::Null);
    assert_eq!(backend(&st, "198.18.1.12:8080")["state"], "up");

    // down / up
    h.ctl(&["backend", "down", "198.18.1.12:8080"]).success();
    assert_eq!(
        vip_backend(&h.vip("web"), "198.18.1.12:8080")["state"],
        "down"
    );
    let st = h.ctl_json(&["stats"]);
    assert_eq!(backend(&st, "198.18.1.12:8080")["admin"], "down");
    assert_eq!(stats_vip(&st, "web")["backends_up"], 3);
    h.ctl(&["backend", "up", "198.18.1.12:8080"]).success();
    assert_eq!(
        vip_backend(&h.vip("web"), "198.18.1.12:8080")["state"],
        "up"
    );
    assert_eq!(
        backend(&h.ctl_json(&["stats"]), "198.18.1.12:8080")["admin"],
        "up"
    );
    h.ctl(&["backend", "clear", "198.18.1.12:8080"]).success();
    assert_eq!(
        backend(&h.ctl_json(&["stats"]), "198.18.1.12:8080")["admin"],
        Value::Null
    );

    // Refused changes leave everything as it was.
    let gen = h.ctl_json(&["status"])["generation"].clone();
    let vips_before = h.ctl_json(&["vip", "list"]);
    let n = vips_before.as_array().unwrap().len();
    let err = h.ctl(&["vip", "add", "dup", "198.18.100.10:80"]).failure();
    assert!(err.starts_with("rampart: invalid_config: "), "{err}");
    assert!(
        err.contains(&format!(
            "vip[{n}].address: tcp 198.18.100.10:80 is already served by VIP `web`"
        )),
        "{err}"
    );
    let err = h.ctl(&["vip", "add", "web", "198.18.100.99:80"]).failure();
    assert!(
        err.contains(&format!("vip[{n}].name: VIP name `web` is already used")),
        "{err}"
    );
    let err = h
        .ctl(&["backend", "weight", "web", "198.18.9.9:8080", "1"])
        .failure();
    assert_eq!(
        err.trim_end(),
        "rampart: not_found: VIP `web` has no backend 198.18.9.9:8080"
    );
    let err = h.ctl(&["vip", "del", "nosuch"]).failure();
    assert_eq!(err.trim_end(), "rampart: not_found: no VIP named `nosuch`");
    let err = h
        .ctl(&["backend", "add", "nosuch", "198.18.1.11:8080"])
        .failure();
    assert!(err.contains("not_found: no VIP named `nosuch`"), "{err}");
    let err = h.ctl(&["backend", "drain", "198.18.9.9:8080"]).failure();
    assert!(
        err.contains("not_found: no VIP has backend 198.18.9.9:8080"),
        "{err}"
    );
    let err = h.ctl(&["conns", "--vip", "nosuch"]).failure();
    assert!(err.contains("not_found: no VIP named `nosuch`"), "{err}");
    assert_eq!(h.ctl_json(&["status"])["generation"], gen);
    assert_eq!(h.ctl_json(&["vip", "list"]), vips_before);

    // backend del, vip del
    h.ctl(&["backend", "del", "web", "198.18.1.14:8080"])
        .success();
    let web = h.vip("web");
    let addrs: Vec<&str> = web["backends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["address"].as_str().unwrap())
        .collect();
    assert_eq!(addrs, WEB_BACKENDS);
    let out = h.ctl(&["vip", "del", "web2"]).success();
    assert!(out.starts_with("removed vip web2: generation "), "{out}");
    assert!(out.contains(", removed web2,"), "{out}");
    let list = h.ctl_json(&["vip", "list"]);
    assert!(
        list.as_array()
            .unwrap()
            .iter()
            .all(|v| v["name"] != "web2" || v["retired"] == true),
        "{list:#}"
    );
    assert_eq!(h.ctl_json(&["status"])["vips"], REFERENCE_VIPS);
    // Its connections are still tracked while they drain.
    assert_eq!(h.ctl_json(&["conns"])["total"], 64);
}

// ---- 3. reload ----------------------------------------------------------

#[test]
fn ctl_reload_rereads_the_file_and_refuses_a_broken_one() {
    let mut h = Harness::start();
    h.syns(0, WEB, 50, 20);
    // One of them completes its handshake.
    h.send(0, vec![ack(WEB, client(50, 7))]);
    h.settle();
    let established = endpoint(client(50, 7));
    let conn_state = |h: &Harness| -> Value {
        let c = h.ctl_json(&["conns", "--vip", "web"]);
        assert_eq!(c["total"], 20, "{c:#}");
        c["conns"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["client"] == established.as_str())
            .unwrap_or_else(|| panic!("{established} not listed: {c:#}"))
            .clone()
    };
    let before = conn_state(&h);
    assert_eq!(before["state"], "established");

    // A good edit: web's third backend reweighted, a VIP added.
    let old13 = "address = \"198.18.1.13\"\nport = 8080\nweight = 2";
    let text = rampart_testkit::fixtures::CONFIG_TEXT;
    assert!(text.contains(old13), "configs/rampart.toml changed shape");
    let good = text.replace(old13, "address = \"198.18.1.13\"\nport = 8080\nweight = 4")
        + "\n[[vip]]\nname = \"web3\"\naddress = \"198.18.100.60\"\nport = 80\nprotocol = \"tcp\"\n\
           mode = \"nat\"\n\n[[vip.backend]]\naddress = \"198.18.1.13\"\nport = 8080\n";
    std::fs::write(&h.config_path, &good).unwrap();
    let out = h.ctl(&["reload"]).success();
    assert_eq!(
        out,
        "reloaded: generation 1, added web3, removed -, changed web\n"
    );
    let s = h.ctl_json(&["status"]);
    assert_eq!(
        (s["reloads"].as_u64(), s["reload_failures"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(s["generation"], 1);
    assert_eq!(s["last_reload_error"], Value::Null);
    assert_eq!(s["vips"], REFERENCE_VIPS + 1);
    assert_eq!(vip_backend(&h.vip("web"), "198.18.1.13:8080")["weight"], 4);
    assert_eq!(h.vip("web3")["address"], "198.18.100.60:80");

    // The connections opened before the reload are all still there, the
    // established one on the same backend and still established.
    let after = conn_state(&h);
    assert_eq!(after["backend"], before["backend"]);
    assert_eq!(after["state"], "established");
    // The new VIP takes traffic.
    h.syns(1, (Addr::from_v4([198, 18, 100, 60]), 80), 54, 5);
    h.settle();
    let st = h.ctl_json(&["stats"]);
    assert_eq!(stats_vip(&st, "web3")["conns_total"], 5);
    assert_eq!(stats_vip(&st, "web")["conns_total"], 20);

    // A broken file is refused with check-config's located message.
    let broken = good.replacen("table_size = 65537", "table_size = 65536", 1);
    assert_ne!(broken, good);
    let line = broken
        .lines()
        .position(|l| l == "table_size = 65536")
        .unwrap()
        + 1;
    std::fs::write(&h.config_path, &broken).unwrap();
    let err = h.ctl(&["reload"]).failure();
    let located = format!(
        "{}:{line}:14: vip[0].table_size: 65536 is not prime",
        h.config_path.display()
    );
    assert!(err.starts_with("rampart: invalid_config: "), "{err}");
    assert!(err.contains(&located), "{err:?} lacks {located:?}");
    let s = h.ctl_json(&["status"]);
    assert_eq!(
        (s["reloads"].as_u64(), s["reload_failures"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(s["generation"], 1);
    let last = s["last_reload_error"].as_str().unwrap();
    assert!(last.contains(&located), "{last}");
    let out = h.ctl(&["status"]).success();
    assert!(
        status_value(&out, "last reload error").contains(&located),
        "{out}"
    );
    assert_eq!(status_value(&out, "reloads"), "1 (1 failed)");
    // The running config is the last good one.
    assert_eq!(vip_backend(&h.vip("web"), "198.18.1.13:8080")["weight"], 4);
    assert_eq!(h.vip("web3")["address"], "198.18.100.60:80");
    let out = h.ctl(&["vip", "list"]).success();
    assert!(
        rows(&out).iter().any(|r| r.first() == Some(&"web3")),
        "{out}"
    );
    assert_eq!(conn_state(&h)["state"], "established");

    // An unreadable file is a failure too, and fixing the file recovers.
    std::fs::remove_file(&h.config_path).unwrap();
    let err = h.ctl(&["reload"]).failure();
    assert!(err.contains("failed: "), "{err}");
    assert!(err.contains(&h.config_path.display().to_string()), "{err}");
    std::fs::write(&h.config_path, text).unwrap();
    let out = h.ctl(&["reload"]).success();
    assert_eq!(
        out,
        "reloaded: generation 2, added -, removed web3, changed web\n"
    );
    let s = h.ctl_json(&["status"]);
    assert_eq!(
        (s["reloads"].as_u64(), s["reload_failures"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(s["last_reload_error"], Value::Null);
    assert_eq!(s["vips"], REFERENCE_VIPS);
    assert_eq!(conn_state(&h)["state"], "established");
    assert_eq!(h.ctl_json(&["conns"])["total"], 25);
}

// ---- 4. malformed input on the live socket ------------------------------

struct Client {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Client {
    fn connect(path: &Path) -> Client {
        let s = UnixStream::connect(path).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
        Client {
            writer: s.try_clone().unwrap(),
            reader: BufReader::new(s),
        }
    }

    fn answer(&mut self) -> Value {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        assert!(line.ends_with('\n'), "no full answer line: {line:?}");
        serde_json::from_str(&line).unwrap()
    }

    fn ask(&mut self, bytes: &[u8]) -> Value {
        self.writer.write_all(bytes).unwrap();
        self.answer()
    }

    /// True when the server has closed the connection (bounded by the
    /// read timeout).
    fn closed(&mut self) -> bool {
        let mut buf = [0u8; 64];
        matches!(self.reader.read(&mut buf), Ok(0))
    }
}

#[track_caller]
fn assert_error(v: &Value, code: &str, text: &str) {
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["error"]["code"], code, "{v}");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains(text), "{msg:?} lacks {text:?}");
}

#[track_caller]
fn assert_status(v: &Value) {
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["result"]["workers"], 2, "{v}");
    assert_eq!(v["result"]["version"], env!("CARGO_PKG_VERSION"), "{v}");
}

#[test]
fn live_socket_survives_malformed_clients() {
    let mut h = Harness::start();
    h.syns(0, WEB, 50, 3);
    h.settle();

    let meta = std::fs::symlink_metadata(&h.sock).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);

    let mut c = Client::connect(&h.sock);
    assert_error(&c.ask(b"\x00garbage{{\n"), "bad_request", "not JSON");
    assert_error(
        &c.ask(b"{\"cmd\":\"backend_state\",\"backend\":\"198.18.1.11:8080\",\"state\":\"sideways\"}\n"),
        "bad_request",
        "state `sideways`: expected one of up, down, drain, clear",
    );
    assert_error(
        &c.ask(b"{\"cmd\":\"backend_state\",\"backend\":\"198.18.1.11\",\"state\":\"down\"}\n"),
        "bad_request",
        "ADDR:PORT",
    );
    assert_error(
        &c.ask(b"{\"cmd\":\"backend_state\",\"backend\":\"not-an-address\",\"state\":\"down\"}\n"),
        "bad_request",
        "`not-an-address` is not ADDR:PORT",
    );
    assert_error(
        &c.ask(b"{\"cmd\":\"conns\",\"limit\":100001}\n"),
        "bad_request",
        "100001",
    );
    assert_error(
        &c.ask(b"{\"cmd\":\"vip_add\",\"vip\":7}\n"),
        "bad_request",
        "",
    );
    assert_error(
        &c.ask(b"{\"cmd\":\"status\",\"x\":1}\n"),
        "bad_request",
        "unknown field `x`",
    );
    // A mutating command with an argument it does not take is refused, not
    // executed with the argument ignored.
    assert_error(
        &c.ask(b"{\"cmd\":\"reload\",\"force\":true}\n"),
        "bad_request",
        "unknown field `force`",
    );
    assert_error(&c.ask(b"[1,2]\n"), "bad_request", "must be a JSON object");
    // The refused override changed nothing.
    let v = c.ask(b"{\"cmd\":\"stats\"}\n");
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(
        backend(&v["result"], "198.18.1.11:8080")["admin"],
        Value::Null
    );
    assert_eq!(v["result"]["generation"], 0);
    assert_eq!(v["result"]["reloads"], 0);
    // The same connection still serves good requests.
    assert_status(&c.ask(b"{\"cmd\":\"status\"}\n"));
    let v = c.ask(b"{\"cmd\":\"conns\",\"vip\":\"web\",\"limit\":2}\n");
    assert_eq!(v["result"]["total"], 3, "{v}");
    assert_eq!(v["result"]["conns"].as_array().unwrap().len(), 2, "{v}");

    // A line over the limit: too_long, then the server hangs up.
    let mut c = Client::connect(&h.sock);
    let mut line = b"{\"cmd\":\"status\"}".to_vec();
    line.resize(MAX_REQUEST_BYTES + 10, b' ');
    line.push(b'\n');
    // The server may hang up before reading all of it.
    let _ = c.writer.write_all(&line);
    assert_error(&c.answer(), "too_long", &MAX_REQUEST_BYTES.to_string());
    assert!(c.closed());

    // A line of exactly the limit is served.
    let mut c = Client::connect(&h.sock);
    let mut line = b"{\"cmd\":\"status\"}".to_vec();
    line.resize(MAX_REQUEST_BYTES, b' ');
    line.push(b'\n');
    assert_status(&c.ask(&line));

    // Hanging up mid-request, and after a request without reading the
    // answer (a `conns`, which waits on the workers).
    let mut c = Client::connect(&h.sock);
    c.writer.write_all(b"{\"cmd\":\"sta").unwrap();
    drop(c);
    let mut c = Client::connect(&h.sock);
    c.writer
        .write_all(b"{\"cmd\":\"conns\"}\n{\"cmd\":\"stats\"}\n{\"cmd\":\"status\"}\n")
        .unwrap();
    drop(c);
    // Connecting and leaving without a byte.
    drop(UnixStream::connect(&h.sock).unwrap());

    let mut c = Client::connect(&h.sock);
    assert_status(&c.ask(b"{\"cmd\":\"status\"}\n"));
    // Several requests in one write are answered in order.
    c.writer
        .write_all(b"{\"cmd\":\"status\"}\n\n{\"cmd\":\"vip_del\",\"name\":\"nosuch\"}\n{\"cmd\":\"vip_list\"}\n")
        .unwrap();
    assert_status(&c.answer());
    assert_error(&c.answer(), "not_found", "no VIP named `nosuch`");
    let v = c.answer();
    assert_eq!(v["result"].as_array().unwrap().len(), REFERENCE_VIPS, "{v}");
    // And the ctl binary still works against it.
    let s = h.ctl_json(&["status"]);
    assert_eq!(s["workers"], 2);
    assert_eq!(s["active_conns"], 3);
}

// ---- 5. Prometheus ------------------------------------------------------

fn scrape(addr: SocketAddr) -> prometheus_parse::Scrape {
    let (status, headers, body) = http_get(addr, "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK", "{headers}\n{body}");
    assert!(
        headers.to_ascii_lowercase().contains(&format!(
            "content-type: {}",
            prom::CONTENT_TYPE.to_ascii_lowercase()
        )),
        "{headers}"
    );
    prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string()))).unwrap()
}

fn sample(s: &prometheus_parse::Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    let hits: Vec<_> = s
        .samples
        .iter()
        .filter(|x| x.metric == metric)
        .filter(|x| labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .collect();
    assert_eq!(hits.len(), 1, "{metric} {labels:?}: {hits:#?}");
    match hits[0].value {
        prometheus_parse::Value::Counter(x)
        | prometheus_parse::Value::Gauge(x)
        | prometheus_parse::Value::Untyped(x) => x,
        ref other => panic!("{metric}: unexpected {other:?}"),
    }
}

#[test]
fn prometheus_endpoint_exposes_the_live_counters() {
    let mut h = Harness::start();
    h.syns(0, WEB, 50, 20);
    h.syns(1, WEB, 51, 10);
    h.settle();

    let shared = h.shared.clone();
    let source: prom::MetricsSource = Arc::new(move || prom::render(&shared.lock().stats()));
    let stats = h.shared.lock().listener_stats();
    let srv = MetricsServer::start("127.0.0.1:0".parse().unwrap(), source, stats).unwrap();
    let addr = srv.local_addr();
    assert!(addr.ip().is_loopback() && addr.port() != 0, "{addr}");

    let s = scrape(addr);
    let web = [("vip", "web")];
    assert_eq!(sample(&s, "rampart_vip_connections_total", &web), 30.0);
    assert_eq!(sample(&s, "rampart_vip_active_connections", &web), 30.0);
    assert_eq!(sample(&s, "rampart_vip_backends_up", &web), 3.0);
    assert_eq!(
        sample(&s, "rampart_vip_connections_total", &[("vip", "dns")]),
        0.0
    );
    assert_eq!(sample(&s, "rampart_config_generation", &[]), 0.0);
    assert_eq!(sample(&s, "rampart_reloads_total", &[]), 0.0);
    let mut total = 0.0;
    for b in WEB_BACKENDS {
        let l = [("backend", b)];
        assert_eq!(sample(&s, "rampart_backend_up", &l), 1.0, "{b}");
        total += sample(&s, "rampart_backend_connections_total", &l);
    }
    assert_eq!(total, 30.0);
    let backend_up = s
        .samples
        .iter()
        .filter(|x| x.metric == "rampart_backend_up")
        .count();
    let expected = h.shared.lock().stats().backends.len();
    assert_eq!(backend_up, expected);

    // A drained backend is not up; the scrape follows the live state.
    h.ctl(&["backend", "drain", "198.18.1.12:8080"]).success();
    let s = scrape(addr);
    assert_eq!(
        sample(&s, "rampart_backend_up", &[("backend", "198.18.1.12:8080")]),
        0.0
    );
    assert_eq!(
        sample(&s, "rampart_backend_up", &[("backend", "198.18.1.11:8080")]),
        1.0
    );
    assert_eq!(sample(&s, "rampart_config_generation", &[]), 1.0);
    h.syns(1, WEB, 55, 5);
    h.settle();
    let s = scrape(addr);
    assert_eq!(sample(&s, "rampart_vip_connections_total", &web), 35.0);

    let (status, _, _) = http_get(addr, "/nope");
    assert!(status.starts_with("HTTP/1.1 404"), "{status}");

    // A request head over the limit is refused and counted where the
    // scrape and `ctl stats` show it.
    let too_large = [("listener", "metrics"), ("reason", "too_large")];
    assert_eq!(
        sample(&s, "rampart_listener_refusals_total", &too_large),
        0.0
    );
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(CTL_TIMEOUT)).unwrap();
    let mut big = b"GET /metrics HTTP/1.1\r\nX-Big: ".to_vec();
    big.resize(2 * prom::MAX_HEAD_BYTES, b'a');
    let _ = c.write_all(&big);
    let mut reply = Vec::new();
    let _ = c.read_to_end(&mut reply);
    assert!(reply.starts_with(b"HTTP/1.1 431"), "{reply:?}");
    let s = scrape(addr);
    assert_eq!(
        sample(&s, "rampart_listener_refusals_total", &too_large),
        1.0
    );
    let refusals = &h.ctl_json(&["stats"])["refusals"];
    let metrics_too_large = refusals
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["listener"] == "metrics" && r["reason"] == "too_large")
        .unwrap_or_else(|| panic!("{refusals:#}"));
    assert_eq!(metrics_too_large["count"], 1);
    drop(srv);
}

// ---- who may use the socket -------------------------------------------

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// `rampart ctl --socket SOCK ARGS...` run as `nobody` through runuser,
/// from a copy of the binary nobody can execute (the build tree may sit in
/// a directory only root enters).
fn ctl_as_nobody(bin_dir: &Path, sock: &Path, args: &[&str]) -> Out {
    let mut cmd = std::process::Command::new("runuser");
    cmd.args(["-u", "nobody", "--"])
        .arg(bin_dir.join("rampart"))
        .args(["ctl", "--socket", sock.to_str().unwrap()])
        .args(args);
    run_cmd(cmd)
}

fn listener_refusals(h: &Harness, listener: &str, reason: &str) -> u64 {
    let stats = h.ctl_json(&["stats"]);
    let found = stats["refusals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["listener"] == listener && r["reason"] == reason)
        .unwrap_or_else(|| panic!("no {listener}/{reason} in {:#}", stats["refusals"]))
        .clone();
    found["count"].as_u64().unwrap()
}

#[test]
#[ignore = "needs root and runuser (to connect as nobody); run with --include-ignored, as CI does"]
fn the_socket_refuses_a_user_other_than_root() {
    assert!(
        is_root(),
        "this test connects as nobody: it must run as root"
    );
    let h = Harness::start();
    let bins = tempfile::tempdir().unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_rampart"), bins.path().join("rampart")).unwrap();
    for p in [bins.path(), h.dir.path()] {
        // Nobody may enter (not list) the directories, and run the copy.
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o711)).unwrap();
    }
    let drain = ["backend", "drain", "198.18.1.12:8080"];
    let up = |h: &Harness| {
        vip_backend(&h.vip("web"), "198.18.1.12:8080")["state"]
            .as_str()
            .unwrap()
            .to_string()
    };

    // As created (mode 0600, owned by root), the socket is closed to
    // nobody by the file system.
    let out = ctl_as_nobody(bins.path(), &h.sock, &drain);
    let err = out.failure();
    assert!(err.contains("Permission denied"), "{err}");
    assert!(
        err.contains("only root and the user rampart runs as may use the control socket"),
        "{err}"
    );

    // Opened to everyone, it still serves root only: the peer's
    // credentials decide, and nothing nobody sent is executed.
    std::fs::set_permissions(&h.sock, std::fs::Permissions::from_mode(0o666)).unwrap();
    let out = ctl_as_nobody(bins.path(), &h.sock, &drain);
    let err = out.failure();
    assert!(
        err.contains("not_permitted: uid 65534 gid ")
            && err.contains("may not use the control socket (only uid 0 may)"),
        "{err}"
    );
    assert_eq!(up(&h), "up");
    let out = ctl_as_nobody(bins.path(), &h.sock, &["status"]);
    assert!(out.failure().contains("not_permitted"));
    assert_eq!(listener_refusals(&h, "control", "not_permitted"), 2);

    // Root is served on the same socket.
    h.ctl(&drain).success();
    assert_eq!(up(&h), "drain");
    assert_eq!(listener_refusals(&h, "control", "not_permitted"), 2);
}
