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
}

impl Clock {
    fn seconds<B: PacketBuf>(&self, first: Option<&B>) -> Option<u32> {
        match self {
            Clock::Packets => first
                .and_then(|b| b.timestamp_ns())
                .map(|ns| (ns / 1_000_000_000) as u32),
            Clock::Monotonic(start) => Some(start.elapsed().as_secs() as u32),
        }
    }
}

/// Receives one burst, runs it through the datapath, queues what goes out,
/// and ages one step. Returns the number of packets received.
pub fn poll_once<I: PacketIo>(
    io: &mut I,
    bufs: &mut Vec<I::Buf>,
    ws: &mut WorkerState,
    snap: &Snapshot,
    clock: &Clock,
) -> io::Result<usize> {
    let n = io.rx_burst(bufs, BURST)?;
    if let Some(now) = clock.seconds(bufs.first().filter(|_| n > 0)) {
        ws.set_clock(now);
    }
    let mut verdicts = [Verdict::Forward; BURST];
    let done = process_burst(&mut bufs[..n.min(BURST)], &mut verdicts, ws, snap);
    for (buf, v) in bufs.iter().zip(verdicts.iter()).take(done) {
        if matches!(v, Verdict::Forward | Verdict::Reply) {
            io.tx(buf)?;
        }
    }
    io.flush()?;
    ws.age(snap);
    Ok(n)
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
