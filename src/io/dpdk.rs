//! The DPDK backend (feature `dpdk`): [`PacketBuf`] over an owned mbuf and a
//! [`PacketIo`] over one worker's queues, queue `w` of every port for
//! worker `w`.
//!
//! Ownership, the whole point of this module: the worker's batch holds the
//! received mbufs, the datapath rewrites them in place, and
//! [`PacketIo::tx`] only notes *which* mbuf goes out and by which port. At
//! the end of the burst [`PacketIo::flush_burst`] takes the batch back,
//! moves the noted mbufs, in `tx` order, into one tx batch per port and
//! frees the rest (drops, and frames the SYN proxy took over). No mbuf is
//! ever shared, so nothing needs a reference count and `data_mut` stays
//! exclusive. Frames the worker originates ([`PacketIo::tx_frame`]) are
//! copied into fresh mbufs from the pool; when the pool is empty the frame
//! is counted (`tx_alloc_failed`) and skipped.
//!
//! Tx is bounded: each port's batch is sent with at most `1 + tx_retries`
//! bursts (a full tx ring retried, never waited on), and what the NIC still
//! refuses is freed and counted (`tx_dropped`).
//!
//! Several workers ([`Handover`]): a frame whose connection another worker
//! owns ([`crate::io::steer`]) is passed to that worker's `rte_ring`
//! (multi-producer, single-consumer) instead of being processed here; each
//! worker takes what was handed to it before polling its queues. A full
//! ring drops the frame (`handover_dropped`). The datapath hands frames on
//! too ([`PacketIo::hand_over`]: fragments for the worker that owns their
//! datagram's connection, see [`crate::frag`]), copied into fresh mbufs
//! and enqueued at the end of the burst.
//!
//! Rx takes at most the worker's burst (32) per call, from the queues in
//! turn. A multi-segment mbuf (a frame larger than one buffer) is dropped
//! and counted (`rx_multiseg`): the datapath works on contiguous frames.
//! net_pcap stores each frame's capture time (microseconds) in the mbuf's
//! Rx timestamp field; for such ports the backend rewrites it in
//! nanoseconds, so [`crate::worker::Clock::Packets`] runs the worker clock
//! from the capture exactly as `rampart replay` does.

use std::io;

use dpdk_bindings::{Mbuf, MbufBatch, Mempool, RingConsumer, RingProducer, RxQueue, TxQueue};

use super::route::Routes;
use super::{steer, IoCounters, PacketIo};
use crate::buf::PacketBuf;
use crate::flow::FlowDesc;
use crate::snapshot::SnapshotStore;

impl PacketBuf for Mbuf {
    #[inline]
    fn data(&self) -> &[u8] {
        Mbuf::data(self)
    }

    #[inline]
    fn data_mut(&mut self) -> &mut [u8] {
        Mbuf::data_mut(self)
    }

    #[inline]
    fn truncate(&mut self, len: usize) {
        Mbuf::truncate(self, len);
    }

    #[inline]
    fn prepend(&mut self, n: usize) -> bool {
        n <= crate::buf::HEADROOM && Mbuf::prepend(self, n).is_some()
    }

    #[inline]
    fn strip_front(&mut self, n: usize) -> bool {
        Mbuf::adj(self, n)
    }

    /// The Rx timestamp field. [`DpdkIo`] keeps it in nanoseconds for the
    /// ports whose unit it knows (net_pcap); other drivers' units vary, and
    /// the runtime runs its clock from a monotonic clock for them.
    #[inline]
    fn timestamp_ns(&self) -> Option<u64> {
        self.rx_timestamp()
    }
}

/// Counters of the I/O layer of one worker (the datapath keeps its own).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IoStats {
    /// Mbufs received from the NIC queues.
    pub rx_packets: u64,
    /// Received frames spread over several mbufs, dropped.
    pub rx_multiseg: u64,
    /// Mbufs the NIC accepted.
    pub tx_packets: u64,
    /// Mbufs still refused after every tx attempt, freed.
    pub tx_dropped: u64,
    /// Originated frames lost because the pool had no mbuf (or the frame
    /// did not fit one).
    pub tx_alloc_failed: u64,
    /// `tx` calls for a burst index that holds no mbuf (out of range, or
    /// the same index twice: a caller bug): nothing was sent for them.
    pub tx_unmatched: u64,
    /// Frames received here and passed to the worker that owns them.
    pub handovers_out: u64,
    /// Frames other workers passed here.
    pub handovers_in: u64,
    /// Frames for another worker whose ring was full, dropped.
    pub handover_dropped: u64,
    /// Frames passed to a port's kernel interface (`kernel_passed` frames
    /// that reached the TAP queue; the TAP queue refusing them counts in
    /// `tx_dropped`).
    pub kernel_in: u64,
    /// Frames the kernel sent on a kernel interface, sent out of its port.
    pub kernel_out: u64,
    /// Frames for the kernel that came in on a port without a kernel
    /// interface (another port has one), dropped.
    pub kernel_dropped: u64,
}

impl IoStats {
    pub fn merge(&mut self, o: &IoStats) {
        self.rx_packets += o.rx_packets;
        self.rx_multiseg += o.rx_multiseg;
        self.tx_packets += o.tx_packets;
        self.tx_dropped += o.tx_dropped;
        self.tx_alloc_failed += o.tx_alloc_failed;
        self.tx_unmatched += o.tx_unmatched;
        self.handovers_out += o.handovers_out;
        self.handovers_in += o.handovers_in;
        self.handover_dropped += o.handover_dropped;
        self.kernel_in += o.kernel_in;
        self.kernel_out += o.kernel_out;
        self.kernel_dropped += o.kernel_dropped;
    }
}

/// What a worker needs to hand frames to their owners (more than one
/// worker).
pub struct Handover {
    /// This worker's number.
    pub me: u16,
    pub workers: u16,
    /// For [`steer::owner`]: which addresses are VIPs and local addresses,
    /// as of the snapshot the control thread last published.
    pub snap: SnapshotStore,
    /// A producer into each worker's ring, `None` at this worker's own index.
    pub to: Vec<Option<RingProducer>>,
    /// This worker's ring.
    pub from: RingConsumer,
}

struct HandoverState {
    h: Handover,
    /// Frames for each worker, enqueued at the end of the rx burst.
    out: Vec<MbufBatch>,
    desc: FlowDesc,
}

impl HandoverState {
    /// Passes the frames gathered for each worker to its ring; what does not
    /// fit is freed and counted.
    fn send(&mut self, stats: &mut IoStats) {
        for (batch, to) in self.out.iter_mut().zip(self.h.to.iter_mut()) {
            if batch.is_empty() {
                continue;
            }
            if let Some(p) = to {
                stats.handovers_out += p.enqueue_burst(batch) as u64;
            }
            stats.handover_dropped += batch.clear() as u64;
        }
    }
}

/// One rx queue the worker polls.
pub struct RxPort {
    pub queue: RxQueue,
    /// net_pcap: timestamps are microseconds, rewritten as nanoseconds.
    pub pcap_timestamps: bool,
}

/// Frames the kernel sends on a kernel interface that one poll takes: the
/// kernel cannot crowd out the wire's traffic, whatever it sends.
pub const KERNEL_BURST: usize = 32;

/// A port's kernel interface (a TAP port): this worker's queue pair on it.
pub struct KernelQueues {
    /// Index of the port (in tx order) the interface belongs to.
    pub port: usize,
    pub rx: RxQueue,
    pub tx: TxQueue,
}

/// A frame queued for the end of the burst, in `tx` order.
enum Pending {
    /// A received mbuf, by its index in the burst, and the port index.
    Rx { idx: usize, port: usize },
    /// An originated frame, already in its own mbuf.
    Own { mbuf: Mbuf, port: usize },
}

/// The [`PacketIo`] of one worker.
pub struct DpdkIo {
    rx: Vec<RxPort>,
    /// Port index of each rx queue (index into `tx`).
    rx_port: Vec<usize>,
    /// One tx queue per port, in port order.
    tx: Vec<TxQueue>,
    /// Port ids, in port order (to find a received mbuf's port index).
    port_ids: Vec<u16>,
    /// One wire port and no routes: every frame leaves by port 0, and
    /// nothing about it needs to be looked up.
    one_port: bool,
    pool: Mempool,
    routes: Routes,
    tx_attempts: u32,
    next_rx: usize,
    /// Port index the last received frame came in on: where frames without
    /// a route go.
    last_rx_port: usize,
    rx_batch: MbufBatch,
    pending: Vec<Pending>,
    scratch: Vec<Option<Mbuf>>,
    out: Vec<MbufBatch>,
    handover: Option<HandoverState>,
    /// For each port (in tx order), the index in `tx` of its kernel
    /// interface's queue, if it has one.
    kernel_tx: Vec<Option<usize>>,
    /// Kernel interfaces' rx queues, each with the port its frames leave by.
    kernel_rx: Vec<(RxQueue, usize)>,
    stats: IoStats,
}

impl DpdkIo {
    /// A backend over `rx` (any ports' queues) and `tx` (one queue per port,
    /// in the order `routes` numbers the ports). Frames the NIC refuses are
    /// sent again up to `tx_retries` times.
    pub fn new(
        rx: Vec<RxPort>,
        tx: Vec<TxQueue>,
        pool: Mempool,
        routes: Routes,
        tx_retries: u32,
    ) -> DpdkIo {
        let port_ids: Vec<u16> = tx.iter().map(TxQueue::port_id).collect();
        let rx_port = rx
            .iter()
            .map(|r| {
                port_ids
                    .iter()
                    .position(|&p| p == r.queue.port_id())
                    .unwrap_or(0)
            })
            .collect();
        let out = tx.iter().map(|_| MbufBatch::new()).collect();
        DpdkIo {
            rx,
            rx_port,
            tx,
            one_port: port_ids.len() == 1 && routes.is_empty(),
            port_ids,
            pool,
            routes,
            tx_attempts: tx_retries.saturating_add(1),
            next_rx: 0,
            last_rx_port: 0,
            rx_batch: MbufBatch::new(),
            pending: Vec::with_capacity(256),
            scratch: Vec::with_capacity(crate::worker::BURST),
            out,
            handover: None,
            kernel_tx: Vec::new(),
            kernel_rx: Vec::new(),
            stats: IoStats::default(),
        }
    }

    /// Adds a port's kernel interface: frames the datapath gives the
    /// kernel ([`PacketIo::to_kernel`]) go to `k.tx`, and what the kernel
    /// sends on `k.rx` leaves by port `k.port`, up to [`KERNEL_BURST`] per
    /// poll.
    pub fn with_kernel(mut self, k: KernelQueues) -> DpdkIo {
        if self.kernel_tx.len() <= k.port {
            self.kernel_tx.resize(k.port + 1, None);
        }
        // Frames now also leave by the kernel interface's queue.
        self.one_port = false;
        self.port_ids.push(k.tx.port_id());
        self.tx.push(k.tx);
        self.out.push(MbufBatch::new());
        if let Some(slot) = self.kernel_tx.get_mut(k.port) {
            *slot = Some(self.tx.len() - 1);
        }
        self.kernel_rx.push((k.rx, k.port));
        self
    }

    /// Sends what the kernel interfaces have for the wire, a bounded
    /// burst from each.
    fn kernel_to_wire(&mut self) {
        let mut batch = std::mem::take(&mut self.rx_batch);
        for i in 0..self.kernel_rx.len() {
            let Some((q, port)) = self.kernel_rx.get_mut(i) else {
                continue;
            };
            let port = *port;
            let n = q.rx_burst_max(&mut batch, KERNEL_BURST);
            if n == 0 {
                continue;
            }
            self.stats.kernel_out += n as u64;
            for m in batch.drain() {
                self.queue_out(port, m);
            }
        }
        self.rx_batch = batch;
    }

    /// Hands frames owned by other workers to them (and takes theirs).
    pub fn with_handover(mut self, h: Handover) -> DpdkIo {
        let out = (0..h.workers).map(|_| MbufBatch::new()).collect();
        self.handover = Some(HandoverState {
            h,
            out,
            desc: FlowDesc::default(),
        });
        self
    }

    /// This worker's I/O counters so far.
    pub fn stats(&self) -> IoStats {
        self.stats
    }

    /// The port index a frame leaves by: its route, else `fallback`.
    #[inline]
    fn route(&self, frame: &[u8], fallback: usize) -> usize {
        self.routes
            .lookup_frame(frame)
            .filter(|&p| p < self.tx.len())
            .unwrap_or(fallback)
    }

    /// Port index of a received mbuf (by its port id).
    #[inline]
    fn port_of(&self, m: &Mbuf) -> usize {
        if self.port_ids.len() == 1 {
            return 0;
        }
        let id = m.port();
        self.port_ids
            .iter()
            .position(|&p| p == id)
            .unwrap_or(self.last_rx_port)
    }

    /// Appends `m` to port `port`'s tx batch, sending the batch first if it
    /// is full.
    #[inline(always)]
    fn queue_out(&mut self, port: usize, m: Mbuf) {
        let m = match self.out.get_mut(port).map(|batch| batch.push(m)) {
            Some(Ok(())) => return,
            Some(Err(m)) => m,
            None => {
                // Only reachable with a port index we never hand out.
                self.stats.tx_dropped += 1;
                return;
            }
        };
        self.send_full(port, m);
    }

    /// [`DpdkIo::queue_out`] into a full batch: sends it, then queues `m`.
    #[cold]
    #[inline(never)]
    fn send_full(&mut self, port: usize, m: Mbuf) {
        let (Some(batch), Some(txq)) = (self.out.get_mut(port), self.tx.get_mut(port)) else {
            self.stats.tx_dropped += 1;
            return;
        };
        let o = txq.send(batch, self.tx_attempts);
        self.stats.tx_packets += o.sent as u64;
        self.stats.tx_dropped += o.dropped as u64;
        if batch.push(m).is_err() {
            // Unreachable: send leaves the batch empty.
            self.stats.tx_dropped += 1;
        }
    }

    /// Sends every port's tx batch.
    fn send_all(&mut self) {
        for (batch, txq) in self.out.iter_mut().zip(self.tx.iter_mut()) {
            if batch.is_empty() {
                continue;
            }
            let o = txq.send(batch, self.tx_attempts);
            self.stats.tx_packets += o.sent as u64;
            self.stats.tx_dropped += o.dropped as u64;
        }
    }
}

impl PacketIo for DpdkIo {
    type Buf = Mbuf;

    fn rx_burst(&mut self, bufs: &mut Vec<Mbuf>, max: usize) -> io::Result<usize> {
        // Normally empty already (flush_burst took the last burst back).
        bufs.clear();
        if !self.kernel_rx.is_empty() {
            self.kernel_to_wire();
        }
        // Frames other workers handed over arrived before what is in the
        // queues now: they go first.
        if let Some(ho) = self.handover.as_mut() {
            let n = ho.h.from.dequeue_burst_max(&mut self.rx_batch, max);
            self.stats.handovers_in += n as u64;
            bufs.extend(self.rx_batch.drain());
        }
        let queues = self.rx.len();
        for k in 0..queues {
            if bufs.len() >= max {
                break;
            }
            let q = (self.next_rx + k) % queues;
            let (Some(rxp), Some(&port)) = (self.rx.get_mut(q), self.rx_port.get(q)) else {
                continue;
            };
            let n = rxp.queue.rx_burst_max(&mut self.rx_batch, max - bufs.len());
            if n == 0 {
                continue;
            }
            self.stats.rx_packets += n as u64;
            self.last_rx_port = port;
            let pcap = rxp.pcap_timestamps;
            let snap = self.handover.as_ref().map(|ho| ho.h.snap.load());
            for mut m in self.rx_batch.drain() {
                if !m.is_contiguous() {
                    self.stats.rx_multiseg += 1;
                    continue;
                }
                if pcap {
                    if let Some(us) = m.rx_timestamp() {
                        m.set_rx_timestamp(us.saturating_mul(1000));
                    }
                }
                if let (Some(ho), Some(snap)) = (self.handover.as_mut(), snap.as_ref()) {
                    let owner = steer::owner(m.data(), snap, ho.h.workers, &mut ho.desc);
                    if let Some(o) = owner.filter(|&o| o != ho.h.me) {
                        let i = usize::from(o);
                        if ho.out.get(i).is_some_and(MbufBatch::is_full) {
                            ho.send(&mut self.stats);
                        }
                        match ho.out.get_mut(i) {
                            Some(batch) => {
                                if batch.push(m).is_err() {
                                    self.stats.handover_dropped += 1;
                                }
                            }
                            None => self.stats.handover_dropped += 1,
                        }
                        continue;
                    }
                }
                bufs.push(m);
            }
        }
        if let Some(ho) = self.handover.as_mut() {
            ho.send(&mut self.stats);
        }
        if queues > 0 {
            self.next_rx = (self.next_rx + 1) % queues;
        }
        Ok(bufs.len())
    }

    #[inline(always)]
    fn tx(&mut self, idx: usize, pkt: &Mbuf) -> io::Result<()> {
        let port = if self.one_port {
            0
        } else {
            let fallback = self.port_of(pkt);
            self.route(pkt.data(), fallback)
        };
        self.pending.push(Pending::Rx { idx, port });
        Ok(())
    }

    fn tx_frame(&mut self, frame: &[u8], _ts_ns: u64) -> io::Result<()> {
        let Some(mut m) = self.pool.alloc() else {
            self.stats.tx_alloc_failed += 1;
            return Ok(());
        };
        match m.append(frame.len()) {
            Some(room) => room.copy_from_slice(frame),
            None => {
                self.stats.tx_alloc_failed += 1;
                return Ok(());
            }
        }
        let port = self.route(frame, self.last_rx_port);
        self.pending.push(Pending::Own { mbuf: m, port });
        Ok(())
    }

    fn hand_over(&mut self, to: u16, frame: &[u8], _ts_ns: u64) -> io::Result<()> {
        let Some(ho) = self.handover.as_mut() else {
            return Err(io::Error::other(format!(
                "a frame for worker {to}, but this worker has no rings to others"
            )));
        };
        let Some(mut m) = self.pool.alloc() else {
            self.stats.tx_alloc_failed += 1;
            return Ok(());
        };
        match m.append(frame.len()) {
            Some(room) => room.copy_from_slice(frame),
            None => {
                self.stats.tx_alloc_failed += 1;
                return Ok(());
            }
        }
        let i = usize::from(to);
        if ho.out.get(i).is_some_and(MbufBatch::is_full) {
            ho.send(&mut self.stats);
        }
        match ho.out.get_mut(i) {
            Some(batch) if i != usize::from(ho.h.me) => {
                if batch.push(m).is_err() {
                    self.stats.handover_dropped += 1;
                }
            }
            _ => self.stats.handover_dropped += 1,
        }
        Ok(())
    }

    fn to_kernel(&mut self, idx: usize, pkt: &Mbuf) -> io::Result<()> {
        let port = self.port_of(pkt);
        match self.kernel_tx.get(port).copied().flatten() {
            Some(k) => {
                self.stats.kernel_in += 1;
                self.pending.push(Pending::Rx { idx, port: k });
            }
            None => self.stats.kernel_dropped += 1,
        }
        Ok(())
    }

    fn counters(&self) -> IoCounters {
        let s = &self.stats;
        IoCounters {
            handovers_out: s.handovers_out,
            handovers_in: s.handovers_in,
            handover_dropped: s.handover_dropped,
            tx_dropped: s.tx_dropped,
            tx_alloc_failed: s.tx_alloc_failed,
            rx_multiseg: s.rx_multiseg,
            kernel_dropped: s.kernel_dropped,
        }
    }

    /// Sends what is queued; mbufs noted by `tx` are sent only through
    /// [`PacketIo::flush_burst`], which has them.
    fn flush(&mut self) -> io::Result<()> {
        self.flush_burst(&mut Vec::new())
    }

    fn flush_burst(&mut self, bufs: &mut Vec<Mbuf>) -> io::Result<()> {
        let mut pending = std::mem::take(&mut self.pending);
        if self.one_port && is_whole_burst(&pending, bufs.len()) {
            // The usual burst: every frame forwarded, in order, by the one
            // port. The mbufs go to the tx batch as they are.
            for m in bufs.drain(..) {
                self.queue_out(0, m);
            }
            pending.clear();
        }
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        scratch.extend(bufs.drain(..).map(Some));
        for p in pending.drain(..) {
            match p {
                Pending::Own { mbuf, port } => self.queue_out(port, mbuf),
                Pending::Rx { idx, port } => match scratch.get_mut(idx).and_then(Option::take) {
                    Some(m) => self.queue_out(port, m),
                    None => self.stats.tx_unmatched += 1,
                },
            }
        }
        // What was not sent (drops, frames taken over) goes back to the pool.
        scratch.clear();
        self.scratch = scratch;
        self.pending = pending;
        self.send_all();
        if let Some(ho) = self.handover.as_mut() {
            ho.send(&mut self.stats);
        }
        Ok(())
    }
}

/// Whether `pending` is frames `0..n` of the burst, in order, each by port 0.
#[inline]
fn is_whole_burst(pending: &[Pending], n: usize) -> bool {
    pending.len() == n
        && pending
            .iter()
            .enumerate()
            .all(|(i, p)| matches!(p, Pending::Rx { idx, port: 0 } if *idx == i))
}
