//! Packet I/O backends: where frames come from and where they go.
//!
//! The worker loop is written once against [`PacketIo`]; only the backend
//! differs between `rampart replay` ([`pcap`]; [`queue`] for each of its
//! workers when there are several), `rampart bench` ([`memory`]) and the
//! DPDK runtime. The trait is shaped after DPDK's burst API so that an
//! mbuf backend fits without changing the loop:
//!
//! * [`PacketIo::rx_burst`] fills a caller-owned batch. A `Vec`-backed backend
//!   overwrites the buffers already in the batch (clear + extend), so after the
//!   first few bursts no packet costs an allocation; an mbuf backend clears the
//!   batch and pushes the mbuf handles `rte_eth_rx_burst` returned.
//! * [`PacketIo::tx`] queues one frame; [`PacketIo::flush_burst`] pushes the
//!   queue out (`rte_eth_tx_burst`) at the end of every burst and gets the
//!   burst's buffers back. A `Vec` backend copies in `tx` and leaves the
//!   buffers for reuse; the mbuf backend (`io::dpdk`, feature `dpdk`) only
//!   notes in `tx` which mbufs go out and moves exactly those to the NIC in
//!   `flush_burst`, freeing the others, so forwarding never copies and no
//!   mbuf is ever shared (no reference counts).
//!
//! Two pure-Rust helpers serve the DPDK runtime and are tested without it:
//! [`route`] picks the tx port of a frame from the subnets behind each
//! port, [`steer`] names the worker that owns a frame's connection.
//!
//! Invariant: after `rx_burst` returns `Ok(n)`, `bufs[..n]` are the packets
//! received, in arrival order; entries past `n` are spare buffers the backend
//! keeps for reuse and carry no packet.

#[cfg(feature = "dpdk")]
pub mod dpdk;
pub mod memory;
pub mod pcap;
pub mod queue;
pub mod route;
pub mod steer;

use crate::buf::PacketBuf;

pub use memory::MemoryIo;
pub use pcap::{PcapError, PcapIo, PcapReader, PcapWriter, TsResolution};
pub use queue::QueueIo;

/// Batch I/O as the worker loop sees it.
pub trait PacketIo {
    /// The frame buffer this backend hands out: [`RxPacket`] for the pure-Rust
    /// backends, an mbuf handle for DPDK.
    type Buf: PacketBuf;

    /// Receive up to `max` packets into `bufs[..n]` and return `n`.
    ///
    /// `Ok(0)` means "nothing right now"; a finite source (a pcap file, a
    /// memory ring replayed N times) then also reports [`PacketIo::exhausted`].
    fn rx_burst(&mut self, bufs: &mut Vec<Self::Buf>, max: usize) -> std::io::Result<usize>;

    /// Queue one frame for transmission: `pkt` is `bufs[idx]` of the burst
    /// [`PacketIo::rx_burst`] filled. The buffer is not consumed: a
    /// `Vec`-backed backend copies or records it, an mbuf backend notes
    /// its index and sends it from [`PacketIo::flush_burst`]; either way the
    /// frame goes out as it is now, in the order of the `tx` / `tx_frame`
    /// calls.
    fn tx(&mut self, idx: usize, pkt: &Self::Buf) -> std::io::Result<()>;

    /// Queue a frame the worker originated (see [`crate::outbox`]); the
    /// backend copies it (into a fresh mbuf for DPDK). `ts_ns` is the worker
    /// clock, for backends that record times.
    fn tx_frame(&mut self, frame: &[u8], ts_ns: u64) -> std::io::Result<()>;

    /// Pass a frame to worker `to`, which takes it in before what its own
    /// queues hold and never steers it again (a fragment for the worker
    /// that owns its datagram, see [`crate::frag`]). The backend copies it.
    /// Only backends that run several workers take frames for others.
    fn hand_over(&mut self, to: u16, frame: &[u8], ts_ns: u64) -> std::io::Result<()> {
        let _ = (frame, ts_ns);
        Err(std::io::Error::other(format!(
            "this I/O backend runs one worker; a frame for worker {to} has nowhere to go"
        )))
    }

    /// Push queued frames out. Called once per burst by the worker, through
    /// [`PacketIo::flush_burst`].
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }

    /// End of a burst: every frame of `bufs` that goes out has been passed
    /// to [`PacketIo::tx`]. A backend that sends the buffers themselves
    /// (DPDK: the mbuf goes to the NIC) takes them out of `bufs` here and
    /// frees the rest; the default leaves `bufs` alone and calls
    /// [`PacketIo::flush`].
    fn flush_burst(&mut self, bufs: &mut Vec<Self::Buf>) -> std::io::Result<()> {
        let _ = bufs;
        self.flush()
    }

    /// True once a finite source has delivered its last packet. A NIC never is.
    fn exhausted(&self) -> bool {
        false
    }

    /// Pass a frame to the kernel interface of the port it came in on
    /// ([`crate::state::Verdict::Kernel`]): like [`PacketIo::tx`], the
    /// buffer is only noted and goes out with the burst. Only a backend
    /// with kernel interfaces ever gets such frames (the snapshot has a
    /// kernel path only under `rampart run`); the others refuse. `pkt` is
    /// `bufs[idx]`, as for `tx`.
    fn to_kernel(&mut self, idx: usize, pkt: &Self::Buf) -> std::io::Result<()> {
        let _ = (idx, pkt);
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "this packet backend has no kernel interface",
        ))
    }

    /// The backend's own counters, published live to the control thread
    /// (DPDK); zero for the others.
    fn counters(&self) -> IoCounters {
        IoCounters::default()
    }
}

/// What a backend counts itself, beyond the datapath's counters: hand-overs
/// between workers and the frames its own bounds dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoCounters {
    /// Frames handed to the worker that owns them.
    pub handovers_out: u64,
    /// Frames other workers handed to this one.
    pub handovers_in: u64,
    /// Frames for another worker whose ring was full.
    pub handover_dropped: u64,
    /// Frames a tx queue still refused after every attempt (a full tx ring
    /// or kernel-interface queue).
    pub tx_dropped: u64,
    /// Frames rampart originated or handed over that found no free mbuf.
    pub tx_alloc_failed: u64,
    /// Received frames spread over several mbufs.
    pub rx_multiseg: u64,
    /// Frames for the kernel on a port without a kernel interface.
    pub kernel_dropped: u64,
}

/// A received frame in a reusable heap buffer, with its capture timestamp.
///
/// The pcap and memory backends hand these out and reuse them burst after
/// burst: `data` is cleared and refilled, never reallocated once it is large
/// enough.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RxPacket {
    /// The frame, from the Ethernet header on.
    pub data: Vec<u8>,
    /// Capture time in nanoseconds since the Unix epoch (pcap) or a
    /// synthetic clock (memory).
    pub ts_ns: u64,
}

impl RxPacket {
    pub fn new(data: Vec<u8>, ts_ns: u64) -> RxPacket {
        RxPacket { data, ts_ns }
    }

    /// Replace the contents with `frame`, keeping the allocation.
    #[inline]
    pub fn fill(&mut self, frame: &[u8], ts_ns: u64) {
        self.data.clear();
        self.data.extend_from_slice(frame);
        self.ts_ns = ts_ns;
    }
}

impl PacketBuf for RxPacket {
    #[inline]
    fn data(&self) -> &[u8] {
        &self.data
    }

    #[inline]
    fn data_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }

    #[inline]
    fn truncate(&mut self, len: usize) {
        self.data.truncate(len);
    }

    #[inline]
    fn prepend(&mut self, n: usize) -> bool {
        crate::buf::vec_prepend(&mut self.data, n)
    }

    #[inline]
    fn strip_front(&mut self, n: usize) -> bool {
        crate::buf::vec_strip_front(&mut self.data, n)
    }

    #[inline]
    fn timestamp_ns(&self) -> Option<u64> {
        Some(self.ts_ns)
    }
}

/// The batch slot `i`, created if the batch is not that long yet. Only the
/// first bursts allocate; later ones find the slot and its buffer in place.
#[inline]
pub(crate) fn slot(bufs: &mut Vec<RxPacket>, i: usize) -> &mut RxPacket {
    if bufs.len() <= i {
        bufs.resize_with(i + 1, RxPacket::default);
    }
    &mut bufs[i]
}
