//! `rampart replay --workers N`: the DPDK runtime's division of labour,
//! without DPDK.
//!
//! One reader (the calling thread) reads the capture a burst at a time,
//! exactly as one worker would, and steers every frame to the worker that
//! owns its connection with [`steer::owner`], the function a DPDK worker
//! uses to hand a frame over. A frame without an owner (ARP, ND, echo
//! requests, what the parser refuses) goes to worker 0, as if it had
//! arrived on worker 0's queue. Each worker thread keeps its own
//! [`WorkerState`] (connection table, FullNAT ports whose low bits name it,
//! SYN proxy) and runs [`poll_up_to`] over a [`QueueIo`] fed through a
//! bounded channel.
//!
//! The reader and the workers move in lock step, one burst per round, so
//! the replay stays reproducible and behaves as one worker does in
//! everything but the split:
//!
//! - every worker gets every round, its share possibly empty, and runs its
//!   clock at the time of the burst's first frame, as one worker does; so
//!   SYN cookies, timeouts and aging steps see the same times;
//! - the control side (health checks, reloads) runs on the reader's thread
//!   between two rounds, when every worker has finished the last one: a
//!   probe order reaches its worker before the next burst, its answer is
//!   back before the next tick;
//! - a frame a worker hands to another (a fragment whose datagram's
//!   connection the other owns, see [`crate::frag`]) starts that worker's
//!   share of the next round, as a DPDK worker takes its ring before its
//!   queues, all handed frames in the order they came in; a round ends
//!   after every fragment, so what a worker hands on reaches its owner
//!   before the capture's next frame does; the replay ends once no handed
//!   frame is left;
//! - the output of a round is written worker by worker, each worker's
//!   frames in the order it sent them. Frames of one connection keep their
//!   order (one worker owns them); frames of different connections may
//!   come out in another order than with one worker.

use std::thread;
use std::time::Instant;

use crossbeam::channel::{self, Receiver, Sender};

use super::{
    unreached_reload, Progress, ReplayOptions, ReplayReport, REPLAY_PROBE_KEY, REPLAY_SEED,
};
use crate::config::Config;
use crate::control::link::{SnapshotStore, WorkerLink};
use crate::control::state::Control;
use crate::flow::FlowDesc;
use crate::io::{steer, PacketIo, PcapIo, PcapReader, PcapWriter, QueueIo, RxPacket};
use crate::runtime::{Totals, Worker, WorkerEnd};
use crate::snapshot::Snapshot;
use crate::stats::WorkerStats;
use crate::worker::{Clock, BURST};

/// A worker's share of one burst.
struct Round {
    /// The time of the burst's first frame (the last burst's when empty).
    clock_ns: u64,
    frames: Vec<RxPacket>,
}

/// A worker's answer to a round.
struct Sent {
    frames: Vec<RxPacket>,
    /// Frames it handed to other workers (fragments, see [`crate::frag`]).
    handed: Vec<(u16, RxPacket)>,
    /// The round's frames, handed back for the next one.
    spare: Vec<RxPacket>,
}

/// The reader's end of one worker.
struct Lane {
    to: Sender<Round>,
    from: Receiver<Sent>,
    spare: Vec<RxPacket>,
    /// Frames other workers handed this one in the last round: the next
    /// round's share starts with them, as a DPDK worker takes its ring
    /// before its queues.
    inbox: Vec<RxPacket>,
}

pub(super) fn replay(
    cfg: &Config,
    opts: &ReplayOptions,
) -> Result<(Snapshot, ReplayReport), String> {
    let workers = opts.workers.clamp(1, super::MAX_WORKERS);
    let (control, links) = Control::new(cfg.clone(), "", None, workers, REPLAY_PROBE_KEY, 0)
        .map_err(|e| e.to_string())?;
    let store = control.store();
    let reader = PcapReader::open(&opts.input).map_err(|e| e.to_string())?;
    let writer = match &opts.output {
        Some(p) => Some(PcapWriter::create(p).map_err(|e| e.to_string())?),
        None => None,
    };
    let io = PcapIo::new(reader, None);

    thread::scope(|s| {
        let mut lanes = Vec::with_capacity(usize::from(workers));
        let mut handles = Vec::with_capacity(usize::from(workers));
        for (w, link) in (0..workers).zip(links) {
            // One round in flight per worker: the reader waits for every
            // answer before the next round anyway.
            let (to, rounds) = channel::bounded(1);
            let (answers, from) = channel::bounded(1);
            let store = std::sync::Arc::clone(&store);
            let h = thread::Builder::new()
                .name(format!("rampart-replay-w{w}"))
                .spawn_scoped(s, move || {
                    worker_main(w, workers, &store, link, &rounds, &answers)
                })
                .map_err(|e| format!("cannot start worker {w}: {e}"))?;
            handles.push(h);
            lanes.push(Lane {
                to,
                from,
                spare: Vec::new(),
                inbox: Vec::new(),
            });
        }
        let read = read_and_steer(opts, control, &store, io, writer, &mut lanes);
        // Closing the channels ends the workers.
        drop(lanes);
        let mut finals = Vec::with_capacity(handles.len());
        for (w, h) in handles.into_iter().enumerate() {
            match h.join() {
                Ok(f) => finals.push(f),
                Err(_) => return Err(format!("replay worker {w} failed")),
            }
        }
        let (mut control, mut report) = read?;
        let snap = (*store.load_full()).clone();
        let totals = Totals::of(&finals, snap.vips.len(), snap.backends.len());
        report.stats = totals.stats;
        report.active_conns = totals.active;
        report.conn_capacity = totals.capacity;
        report.bytes_per_entry = totals.bytes_per_entry;
        report.health_events = control.take_health_events();
        Ok((snap, report))
    })
}

/// The reader and control side: reads the capture a burst at a time,
/// steers, runs a round, writes its output, ticks the control side.
/// Returns the control (for its health events) and the report without the
/// workers' counters.
fn read_and_steer(
    opts: &ReplayOptions,
    mut control: Control,
    store: &SnapshotStore,
    mut io: PcapIo,
    mut writer: Option<PcapWriter>,
    lanes: &mut [Lane],
) -> Result<(Control, ReplayReport), String> {
    let workers = lanes.len() as u16;
    let mut progress = Progress::new(opts);
    let start = Instant::now();
    let mut bufs: Vec<RxPacket> = Vec::with_capacity(BURST);
    let mut d = FlowDesc::default();
    let mut clock_ns = 0u64;
    let mut total = 0u64;
    let mut reloads = opts.reloads.iter().peekable();
    let mut applied = 0u64;
    let result: Result<(), String> = loop {
        if let Some(r) = reloads.next_if(|r| r.after <= total) {
            if let Err(e) =
                control.reload_with(r.config.without_kernel_interfaces(), &r.text, clock_ns)
            {
                break Err(format!("reload after packet {}: {e}", r.after));
            }
            applied += 1;
            continue;
        }
        let burst = opts.burst.clamp(1, BURST);
        let max = reloads
            .peek()
            .map_or(burst, |r| (r.after - total).min(burst as u64) as usize);
        let n = match io.rx_burst(&mut bufs, max) {
            Ok(n) => n,
            Err(e) => break Err(format!("{}: {e}", opts.input.display())),
        };
        if let Some(first) = bufs.first().filter(|_| n > 0) {
            clock_ns = first.ts_ns;
        }
        // A round ends after each fragment: a worker may hand it (and what
        // it held) to another, which must get it before the capture's
        // next frames, as it would on the wire.
        let mut start = 0;
        let result = loop {
            let snap = store.load();
            let mut shares: Vec<Vec<RxPacket>> = lanes
                .iter_mut()
                .map(|l| {
                    let mut v = std::mem::take(&mut l.spare);
                    v.clear();
                    v.append(&mut l.inbox);
                    v
                })
                .collect();
            while let Some(p) = bufs.get(start).filter(|_| start < n) {
                start += 1;
                let w = steer::owner(&p.data, &snap, workers, &mut d).unwrap_or(0);
                if let Some(share) = shares.get_mut(usize::from(w)) {
                    share.push(p.clone());
                }
                if is_fragment(&p.data) {
                    break;
                }
            }
            drop(snap);
            if let Err(e) = run_round(lanes, shares, clock_ns, writer.as_mut()) {
                break Err(e);
            }
            if start >= n {
                break Ok(());
            }
        };
        if let Err(e) = result {
            break Err(e);
        }
        total += n as u64;
        // Health checks run on the capture's clock, which starts with its
        // first packet.
        if total > 0 {
            control.tick(clock_ns);
        }
        progress.update(total, io.reader().offset());
        if n == 0 && io.exhausted() && lanes.iter().all(|l| l.inbox.is_empty()) {
            break Ok(());
        }
    };
    let elapsed = start.elapsed();
    progress.finish();
    result?;
    if let Some(r) = reloads.next() {
        return Err(unreached_reload(r, total));
    }
    if let Some(w) = writer.as_mut() {
        w.finish().map_err(|e| e.to_string())?;
    }
    let report = ReplayReport {
        stats: WorkerStats::new(0, 0),
        health_events: Vec::new(),
        reloads: applied,
        active_conns: 0,
        conn_capacity: 0,
        bytes_per_entry: 0,
        elapsed,
        workers: lanes.len(),
    };
    Ok((control, report))
}

fn is_fragment(frame: &[u8]) -> bool {
    matches!(
        crate::wire::parse(frame),
        Err(crate::stats::DropReason::Ipv4Fragment | crate::stats::DropReason::Ipv6Fragment)
    )
}

/// Hands every worker its share, waits for all of them, and writes what
/// they sent, worker by worker.
fn run_round(
    lanes: &mut [Lane],
    shares: Vec<Vec<RxPacket>>,
    clock_ns: u64,
    mut writer: Option<&mut PcapWriter>,
) -> Result<(), String> {
    for (w, (lane, frames)) in lanes.iter().zip(shares).enumerate() {
        if lane.to.send(Round { clock_ns, frames }).is_err() {
            return Err(format!("replay worker {w} stopped"));
        }
    }
    let mut handed = Vec::new();
    for (w, lane) in lanes.iter_mut().enumerate() {
        let Ok(sent) = lane.from.recv() else {
            return Err(format!("replay worker {w} stopped"));
        };
        if let Some(out) = writer.as_deref_mut() {
            for p in &sent.frames {
                out.write(&p.data, p.ts_ns).map_err(|e| e.to_string())?;
            }
        }
        lane.spare = sent.spare;
        handed.extend(sent.handed);
    }
    // In the order they came in (a held fragment carries its first's
    // time), not worker by worker: a datagram's answer handed on by one
    // worker must not overtake its question handed on by another.
    handed.sort_by_key(|(_, p)| p.ts_ns);
    for (to, p) in handed {
        match lanes.get_mut(usize::from(to)) {
            Some(lane) => lane.inbox.push(p),
            None => {
                return Err(format!(
                    "a frame was handed to worker {to}, which does not exist"
                ))
            }
        }
    }
    Ok(())
}

/// A worker thread: one poll per round, over the frames the reader gave
/// it, with the link serviced before it (orders from the control side's
/// last tick) and after it (probe results, counters).
fn worker_main(
    id: u16,
    workers: u16,
    store: &SnapshotStore,
    link: WorkerLink,
    rounds: &Receiver<Round>,
    answers: &Sender<Sent>,
) -> WorkerEnd {
    let mut worker = Worker::new(
        store,
        link,
        id,
        workers,
        REPLAY_SEED.wrapping_add(u64::from(id)),
        QueueIo::default(),
    );
    let mut got = 0;
    while let Ok(round) = rounds.recv() {
        worker.service(got);
        worker.io.load(round.frames);
        worker.ws.set_clock_ns(round.clock_ns);
        // A QueueIo never fails; a share with frames handed over may hold
        // more than a burst.
        got = 0;
        loop {
            got += worker.poll(store, &Clock::Given, BURST).unwrap_or(0);
            if worker.io.exhausted() {
                break;
            }
        }
        let sent = Sent {
            frames: worker.io.take_sent(),
            handed: worker.io.take_handed(),
            spare: worker.io.take_loaded(),
        };
        if answers.send(sent).is_err() {
            break;
        }
    }
    worker.finish().0
}
