//! The poll loop: `rx_burst -> process -> tx`, the same for every
//! [`PacketIo`] backend. Bursts of [`BURST`] packets; the connection table
//! ages a bounded step once per burst, so a worker never stalls on it.

use std::io;
use std::time::Instant;

use crate::buf::PacketBuf;
use crate::datapath::{process_burst, Verdict, WorkerState};
use crate::io::PacketIo;
use crate::snapshot::Snapshot;

/// Packets per receive burst.
pub const BURST: usize = 32;

/// Where the worker's seconds clock comes from.
pub enum Clock {
    /// From packet timestamps (replay: timeouts follow the capture's time).
    Packets,
    /// From a monotonic clock started with the worker.
    Monotonic(Instant),
    /// Set by the caller before each poll: a worker fed by a reader that
    /// owns the capture's clock (`rampart replay --workers N` gives every
    /// worker the time of its burst's first frame, as one worker has it).
    Given,
}

impl Clock {
    fn nanos<B: PacketBuf>(&self, first: Option<&B>) -> Option<u64> {
        match self {
            Clock::Packets => first.and_then(|b| b.timestamp_ns()),
            Clock::Monotonic(start) => Some(start.elapsed().as_nanos() as u64),
            Clock::Given => None,
        }
    }
}

/// Receives one burst, runs it through the datapath, ages one step, sends
/// the health-check probes it was given, and queues what goes out: each
/// frame of the burst followed by the frames the worker originated while
/// handling it, then those of the timers and probes. A snapshot newer than
/// the last one the worker saw is taken up first. Returns the number of
/// packets received.
pub fn poll_once<I: PacketIo>(
    io: &mut I,
    bufs: &mut Vec<I::Buf>,
    ws: &mut WorkerState,
    snap: &Snapshot,
    clock: &Clock,
) -> io::Result<usize> {
    poll_up_to(io, bufs, ws, snap, clock, BURST)
}

/// [`poll_once`] receiving at most `max` (≤ [`BURST`]) packets: a replay
/// that must act between two given packets (a reload) stops the burst there.
pub fn poll_up_to<I: PacketIo>(
    io: &mut I,
    bufs: &mut Vec<I::Buf>,
    ws: &mut WorkerState,
    snap: &Snapshot,
    clock: &Clock,
    max: usize,
) -> io::Result<usize> {
    ws.adopt(snap);
    let n = io.rx_burst(bufs, max.clamp(1, BURST))?;
    if let Some(now) = clock.nanos(bufs.first().filter(|_| n > 0)) {
        ws.set_clock_ns(now);
    }
    let mut verdicts = [Verdict::Forward; BURST];
    let done = process_burst(&mut bufs[..n.min(BURST)], &mut verdicts, ws, snap);
    ws.age(snap);
    ws.prober.emit(&mut ws.outbox, snap.mac, &mut ws.stats);
    let now = ws.clock_ns();
    let burst = bufs.iter().zip(verdicts.iter()).take(done).enumerate();
    if ws.outbox.is_empty() {
        // The usual burst: nothing originated, each frame's verdict alone.
        for (i, (buf, v)) in burst {
            send(io, i, buf, *v, now)?;
        }
    } else {
        let mut extra = ws.outbox.iter_all().peekable();
        for (i, (buf, v)) in burst {
            send(io, i, buf, *v, now)?;
            let ts = buf.timestamp_ns().unwrap_or(now);
            while let Some((_, to, frame)) = extra.next_if(|(after, _, _)| *after <= i) {
                send_extra(io, to, frame, ts)?;
            }
        }
        for (_, to, frame) in extra {
            send_extra(io, to, frame, now)?;
        }
    }
    ws.outbox.clear();
    io.flush_burst(bufs)?;
    Ok(n)
}

/// Frame `i` of the burst, where its verdict sends it.
#[inline(always)]
fn send<I: PacketIo>(io: &mut I, i: usize, buf: &I::Buf, v: Verdict, now: u64) -> io::Result<()> {
    match v {
        Verdict::Forward | Verdict::Reply => io.tx(i, buf),
        Verdict::Handover(to) => io.hand_over(to, buf.data(), buf.timestamp_ns().unwrap_or(now)),
        Verdict::Kernel => io.to_kernel(i, buf),
        Verdict::Consumed | Verdict::Drop(_) => Ok(()),
    }
}

/// An outbox frame: to the wire, or to the worker it is for.
fn send_extra<I: PacketIo>(io: &mut I, to: Option<u16>, frame: &[u8], ts: u64) -> io::Result<()> {
    match to {
        Some(w) => io.hand_over(w, frame, ts),
        None => io.tx_frame(frame, ts),
    }
}

/// Polls until a finite source is exhausted, calling `progress` with the
/// backend and the running packet count every `every` packets.
pub fn run_to_end<I: PacketIo>(
    io: &mut I,
    ws: &mut WorkerState,
    snap: &Snapshot,
    clock: &Clock,
    every: u64,
    mut progress: impl FnMut(&I, u64),
) -> io::Result<u64> {
    let mut bufs: Vec<I::Buf> = Vec::with_capacity(BURST);
    let mut total = 0u64;
    let mut next_report = every;
    loop {
        let n = poll_once(io, &mut bufs, ws, snap, clock)?;
        total += n as u64;
        if total >= next_report {
            progress(io, total);
            next_report = total + every;
        }
        if n == 0 && io.exhausted() {
            return Ok(total);
        }
    }
}
