//! `rampart replay`: a capture in, through the datapath as if every frame
//! arrived on one port (a one-arm load balancer), transmitted frames out to
//! an optional capture, counters to a summary and an optional JSON file.
//!
//! One worker runs on the calling thread over [`PcapIo`]; several
//! (`--workers N`) run on their own threads, fed by one reader that steers
//! every frame to its owner (see [`workers`]).

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use crate::config::Config;
use crate::control::state::{Control, HealthEvent};
use crate::io::{PcapIo, PcapReader, PcapWriter};
use crate::runtime::Worker;
use crate::snapshot::Snapshot;
use crate::stats::{DropReason, Event, WorkerStats};
use crate::worker::{Clock, BURST};

mod workers;

/// Inputs larger than this show a progress bar on a terminal.
const PROGRESS_MIN_BYTES: u64 = 16 << 20;

/// Seed for the replay worker's connection hash. Fixed, so a replay is
/// reproducible byte for byte (the output never depends on it anyway).
const REPLAY_SEED: u64 = 0x5eed_0f72_6570_6c00;

pub struct ReplayOptions {
    pub input: PathBuf,
    pub output: Option<PathBuf>,
    pub progress: bool,
    /// Reloads during the replay: after this many packets, this config
    /// (validated, with its text) replaces the running one, as a SIGHUP
    /// does on a live box. In packet order.
    pub reloads: Vec<ScheduledReload>,
    /// Packets per burst, 1..=[`BURST`]. The output does not depend on it;
    /// the worker clock does (it moves per burst), and with it when health
    /// probes go out: 1 runs every packet at its own time.
    pub burst: usize,
    /// Worker threads, 1..=[`MAX_WORKERS`]; each owns the connections
    /// [`crate::io::steer::owner`] gives it, as on a DPDK box.
    pub workers: u16,
}

/// The most workers `rampart replay --workers` runs.
pub const MAX_WORKERS: u16 = 64;

/// A reload at a given point of a replay (`rampart replay --reload N:FILE`).
pub struct ScheduledReload {
    /// Packets replayed before the reload.
    pub after: u64,
    pub config: Config,
    pub text: String,
}

pub struct ReplayReport {
    pub stats: WorkerStats,
    /// Health-check transitions, in order.
    pub health_events: Vec<HealthEvent>,
    /// Reloads applied.
    pub reloads: u64,
    pub active_conns: u32,
    pub conn_capacity: u32,
    pub bytes_per_entry: usize,
    pub elapsed: Duration,
    /// Workers whose counters are summed here.
    pub workers: usize,
}

impl ReplayReport {
    pub fn mpps(&self) -> f64 {
        let s = self.elapsed.as_secs_f64();
        if s > 0.0 {
            self.stats.rx_packets as f64 / s / 1e6
        } else {
            0.0
        }
    }
}

/// Key of health-probe sequence numbers in a replay: fixed, so a replay
/// with health checks is reproducible byte for byte.
pub const REPLAY_PROBE_KEY: [u8; 16] = *b"rampart-replay-p";

/// Replays `opts.input` through a fresh worker for `cfg`, with a control
/// side on the same thread and the capture's clock: health checks probe and
/// time out in capture time, and scheduled reloads happen between two
/// given packets.
pub fn replay(cfg: &Config, opts: &ReplayOptions) -> Result<(Snapshot, ReplayReport), String> {
    let cfg = &cfg.without_kernel_interfaces();
    if opts.workers > 1 {
        return workers::replay(cfg, opts);
    }
    let (mut control, links) = Control::new(cfg.clone(), "", None, 1, REPLAY_PROBE_KEY, 0)?;
    let Some(link) = links.into_iter().next() else {
        return Err("no worker link".to_string());
    };
    let store = control.store();
    let reader = PcapReader::open(&opts.input).map_err(|e| e.to_string())?;
    let writer = match &opts.output {
        Some(p) => Some(PcapWriter::create(p).map_err(|e| e.to_string())?),
        None => None,
    };
    let mut worker = Worker::new(&store, link, 0, 1, REPLAY_SEED, PcapIo::new(reader, writer));

    let mut progress = Progress::new(opts);

    let start = Instant::now();
    let mut total = 0u64;
    let mut reloads = opts.reloads.iter().peekable();
    let mut applied = 0u64;
    let result: Result<(), String> = loop {
        if let Some(r) = reloads.next_if(|r| r.after <= total) {
            if let Err(e) = control.reload_with(
                r.config.without_kernel_interfaces(),
                &r.text,
                worker.ws.clock_ns(),
            ) {
                break Err(format!("reload after packet {}: {}", r.after, e.message));
            }
            applied += 1;
            continue;
        }
        let burst = opts.burst.clamp(1, BURST);
        let max = reloads
            .peek()
            .map_or(burst, |r| (r.after - total).min(burst as u64) as usize);
        let n = match worker.poll(&store, &Clock::Packets, max) {
            Ok(n) => n,
            Err(e) => break Err(format!("{}: {e}", opts.input.display())),
        };
        total += n as u64;
        // Health checks run on the capture's clock, which starts with its
        // first packet.
        if total > 0 {
            control.tick(worker.ws.clock_ns());
            worker.service(n);
        }
        progress.update(total, worker.io.reader().offset());
        if n == 0 && worker.exhausted() {
            break Ok(());
        }
    };
    let elapsed = start.elapsed();
    progress.finish();
    result?;
    if let Some(r) = reloads.next() {
        return Err(unreached_reload(r, total));
    }
    let (end, mut io) = worker.finish();
    io.finish().map_err(|e| e.to_string())?;
    // Entries still live at the end of the capture are not an error; they
    // are reported as active connections.
    let report = ReplayReport {
        active_conns: end.active,
        conn_capacity: end.capacity,
        bytes_per_entry: end.bytes_per_entry,
        stats: end.stats,
        health_events: control.take_health_events(),
        reloads: applied,
        elapsed,
        workers: 1,
    };
    let snap = (*store.load_full()).clone();
    Ok((snap, report))
}

/// Packets between two progress-bar updates.
const PROGRESS_EVERY: u64 = 65_536;

/// A progress bar over the input's bytes, when asked for, the input is
/// large and stderr is a terminal; updated every [`PROGRESS_EVERY`]
/// packets.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    next: u64,
}

impl Progress {
    fn new(opts: &ReplayOptions) -> Progress {
        let size = std::fs::metadata(&opts.input).map(|m| m.len()).unwrap_or(0);
        let shown = opts.progress && size >= PROGRESS_MIN_BYTES && std::io::stderr().is_terminal();
        let bar = shown.then(|| {
            let b = indicatif::ProgressBar::new(size);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} {bytes}/{total_bytes} [{bar:40}] {msg}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            b
        });
        Progress {
            bar,
            next: PROGRESS_EVERY,
        }
    }

    /// `total` packets read, up to byte `offset` of the input.
    fn update(&mut self, total: u64, offset: u64) {
        if total < self.next {
            return;
        }
        if let Some(b) = &self.bar {
            b.set_position(offset);
            b.set_message(format!("{total} packets"));
        }
        self.next = total + PROGRESS_EVERY;
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// The error of a reload scheduled after the end of the capture.
fn unreached_reload(r: &ScheduledReload, total: u64) -> String {
    format!(
        "reload after packet {}: the capture has only {total} packets",
        r.after
    )
}

/// The short human summary printed after a replay.
pub fn summary(input: &Path, output: Option<&Path>, r: &ReplayReport) -> String {
    let s = &r.stats;
    let mut out = String::new();
    match output {
        Some(o) => out.push_str(&format!("replay {} -> {}\n", input.display(), o.display())),
        None => out.push_str(&format!("replay {}\n", input.display())),
    }
    out.push_str(&format!(
        "  packets      in {}  out {}  dropped {}\n",
        s.rx_packets,
        s.tx_packets + s.originated_packets,
        s.dropped_total()
    ));
    if s.originated_packets + s.consumed > 0 {
        out.push_str(&format!(
            "  synproxy     originated {}  taken over {}\n",
            s.originated_packets, s.consumed
        ));
    }
    out.push_str(&format!(
        "  connections  new {}  active {}  (table {} entries, {} B/entry)\n",
        s.events[Event::ConnNew as usize] + s.events[Event::MidflowPickup as usize],
        r.active_conns,
        r.conn_capacity,
        r.bytes_per_entry
    ));
    let drops: Vec<String> = DropReason::ALL
        .iter()
        .filter(|d| s.drops[**d as usize] > 0)
        .map(|d| format!("{} {}", d.name(), s.drops[*d as usize]))
        .collect();
    if !drops.is_empty() {
        out.push_str(&format!("  drops        {}\n", drops.join(", ")));
    }
    let events: Vec<String> = Event::ALL
        .iter()
        .filter(|e| {
            !matches!(e, Event::ConnNew | Event::MidflowPickup) && s.events[**e as usize] > 0
        })
        .map(|e| format!("{} {}", e.name(), s.events[*e as usize]))
        .collect();
    if !events.is_empty() {
        out.push_str(&format!("  events       {}\n", events.join(", ")));
    }
    out.push_str(&format!(
        "  rate         {:.2} Mpps ({} packets in {:.3} s, {})\n",
        r.mpps(),
        s.rx_packets,
        r.elapsed.as_secs_f64(),
        match r.workers {
            1 => "one worker".to_string(),
            n => format!("{n} workers"),
        }
    ));
    out
}

/// The `--stats-json` document.
pub fn stats_json(snap: &Snapshot, r: &ReplayReport) -> Value {
    let s = &r.stats;
    let mut dropped = Map::new();
    for d in DropReason::ALL {
        dropped.insert(d.name().to_string(), json!(s.drops[d as usize]));
    }
    let mut events = Map::new();
    for e in Event::ALL {
        events.insert(e.name().to_string(), json!(s.events[e as usize]));
    }
    let vips: Vec<Value> = snap
        .vips
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let c = s.vips.get(i).copied().unwrap_or_default();
            let backends: Vec<Value> = v
                .backends
                .iter()
                .zip(v.config_weights.iter())
                .map(|(b, w)| {
                    let info = snap.backends.get(*b as usize);
                    let bc = s.backends.get(*b as usize).copied().unwrap_or_default();
                    json!({
                        "address": info.map(|i| i.key.addr.to_string()),
                        "port": info.map(|i| i.key.port),
                        "weight": w,
                        "state": info.map(|i| i.state.name()),
                        "packets_in": bc.packets_in,
                        "packets_out": bc.packets_out,
                        "bytes_in": bc.bytes_in,
                        "bytes_out": bc.bytes_out,
                        "connections": bc.connections,
                        "active_connections": bc.active(),
                    })
                })
                .collect();
            json!({
                "name": v.name,
                "address": v.addr.to_string(),
                "port": v.port,
                "protocol": if v.proto == crate::flow::proto::TCP { "tcp" } else { "udp" },
                "mode": v.mode.name(),
                "synproxy": v.synproxy,
                "retired": v.retired,
                "packets_in": c.packets_in,
                "packets_out": c.packets_out,
                "bytes_in": c.bytes_in,
                "bytes_out": c.bytes_out,
                "connections": c.connections,
                "active_connections": c.active(),
                "backends": backends,
            })
        })
        .collect();
    json!({
        "rx_packets": s.rx_packets,
        "tx_packets": s.tx_packets,
        "rx_bytes": s.rx_bytes,
        "tx_bytes": s.tx_bytes,
        "originated_packets": s.originated_packets,
        "originated_bytes": s.originated_bytes,
        "consumed": s.consumed,
        "dropped_total": s.dropped_total(),
        "dropped": dropped,
        "events": events,
        "connections": {
            "new": s.events[Event::ConnNew as usize],
            "midflow_pickups": s.events[Event::MidflowPickup as usize],
            "expired": s.events[Event::ConnExpired as usize],
            "active": r.active_conns,
            "capacity": r.conn_capacity,
            "bytes_per_entry": r.bytes_per_entry,
        },
        "vips": vips,
        "reloads": r.reloads,
        "health_events": r.health_events.iter().map(|h| json!({
            "time_ns": h.time_ns,
            "backend": h.backend,
            "up": h.up,
            "reason": h.reason,
        })).collect::<Vec<_>>(),
        "elapsed_seconds": r.elapsed.as_secs_f64(),
        "peak_rss_kib": peak_rss_kib(),
        "mpps": r.mpps(),
    })
}

/// The process's peak resident memory so far, in KiB: `VmHWM` from
/// /proc/self/status, the high-water mark of this program's own address
/// space. (`getrusage`'s `ru_maxrss` is no use here: Linux carries it over
/// from the parent's memory across fork and exec, so a child of a large
/// process reports the parent's size.) `None` where it cannot be read.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
