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

    /// Grows the frame by `n` bytes at the front (encapsulation); the new
    /// bytes are the first `n` of [`PacketBuf::data`], their contents
    /// unspecified. Returns false, changing nothing, when the buffer has no
    /// room in front (an mbuf's headroom, [`HEADROOM`] bytes).
    fn prepend(&mut self, n: usize) -> bool;

    /// Removes `n` bytes from the front of the frame (decapsulation).
    /// Returns false, changing nothing, when the frame is shorter.
    fn strip_front(&mut self, n: usize) -> bool;

    /// Receive time in nanoseconds, where the source records one (pcap
    /// capture time, a synthetic bench clock). NICs without hardware
    /// timestamps return `None` and the worker uses its own clock.
    fn timestamp_ns(&self) -> Option<u64> {
        None
    }
}

/// Room an mbuf keeps in front of the frame (DPDK's `RTE_PKTMBUF_HEADROOM`);
/// [`PacketBuf::prepend`] allows at most this much on every buffer, so a
/// transform that fits in replay fits on DPDK too.
pub const HEADROOM: usize = 128;

/// [`PacketBuf::prepend`] for a `Vec`-held frame: the allocation grows if it
/// must and the frame moves back by `n` bytes (a memmove; replay and tests
/// only, DPDK prepends into the mbuf's headroom without moving anything).
pub fn vec_prepend(v: &mut Vec<u8>, n: usize) -> bool {
    if n > HEADROOM {
        return false;
    }
    v.splice(0..0, std::iter::repeat_n(0u8, n));
    true
}

/// [`PacketBuf::strip_front`] for a `Vec`-held frame.
pub fn vec_strip_front(v: &mut Vec<u8>, n: usize) -> bool {
    if n > v.len() {
        return false;
    }
    v.drain(..n);
    true
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

    #[inline]
    fn prepend(&mut self, n: usize) -> bool {
        vec_prepend(self, n)
    }

    #[inline]
    fn strip_front(&mut self, n: usize) -> bool {
        vec_strip_front(self, n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::RxPacket;

    fn grows_and_shrinks<B: PacketBuf>(mut b: B) {
        let before = b.data().to_vec();
        assert!(b.prepend(20));
        assert_eq!(b.data().len(), before.len() + 20);
        assert_eq!(
            &b.data()[20..],
            &before[..],
            "the frame itself does not change"
        );
        b.data_mut()[..20].fill(0xee);
        assert!(b.strip_front(20));
        assert_eq!(b.data(), &before[..]);
        assert!(b.prepend(HEADROOM), "a whole headroom's worth");
        assert!(b.strip_front(HEADROOM));
        assert!(!b.prepend(HEADROOM + 1), "more than an mbuf could hold");
        assert!(!b.strip_front(before.len() + 1), "more than the frame");
        assert_eq!(b.data(), &before[..], "refusals change nothing");
    }

    #[test]
    fn vec_and_rx_packet_grow_and_shrink_at_the_front() {
        let frame: Vec<u8> = (0..60u8).collect();
        grows_and_shrinks(frame.clone());
        grows_and_shrinks(RxPacket::new(frame, 7));
    }
}
