//! `rampart replay`: a capture in, through the datapath as if every frame
//! arrived on one port (a one-arm load balancer), transmitted frames out to
//! an optional capture, counters to a summary and an optional JSON file.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use crate::config::Config;
use crate::datapath::WorkerState;
use crate::io::{PcapIo, PcapReader, PcapWriter};
use crate::snapshot::Snapshot;
use crate::stats::{DropReason, Event, WorkerStats};
use crate::worker::{run_to_end, Clock};

/// Inputs larger than this show a progress bar on a terminal.
const PROGRESS_MIN_BYTES: u64 = 16 << 20;

/// Seed for the replay worker's connection hash. Fixed, so a replay is
/// reproducible byte for byte (the output never depends on it anyway).
const REPLAY_SEED: u64 = 0x5eed_0f72_6570_6c00;

pub struct ReplayOptions {
    pub input: PathBuf,
    pub output: Option<PathBuf>,
    pub progress: bool,
}

pub struct ReplayReport {
    pub stats: WorkerStats,
    pub active_conns: u32,
    pub conn_capacity: u32,
    pub bytes_per_entry: usize,
    pub elapsed: Duration,
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

/// Replays `opts.input` through a fresh worker for `cfg`.
pub fn replay(cfg: &Config, opts: &ReplayOptions) -> Result<(Snapshot, ReplayReport), String> {
    let snap = Snapshot::build(cfg);
    let mut ws = WorkerState::new(&snap, 0, 1, REPLAY_SEED);
    let reader = PcapReader::open(&opts.input).map_err(|e| e.to_string())?;
    let writer = match &opts.output {
        Some(p) => Some(PcapWriter::create(p).map_err(|e| e.to_string())?),
        None => None,
    };
    let mut io = PcapIo::new(reader, writer);

    let size = std::fs::metadata(&opts.input).map(|m| m.len()).unwrap_or(0);
    let bar = (opts.progress && size >= PROGRESS_MIN_BYTES && std::io::stderr().is_terminal())
        .then(|| {
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

    let start = Instant::now();
    let result = run_to_end(&mut io, &mut ws, &snap, &Clock::Packets, 65_536, |io, n| {
        if let Some(b) = &bar {
            b.set_position(io.reader().offset());
            b.set_message(format!("{n} packets"));
        }
    });
    let elapsed = start.elapsed();
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    result.map_err(|e| format!("{}: {e}", opts.input.display()))?;
    io.finish().map_err(|e| e.to_string())?;
    // Entries still live at the end of the capture are not an error; they
    // are reported as active connections.
    let report = ReplayReport {
        active_conns: ws.conns.len(),
        conn_capacity: ws.conns.capacity(),
        bytes_per_entry: ws.conns.bytes_per_entry(),
        stats: ws.stats,
        elapsed,
    };
    Ok((snap, report))
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
        "  rate         {:.2} Mpps ({} packets in {:.3} s, one worker)\n",
        r.mpps(),
        s.rx_packets,
        r.elapsed.as_secs_f64()
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
                .zip(v.weights.iter())
                .map(|(b, w)| {
                    let info = snap.backends.get(*b as usize);
                    let bc = s.backends.get(*b as usize).copied().unwrap_or_default();
                    json!({
                        "address": info.map(|i| i.key.addr.to_string()),
                        "port": info.map(|i| i.key.port),
                        "weight": w,
                        "packets_in": bc.packets_in,
                        "packets_out": bc.packets_out,
                        "bytes_in": bc.bytes_in,
                        "bytes_out": bc.bytes_out,
                        "connections": bc.connections,
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
                "packets_in": c.packets_in,
                "packets_out": c.packets_out,
                "bytes_in": c.bytes_in,
                "bytes_out": c.bytes_out,
                "connections": c.connections,
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
