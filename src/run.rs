//! `rampart run`: the appliance on DPDK ports (feature `dpdk`).
//!
//! Start-up, in order, each step ending in one line that names the cause and
//! a hint when it fails: CPU plan (workers on their own CPUs, the control
//! thread off them), EAL (arguments from `[dpdk].eal_args` or the command
//! line, plus `-l CONTROL` and a `--vdev` / `-a` per `[[port]]`), the mbuf
//! pool, every port configured with one rx and one tx queue per worker (RSS
//! when there are several and the driver hashes), then one pinned worker
//! thread per CPU, registered as an EAL lcore (`rte_thread_register`), each
//! running [`crate::worker::poll_once`] over its [`DpdkIo`]. With several
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
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam::utils::CachePadded;
use dpdk_bindings::{lcore, Access, Eal, Mempool, Port as EthPort, Ring, SOCKET_ANY};
use serde_json::{json, Value};

use crate::config::{Config, Dpdk, Port};
use crate::control::api::{ApiServer, Handler};
use crate::control::link::{SnapshotStore, WorkerLink};
use crate::control::prom::{self, MetricsServer};
use crate::control::state::{Control, Shared};
use crate::datapath::WorkerState;
use crate::io::dpdk::{DpdkIo, Handover, IoStats, RxPort};
use crate::io::route::Routes;
use crate::replay::{self, ReplayReport};
use crate::snapshot::Snapshot;
use crate::stats::WorkerStats;
use crate::worker::{poll_once, Clock, BURST};

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

/// Counters a worker publishes for the control thread, once per burst.
#[derive(Default)]
struct Live {
    rx: AtomicU64,
    tx: AtomicU64,
    dropped: AtomicU64,
}

/// What a worker hands back when it stops.
struct WorkerResult {
    stats: WorkerStats,
    active: u32,
    capacity: u32,
    bytes_per_entry: usize,
    io: IoStats,
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

/// Mbuf data room: a 2048-byte buffer after the 128-byte headroom
/// (RTE_MBUF_DEFAULT_BUF_SIZE), enough for a 1518-byte frame.
const DATA_ROOM: u16 = 2176;

/// Frames each worker's hand-over ring holds.
const HANDOVER_RING: u32 = 8192;

/// How often the control thread looks at the stop conditions.
const CONTROL_TICK: Duration = Duration::from_millis(5);

/// Runs until a signal (or idle input) stops it; returns the final counters.
pub fn run(cfg: &Config, opts: &RunOptions) -> Result<RunReport, String> {
    let file = opts.config_path.display().to_string();
    let Some(dpdk) = cfg.dpdk.clone() else {
        return Err(format!(
            "{file}: rampart run needs a [dpdk] section and at least one [[port]] (see README, \"rampart run\")"
        ));
    };
    if cfg.ports.is_empty() {
        return Err(format!(
            "{file}: rampart run needs at least one [[port]] (a PCI address or a vdev such as net_pcap0,rx_pcap=in.pcap,tx_pcap=out.pcap)"
        ));
    }
    let clock = match opts.clock {
        ClockChoice::Auto if cfg.ports.iter().all(Port::is_finite_pcap) => ClockChoice::Packets,
        ClockChoice::Auto => ClockChoice::Monotonic,
        ClockChoice::Packets if !cfg.ports.iter().all(|p| p.vdev_arg("rx_pcap").is_some()) => {
            return Err(
                "--clock packets needs capture timestamps, which only net_pcap ports reading rx_pcap files have; use --clock monotonic"
                    .to_string(),
            )
        }
        c => c,
    };
    check_port_files(&cfg.ports)?;
    // Handlers first: a signal during start-up stops the run as soon as the
    // workers are up, instead of killing the process mid-setup.
    let signalled = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&signalled))
            .map_err(|e| format!("cannot handle signal {sig}: {e}"))?;
    }
    let plan = cpu_plan(&dpdk)?;
    let args = eal_args(&dpdk, opts.eal_args.as_deref(), &cfg.ports, plan.control);

    // One cookie key for every worker, whichever worker sees the ACK.
    let mut cfg = cfg.clone();
    if cfg.synproxy.secret.is_none() {
        cfg.synproxy.secret =
            Some(crate::random::key().map_err(|e| format!("SYN cookie key: {e}"))?);
    }
    let text = std::fs::read_to_string(&opts.config_path).map_err(|e| format!("{file}: {e}"))?;
    let (control, links) = Control::new(
        cfg.clone(),
        &text,
        Some(opts.config_path.clone()),
        plan.workers.len() as u16,
        crate::random::key().map_err(|e| format!("SYN cookie key: {e}"))?,
        0,
    )
    .map_err(|e| e.to_string())?;
    let store = control.store();
    let snap = store.load_full();
    let control = Shared(Arc::new(Mutex::new(control)));
    let hup = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&hup))
        .map_err(|e| format!("cannot handle SIGHUP: {e}"))?;

    let eal = Eal::init(args.clone()).map_err(|e| eal_failure(&e, &args))?;
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
        format!(
            "mbuf pool of {} mbufs: {e} (hint: lower dpdk.mempool_size, or give EAL more memory: more hugepages with scripts/setup-dpdk.sh, or -m with --no-huge)",
            dpdk.mempool_size
        )
    })?;

    let mut ports = Vec::with_capacity(cfg.ports.len());
    for (i, p) in cfg.ports.iter().enumerate() {
        ports.push(setup_port(&eal, &pool, &dpdk, i, p, workers)?);
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
            "  port {i} {} ({}) mac {mac} link {link}, {workers} rx/tx queue(s), RSS {}",
            p.device_name(),
            port.driver_name().unwrap_or_default(),
            if port.rss_hf() != 0 { "on" } else { "off" },
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
            .map_err(|e| format!("hand-over ring of worker {w}: {e}"))?;
            rings.push(r);
        }
    }

    let routes = Routes::new(cfg.ports.iter().map(|p| p.subnets.as_slice()));
    let stop = Arc::new(AtomicBool::new(false));
    let live: Arc<Vec<CachePadded<Live>>> = Arc::new(
        (0..workers)
            .map(|_| CachePadded::new(Live::default()))
            .collect(),
    );
    let start = Instant::now();
    let seed = crate::random::seed().map_err(|e| format!("connection-hash seed: {e}"))?;
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
    let mut handles: Vec<JoinHandle<Option<WorkerResult>>> = Vec::with_capacity(workers);
    let mut startup_error = None;
    for ((w, &cpu), link) in plan.workers.iter().enumerate().zip(links) {
        let io = match worker_io(&ports, &cfg.ports, &pool, &routes, &dpdk, w)
            .and_then(|io| with_handover(io, &rings, w, &store))
        {
            Ok(io) => io,
            Err(e) => {
                startup_error = Some(e);
                break;
            }
        };
        let ctx = WorkerCtx {
            id: w as u16,
            workers: workers as u16,
            cpu,
            seed: seed.wrapping_add(w as u64),
            clock: if clock == ClockChoice::Packets {
                Clock::Packets
            } else {
                Clock::Monotonic(start)
            },
            eal: eal.clone(),
            store: Arc::clone(&store),
            link,
            stop: Arc::clone(&stop),
            live: Arc::clone(&live),
            ready: ready_tx.clone(),
        };
        let spawned = std::thread::Builder::new()
            .name(format!("rampart-w{w}"))
            .spawn(move || worker_main(ctx, io));
        match spawned {
            Ok(h) => handles.push(h),
            Err(e) => {
                startup_error = Some(format!("cannot start worker {w}: {e}"));
                break;
            }
        }
    }
    drop(ready_tx);
    if startup_error.is_none() {
        for _ in 0..handles.len() {
            match ready_rx.recv() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    startup_error = Some(e);
                    break;
                }
                Err(_) => {
                    startup_error = Some("a worker exited during start-up".to_string());
                    break;
                }
            }
        }
    }
    if let Some(e) = startup_error {
        stop.store(true, Ordering::Relaxed);
        for h in handles {
            let _ = h.join();
        }
        return Err(e);
    }

    // The API and the metrics endpoint come up once the workers are.
    let api = match &cfg.control.socket {
        Some(path) => {
            let handler: Arc<dyn Handler> = Arc::new(control.clone());
            match ApiServer::start(path, handler) {
                Ok(a) => {
                    println!("  control socket {}", path.display());
                    Some(a)
                }
                Err(e) => {
                    startup_error = Some(e.to_string());
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
            match MetricsServer::start(addr, source) {
                Ok(m) => {
                    println!("  prometheus http://{}/metrics", m.local_addr());
                    Some(m)
                }
                Err(e) => {
                    startup_error = Some(e.to_string());
                    None
                }
            }
        }
        _ => None,
    };
    let (stopped_by, last_rx) = match startup_error {
        Some(_) => ("start-up failure", Instant::now()),
        None => control_loop(
            &dpdk, &cfg.ports, &signalled, &hup, &control, &live, &handles,
        ),
    };
    stop.store(true, Ordering::Relaxed);
    drop(api);
    drop(metrics);

    let mut results = Vec::with_capacity(workers);
    let mut failed = None;
    for (w, h) in handles.into_iter().enumerate() {
        match h.join() {
            Ok(Some(r)) => results.push(r),
            Ok(None) | Err(_) => failed = Some(w),
        }
    }
    // A run that stopped on idle input is timed to its last packet.
    let elapsed = match stopped_by {
        "idle" => last_rx.saturating_duration_since(start),
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
    if let Some(w) = failed {
        return Err(format!("worker {w} failed (see the message above)"));
    }
    if let Some(e) = startup_error {
        return Err(e);
    }

    let mut stats = WorkerStats::new(snap.vips.len(), snap.backends.len());
    let mut io = IoStats::default();
    let (mut active, mut capacity, mut bytes_per_entry) = (0u32, 0u32, 0usize);
    for r in &results {
        stats.merge(&r.stats);
        io.merge(&r.io);
        active += r.active;
        capacity += r.capacity;
        bytes_per_entry = r.bytes_per_entry;
    }
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
            stats,
            health_events,
            reloads,
            active_conns: active,
            conn_capacity: capacity,
            bytes_per_entry,
            elapsed,
            workers,
        },
        workers,
        io,
        ports: port_reports,
        stopped_by,
    })
}

/// Everything a worker thread starts with.
struct WorkerCtx {
    id: u16,
    workers: u16,
    cpu: usize,
    seed: u64,
    clock: Clock,
    eal: Eal,
    store: SnapshotStore,
    link: WorkerLink,
    stop: Arc<AtomicBool>,
    live: Arc<Vec<CachePadded<Live>>>,
    ready: mpsc::Sender<Result<(), String>>,
}

fn worker_main(ctx: WorkerCtx, mut io: DpdkIo) -> Option<WorkerResult> {
    let w = ctx.id;
    if !core_affinity::set_for_current(core_affinity::CoreId { id: ctx.cpu }) {
        let _ = ctx.ready.send(Err(format!(
            "worker {w}: cannot pin to CPU {} (hint: dpdk.lcores must name CPUs this process may use)",
            ctx.cpu
        )));
        return None;
    }
    let registration = match lcore::thread_register(&ctx.eal) {
        Ok(r) => r,
        Err(e) => {
            let _ = ctx.ready.send(Err(format!(
                "worker {w}: {e} (hint: run EAL with --no-shconf or --in-memory, and no secondary processes)"
            )));
            return None;
        }
    };
    // The connection table is allocated and faulted in here, on the
    // worker's own CPU (and so its NUMA node).
    let mut ws = WorkerState::new(&ctx.store.load(), w, ctx.workers, ctx.seed);
    let mut link = ctx.link;
    let live = ctx.live.get(usize::from(w));
    let _ = ctx.ready.send(Ok(()));
    drop(ctx.ready);

    let mut bufs = Vec::with_capacity(BURST);
    let mut ok = true;
    while !ctx.stop.load(Ordering::Relaxed) {
        let snap = ctx.store.load();
        let got = poll_once(&mut io, &mut bufs, &mut ws, &snap, &ctx.clock);
        drop(snap);
        match got {
            Ok(n) => {
                if n > 0 {
                    if let Some(l) = live {
                        let s = &ws.stats;
                        l.rx.store(s.rx_packets, Ordering::Relaxed);
                        l.tx.store(s.tx_packets + s.originated_packets, Ordering::Relaxed);
                        l.dropped.store(s.dropped_total(), Ordering::Relaxed);
                    }
                }
                let io_stats = io.stats();
                link.handovers = (io_stats.handovers_out, io_stats.handovers_in);
                link.service(&mut ws, n);
            }
            Err(e) => {
                eprintln!("rampart: worker {w}: {e}");
                ok = false;
                break;
            }
        }
    }
    // Drain: whatever is still queued goes out before the ports stop.
    let _ = crate::io::PacketIo::flush(&mut io);
    link.publish_final(&ws);
    let result = WorkerResult {
        active: ws.conns.len(),
        capacity: ws.conns.capacity(),
        bytes_per_entry: ws.conns.bytes_per_entry(),
        io: io.stats(),
        stats: ws.stats,
    };
    // Queue handles go before the registration (and so before the port is
    // stopped by the main thread).
    drop(io);
    drop(registration);
    ok.then_some(result)
}

/// Polls the stop conditions and prints rate lines until one holds; returns
/// what stopped the run and when rx last moved.
fn control_loop(
    dpdk: &Dpdk,
    ports: &[Port],
    signalled: &AtomicBool,
    hup: &AtomicBool,
    control: &Shared,
    live: &[CachePadded<Live>],
    handles: &[JoinHandle<Option<WorkerResult>>],
) -> (&'static str, Instant) {
    let clock = Instant::now();
    let idle_exit = Duration::from_millis(u64::from(dpdk.idle_exit_ms_for(ports)));
    let interval = Duration::from_secs(u64::from(dpdk.stats_interval));
    let totals = || {
        live.iter().fold((0u64, 0u64, 0u64), |acc, l| {
            (
                acc.0 + l.rx.load(Ordering::Relaxed),
                acc.1 + l.tx.load(Ordering::Relaxed),
                acc.2 + l.dropped.load(Ordering::Relaxed),
            )
        })
    };
    let mut last = totals();
    let mut last_change = Instant::now();
    let mut last_line = (Instant::now(), last);
    loop {
        std::thread::sleep(CONTROL_TICK);
        if signalled.load(Ordering::Relaxed) {
            return ("signal", last_change);
        }
        if handles.iter().any(JoinHandle::is_finished) {
            return ("worker exit", last_change);
        }
        {
            let now_ns = clock.elapsed().as_nanos() as u64;
            let mut c = control.lock();
            if hup.swap(false, Ordering::Relaxed) {
                log::info!("SIGHUP: reloading the config");
                // A refused reload is logged; the running config stays.
                let _ = c.reload(now_ns);
            }
            c.tick(now_ns);
        }
        let now = totals();
        if now.0 != last.0 {
            last = now;
            last_change = Instant::now();
        } else if !idle_exit.is_zero() && last_change.elapsed() >= idle_exit {
            return ("idle", last_change);
        }
        if !interval.is_zero() && last_line.0.elapsed() >= interval {
            let (at, prev) = last_line;
            let secs = at.elapsed().as_secs_f64();
            let rate = |a: u64, b: u64| a.saturating_sub(b) as f64 / secs;
            log::info!(
                "rate  rx {:.3} Mpps  tx {:.3} Mpps  dropped {:.0}/s  (total rx {} tx {} dropped {})",
                rate(now.0, prev.0) / 1e6,
                rate(now.1, prev.1) / 1e6,
                rate(now.2, prev.2),
                now.0,
                now.1,
                now.2
            );
            last_line = (Instant::now(), now);
        }
    }
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
                "ports": ports,
            }),
        );
    }
    doc
}

// ---- start-up steps --------------------------------------------------------

/// CPUs of the control thread and of each worker.
struct CpuPlan {
    control: usize,
    workers: Vec<usize>,
}

fn cpu_plan(d: &Dpdk) -> Result<CpuPlan, String> {
    let allowed: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    if allowed.is_empty() {
        return Err("cannot read the CPUs this process may run on (sched_getaffinity)".into());
    }
    let check = |cpu: usize, key: &str| {
        if allowed.contains(&cpu) {
            Ok(cpu)
        } else {
            Err(format!(
                "dpdk.{key}: CPU {cpu} is not available to this process (allowed: {})",
                join(allowed.iter())
            ))
        }
    };
    let workers: Vec<usize> = if d.lcores.is_empty() {
        Vec::new()
    } else {
        d.lcores
            .iter()
            .map(|&c| check(c as usize, "lcores"))
            .collect::<Result<_, _>>()?
    };
    let control = match d.control_lcore {
        Some(c) => check(c as usize, "control_lcore")?,
        None => allowed
            .iter()
            .copied()
            .find(|c| !workers.contains(c))
            .unwrap_or(allowed[0]),
    };
    if !workers.is_empty() {
        return Ok(CpuPlan { control, workers });
    }
    // Chosen here: the CPUs other than the control CPU first, then (more
    // workers than CPUs) round again over all of them.
    let mut order: Vec<usize> = allowed.iter().copied().filter(|&c| c != control).collect();
    order.extend(allowed.iter().copied());
    let n = usize::from(d.workers);
    let workers: Vec<usize> = order.iter().copied().cycle().take(n).collect();
    if n > allowed.len().saturating_sub(1).max(1) {
        eprintln!(
            "warning: {n} workers on {} CPUs: some share a CPU (set dpdk.lcores to choose)",
            allowed.len()
        );
    }
    Ok(CpuPlan { control, workers })
}

/// The EAL command line: the configured (or overriding) arguments, `-l`
/// for the control CPU unless they set lcores themselves, and the ports.
fn eal_args(d: &Dpdk, over: Option<&[String]>, ports: &[Port], control: usize) -> Vec<String> {
    let base: Vec<String> = over.map_or_else(|| d.eal_args.clone(), <[String]>::to_vec);
    let sets_lcores = base.iter().any(|a| {
        a == "-l" || a == "-c" || a.starts_with("--lcores") || (a.starts_with("-l") && a.len() > 2)
    });
    let mut args = Vec::with_capacity(base.len() + 2 + 2 * ports.len());
    if !sets_lcores {
        args.push("-l".to_string());
        args.push(control.to_string());
    }
    args.extend(base);
    for p in ports {
        args.push(if p.is_pci() { "-a" } else { "--vdev" }.to_string());
        args.push(p.name.clone());
    }
    args
}

/// A net_pcap port that reads a missing file fails deep inside EAL's
/// device probe; say which file instead.
fn check_port_files(ports: &[Port]) -> Result<(), String> {
    for (i, p) in ports.iter().enumerate() {
        for f in p.vdev_args("rx_pcap") {
            if std::fs::metadata(f).is_err() {
                return Err(format!(
                    "port[{i}] {}: rx_pcap file `{f}` cannot be read (paths are relative to the working directory)",
                    p.device_name()
                ));
            }
        }
    }
    Ok(())
}

/// One line for a failed `rte_eal_init`, with the likeliest fix.
fn eal_failure(e: &dpdk_bindings::Error, args: &[String]) -> String {
    let no_huge = args.iter().any(|a| a == "--no-huge");
    let root = is_root();
    let code = e.code();
    let hint = if !no_huge && (hugepages_free() == Some(0) || (root && code == libc::EACCES)) {
        "no usable hugepages: run `sudo scripts/setup-dpdk.sh`, or run without them: `rampart run --config FILE -- --no-huge -m 512 --no-shconf`"
    } else if !root && (code == libc::EACCES || code == libc::EPERM) {
        "EAL needs root (hugepages, /var/run/dpdk); run as root"
    } else if code == libc::EALREADY {
        "another DPDK process uses this file prefix; add --file-prefix NAME to the EAL arguments"
    } else if code == libc::ENODEV {
        "a device EAL was given does not parse or has no driver: check the [[port]] names (net_pcap0, net_ring0, net_af_packet0, ... and their arguments)"
    } else {
        "EAL's own log above names the step that failed; check dpdk.eal_args (or the arguments after --)"
    };
    format!("EAL init failed: {e} (hint: {hint})")
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|v| v.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

fn hugepages_free() -> Option<u64> {
    std::fs::read_to_string("/proc/meminfo")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("HugePages_Free:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Finds, configures and starts port `i`.
fn setup_port(
    eal: &Eal,
    pool: &Mempool,
    d: &Dpdk,
    i: usize,
    p: &Port,
    workers: usize,
) -> Result<EthPort, String> {
    let dev = p.device_name();
    let what = format!("port[{i}] {dev}");
    let mut port = EthPort::by_name(eal, &dev).map_err(|e| {
        let hint = if p.is_pci() {
            "a PCI port must be bound to a DPDK driver (vfio-pci, or the NIC's own PMD) and not hidden by --no-pci or -b in the EAL arguments"
        } else {
            "the vdev was not created: EAL's log above has the driver's reason (e.g. a net_pcap tx_pcap directory that does not exist)"
        };
        format!(
            "{what}: not found ({e}; DPDK has {} port(s)) (hint: {hint})",
            EthPort::count(eal)
        )
    })?;
    let q = u16::try_from(workers).unwrap_or(u16::MAX);
    port.configure(q, q, workers > 1).map_err(|e| {
        let pcap = if dev.starts_with("net_pcap") {
            "; a net_pcap vdev has one rx queue per rx_pcap= and one tx queue per tx_pcap="
        } else {
            ""
        };
        format!("{what}: {e} (hint: every port needs one rx and one tx queue per worker, {workers} here{pcap})")
    })?;
    for queue in 0..q {
        port.rx_queue_setup(queue, d.rx_descriptors, pool)
            .map_err(|e| {
                format!(
                    "{what}: rx queue {queue}: {e} (hint: dpdk.rx_descriptors, or a larger dpdk.mempool_size: an infinite_rx pcap needs the whole file in mbufs per queue)"
                )
            })?;
        port.tx_queue_setup(queue, d.tx_descriptors)
            .map_err(|e| format!("{what}: tx queue {queue}: {e} (hint: dpdk.tx_descriptors)"))?;
    }
    port.start().map_err(|e| {
        format!("{what}: the port does not start: {e} (hint: EAL's log above has the driver's reason; a net_pcap tx_pcap directory must be writable)")
    })?;
    if let Err(e) = port.promiscuous_enable() {
        eprintln!("warning: {what}: {e} (continuing without promiscuous mode)");
    }
    Ok(port)
}

/// Worker `w`'s queues: queue `w` of every port.
fn worker_io(
    ports: &[EthPort],
    cfg_ports: &[Port],
    pool: &Mempool,
    routes: &Routes,
    d: &Dpdk,
    w: usize,
) -> Result<DpdkIo, String> {
    let q = u16::try_from(w).unwrap_or(u16::MAX);
    let mut rx = Vec::with_capacity(ports.len());
    let mut tx = Vec::with_capacity(ports.len());
    for (i, (port, p)) in ports.iter().zip(cfg_ports.iter()).enumerate() {
        let queue = port
            .rx_queue(q)
            .map_err(|e| format!("port[{i}]: rx queue {w}: {e}"))?;
        rx.push(RxPort {
            queue,
            pcap_timestamps: p.device_name().starts_with("net_pcap"),
        });
        tx.push(
            port.tx_queue(q)
                .map_err(|e| format!("port[{i}]: tx queue {w}: {e}"))?,
        );
    }
    Ok(DpdkIo::new(
        rx,
        tx,
        pool.clone(),
        routes.clone(),
        d.tx_retries,
    ))
}

/// Worker `w`'s ends of the hand-over rings (none with one worker).
fn with_handover(
    io: DpdkIo,
    rings: &[Ring],
    w: usize,
    snap: &SnapshotStore,
) -> Result<DpdkIo, String> {
    if rings.len() < 2 {
        return Ok(io);
    }
    let mut to = Vec::with_capacity(rings.len());
    for (i, r) in rings.iter().enumerate() {
        to.push(if i == w {
            None
        } else {
            Some(
                r.producer()
                    .map_err(|e| format!("hand-over ring {i}: {e}"))?,
            )
        });
    }
    let from = rings
        .get(w)
        .ok_or_else(|| format!("no hand-over ring for worker {w}"))?
        .consumer()
        .map_err(|e| format!("hand-over ring {w}: {e}"))?;
    Ok(io.with_handover(Handover {
        me: w as u16,
        workers: rings.len() as u16,
        snap: Arc::clone(snap),
        to,
        from,
    }))
}

fn join<T: std::fmt::Display>(items: impl Iterator<Item = T>) -> String {
    items.map(|i| i.to_string()).collect::<Vec<_>>().join(",")
}
