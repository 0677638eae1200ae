//! The buffer the datapath works on. A `Vec<u8>` implements it for replay,
//! tests and benchmarks; the DPDK runtime implements it over `rte_mbuf`, so
//! the whole pipeline runs without hardware.

pub trait PacketBuf {
    /// The frame, from the Ethernet header to the last byte received.
    fn data(&self) -> &[u8];
    fn data_mut(&mut self) -> &mut [u8];

    /// Shortens the frame to `len` bytes (no-op if it is not longer). The
    /// datapath only ever shortens a frame: a SYN turned into a SYN-ACK, a
    /// backend's SYN-ACK into an ACK.
    fn truncate(&mut self, len: usize);

    /// Receive time in nanoseconds, where the source records one (pcap
    /// capture time, a synthetic bench clock). NICs without hardware
    /// timestamps return `None` and the worker uses its own clock.
    fn timestamp_ns(&self) -> Option<u64> {
        None
    }
}

impl PacketBuf for Vec<u8> {
    #[inline]
    fn data(&self) -> &[u8] {
        self
    }

    #[inline]
    fn data_mut(&mut self) -> &mut [u8] {
        self
    }

    #[inline]
    fn truncate(&mut self, len: usize) {
        Vec::truncate(self, len);
    }
}
