//! `rampart run`: the appliance on DPDK ports (feature `dpdk`).
//!
//! Start-up, in order, each step ending in one line that names the cause and
//! a hint when it fails: CPU plan (workers on their own CPUs, the control
//! thread off them), EAL (arguments from `[dpdk].eal_args` or the command
//! line, plus `-l CONTROL` and a `--vdev` / `-a` per `[[port]]`), the mbuf
//! pool, every port configured with one rx and one tx queue per worker (RSS
//! when there are several and the driver hashes), then one pinned worker
//! thread per CPU, registered as an EAL lcore (`rte_thread_register`), each
//! a [`crate::runtime::Worker`] over its [`DpdkIo`] (the threads, the
//! counters they publish and the control loop are [`crate::runtime`]'s,
//! shared with what runs without DPDK). With several
//! workers each also has an `rte_ring` through which the others hand it the
//! frames of its connections ([`crate::io::steer`]).
//!
//! The main thread is the control thread: it prints a rate line every
//! `stats_interval` seconds, and stops the workers on SIGINT / SIGTERM, or
//! when rx has been idle for `idle_exit_ms` (finite pcap inputs stop by
//! themselves). Stopping: workers finish their burst and send what is
//! queued, port counters are read, ports are stopped (net_pcap closes its
//! tx file) and closed, and the same summary as `rampart replay` is
//! printed.
//!
//! The worker clock: `--clock packets` runs it from capture timestamps
//! (net_pcap only), which makes a run over a pcap give exactly the frames
//! `rampart replay` gives, SYN cookies included; `monotonic` is the clock of
//! a live port. `auto` picks packets when every port is a finite net_pcap
//! vdev.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dpdk_bindings::{lcore, Access, Eal, Mempool, Port as EthPort, Ring, SOCKET_ANY};
use serde_json::{json, Value};

use crate::config::{Config, Port};
use crate::control::api::{ApiServer, Handler};
use crate::control::prom::{self, MetricsServer};
use crate::control::state::{Control, Shared};
use crate::io::dpdk::{DpdkIo, IoStats};
use crate::io::route::Routes;
use crate::replay::{self, ReplayReport};
use crate::runtime::{
    IdleSleep, LoopPolicy, Pool, RuntimeError, Signals, Stopped, Totals, WorkerSpec,
};
use crate::snapshot::Snapshot;
use crate::worker::Clock;

mod setup;

use setup::{
    check_port_files, cpu_plan, eal_args, eal_failure, join, setup_kernel_port, setup_port,
    with_handover, with_kernel, worker_io,
};

/// Where the worker clock comes from (`--clock`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockChoice {
    /// Packets when every port is a finite net_pcap vdev, else monotonic.
    Auto,
    /// Capture timestamps (net_pcap): the run reproduces `rampart replay`.
    Packets,
    /// A monotonic clock shared by the workers: what a live port needs.
    Monotonic,
}

impl ClockChoice {
    pub const NAMES: &'static [&'static str] = &["auto", "packets", "monotonic"];

    pub fn from_name(s: &str) -> Option<ClockChoice> {
        match s {
            "auto" => Some(ClockChoice::Auto),
            "packets" => Some(ClockChoice::Packets),
            "monotonic" => Some(ClockChoice::Monotonic),
            _ => None,
        }
    }
}

/// What `rampart run` was asked for besides the config.
pub struct RunOptions {
    /// The config file, for messages.
    pub config_path: PathBuf,
    /// EAL arguments given after `--`; they replace `[dpdk].eal_args`.
    pub eal_args: Option<Vec<String>>,
    pub clock: ClockChoice,
}

/// A port's counters at the end of the run.
pub struct PortReport {
    pub name: String,
    pub driver: String,
    pub stats: dpdk_bindings::PortStats,
}

/// Everything the summary and `--stats-json` say.
pub struct RunReport {
    pub snap: Snapshot,
    pub replay: ReplayReport,
    pub workers: usize,
    pub io: IoStats,
    pub ports: Vec<PortReport>,
    pub stopped_by: &'static str,
}

/// Why `rampart run` could not start, or failed while running. Each says
/// the cause in one line and, where there is one, the likeliest fix.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The config (or the command line) lacks what a run needs, or names
    /// CPUs or capture files this process cannot have.
    #[error("{0}")]
    Config(String),
    /// The control side could not be built (keys, the config file, the
    /// first snapshot).
    #[error("{0}")]
    Control(String),
    /// `rte_eal_init` or the mbuf pool.
    #[error("{0}")]
    Eal(String),
    /// A port, its queues, or a hand-over ring.
    #[error("{0}")]
    Port(String),
    /// The control socket or the metrics listener.
    #[error("{0}")]
    Listener(String),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

/// Mbuf data room: a 2048-byte buffer after the 128-byte headroom
/// (RTE_MBUF_DEFAULT_BUF_SIZE), enough for a 1518-byte frame.
const DATA_ROOM: u16 = 2176;

/// Frames each worker's hand-over ring holds.
const HANDOVER_RING: u32 = 8192;

/// A worker's heartbeat standing still this long (beyond its idle sleep)
/// is logged as a stall.
const STALL_LOG: Duration = Duration::from_millis(100);

/// Runs until a signal (or idle input) stops it; returns the final counters.
pub fn run(cfg: &Config, opts: &RunOptions) -> Result<RunReport, RunError> {
    let file = opts.config_path.display().to_string();
    let Some(dpdk) = cfg.dpdk.clone() else {
        return Err(RunError::Config(format!(
            "{file}: rampart run needs a [dpdk] section and at least one [[port]] (see README, \"rampart run\")"
        )));
    };
    if cfg.ports.is_empty() {
        return Err(RunError::Config(format!(
            "{file}: rampart run needs at least one [[port]] (a PCI address or a vdev such as net_pcap0,rx_pcap=in.pcap,tx_pcap=out.pcap)"
        )));
    }
    let clock = match opts.clock {
        ClockChoice::Auto if cfg.ports.iter().all(Port::is_finite_pcap) => ClockChoice::Packets,
        ClockChoice::Auto => ClockChoice::Monotonic,
        ClockChoice::Packets if !cfg.ports.iter().all(|p| p.vdev_arg("rx_pcap").is_some()) => {
            return Err(RunError::Config(
                "--clock packets needs capture timestamps, which only net_pcap ports reading rx_pcap files have; use --clock monotonic"
                    .to_string(),
            ))
        }
        c => c,
    };
    check_port_files(&cfg.ports).map_err(RunError::Config)?;
    // Handlers first: a signal during start-up stops the run as soon as the
    // workers are up, instead of killing the process mid-setup.
    let signals = Signals::register()?;
    let plan = cpu_plan(&dpdk).map_err(RunError::Config)?;
    let args = eal_args(&dpdk, opts.eal_args.as_deref(), &cfg.ports, plan.control);

    // One cookie key for every worker, whichever worker sees the ACK.
    let mut cfg = cfg.clone();
    if cfg.synproxy.secret.is_none() {
        cfg.synproxy.secret = Some(
            crate::random::key().map_err(|e| RunError::Control(format!("SYN cookie key: {e}")))?,
        );
    }
    let text = std::fs::read_to_string(&opts.config_path)
        .map_err(|e| RunError::Control(format!("{file}: {e}")))?;
    let (control, links) = Control::new(
        cfg.clone(),
        &text,
        Some(opts.config_path.clone()),
        plan.workers.len() as u16,
        crate::random::key().map_err(|e| RunError::Control(format!("SYN cookie key: {e}")))?,
        0,
    )
    .map_err(|e| RunError::Control(e.to_string()))?;
    let store = control.store();
    let snap = store.load_full();
    let control = Shared(Arc::new(Mutex::new(control)));

    let eal = Eal::init(args.clone()).map_err(|e| RunError::Eal(eal_failure(&e, &args)))?;
    let workers = plan.workers.len();
    let pool = Mempool::new(
        &eal,
        "rampart_pool",
        dpdk.mempool_size,
        dpdk.mempool_cache,
        DATA_ROOM,
        SOCKET_ANY,
    )
    .map_err(|e| {
        RunError::Eal(format!(
            "mbuf pool of {} mbufs: {e} (hint: lower dpdk.mempool_size, or give EAL more memory: more hugepages with scripts/setup-dpdk.sh, or -m with --no-huge)",
            dpdk.mempool_size
        ))
    })?;

    let mut ports = Vec::with_capacity(cfg.ports.len());
    for (i, p) in cfg.ports.iter().enumerate() {
        ports.push(setup_port(&eal, &pool, &dpdk, i, p, workers).map_err(RunError::Port)?);
    }
    // Each port's kernel interface, with the port's MAC.
    let mut kernel_ports: Vec<Option<EthPort>> = Vec::with_capacity(cfg.ports.len());
    for (i, (port, p)) in ports.iter().zip(cfg.ports.iter()).enumerate() {
        let Some(ifname) = &p.kernel_interface else {
            kernel_ports.push(None);
            continue;
        };
        let mac = port
            .mac()
            .map_err(|e| RunError::Port(format!("port[{i}]: its MAC: {e}")))?;
        let k = setup_kernel_port(&eal, &pool, &dpdk, i, ifname, mac, workers)
            .map_err(RunError::Port)?;
        kernel_ports.push(Some(k));
    }
    // Drivers that register the timestamp field at configure have done so.
    dpdk_bindings::lookup_rx_timestamp(&eal);

    println!(
        "rampart run: DPDK {}, {} port(s), {workers} worker(s) on CPU {}, control on CPU {}, clock {}, hugepages {}",
        dpdk_bindings::DPDK_VERSION,
        ports.len(),
        join(plan.workers.iter()),
        plan.control,
        if clock == ClockChoice::Packets {
            "packets"
        } else {
            "monotonic"
        },
        if eal.has_hugepages() { "yes" } else { "no" },
    );
    for (i, (port, p)) in ports.iter().zip(cfg.ports.iter()).enumerate() {
        let mac = port
            .mac()
            .map(|m| m.map(|b| format!("{b:02x}")).join(":"))
            .unwrap_or_else(|_| "?".into());
        let link = match port.link() {
            Ok(l) if l.up => format!("up {} Mbps", l.speed_mbps),
            Ok(_) => "down".to_string(),
            Err(_) => "?".to_string(),
        };
        println!(
            "  port {i} {} ({}) mac {mac} link {link}, {workers} rx/tx queue(s), RSS {}{}",
            p.device_name(),
            port.driver_name().unwrap_or_default(),
            if port.rss_hf() != 0 { "on" } else { "off" },
            p.kernel_interface
                .as_ref()
                .map(|k| format!(", kernel interface {k}"))
                .unwrap_or_default(),
        );
    }

    // One ring per worker: every other worker hands it the frames it owns.
    let mut rings = Vec::new();
    if workers > 1 {
        for w in 0..workers {
            let r = Ring::new(
                &eal,
                &format!("rampart_ho{w}"),
                HANDOVER_RING,
                SOCKET_ANY,
                Access::Multi,
                Access::Single,
            )
            .map_err(|e| RunError::Port(format!("hand-over ring of worker {w}: {e}")))?;
            rings.push(r);
        }
    }

    let routes = Routes::new(cfg.ports.iter().map(|p| p.subnets.as_slice()));
    let start = Instant::now();
    let seed = crate::random::seed()
        .map_err(|e| RunError::Control(format!("connection-hash seed: {e}")))?;
    let mut specs = Vec::with_capacity(workers);
    for ((w, &cpu), link) in plan.workers.iter().enumerate().zip(links) {
        let io = worker_io(&ports, &cfg.ports, &pool, &routes, &dpdk, w)
            .and_then(|io| with_kernel(io, &kernel_ports, w))
            .and_then(|io| with_handover(io, &rings, w, &store))
            .map_err(RunError::Port)?;
        specs.push(WorkerSpec {
            io,
            link,
            cpu: Some(cpu),
            seed: seed.wrapping_add(w as u64),
            clock: if clock == ClockChoice::Packets {
                Clock::Packets
            } else {
                Clock::Monotonic(start)
            },
            idle: IdleSleep::from_config(dpdk.idle_sleep_us, dpdk.idle_polls),
        });
    }
    // Each worker thread registers as an EAL lcore before it polls.
    let registering = eal.clone();
    let running = Pool::start(
        &store,
        specs,
        move |w| {
            lcore::thread_register(&registering).map_err(|e| {
                format!("worker {w}: {e} (hint: run EAL with --no-shconf or --in-memory, and no secondary processes)")
            })
        },
        DpdkIo::stats,
    )?;
    let mut startup_error = None;

    // The ports' NIC counters for `stats` and /metrics, read live from the
    // control state (cleared below before the ports close).
    let port_ids: Vec<(String, u16)> = ports
        .iter()
        .zip(cfg.ports.iter())
        .map(|(port, p)| (p.device_name(), port.id()))
        .collect();
    let reading = eal.clone();
    control
        .lock()
        .set_port_stats(Some(Box::new(move || port_counters(&reading, &port_ids))));

    // The API and the metrics endpoint come up once the workers are.
    let api = match &cfg.control.socket {
        Some(path) => {
            let handler: Arc<dyn Handler> = Arc::new(control.clone());
            let stats = control.lock().listener_stats();
            match ApiServer::start(path, handler, stats) {
                Ok(a) => {
                    println!("  control socket {}", path.display());
                    Some(a)
                }
                Err(e) => {
                    startup_error = Some(RunError::Listener(e.to_string()));
                    None
                }
            }
        }
        None => None,
    };
    let metrics = match (cfg.control.prometheus, &startup_error) {
        (Some(addr), None) => {
            let c = control.clone();
            let source: Arc<dyn Fn() -> String + Send + Sync> =
                Arc::new(move || prom::render(&c.lock().stats()));
            let stats = control.lock().listener_stats();
            match MetricsServer::start(addr, source, stats) {
                Ok(m) => {
                    println!("  prometheus http://{}/metrics", m.local_addr());
                    Some(m)
                }
                Err(e) => {
                    startup_error = Some(RunError::Listener(e.to_string()));
                    None
                }
            }
        }
        _ => None,
    };
    let policy = LoopPolicy {
        idle_exit: Duration::from_millis(u64::from(dpdk.idle_exit_ms_for(&cfg.ports))),
        stats_interval: Duration::from_secs(u64::from(dpdk.stats_interval)),
        drain: Duration::from_secs(
            cfg.bgp
                .as_ref()
                .filter(|b| b.enabled)
                .map_or(0, |b| u64::from(b.drain_seconds)),
        ),
        // A worker that sleeps when idle is still for its sleep; more than
        // STALL_LOG beyond it is a stall.
        stall_log: STALL_LOG + Duration::from_micros(u64::from(dpdk.idle_sleep_us)),
    };
    let (stopped_by, last_rx) = match startup_error {
        Some(_) => (Stopped::StartupFailure, Instant::now()),
        None => running.control_loop(&control, &signals, &policy),
    };
    let joined = running.join();
    drop(api);
    drop(metrics);
    // No read of the ports' counters is under way once this returns.
    control.lock().set_port_stats(None);
    // A run that stopped on idle input is timed to its last packet.
    let elapsed = match stopped_by {
        Stopped::Idle => last_rx.saturating_duration_since(start),
        _ => start.elapsed(),
    };

    let mut port_reports = Vec::with_capacity(ports.len());
    for (port, p) in ports.iter().zip(cfg.ports.iter()) {
        port_reports.push(PortReport {
            name: p.device_name(),
            driver: port.driver_name().unwrap_or_default(),
            stats: port.stats().unwrap_or_default(),
        });
    }
    for (i, mut port) in ports.into_iter().enumerate() {
        if let Err(e) = port.stop() {
            eprintln!("warning: port {i}: {e}");
        }
        if let Err(e) = port.close() {
            eprintln!("warning: port {i}: {e}");
        }
    }
    // Closing a kernel interface removes it from the kernel.
    for (i, port) in kernel_ports.into_iter().enumerate() {
        let Some(mut port) = port else { continue };
        if let Err(e) = port.stop() {
            eprintln!("warning: port {i} kernel interface: {e}");
        }
        if let Err(e) = port.close() {
            eprintln!("warning: port {i} kernel interface: {e}");
        }
    }
    let results = joined?;
    if let Some(e) = startup_error {
        return Err(e);
    }

    let mut io = IoStats::default();
    for (_, s) in &results {
        io.merge(s);
    }
    let totals = Totals::of(
        results.iter().map(|(e, _)| e),
        snap.vips.len(),
        snap.backends.len(),
    );
    // Frames still in a ring when the workers stopped are freed with it,
    // before the pool goes.
    drop(rings);
    drop(pool);
    drop(eal);
    let snap = (*store.load_full()).clone();
    let health_events = control.lock().take_health_events();
    let reloads = control.lock().status().reloads;
    Ok(RunReport {
        snap,
        replay: ReplayReport {
            stats: totals.stats,
            health_events,
            reloads,
            active_conns: totals.active,
            conn_capacity: totals.capacity,
            bytes_per_entry: totals.bytes_per_entry,
            elapsed,
            workers,
        },
        workers,
        io,
        ports: port_reports,
        stopped_by: stopped_by.name(),
    })
}

/// The NIC counters of the ports `ids` names, as `stats` reports them; a
/// port whose counters cannot be read is left out.
fn port_counters(eal: &Eal, ids: &[(String, u16)]) -> Vec<crate::control::model::PortReport> {
    ids.iter()
        .filter_map(|(name, id)| {
            let s = EthPort::stats_of(eal, *id).ok()?;
            Some(crate::control::model::PortReport {
                port: name.clone(),
                rx_missed: s.imissed,
                rx_nombuf: s.rx_nombuf,
                rx_errors: s.ierrors,
                tx_errors: s.oerrors,
            })
        })
        .collect()
}

/// The summary: `rampart replay`'s lines, with a header and the DPDK
/// counters of this run.
pub fn summary(r: &RunReport) -> String {
    let body = replay::summary(std::path::Path::new("-"), None, &r.replay);
    let body = body.split_once('\n').map_or("", |(_, rest)| rest);
    let names: Vec<&str> = r.ports.iter().map(|p| p.name.as_str()).collect();
    let mut out = format!(
        "run {} (stopped: {}, {} worker{})\n",
        names.join(", "),
        r.stopped_by,
        r.workers,
        if r.workers == 1 { "" } else { "s" }
    );
    out.push_str(body);
    let io = &r.io;
    let _ = writeln!(
        out,
        "  dpdk io      rx {}  tx {}  tx_dropped {}  tx_alloc_failed {}  rx_multiseg {}",
        io.rx_packets, io.tx_packets, io.tx_dropped, io.tx_alloc_failed, io.rx_multiseg
    );
    if r.workers > 1 {
        let _ = writeln!(
            out,
            "  handovers    {} (to the owning worker; ring full: {})",
            io.handovers_out, io.handover_dropped
        );
    }
    if io.kernel_in + io.kernel_out + io.kernel_dropped > 0 {
        let _ = writeln!(
            out,
            "  kernel       to the kernel {}  from the kernel {}  no interface {}",
            io.kernel_in, io.kernel_out, io.kernel_dropped
        );
    }
    for (i, p) in r.ports.iter().enumerate() {
        let s = &p.stats;
        let _ = writeln!(
            out,
            "  port {i}       {} ({}): ipackets {} opackets {} imissed {} ierrors {} oerrors {} rx_nombuf {}",
            p.name, p.driver, s.ipackets, s.opackets, s.imissed, s.ierrors, s.oerrors, s.rx_nombuf
        );
    }
    out
}

/// `rampart replay`'s stats document plus a `dpdk` object.
pub fn stats_json(r: &RunReport) -> Value {
    let mut doc = replay::stats_json(&r.snap, &r.replay);
    let ports: Vec<Value> = r
        .ports
        .iter()
        .map(|p| {
            let s = &p.stats;
            json!({
                "name": p.name,
                "driver": p.driver,
                "ipackets": s.ipackets,
                "opackets": s.opackets,
                "ibytes": s.ibytes,
                "obytes": s.obytes,
                "imissed": s.imissed,
                "ierrors": s.ierrors,
                "oerrors": s.oerrors,
                "rx_nombuf": s.rx_nombuf,
            })
        })
        .collect();
    if let Some(obj) = doc.as_object_mut() {
        obj.insert(
            "dpdk".to_string(),
            json!({
                "workers": r.workers,
                "stopped_by": r.stopped_by,
                "rx_packets": r.io.rx_packets,
                "tx_packets": r.io.tx_packets,
                "tx_dropped": r.io.tx_dropped,
                "tx_alloc_failed": r.io.tx_alloc_failed,
                "rx_multiseg": r.io.rx_multiseg,
                "tx_unmatched": r.io.tx_unmatched,
                "handovers": r.io.handovers_out,
                "handovers_received": r.io.handovers_in,
                "handover_dropped": r.io.handover_dropped,
                "kernel_in": r.io.kernel_in,
                "kernel_out": r.io.kernel_out,
                "kernel_dropped": r.io.kernel_dropped,
                "ports": ports,
            }),
        );
    }
    doc
}
